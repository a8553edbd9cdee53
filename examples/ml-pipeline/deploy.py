"""Deploys a model: copies it into the registry as the next version, with its
metrics, and points current.json at it."""
import argparse
import os
import shutil
import time

from mlcommon import load_json, save_json, set_output


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--auc", type=float, required=True)
    ap.add_argument("--registry", required=True)
    args = ap.parse_args()
    current = load_json(os.path.join(args.registry, "current.json"))
    version = current["version"] + 1 if current else 1
    folder = os.path.join(args.registry, f"v{version}")
    os.makedirs(folder, exist_ok=True)
    shutil.copyfile(args.model, os.path.join(folder, "model.json"))
    meta = {
        "version": version,
        "auc": args.auc,
        "path": os.path.abspath(os.path.join(folder, "model.json")),
        "source": args.model,
        "run_id": os.environ.get("WEFT_RUN_ID", ""),
        "deployed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    save_json(os.path.join(folder, "metrics.json"), meta)
    save_json(os.path.join(args.registry, "current.json"), meta)
    print(f"deployed model v{version} (AUC {args.auc:.4f}) to {os.path.abspath(folder)}")
    set_output("version", str(version))
    set_output("path", meta["path"])


if __name__ == "__main__":
    main()
