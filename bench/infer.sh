#!/usr/bin/env bash
# ortl-infer end to end (PNG decode + resize + inference, rows to /dev/null) against the
# bare ONNX Runtime session on pre-decoded batches of the same size, interleaved A/B/A/B,
# median images/s of each and their ratio. Target (issue 6): ratio >= 0.9.
#   bench/infer.sh MODEL.onnx IMAGE_DIR [BATCH] [REPEATS]
set -euo pipefail
model=$1; images=$2; batch=${3:-32}; repeats=${4:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --quiet --release --bin ortl-infer --example bare_session --manifest-path "$root/Cargo.toml"
infer="$root/target/release/ortl-infer"
bare="$root/target/release/examples/bare_session"
list=$(mktemp); trap 'rm -f "$list"' EXIT
find "$images" -name '*.png' | sort > "$list"
n=$(wc -l < "$list")
e2e=(); base=()
for _ in $(seq "$repeats"); do
  start=$(date +%s.%N)
  "$infer" --model "$model" --batch "$batch" - < "$list" > /dev/null 2>&1
  end=$(date +%s.%N)
  e2e+=("$(echo "$n / ($end - $start)" | bc -l)")
  base+=("$("$bare" "$model" "$batch" $(( (n + batch - 1) / batch )))")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m_e2e=$(median "${e2e[@]}"); m_base=$(median "${base[@]}")
printf 'images %d, batch %d, repeats %d\n' "$n" "$batch" "$repeats"
printf 'ortl-infer end to end: %.1f images/s (median)\n' "$m_e2e"
printf 'bare session:          %.1f images/s (median)\n' "$m_base"
printf 'ratio:                 %.2f\n' "$(echo "$m_e2e / $m_base" | bc -l)"
