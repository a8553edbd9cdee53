"""Generates a synthetic but realistic customer-churn data set with a fixed
seed, split into training, validation and held-out test files."""
import argparse
import random

from mlcommon import FEATURES, sigmoid, write_rows


def customer(rng):
    tenure = rng.expovariate(1 / 24.0)
    contract = rng.choice([1, 1, 1, 12, 24])
    charges = max(15.0, rng.gauss(70, 25))
    calls = min(12, int(rng.expovariate(1 / 1.5)))
    late = min(8, int(rng.expovariate(1 / 0.8)))
    # The true (unknown to the model) churn propensity, with noise.
    z = (-0.9 - 0.045 * tenure + 0.022 * (charges - 70) + 0.45 * calls
         - 0.07 * contract + 0.5 * late + rng.gauss(0, 0.8))
    churned = 1 if rng.random() < sigmoid(z) else 0
    return [tenure, charges, calls, contract, late], churned


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.samples < 100:
        ap.error("--samples must be at least 100")
    rng = random.Random(args.seed)
    data = [customer(rng) for _ in range(args.samples)]
    n_train = int(0.6 * len(data))
    n_val = int(0.2 * len(data))
    parts = {
        "train": data[:n_train],
        "validation": data[n_train:n_train + n_val],
        "test": data[n_train + n_val:],
    }
    for name, rows in parts.items():
        write_rows(f"{args.out}/{name}.csv", [x for x, _ in rows], [y for _, y in rows])
        rate = sum(y for _, y in rows) / len(rows)
        print(f"{name}: {len(rows)} customers, churn rate {rate:.1%}")
    print(f"features: {', '.join(FEATURES)}")


if __name__ == "__main__":
    main()
