#!/usr/bin/env bash
# make test's end-to-end check of multi-label data, as a user runs it: `make all` on the
# bundled NIH-style and CheXpert-style label tables (fixtures/tables), split by patient,
# then augment, train (a sigmoid per finding), infer (thresholds chosen on validation) and
# report. Checks that no patient crosses splits, that the test predictions decide at the
# validation-chosen thresholds, and that every per-finding ROC AUC in the report equals
# scikit-learn's roc_auc_score on the same predictions.
#   scripts/test-multilabel.sh BIN PYTHON   (BIN: target/debug, built; PYTHON with sklearn)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$1 python=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source scripts/testlib.sh
# MAKEFLAGS cleared: a parent `make -j` must not interleave the stages this test orders.
mk() { MAKEFLAGS= make --no-print-directory PROFILE=dev EPOCHS=3 COPIES=1 SIZE=64x64 TEST=0.2 "$@"; }

nih() {
  mk all OUT="$work/nih" LABELS=fixtures/tables/nih/Data_Entry_2017.csv DATA=fixtures/tables/nih \
    SPLIT="--label-separator '|' --no-finding 'No Finding' --group-by 'Patient ID'"
}
chexpert() {
  mk all OUT="$work/chexpert" DATA=fixtures/tables/chexpert \
    LABELS=fixtures/tables/chexpert/CheXpert-v1.0-small/train.csv \
    SPLIT="--path-column Path --label-columns 'Cardiomegaly,Pleural Effusion,Lung Lesion' \
      --uncertain zeros --group-by-path 'patient[0-9]+'" THRESHOLD_RULE=sensitivity=0.8
}

# Every group (patient) of the manifest lies in one split, and every split has several.
no_patient_crosses_splits() {
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    { g = $col["group"]; s = $col["split"]
      if (g in where && where[g] != s) { print "patient " g " in " where[g] " and " s; bad = 1 }
      where[g] = s; if (!((s, g) in seen)) { seen[s, g]; groups[s]++ } }
    END { for (s in groups) if (groups[s] < 3) { print s ": " groups[s] " patients"; bad = 1 }
      exit bad }' "$1/manifest.csv"
}

# The run is multi-label end to end, and the test split decides at the thresholds RULE
# chose on validation (the t_ columns), which the report evaluates.
multi_label_end_to_end() { # OUT RULE
  local out=$1
  grep -q '"task": "multi-label"' "$out/run/train.json" &&
    grep -q '"checkpoint": "val_auc"' "$out/run/train.json" &&
    head -1 "$out/predictions-test.csv" | grep -q '^path,y_.*,p_.*,t_.*,predicted,' &&
    grep -q "threshold .* ($2 on $out/predictions.csv" "$out/log" &&
    [[ -s $out/report/report.html && -s $out/report/metrics.json ]]
}

# Per-finding, micro and macro AUC in metrics.csv against scikit-learn on the same file.
aucs_equal_sklearn() {
  "$python" scripts/check-multilabel-auc.py "$1/predictions-test.csv" "$1/report/metrics.csv"
}

run_all() { # SET
  mkdir -p "$work/$1"
  "$1" > "$work/$1/log" 2>&1 || { cat "$work/$1/log"; return 1; }
}

for set in nih chexpert; do
  check "$set: make all runs split -> augment -> train -> infer -> report" run_all "$set"
  check "$set: no patient crosses splits" no_patient_crosses_splits "$work/$set"
  rule=youden; [[ $set == chexpert ]] && rule=sensitivity=0.8
  check "$set: multi-label from training to the report" multi_label_end_to_end "$work/$set" "$rule"
  check "$set: the report's AUCs equal scikit-learn's" aucs_equal_sklearn "$work/$set"
done
finish "multi-label end to end"
