"""Shared helpers of the example pipeline: CSV data, the logistic model,
metrics, and $WEFT_OUTPUT. Plain Python 3 standard library only."""
import csv
import json
import math
import os

FEATURES = ["tenure_months", "monthly_charges", "support_calls", "contract_months", "late_payments"]


def read_rows(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    xs = [[float(r[k]) for k in FEATURES] for r in rows]
    ys = [int(r["churned"]) for r in rows]
    return xs, ys


def write_rows(path, xs, ys):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FEATURES + ["churned"])
        for x, y in zip(xs, ys):
            w.writerow([f"{v:.4f}" for v in x] + [y])


def sigmoid(z):
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def standardize_fit(xs):
    n = len(xs)
    means = [sum(x[j] for x in xs) / n for j in range(len(FEATURES))]
    stds = [math.sqrt(sum((x[j] - means[j]) ** 2 for x in xs) / n) or 1.0
            for j in range(len(FEATURES))]
    return means, stds


def standardize(xs, means, stds):
    return [[(x[j] - means[j]) / stds[j] for j in range(len(x))] for x in xs]


def predict(model, xs):
    zs = standardize(xs, model["means"], model["stds"])
    return [sigmoid(model["bias"] + sum(w * v for w, v in zip(model["weights"], z))) for z in zs]


def auc(scores, ys):
    """Area under the ROC curve by ranking (ties get the mean rank)."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0 + 1.0
        i = j + 1
    pos = sum(ys)
    neg = len(ys) - pos
    if pos == 0 or neg == 0:
        return 0.5
    rank_sum = sum(r for r, y in zip(ranks, ys) if y == 1)
    return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg)


def log_loss(scores, ys):
    eps = 1e-12
    return -sum(y * math.log(max(p, eps)) + (1 - y) * math.log(max(1 - p, eps))
                for p, y in zip(scores, ys)) / len(ys)


def set_output(key, value):
    """Appends KEY=VALUE to $WEFT_OUTPUT (and says so on stdout)."""
    print(f"output {key}={value}")
    path = os.environ.get("WEFT_OUTPUT")
    if path:
        with open(path, "a") as f:
            f.write(f"{key}={value}\n")


def load_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default


def save_json(path, obj):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
