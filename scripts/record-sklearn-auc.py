#!/usr/bin/env python3
"""Reference ROC AUCs for ortl-report's multi-label test, from scikit-learn.

Builds a deterministic multi-label predictions table in ortl-infer's form (path, then
y_/p_/t_ per finding, predicted, split, model, model_epoch): 64 images, 4 findings, about
one label in seven unknown (empty), probabilities with two decimals so that scores tie.
The table is crates/report/tests/data/multilabel-predictions.csv, committed; this script
checks that the committed file is byte for byte what it builds (--write rewrites it), then
prints from that file:

- per finding, sklearn.metrics.roc_auc_score over the rows where its label is known;
- the macro average (their mean) and the micro average (roc_auc_score over every known
  (image, finding) pair pooled);
- per finding, DeLong's 95 % interval from an independent O(n^2) numpy implementation
  (placements from the pairwise kernel, variances with np.var(ddof=1)).

The Rust test (crates/report/tests/multilabel.rs) holds these numbers. Run with a Python
that has scikit-learn:

    python3 -m venv /tmp/sk && /tmp/sk/bin/pip install scikit-learn
    /tmp/sk/bin/python scripts/record-sklearn-auc.py
"""

import csv
import io
import sys
from pathlib import Path

FINDINGS = ["Effusion", "Mass", "Nodule", "Pneumothorax"]
PREVALENCE = [0.30, 0.20, 0.15, 0.40]
THRESHOLDS = [0.5, 0.4, 0.6, 0.5]
ROWS = 64
TABLE = Path(__file__).resolve().parent.parent / "crates/report/tests/data/multilabel-predictions.csv"


class Lcg:
    """Numerical Recipes' 32-bit LCG: the same numbers on every Python."""

    def __init__(self, seed):
        self.state = seed

    def uniform(self):
        self.state = (1664525 * self.state + 1013904223) % 2**32
        return self.state / 2**32


def build():
    rng = Lcg(40)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["path"]
        + [f"{prefix}{f}" for prefix in ("y_", "p_", "t_") for f in FINDINGS]
        + ["predicted", "split", "model", "model_epoch"]
    )
    for i in range(ROWS):
        truth, probabilities = [], []
        for prevalence in PREVALENCE:
            known = rng.uniform() >= 0.15
            positive = rng.uniform() < prevalence
            noise = rng.uniform() * 0.6 - 0.3
            p = min(max((0.6 if positive else 0.35) + noise, 0.01), 0.99)
            truth.append(("1" if positive else "0") if known else "")
            probabilities.append(round(p, 2))
        predicted = "|".join(f for f, p, t in zip(FINDINGS, probabilities, THRESHOLDS) if p >= t)
        writer.writerow(
            [f"patient{i // 2:02d}/image{i:02d}.png"]
            + truth
            + [f"{p:.6f}" for p in probabilities]
            + [f"{t:.6f}" for t in THRESHOLDS]
            + [predicted, "test", "run/best.onnx", "7"]
        )
    return out.getvalue()


def delong_interval(y, p):
    import numpy as np

    pos, neg = p[y == 1], p[y == 0]
    kernel = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = kernel.mean(axis=1), kernel.mean(axis=0)
    auc = v10.mean()
    se = np.sqrt(np.var(v10, ddof=1) / len(v10) + np.var(v01, ddof=1) / len(v01))
    z = 1.959963984540054
    return float(auc - z * se), float(auc + z * se)


def main():
    import numpy as np
    import sklearn
    from sklearn.metrics import roc_auc_score

    text = build()
    if "--write" in sys.argv:
        TABLE.parent.mkdir(parents=True, exist_ok=True)
        TABLE.write_text(text)
    elif TABLE.read_text() != text:
        sys.exit(f"{TABLE} differs from the table this script builds; rerun with --write")
    rows = list(csv.DictReader(io.StringIO(TABLE.read_text())))
    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}")
    per_finding, pooled_y, pooled_p = [], [], []
    for f in FINDINGS:
        known = [r for r in rows if r[f"y_{f}"] != ""]
        y = np.array([int(r[f"y_{f}"]) for r in known])
        p = np.array([float(r[f"p_{f}"]) for r in known])
        auc = roc_auc_score(y, p)
        low, high = delong_interval(y, p)
        per_finding.append(auc)
        pooled_y.extend(y)
        pooled_p.extend(p)
        print(f"{f}: n {len(y)} positives {int(y.sum())} auc {float(auc)!r} delong ({low!r}, {high!r})")
    print(f"macro {float(np.mean(per_finding))!r}")
    micro = float(roc_auc_score(np.array(pooled_y), np.array(pooled_p)))
    print(f"micro {micro!r} over {len(pooled_y)} labels")


if __name__ == "__main__":
    main()
