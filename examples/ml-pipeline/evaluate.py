"""Evaluates a model on the held-out test set and compares it with the model
currently deployed in the registry."""
import argparse
import os

from mlcommon import auc, load_json, log_loss, predict, read_rows, set_output


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--registry", required=True)
    args = ap.parse_args()
    model = load_json(args.model)
    xs, ys = read_rows(f"{args.data}/test.csv")
    scores = predict(model, xs)
    test_auc = auc(scores, ys)
    accuracy = sum((p >= 0.5) == (y == 1) for p, y in zip(scores, ys)) / len(ys)
    current = load_json(os.path.join(args.registry, "current.json"))
    current_auc = current["auc"] if current else 0.0
    print(f"test AUC {test_auc:.4f}, accuracy {accuracy:.3f}, "
          f"log loss {log_loss(scores, ys):.4f}; deployed model: "
          + (f"v{current['version']} with AUC {current_auc:.4f}" if current else "none"))
    set_output("auc", f"{test_auc:.4f}")
    set_output("accuracy", f"{accuracy:.4f}")
    set_output("current_auc", f"{current_auc:.4f}")
    set_output("beats_current", "true" if round(test_auc, 4) > round(current_auc, 4) else "false")


if __name__ == "__main__":
    main()
