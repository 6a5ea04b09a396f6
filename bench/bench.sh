#!/usr/bin/env bash
# Side by side, on this machine, in one run: ortl against the tutorial's Keras code
# (tensorflow-cpu), PyTorch eager on the CPU (the peer most users would pick instead),
# ONNX Runtime 1.19.2's official training build and ONNX Runtime from Python, interleaved
# A/B/A/B, medians and ratios (make bench; make bench-quick for one short repetition).
#
#   bench/bench.sh [quick]      BENCH_IMAGES, BENCH_REPEATS override the sizes;
#                               BENCH_ONLY=infer,data (say) runs only those workloads
#
# Workloads (100×100 RGB, batch 32, the same uint8 tensors for every system):
#   1 full fine-tuning of ResNet50 + the tutorial head: images/s of epoch 2, peak RSS
#     (bn-train: the same with the backbone's BatchNorm on batch statistics, as training from
#     scratch needs: Keras base(x, training=True), PyTorch bn.train(), ortl --bn-mode train);
#     PyTorch channels-last, Adam at the same rate, torch.set_num_threads to ortl's count
#   2 head only, frozen backbone: seconds of epoch 1 and of later epochs
#   3 inference: Keras predict, PyTorch eager, ORT Python InferenceSession, the bare Rust
#     session (all on arrays in memory), ortl-infer from PNG files (end to end, and its
#     steady rate once the session is built: (N - 32) / (time for N - time for the first
#     32)), and the Python pipeline a user writes on the same PNG files (PIL decode +
#     resize + ONNX Runtime 1.31.1, sequential and on a thread pool), timed whole as ortl-infer
#   4 data pipeline: image_dataset_from_directory + Keras augmentation vs ortl-augment,
#     512×512 PNG sources to 100×100
#   5 scaling of ortl-train (full fine-tuning, 64 images): image size, batch and threads
#   6 vit: timm's ViT-Tiny/16 at 224×224 fine-tuned whole, ortl-train on its torch.onnx
#     export against PyTorch eager (bench/vit_bench.py): images/s of epoch 2, peak RSS;
#     BENCH_VIT_IMAGES training images (default 192; quick 64)
# Results: .bench/results.jsonl (raw), bench/last-run.md (tables), bench/scaling.png.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
quick=${1:-}
only=${BENCH_ONLY:-full,bn-train,head,infer,data,scale,vit}
want() { [[ ",$only," == *",$1,"* ]]; }
want_any() { local w; for w; do want "$w" && return 0; done; return 1; }
images=${BENCH_IMAGES:-1280}
vit_images=${BENCH_VIT_IMAGES:-192}
repeats=${BENCH_REPEATS:-3}
if [[ $quick == quick ]]; then
  images=${BENCH_IMAGES:-128}
  vit_images=${BENCH_VIT_IMAGES:-64}
  repeats=${BENCH_REPEATS:-1}
fi
work=.bench
bin=target/release
mkdir -p "$work"
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$root/.ort/libonnxruntime.so.1.31.1}
cargo build --quiet --release -p ortl-infer --example bare_session

# Cached virtual environments, pinned: made when missing, installed into again when the
# pins change; each only for the workloads that use it.
venv() {
  local dir=$1; shift
  [[ -f $dir/INSTALLED ]] || { rm -rf "$dir"; python3 -m venv "$dir"; }
  if [[ $(cat "$dir/INSTALLED") != "$*" ]]; then
    "$dir/bin/pip" install --quiet "$@"
    echo "$*" > "$dir/INSTALLED"
  fi
}
keras=$work/keras/bin/python
ortt=$work/ortt/bin/python
torch=$work/torch/bin/python
pyinfer=$work/pyinfer/bin/python
want_any full bn-train head infer data scale && venv "$work/keras" tensorflow-cpu==2.21.0
# ORT 1.19.2 training rejects ONNX IR > 10: onnx 1.16 writes IR 10.
want_any full infer && venv "$work/ortt" onnxruntime-training-cpu==1.19.2 onnx==1.16.2 "numpy<2"
# PyPI has no CPU-only torch for Linux x86-64: this wheel pulls the CUDA libraries too
# (about 5 GB installed); the bench runs it on the CPU. timm and onnx: the ViT and its export.
want_any full bn-train infer vit && venv "$work/torch" torch==2.15.0 torchvision==0.29.2 \
  timm==1.0.31 onnx==1.23.2
