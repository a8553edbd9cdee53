"""Trains a logistic-regression churn model by full-batch gradient descent
(with L2 regularisation) and scores it on the validation set."""
import argparse
import os

from mlcommon import auc, predict, read_rows, save_json, set_output, sigmoid, standardize, standardize_fit


def train(xs, ys, lr, l2, epochs):
    means, stds = standardize_fit(xs)
    zs = standardize(xs, means, stds)
    n, d = len(zs), len(zs[0])
    w, b = [0.0] * d, 0.0
    for epoch in range(epochs):
        gw, gb = [0.0] * d, 0.0
        for z, y in zip(zs, ys):
            err = sigmoid(b + sum(wi * zi for wi, zi in zip(w, z))) - y
            gb += err
            for j in range(d):
                gw[j] += err * z[j]
        b -= lr * gb / n
        w = [wj - lr * (gj / n + l2 * wj) for wj, gj in zip(w, gw)]
    return {"weights": w, "bias": b, "means": means, "stds": stds}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", required=True)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--l2", type=float, default=0.0)
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--out", required=True, help="folder for candidate models")
    args = ap.parse_args()
    xs, ys = read_rows(f"{args.data}/train.csv")
    model = train(xs, ys, args.lr, args.l2, args.epochs)
    vx, vy = read_rows(f"{args.data}/validation.csv")
    val_auc = auc(predict(model, vx), vy)
    model.update({"lr": args.lr, "l2": args.l2, "epochs": args.epochs,
                  "validation_auc": round(val_auc, 4)})
    name = f"lr{args.lr}-l2{args.l2}"
    path = os.path.join(args.out, name + ".json")
    save_json(path, model)
    print(f"trained {name}: validation AUC {val_auc:.4f}")
    set_output("model", path)
    set_output("val_auc", f"{val_auc:.4f}")


if __name__ == "__main__":
    main()
