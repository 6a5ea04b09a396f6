#!/usr/bin/env bash
# Issue #38's "Tried on real exports", not part of `make test`: exports vision transformers
# and modern CNNs from torchvision and timm with random weights (no network needed once the
# virtual environment exists) through torch.onnx.export (opset 17, dynamic batch) and
# torch.export (dynamo=True, dynamic batch), then trains on each as a user would — the head
# on the frozen backbone for an epoch, then the whole model for one (`--fine-tune 1,1`) —
# and runs `ortl-infer --cam` with the best model. Prints the outcome table (Markdown) and
# writes it to WORK/table.md.
#   scripts/try-exports.sh [MODEL ...]        (names: .venv-export/bin/python scripts/try_exports.py list)
#   WORK=out/try-exports (default)            exports are kept there and not redone
#   PER_CLASS=30                              fixture images per class (all: 0)
#   TRY_EXPORTS_TRAIN_SECONDS=300             limit of one ortl-train run (both epochs)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${WORK:-out/try-exports}
venv=.venv-export

# Pinned; created once. PyPI has no CPU-only torch for Linux x86-64: the wheel brings the
# CUDA libraries too (about 5 GB), and runs on the CPU here.
if [[ ! -f $venv/INSTALLED ]]; then
  rm -rf "$venv"
  python3.11 -m venv "$venv"
  "$venv/bin/pip" install --quiet torch==2.15.0 torchvision==0.29.2 timm==1.0.31 \
    onnx==1.23.2 onnxscript==0.7.2 transformers==4.57.6 optimum-onnx==0.1.0 \
    onnxruntime==1.31.1
  "$venv/bin/pip" freeze > "$venv/INSTALLED"
fi
python=$venv/bin/python

cargo build --quiet --release --bins
bin=${CARGO_TARGET_DIR:-target}/release

# The first PER_CLASS fixture radiographs of each class (2 cores: ViT-B/16 at 224 runs a few
# images a second), split as the Makefile does, as 224×224 tensors without augmentation.
per_class=${PER_CLASS:-30}
images=$work/xray-$per_class
if [[ ! -f $images/tensors/meta.json ]]; then
  rm -rf "$images"
  for class in fixtures/xray/*/; do
    mkdir -p "$images/data/$(basename "$class")"
    find "$class" -name '*.png' | sort | head -n "$([[ $per_class == 0 ]] && echo -0 || echo "$per_class")" |
      xargs -I{} ln -s "$PWD/{}" "$images/data/$(basename "$class")/"
  done
  "$bin/ortl-split" "$images/data" --val 0.2 --test 0 --seed 12 -o "$images/manifest.csv" --force
  "$bin/ortl-augment" "$images/manifest.csv" -o "$images/tensors" --size 224x224 --copies 0 \
    --seed 12 --force
fi

"$python" scripts/try_exports.py export "$work/exports" "$@"
"$python" scripts/try_exports.py run "$bin" "$images/tensors" "$work/exports" "$@"
{
  echo "$(grep -c . "$images/manifest.csv" | awk '{print $1 - 1}') fixture images at 224×224 (20 % validation); ortl $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo ' (modified)'), torch $("$python" -c 'import torch; print(torch.__version__)'), timm $("$python" -c 'import timm; print(timm.__version__)')"
  echo
  "$python" scripts/try_exports.py table "$work/exports/results.jsonl"
} | tee "$work/table.md"