# The Python inference pipeline: the ONNX Runtime ortl runs on, and Pillow.
want infer && venv "$work/pyinfer" onnxruntime==1.31.1 pillow==13.0.0
# ortl's thread count: ONNX Runtime's default, one intra-op thread per physical core.
threads=$(lscpu -p=CORE,SOCKET | grep -v '^#' | sort -u | wc -l)

# Data: fixture radiographs as 512×512 PNGs; split; 100×100 tensors without augmentation.
per_class=$(( (images * 10 / 9 + 1) / 2 + 1 ))
data=$work/data-$images
if want_any full bn-train head infer data scale && [[ ! -f $data/READY ]]; then
  rm -rf "$data"
  "$bin/ortl-fixtures" -o "$data/small" --per-class "$per_class" --seed 7 > /dev/null
  "$keras" bench/keras_bench.py resize "$data/small/xray" "$data/png512" 512 > /dev/null
  "$bin/ortl-split" "$data/png512" --val 0.1 --seed 1 -o "$data/manifest.csv" 2> /dev/null
  "$bin/ortl-augment" "$data/manifest.csv" -o "$data/tensors" --size 100x100 --copies 0 2> /dev/null
  touch "$data/READY"
fi
tensors=$data/tensors
results=$work/results.jsonl
: > "$results"
record() { # workload system repetition json
  printf '{"workload":"%s","system":"%s","rep":%s,"result":%s}\n' "$1" "$2" "$3" "$4" >> "$results"
}
rss() { # peak resident set of a command, in MiB, on fd 3
  /usr/bin/time -f '%M' -o "$work/rss" "$@"
  echo $(( $(tail -1 "$work/rss") / 1024 ))
}
history_seconds() { # history.csv seconds column as a JSON list
  awk -F, 'NR > 1 { printf "%s%s", (NR > 2 ? "," : "["), $7 } END { print "]" }' "$1"
}
train_ortl() { # name epochs extra flags...
  local name=$1 epochs=$2; shift 2
  local mib
  mib=$(rss "$bin/ortl-train" "$tensors" -o "$work/run-$name" --force --backbone resnet50 \
    --head tutorial --epochs "$epochs" --batch 32 --optimizer adam --lr 1e-5 --seed 1 "$@" 2> /dev/null)
  local n
  n=$(awk -F, 'NR > 1 && $5 == "train"' "$tensors/tensors.csv" | wc -l)
  printf '{"images":%s,"epoch_seconds":%s,"peak_rss_mib":%s}' \
    "$n" "$(history_seconds "$work/run-$name/history.csv")" "$mib"
}
python_rss() { # python script arguments: the script's result JSON with peak RSS added
  /usr/bin/time -f '%M' -o "$work/rss" "$@" > "$work/out.json" 2> "$work/$(basename "$2" .py).log"
  local out
  out=$(tail -1 "$work/out.json")
  printf '%s' "${out%\}},\"peak_rss_mib\":$(( $(tail -1 "$work/rss") / 1024 ))}"
}

