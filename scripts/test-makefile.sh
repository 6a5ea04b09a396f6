#!/usr/bin/env bash
# make test's check of the Makefile as a build graph, on a copy of the fixtures with the
# debug binaries and a 2-epoch mini run: a first `make all` runs every stage; a second runs
# none (and `make -n` says so); `make report` with new report flags runs the report alone;
# a new EPOCHS re-runs train -> infer -> report only; a touched image re-runs from the split;
# and no binary replaces a device, a FIFO or a symlink it is pointed at.
#   scripts/test-makefile.sh BIN   (BIN: target/debug, already built)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source scripts/testlib.sh
cp -r fixtures/xray "$work/data"
out=$work/out
# MAKEFLAGS cleared: a parent `make -j` must not interleave the stages this test orders.
mk() { MAKEFLAGS= make --no-print-directory PROFILE=dev OUT="$out" DATA="$work/data" EPOCHS=2 COPIES=1 "$@"; }
# The stages whose binary a make run started, in order: "split augment train infer report".
ran() { grep -oE "^$bin/ortl-[a-z]+" "$1" | sed 's|.*/ortl-||' | tr '\n' ' ' | sed 's/ $//'; }
expect_ran() { # LOG WANTED
  local got; got=$(ran "$1")
  [[ $got == "$2" ]] || { echo "ran '$got', expected '$2'"; cat "$1"; return 1; }
}

