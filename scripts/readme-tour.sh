#!/usr/bin/env bash
# The README's tour, re-run: each command as the README shows it ("$ …") and what it printed
# (long runs of epoch lines cut to the first and last). `make tour` runs it on the release
# binaries into work/ (replaced); the README's console excerpts come from its output.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release
rm -rf work
say() { # COMMAND… : prints and runs it through the shell, as typed
  echo "\$ $*"
  bash -o pipefail -c "$*" 2>&1 | awk '
    function flush() { if (last != "") { print "..."; print last; last = "" } }
    /^Epoch / { n++; if (n > 1) { last = $0; next } }
    { flush(); print }
    END { flush() }'
}
say $bin/ortl-split fixtures/xray --val 0.2 --seed 12 -o work/manifest.csv
say head -3 work/manifest.csv
say $bin/ortl-augment work/manifest.csv -o work/tensors --size 100x100 --copies 8 \
  --flip horizontal --rotate 0.03 --zoom 0.1,0.1 --translate 0.05,0.05 --contrast 0.3
say $bin/ortl-train work/tensors -o work/run --backbone resnet-mini --epochs 30 \
  --optimizer adamw --lr 3e-3 --weight-decay 1e-3 --schedule cosine
say "$bin/ortl-infer --model work/run/best.onnx --manifest work/manifest.csv --split val | head -3"
say "$bin/ortl-infer --model work/run/best.onnx fixtures/xray | awk -F, 'NR > 1 && \$2 != \$4' | wc -l"
say "$bin/ortl-split fixtures/xray --folds 5 | cut -d, -f4 | sort | uniq -c"