calc() { # an arithmetic expression, as a JSON number (bc writes .5 for 0.5)
  printf '%.4f' "$(echo "$1" | bc -l)"
}
seconds() { # wall seconds of a command, its output discarded
  local start end
  start=$(date +%s.%N)
  "$@" > /dev/null 2>&1
  end=$(date +%s.%N)
  calc "$end - $start"
}
# Inference alone still needs the ResNet50 model full fine-tuning writes (its weights do not
# change the speed): one head-only epoch makes it.
if want infer && [[ ! -f $work/run-full/model.onnx ]]; then
  "$bin/ortl-train" "$tensors" -o "$work/run-full" --force --backbone resnet50 --head tutorial \
    --epochs 1 --freeze backbone --seed 1 2> /dev/null
fi
if want infer; then
  awk -F, -v dir="$data" 'NR > 1 && $4 == "train" { print dir "/" $1 }' "$data/manifest.csv" > "$work/train-list"
  head -n 32 "$work/train-list" > "$work/first-batch"
fi
# The ViT workload: fixture radiographs as 224×224 tensors, and the model exported once.
vit_data=$work/vit-$vit_images
if want vit && [[ ! -f $vit_data/READY ]]; then
  rm -rf "$vit_data"
  "$bin/ortl-fixtures" -o "$vit_data/src" --per-class "$(( (vit_images * 10 / 9 + 1) / 2 + 1 ))" \
    --seed 7 > /dev/null
  "$bin/ortl-split" "$vit_data/src/xray" --val 0.1 --seed 1 -o "$vit_data/manifest.csv" 2> /dev/null
  "$bin/ortl-augment" "$vit_data/manifest.csv" -o "$vit_data/tensors" --size 224x224 --copies 0 2> /dev/null
  "$torch" bench/vit_bench.py export "$vit_data/vit_tiny.onnx" > "$work/vit-export.log" 2>&1
  touch "$vit_data/READY"
fi