first_run_runs_every_stage() {
  mk all > "$work/1.log" 2>&1 || { cat "$work/1.log"; return 1; }
  expect_ran "$work/1.log" "split augment train infer report" &&
    grep -q "make all: validation accuracy of $out/run/best.onnx (epoch [12])" "$work/1.log"
}
# Issue #39's proof that a refactor changes nothing the pipeline writes: the SHA-256 of each
# output of the first run against tests/data/output-goldens.tsv (path under OUT, sha256).
# Two identical runs on one machine write the same bytes (any thread count), except for
# what normalised_bytes masks. Model bytes follow the CPU's kernels (ONNX Runtime picks
# them, and the NCHWc block, by instruction set), so the goldens hold for the CPU they were
# recorded on (run/train.json's conv_layout names its block).
goldens=tests/data/output-goldens.tsv
bless="ORTL_BLESS_GOLDENS=1 scripts/test-makefile.sh target/debug"
# Every golden output, path under OUT: the split's manifest, the tensors, the trained
# models with their checkpoint and history, the predictions with their heatmaps, and the
# report's tables and charts (not report.html: it repeats report.md and embeds the PNGs).
golden_outputs() {
  (cd "$out" && find manifest.csv tensors run/best.onnx run/model.onnx run/checkpoint \
    run/history.csv run/train.json predictions.csv cams \
    report/metrics.json report/metrics.csv report/report.md report/*.svg -type f |
    LC_ALL=C sort)
}
# The outputs holding what differs between two identical runs, hashed with it masked (and
# nothing else): the temporary folder's path (the paths they record); in train.json the
# time, commit and ONNX Runtime library path it was trained with; durations and speeds
# (train.json, checkpoint.json, history.csv's seconds column); and report.md's rows of
# those (Trained, Software). Numbers, columns and weights stay. Every other output is
# hashed as written.
normalised='^(predictions\.csv|tensors/meta\.json|run/(train\.json|history\.csv|checkpoint/checkpoint\.json)|report/(metrics\.json|report\.md))$'
normalised_bytes() { # PATH-UNDER-OUT
  local file=$out/$1
  case $1 in
    run/train.json | run/checkpoint/checkpoint.json)
      sed -E -e 's/"(trained_at|git_commit|onnxruntime_library)": *("[^"]*"|null)/"\1": "<dropped>"/g' \
        -e 's/"(seconds|epoch_seconds|images_per_second)": *[-0-9.eE+]+/"\1": "<dropped>"/g' "$file" ;;
    run/history.csv)
      awk -F, -v OFS=, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "seconds") s = i }
        NR > 1 && s { $s = "<dropped>" } { print }' "$file" ;;
    report/report.md) grep -vE '^\| (Trained|Software) \|' "$file" ;;
    *) cat "$file" ;;
  esac | sed "s|$work|<work>|g"
}
output_hashes() {
  local path
  {
    golden_outputs | grep -vE "$normalised" | (cd "$out" && xargs -d '\n' sha256sum) |
      sed -E 's/^([0-9a-f]{64})  (.*)$/\2\t\1/'
    golden_outputs | grep -E "$normalised" | while read -r path; do
      printf '%s\t%s\n' "$path" "$(normalised_bytes "$path" | sha256sum | cut -d' ' -f1)"
    done
  } | LC_ALL=C sort
}
first_run_outputs_match_the_goldens() {
  output_hashes > "$work/hashes.tsv"
  if [[ ${ORTL_BLESS_GOLDENS:-} == 1 ]]; then
    cp "$work/hashes.tsv" "$goldens"
    echo "recorded $(wc -l < "$goldens") golden hashes in $goldens"; return
  fi
  [[ -f $goldens ]] || { echo "no $goldens; record it with $bless"; return 1; }
  # join's lines: changed (both hashes differ), or a path only one side has. The many
  # heatmaps and checkpoint tensors come last, so that the stages' outputs are shown.
  local problems
  problems=$(LC_ALL=C join -t $'\t' -a1 -a2 -e '-' -o 0,1.2,2.2 "$goldens" "$work/hashes.tsv" |
    awk -F'\t' '$2 == "-" { line = "new, not in the goldens: " $1 }
      $3 == "-" { line = "in the goldens, no longer written: " $1 }
      $2 != "-" && $3 != "-" { line = $2 == $3 ? "" : "changed: " $1 " (golden " $2 ", now " $3 ")" }
      line == "" { next }
      $1 ~ /^(cams|run\/checkpoint)\// { later[n++] = line; next } { print line }
      END { for (i = 0; i < n; i++) print later[i] }')
  [[ -z $problems ]] && return
  local count; count=$(wc -l <<< "$problems")
  echo "$count of make all's outputs differ from $goldens (changed, new or no longer written):"
  head -30 <<< "$problems" | sed 's/^/  /'
  ((count <= 30)) || echo "  … and $((count - 30)) more"
  echo "A refactor must leave every output byte for byte as it was. If this change is" \
    "deliberate, re-record with \`$bless\` and say in the commit message why each output changed."
  return 1
}
second_run_runs_nothing() {
  [[ -z $(mk -n all | grep "ortl-") ]] || { echo "make -n would run:"; mk -n all; return 1; }
  mk all > "$work/2.log" 2>&1 && expect_ran "$work/2.log" "" || return 1
  # A dry run with other settings shows what they would re-run, and changes nothing.
  mk -n all EPOCHS=5 > "$work/2n.log" 2>&1 && expect_ran "$work/2n.log" "train infer report" &&
    mk all > "$work/2b.log" 2>&1 && expect_ran "$work/2b.log" ""
}
report_runs_the_report_alone() {
  mk report > "$work/3.log" 2>&1 && expect_ran "$work/3.log" "" &&
    mk report REPORT='--bootstrap 200' > "$work/4.log" 2>&1 && expect_ran "$work/4.log" "report"
}
new_epochs_retrain_without_new_tensors() {
  local tensors_before; tensors_before=$(stat -c %Y "$out/tensors/meta.json")
  mk all EPOCHS=3 REPORT='--bootstrap 200' > "$work/5.log" 2>&1 &&
    expect_ran "$work/5.log" "train infer report" &&
    [[ $(stat -c %Y "$out/tensors/meta.json") == "$tensors_before" ]] &&
    grep -q '"epochs_run": 3' "$out/run/train.json"
}
touched_image_reruns_from_the_split() {
  sleep 1  # a new modification time, whatever the file system's resolution
  touch "$work/data/normal/normal-000.png"
  mk all EPOCHS=3 REPORT='--bootstrap 200' > "$work/6.log" 2>&1 &&
    expect_ran "$work/6.log" "split augment train infer report"
}
compare_trains_only_the_new_backbone() {
  mk compare COMPARE='resnet-mini vgg-mini' > "$work/7.log" 2>&1 &&
    expect_ran "$work/7.log" "train infer train infer report" &&
    mk compare COMPARE='resnet-mini vgg-mini mobilenet-mini' > "$work/8.log" 2>&1 &&
    expect_ran "$work/8.log" "train infer report" &&
    grep -q -- "--backbone mobilenet-mini" "$work/8.log" &&
    mk compare COMPARE='resnet-mini mobilenet-mini' > "$work/9.log" 2>&1 &&
    expect_ran "$work/9.log" "report"
}
# TUTORIAL=1 is the tutorial's experiment: ResNet50 from ImageNet weights with its presets,
# and its comparison of seven backbones, each from ImageNet weights (a dry run: no network).
tutorial_is_resnet50_from_imagenet_weights() {
  mk -n all TUTORIAL=1 > "$work/10.log" 2>&1 || { cat "$work/10.log"; return 1; }
  grep -A1 "ortl-augment" "$work/10.log" | grep -q -- "--preset tutorial" &&
    grep -A1 "ortl-train" "$work/10.log" | tr -d '\\\n' |
      grep -qE -- "--backbone resnet50 +--weights imagenet .*--preset tutorial" ||
    { echo "not the tutorial's settings:"; cat "$work/10.log"; return 1; }
  mk -n compare TUTORIAL=1 > "$work/11.log" 2>&1 || { cat "$work/11.log"; return 1; }
  local trained; trained=$(grep -A1 "ortl-train" "$work/11.log" | grep -c -- "--weights imagenet")
  [[ $trained == 7 ]] || { echo "$trained of 7 compared with ImageNet weights"; cat "$work/11.log"; return 1; }
}
# LABELS= splits a label table, DATA its images, SPLIT the extra flags (a dry run).
a_label_table_is_split_with_its_flags() {
  printf 'path,label,patient\nnormal/normal-000.png,a,p1\n' > "$work/labels.csv"
  mk -n split LABELS="$work/labels.csv" SPLIT="--group-by patient" > "$work/12.log" 2>&1 ||
    { cat "$work/12.log"; return 1; }
  tr -d '\\\n' < "$work/12.log" |
    grep -qE -- "ortl-split --labels '$work/labels.csv' --images '$work/data' +--val .*--group-by patient" ||
    { echo "not the table's split:"; cat "$work/12.log"; return 1; }
}
# A path that is not a regular file is written through: /dev/null survives every binary.
special_files_are_written_not_replaced() {
  local dev=$work/null fifo=$work/fifo
  if ! mknod "$dev" c 1 3 2> /dev/null; then
    echo "skipped the device: mknod needs root (CI runs as root)"; dev=/dev/null
  fi
  "$bin/ortl-split" "$work/data" -o "$dev" 2> /dev/null &&
    "$bin/ortl-infer" --model "$out/run/model.onnx" --manifest "$out/manifest.csv" --split val \
      -o "$dev" 2> /dev/null &&
    "$bin/ortl-train" "$out/tensors" -o "$work/run" --backbone resnet-mini \
      --export-step-graph "$dev" 2> /dev/null &&
    "$bin/ortl-train" "$out/tensors" -o "$work/run" --backbone resnet-mini --epochs 1 \
      --step-log "$dev" 2> /dev/null &&
    [[ -c $dev ]] || { echo "$dev is no longer a character device"; return 1; }
  # Folder outputs refuse a device (exit 2) and leave it be.
  local code
  for folder_output in \
    "$bin/ortl-augment $out/manifest.csv -o $dev --force" \
    "$bin/ortl-infer --model $out/run/model.onnx $work/data/normal/normal-000.png --cam $dev --force" \
    "$bin/ortl-report --predictions $out/predictions.csv -o $dev --force"; do
    code=0; $folder_output > /dev/null 2> "$work/refused" || code=$?
    [[ $code == 2 && -c $dev ]] || { echo "exit $code: $folder_output"; cat "$work/refused"; return 1; }
  done
  mkfifo "$fifo"
  # Bounded: were the FIFO replaced by a file, its reader would wait for ever.
  timeout 60 head -1 "$fifo" > "$work/from-fifo" &
  timeout 60 "$bin/ortl-split" "$work/data" -o "$fifo" --force 2> /dev/null
  wait
  [[ -p $fifo && $(cat "$work/from-fifo") == "path,label,class,split" ]] ||
    { echo "the FIFO's reader got '$(cat "$work/from-fifo")'"; return 1; }
  # /dev/stdout redirected to a file is that file, as the shell opened it (>> appends).
  echo "# kept" > "$work/appended.csv"
  "$bin/ortl-split" "$work/data" -o /dev/stdout >> "$work/appended.csv" 2> /dev/null
  [[ $(head -2 "$work/appended.csv") == $'# kept\npath,label,class,split' ]] ||
    { echo "/dev/stdout >> file: $(head -3 "$work/appended.csv")"; return 1; }
  ln -s "$out/manifest.csv" "$work/link.csv"
  "$bin/ortl-split" "$work/data" -o "$work/link.csv" 2> "$work/refused" &&
    { echo "an existing manifest was replaced without --force"; return 1; }
  grep -q "pass --force" "$work/refused" &&
    "$bin/ortl-split" "$work/data" -o "$work/link.csv" --force 2> /dev/null &&
    [[ -L $work/link.csv ]] && grep -q "^../data/" "$out/manifest.csv" ||
    { echo "the symlink was replaced, or its target not written"; return 1; }
}

check "a first make all runs every stage and evaluates best.onnx" first_run_runs_every_stage
check "the first make all's outputs match $goldens" first_run_outputs_match_the_goldens
check "a second make all runs nothing, and make -n says so" second_run_runs_nothing
check "make report runs the report alone, and only when its flags change" report_runs_the_report_alone
check "a new EPOCHS re-runs train, infer and report, not split or augment" new_epochs_retrain_without_new_tensors
check "a touched image re-runs from the split" touched_image_reruns_from_the_split
check "make compare trains a backbone added to COMPARE, and only that one" compare_trains_only_the_new_backbone
check "TUTORIAL=1 trains ResNet50 (and compares seven backbones) from ImageNet weights" tutorial_is_resnet50_from_imagenet_weights
check "LABELS= splits a label table with SPLIT's flags" a_label_table_is_split_with_its_flags
check "devices, FIFOs and symlinks are written through, never replaced" special_files_are_written_not_replaced
finish "Makefile build graph"
