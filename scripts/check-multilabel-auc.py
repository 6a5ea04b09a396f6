"""Checks ortl-report's multi-label AUCs against scikit-learn on the same predictions.

    python check-multilabel-auc.py PREDICTIONS.csv REPORT/metrics.csv

Per finding: roc_auc_score over the images whose label is known (an empty y_ cell is
unknown); micro: over every known (image, finding) label pooled; macro: the mean over the
findings that have both classes. Exits 1 naming the first figure that differs.
"""

import csv
import math
import sys

from sklearn.metrics import roc_auc_score

TOLERANCE = 1e-6  # metrics.csv and predictions are decimal text; the AUCs are exact


def main(predictions_path, metrics_path):
    with open(predictions_path, newline="") as f:
        rows = list(csv.DictReader(f))
    findings = [c[2:] for c in rows[0] if c.startswith("y_")]
    expected = {}
    pooled_y, pooled_p = [], []
    for finding in findings:
        known = [r for r in rows if r["y_" + finding] != ""]
        y = [int(r["y_" + finding]) for r in known]
        p = [float(r["p_" + finding]) for r in known]
        pooled_y += y
        pooled_p += p
        expected[finding] = roc_auc_score(y, p) if 0 < sum(y) < len(y) else None
    defined = [a for a in expected.values() if a is not None]
    expected["macro"] = sum(defined) / len(defined) if defined else None
    expected["micro"] = roc_auc_score(pooled_y, pooled_p)

    with open(metrics_path, newline="") as f:
        reported = {
            (r["finding"] if r["scope"] == "finding" else r["scope"]): r["roc_auc"]
            for r in csv.DictReader(f)
        }
    for name, want in expected.items():
        got = reported.get(name)
        if got is None:
            sys.exit(f"{metrics_path}: no row for {name}")
        if want is None:
            if got != "":
                sys.exit(f"{name}: sklearn has no AUC (one class), the report says {got}")
            continue
        if got == "" or not math.isclose(float(got), want, abs_tol=TOLERANCE):
            sys.exit(f"{name}: report AUC {got!r}, sklearn {want!r}")
        print(f"{name}: {float(got):.6f} = sklearn {want:.6f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