echo "bench: $images training images, $repeats repetition(s), $(nproc) cores, workloads $only" >&2
for rep in $(seq "$repeats"); do
  if want full; then
    echo "bench: repetition $rep: full fine-tuning" >&2
    record full keras "$rep" "$(python_rss "$keras" bench/keras_bench.py train "$tensors" "$images" 2)"
    record full ortl "$rep" "$(train_ortl full 2 --bn-mode frozen)"
    record full ortl-plain "$rep" "$(train_ortl full-plain 2 --bn-mode frozen --conv-layout plain)"
    record full pytorch "$rep" "$(python_rss "$torch" bench/torch_bench.py train "$tensors" "$images" 2 "$threads")"
    record full ort-1.19.2 "$rep" "$("$ortt" bench/ort_training_bench.py train "$work/run-full/model.onnx" "$tensors" "$images" 2 2> "$work/ortt.log")"
  fi

  if want bn-train; then
    echo "bench: repetition $rep: full fine-tuning, BatchNorm in training mode" >&2
    record bn-train keras "$rep" "$(python_rss "$keras" bench/keras_bench.py train "$tensors" "$images" 2 bn-train)"
    record bn-train ortl "$rep" "$(train_ortl bn-train 2 --bn-mode train)"
    record bn-train pytorch "$rep" "$(python_rss "$torch" bench/torch_bench.py train "$tensors" "$images" 2 "$threads" bn-train)"
  fi

  if want head; then
    echo "bench: repetition $rep: head only" >&2
    record head keras "$rep" "$(python_rss "$keras" bench/keras_bench.py train "$tensors" "$images" 3 frozen)"
    record head ortl "$rep" "$(train_ortl head 3 --freeze backbone)"
  fi

  if want infer; then
    echo "bench: repetition $rep: inference" >&2
    model=$work/run-full/model.onnx
    n=$(wc -l < "$work/train-list")
    record infer keras "$rep" "$("$keras" bench/keras_bench.py infer "$tensors" "$images" 2> /dev/null)"
    record infer ort-python "$rep" "$("$ortt" bench/ort_training_bench.py infer "$model" "$tensors" "$images")"
    record infer bare "$rep" "{\"images_per_second\":$("$bin/examples/bare_session" "$model" 32 $(( n / 32 )))}"
    all=$(seconds "$bin/ortl-infer" --model "$model" --batch 32 - < "$work/train-list")
    first=$(seconds "$bin/ortl-infer" --model "$model" --batch 32 - < "$work/first-batch")
    record infer ortl "$rep" "{\"images\":$n,\"images_per_second\":$(calc "$n / $all"),\"steady_images_per_second\":$(calc "($n - 32) / ($all - $first)"),\"startup_seconds\":$first}"
    for form in threaded sequential; do
      took=$(seconds "$pyinfer" bench/python_infer.py "$model" "$work/train-list" "$form")
      record infer "python-$form" "$rep" "{\"images\":$n,\"images_per_second\":$(calc "$n / $took")}"
    done
    record infer pytorch "$rep" "$("$torch" bench/torch_bench.py infer "$tensors" "$images" "$threads" 2> /dev/null)"
  fi

  if want data; then
    echo "bench: repetition $rep: data pipeline" >&2
    record data keras "$rep" "$("$keras" bench/keras_bench.py data "$data/png512" 2> /dev/null)"
    n=$(( $(wc -l < "$data/manifest.csv") - 1 ))
    took=$(seconds "$bin/ortl-augment" "$data/manifest.csv" -o "$work/aug" --force --size 100x100 \
      --copies 1 --preset tutorial)
    record data ortl "$rep" "{\"images\":$n,\"images_per_second\":$(calc "$n / $took")}"
  fi

  if want vit; then
    echo "bench: repetition $rep: ViT-Tiny fine-tuning" >&2
    mib=$(rss "$bin/ortl-train" "$vit_data/tensors" -o "$work/run-vit" --force \
      --backbone "$vit_data/vit_tiny.onnx" --head linear --epochs 2 --batch 32 \
      --optimizer adam --lr 1e-5 --seed 1 2> /dev/null)
    n=$(awk -F, 'NR > 1 && $5 == "train"' "$vit_data/tensors/tensors.csv" | wc -l)
    record vit ortl "$rep" "$(printf '{"images":%s,"epoch_seconds":%s,"peak_rss_mib":%s}' \
      "$n" "$(history_seconds "$work/run-vit/history.csv")" "$mib")"
    record vit pytorch "$rep" "$(python_rss "$torch" bench/vit_bench.py train "$vit_data/tensors" \
      "$n" 2 "$threads")"
  fi
done

python3 bench/summarize.py "$results" > bench/last-run.md
want scale || { cat bench/last-run.md; exit 0; }

# Scaling: one epoch over 64 training images per configuration (full fine-tuning).
echo "bench: scaling" >&2
head -n 65 "$data/manifest.csv" | sed 's/,val$/,train/' > "$data/scale.csv"  # beside the manifest: paths are relative to it
configs="64/32/2 100/32/2 160/32/2 224/32/2 100/8/2 100/64/2 100/32/1"
[[ $quick == quick ]] && configs="64/32/2 100/32/2 100/32/1"
for config in $configs; do
  IFS=/ read -r size batch threads <<< "$config"
  "$bin/ortl-augment" "$data/scale.csv" -o "$work/scale-$size" --force --size "${size}x$size" \
    --copies 0 2> /dev/null
  "$bin/ortl-train" "$work/scale-$size" -o "$work/run-scale" --force --backbone resnet50 \
    --head tutorial --epochs 1 --batch "$batch" --threads "$threads" --seed 1 --bn-mode frozen 2> /dev/null
  record scale "ortl" 1 "{\"size\":$size,\"batch\":$batch,\"threads\":$threads,\"images\":64,\"epoch_seconds\":$(history_seconds "$work/run-scale/history.csv")}"
done

python3 bench/summarize.py "$results" > bench/last-run.md
cargo run --quiet --release -p ortl-report --example bench_scaling -- "$results" bench/scaling.png
cat bench/last-run.md
