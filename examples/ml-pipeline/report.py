"""Says which model is deployed now, and where."""
import argparse
import os

from mlcommon import load_json


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--registry", required=True)
    args = ap.parse_args()
    current = load_json(os.path.join(args.registry, "current.json"))
    if current is None:
        print("no model is deployed yet")
        return
    print(f"deployed: model v{current['version']} (AUC {current['auc']:.4f}) "
          f"at {os.path.abspath(current['path'])}")


if __name__ == "__main__":
    main()
