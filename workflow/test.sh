#!/usr/bin/env bash
# make test's check of the cross-validation workflow: the DAG of a dry run has the jobs the
# config implies, and a small real run (2 folds × 2 reduced backbones × 1 seed, 2 epochs,
# inference in 2 shards) ends with the aggregated comparison.
#   workflow/test.sh SNAKEMAKE BIN
set -euo pipefail
cd "$(dirname "$0")/.."
snakemake=$1 bin=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source scripts/testlib.sh
smk() { # [--snakemake-flags...] [config KEY=VALUE...]
  local flags=()
  while [[ ${1:-} == -* ]]; do flags+=("$1"); shift; done
  "$snakemake" -s workflow/Snakefile --cores 2 "${flags[@]}" --config bin="$bin" out="$work/cv" "$@"
}

dag_has_the_expected_jobs() {
  # 4 folds × 3 backbones × 2 seeds = 24 runs: train, predictions and report each, 3 inference
  # shards each, plus split, augment, compare and all.
  smk -n folds=4 'backbones=[resnet-mini,vgg-mini,densenet-mini]' 'seeds=[1,2]' infer_shards=3 > "$work/dry"
  grep -Eq '^train +24$' "$work/dry" && grep -Eq '^infer_shard +72$' "$work/dry" &&
    grep -Eq '^total +148$' "$work/dry"
}
small_run_ends_in_the_comparison() {
  smk --quiet=all folds=2 'backbones=[resnet-mini,mobilenet-mini]' epochs=2 infer_shards=2 || return 1
  local c=$work/cv/comparison
  # backbone,metric,runs,runs_nan,folds,…
  grep -q '^resnet-mini,accuracy,2,0,2,' "$c/by_backbone.csv" &&
    grep -Eq '^mobilenet-mini,roc_auc,2,[0-9],2,' "$c/by_backbone.csv" &&
    grep -q '^accuracy,resnet-mini,mobilenet-mini,2,' "$c/paired.csv" &&
    [[ $(tail -n +2 "$c/comparison_long.csv" | wc -l) -eq $((4 * 6)) ]] &&
    [[ -s $c/folds.png && -s $c/comparison.html ]]
}
shards_equal_one_pass() {
  local run=$work/cv/runs/resnet-mini/fold1/seed12
  "$bin/ortl-infer" --model "$run/model.onnx" --manifest "$work/cv/manifest.csv" --split 1 \
    > "$work/whole.csv" 2> /dev/null
  cmp "$work/whole.csv" "$run/predictions.csv"
}
nothing_left_to_do() {
  smk folds=2 'backbones=[resnet-mini,mobilenet-mini]' epochs=2 infer_shards=2 2>&1 | grep -q 'Nothing to be done'
}

check "the dry run's DAG has the jobs the config implies" dag_has_the_expected_jobs
check "a 2-fold × 2-backbone run ends in the aggregated comparison" small_run_ends_in_the_comparison
check "sharded predictions equal one ortl-infer pass" shards_equal_one_pass
check "a finished workflow has nothing left to do" nothing_left_to_do
finish "cv workflow"
