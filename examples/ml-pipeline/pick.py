"""Picks the candidate model with the best validation AUC from a sweep."""
import argparse
import glob
import os

from mlcommon import load_json, set_output


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--candidates", required=True)
    args = ap.parse_args()
    paths = sorted(glob.glob(os.path.join(args.candidates, "*.json")))
    if not paths:
        raise SystemExit(f"no candidate models in {args.candidates}")
    scored = [(load_json(p)["validation_auc"], p) for p in paths]
    for score, p in sorted(scored, reverse=True):
        print(f"{score:.4f}  {os.path.basename(p)}")
    best_score, best = max(scored)
    set_output("model", best)
    set_output("val_auc", f"{best_score:.4f}")


if __name__ == "__main__":
    main()
