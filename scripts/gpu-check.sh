#!/usr/bin/env bash
# The prepared GPU check (make gpu-check; docs/GPU.md has the whole sequence).
#
#   scripts/gpu-check.sh pack          here: release binaries + ONNX Runtime's CUDA libraries
#                                      into ≤ 56 MiB parts under .gpu-pack/ (make setup-cuda first)
#   scripts/gpu-check.sh unpack        on the GPU machine: check every part by sha256, reassemble
#                                      into .gpu-pack/bundle/
#   scripts/gpu-check.sh libs          print where the CUDA 13 / cuDNN 9 runtime libraries were
#                                      found (a Python environment's nvidia/*/lib, torch/lib, or
#                                      the system); exit 1 naming any missing
#   scripts/gpu-check.sh run [--dry-run]
#                                      ortl-train ResNet50 224×224 batch 64 on CUDA: images/s,
#                                      peak device memory, loss curve, agreement of the first 3
#                                      steps with the CPU, PyTorch eager FP32/TF32 on the same
#                                      card when importable; writes gpu-check.{json,md} to $OUT
#                                      (or .gpu-check/). --dry-run: everything on the CPU with a
#                                      small network, to test the plumbing without a GPU.
#   scripts/gpu-check.sh selftest      the CPU tests of all of the above (make test)
#
# Installs nothing and reaches no network. Variables: GPU_CHECK_STEPS (30), GPU_CHECK_ROUNDS
# (1), GPU_CHECK_BATCH (64), GPU_CHECK_SIZE (224), GPU_CHECK_BACKBONE (resnet50), ORT_GPU_DIR
# (.ort; where `pack` takes the ONNX Runtime libraries), GPU_CHECK_BIN (where `pack` takes the
# binaries: target/release), GPU_CHECK_PART_BYTES (58720256), GPU_CHECK_SITE (colon-separated
# site-packages folders to search instead of asking python3), GPU_CHECK_SYSTEM_LIBS (0: do not
# search the system).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

pack_dir=.gpu-pack
bundle=$pack_dir/bundle
binaries=(ortl-train ortl-fixtures ortl-split ortl-augment)
ort_libraries=(libonnxruntime.so.1.31.1 libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so)
# What ONNX Runtime 1.31.1's CUDA provider loads (readelf -d, plus cuDNN, opened at run time).
cuda_libraries=(libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libcudnn.so.9)

die() { echo "gpu-check: $*" >&2; exit 1; }
say() { echo "gpu-check: $*" >&2; }

unxz_stream() { # xz -d, or Python's lzma where xz is not installed
  if command -v xz > /dev/null; then xz -dc; else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.stdin.buffer), sys.stdout.buffer)'
  fi
}

pack() {
  local bin=${GPU_CHECK_BIN:-target/release} ort=${ORT_GPU_DIR:-.ort}
  local part_bytes=${GPU_CHECK_PART_BYTES:-58720256}
  for b in "${binaries[@]}"; do
    [[ -x $bin/$b ]] || die "$bin/$b is missing: run 'make build' first"
  done
  for l in "${ort_libraries[@]}"; do
    [[ -f $ort/$l ]] || die "$ort/$l is missing: run 'make setup-cuda' (or set ORT_GPU_DIR)"
  done
  command -v xz > /dev/null || die "xz is needed to pack (apt-get install xz-utils)"
  local staging
  staging=$(mktemp -d)
  trap 'rm -rf "$staging"' RETURN
  chmod 755 "$staging"
  mkdir -p "$staging/bin" "$staging/ort"
  for b in "${binaries[@]}"; do
    cp "$bin/$b" "$staging/bin/"
    strip "$staging/bin/$b" 2> /dev/null || true
  done
  for l in "${ort_libraries[@]}"; do cp "$ort/$l" "$staging/ort/"; done
  rm -rf "$pack_dir"
  mkdir -p "$pack_dir"
  say "compressing $(du -sh "$staging" | cut -f1) (a few minutes for the CUDA provider)"
  tar -C "$staging" -cf - . | xz -T0 -6 -c > "$pack_dir/bundle.tar.xz"
  (cd "$pack_dir" && split -b "$part_bytes" -d -a 2 bundle.tar.xz part- &&
    { sha256sum part-*; sha256sum bundle.tar.xz; } > MANIFEST && rm bundle.tar.xz)
  local parts
  parts=$(cd "$pack_dir" && ls part-* | wc -l)
  say "$parts part(s) in $pack_dir/ ($(du -sh "$pack_dir" | cut -f1)); carry them one call at a time:"
  local first=1
  for p in "$pack_dir"/part-*; do
    if ((first)); then echo "  carry [\"$pack_dir/MANIFEST\", \"$p\"]"; first=0; else echo "  carry [\"$p\"]"; fi
  done
  echo "  then: scripts/gpu-check.sh unpack && scripts/gpu-check.sh run"
}

unpack() {
  [[ -f $pack_dir/MANIFEST ]] || die "$pack_dir/MANIFEST is missing: carry it with the first part (docs/GPU.md)"
  local missing=()
  while read -r _ name; do
    [[ $name == bundle.tar.xz ]] && continue
    [[ -f $pack_dir/$name ]] || missing+=("$pack_dir/$name")
  done < "$pack_dir/MANIFEST"
  ((${#missing[@]} == 0)) || die "missing ${missing[*]}: carry each part once more (docs/GPU.md)"
  (cd "$pack_dir" && grep -v ' bundle.tar.xz$' MANIFEST | sha256sum --check --quiet - >&2) ||
    die "a part in $pack_dir/ is damaged (sha256 mismatch above): carry it again"
  local expected actual
  expected=$(awk '$2 == "bundle.tar.xz" { print $1 }' "$pack_dir/MANIFEST")
  actual=$(cat "$pack_dir"/part-* | sha256sum | cut -d' ' -f1)
  [[ $expected == "$actual" ]] || die "the reassembled bundle's sha256 differs from the MANIFEST's"
  rm -rf "$bundle.partial"
  mkdir -p "$bundle.partial"
  cat "$pack_dir"/part-* | unxz_stream | tar -C "$bundle.partial" -xf -
  rm -rf "$bundle"
  mv "$bundle.partial" "$bundle"
  say "unpacked $(find "$bundle" -type f | wc -l) files into $bundle/"
}

site_dirs() { # the site-packages folders of this machine's Python, or GPU_CHECK_SITE
  if [[ -n ${GPU_CHECK_SITE+set} ]]; then
    tr ':' '\n' <<< "$GPU_CHECK_SITE"
    return
  fi
  local python
  for python in python3 python; do
    command -v "$python" > /dev/null || continue
    "$python" -c 'import site, sys
print("\n".join(site.getsitepackages() + [site.getusersitepackages()] + sys.path))' 2> /dev/null || true
  done
}

candidate_dirs() { # every folder that may hold the CUDA runtime libraries, in search order
  local site
  while read -r site; do
    [[ -d $site ]] || continue
    for dir in "$site"/nvidia/*/lib "$site"/nvidia/*/*/lib "$site"/torch/lib; do
      [[ -d $dir ]] && echo "$dir"
    done
  done < <(site_dirs)
  if [[ ${GPU_CHECK_SYSTEM_LIBS:-1} != 0 ]]; then
    for dir in /usr/local/cuda/lib64 /usr/local/cuda-13*/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
      /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib; do
      [[ -d $dir ]] && echo "$dir"
    done
  fi
  return 0
}

# Sets cuda_path (the folders to put on LD_LIBRARY_PATH); prints what was found where;
# returns 1 naming what is missing.
find_libraries() {
  local dirs=() dir lib missing=()
  mapfile -t dirs < <(candidate_dirs | awk '!seen[$0]++')
  cuda_path=
  for lib in "${cuda_libraries[@]}"; do
    local found=
    for dir in "${dirs[@]}"; do
      if [[ -e $dir/$lib ]]; then found=$dir; break; fi
    done
    if [[ -n $found ]]; then
      echo "$lib: $found"
      [[ ":$cuda_path:" == *":$found:"* ]] || cuda_path=${cuda_path:+$cuda_path:}$found
    else
      missing+=("$lib")
    fi
  done
  if ((${#missing[@]})); then
    say "not found: ${missing[*]} (searched ${#dirs[@]} folders: a Python environment's nvidia/*/lib and torch/lib, /usr/local/cuda*); install the CUDA 13 and cuDNN 9 runtime libraries or set GPU_CHECK_SITE"
    return 1
  fi
}

libs() {
  find_libraries
  echo "LD_LIBRARY_PATH=$cuda_path"
}

# A tensors folder of `images` synthetic training radiographs at SIZE (no validation split).
make_tensors() { # folder images
  local dir=$1 per_class=$(($2 / 2))
  [[ -f $dir/tensors/meta.json ]] && return
  rm -rf "$dir"
  "$bin/ortl-fixtures" -o "$dir/fixtures" --per-class "$per_class" --seed 5 2> /dev/null
  "$bin/ortl-split" "$dir/fixtures/xray" --val 0 --seed 1 -o "$dir/manifest.csv" 2> /dev/null
  "$bin/ortl-augment" "$dir/manifest.csv" -o "$dir/tensors" --size "${size}x${size}" --copies 0 2> /dev/null
}

# Peak device memory of a command, in MiB above what was in use before (nvidia-smi sampled
# every 100 ms), into FILE; the command runs plain where there is no nvidia-smi.
with_memory() { # file command...
  local file=$1; shift
  if [[ $dry_run == 1 ]] || ! command -v nvidia-smi > /dev/null; then
    "$@"
    return
  fi
  local base samples sampler
  base=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 | head -1)
  samples=$(mktemp)
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 100 > "$samples" &
  sampler=$!
  "$@"
  kill "$sampler" 2> /dev/null || true
  wait "$sampler" 2> /dev/null || true
  awk -v base="$base" 'BEGIN { peak = base } $1 + 0 > peak { peak = $1 + 0 } END { print peak - base }' "$samples" > "$file"
  rm -f "$samples"
}

# Runs one phase; a failure is recorded (its last lines) and the check goes on, so a single
# call on a lent GPU machine still ends with a summary of everything that did run.
attempt() { # name command...
  local name=$1 status=0; shift
  "$@" 2> >(tee "$work/phase.err" >&2) || status=$?
  if ((status)); then
    { echo "$name failed (exit $status):"; tail -5 "$work/phase.err" | sed 's/^/    /'; } >> "$work/failures.txt"
    say "$name failed (exit $status); going on"
  fi
  return 0
}

strict_fp32() { # command...: with TF32 off in every NVIDIA library (cuBLAS, cuDNN)
  NVIDIA_TF32_OVERRIDE=0 "$@"
}

train() { # tensors device step-log [file for ONNX Runtime's verbose log, with stderr]
  local args=("$1" -o "$work/run-$(basename "$3" .csv)" --force --backbone "$backbone"
    --head linear --bn-mode train --optimizer adam --lr 1e-4 --batch "$batch" --epochs 1
    --seed 12 --checkpoint loss --device "$2" --step-log "$3")
  if [[ -n ${4:-} ]]; then
    ORT_LOG=verbose "$bin/ortl-train" "${args[@]}" > /dev/null 2> "$4" || {
      local status=$?; grep -v '^[0-9-]* [0-9:.]* \[[VI]:onnxruntime' "$4" >&2; return "$status"; }
  else
    "$bin/ortl-train" "${args[@]}" > /dev/null
  fi
}

run() {
  dry_run=0
  [[ ${1:-} == --dry-run ]] && dry_run=1
  local device=cuda
  backbone=${GPU_CHECK_BACKBONE:-resnet50} size=${GPU_CHECK_SIZE:-224} batch=${GPU_CHECK_BATCH:-64}
  local steps=${GPU_CHECK_STEPS:-30} rounds=${GPU_CHECK_ROUNDS:-1}
  if ((dry_run)); then
    device=cpu
    backbone=${GPU_CHECK_BACKBONE:-resnet-tiny} size=${GPU_CHECK_SIZE:-32} batch=${GPU_CHECK_BATCH:-4}
    steps=${GPU_CHECK_STEPS:-5} rounds=${GPU_CHECK_ROUNDS:-1}
  fi
  work=${GPU_CHECK_WORK:-.gpu-check}
  local out=${OUT:-$work}
  bin=${GPU_CHECK_BIN:-target/release}
  local ort_lib=${ORT_DYLIB_PATH:-$root/.ort/libonnxruntime.so.1.31.1}
  if [[ -d $bundle/bin ]]; then
    bin=$bundle/bin
    ort_lib=$root/$bundle/ort/libonnxruntime.so.1.31.1
  fi
  [[ -x $bin/ortl-train ]] || die "no ortl binaries in $bin: run 'make build', or unpack a bundle (docs/GPU.md)"
  export ORT_DYLIB_PATH=$ort_lib
  mkdir -p "$work" "$out"
  rm -f "$work"/*.csv "$work"/*.json "$work"/*.mem "$work"/*.log "$work"/torch-skipped.txt \
    "$work/failures.txt"

  local gpu_name=cpu driver=
  if ((!dry_run)); then
    find_libraries >&2 || exit 1
    say "LD_LIBRARY_PATH gets $cuda_path"
    export LD_LIBRARY_PATH=$cuda_path:$(dirname "$ort_lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    command -v nvidia-smi > /dev/null || die "nvidia-smi not found: is this a GPU machine?"
    gpu_name=$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader -i 0)
    driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader -i 0)
  fi
  python3 - "$work/env.json" <<PY
import json, sys
json.dump({"device": """$gpu_name""", "driver": "$driver", "dry_run": bool($dry_run),
           "backbone": "$backbone", "size": "${size}x${size}", "batch": $batch, "steps": $steps,
           "rounds": $rounds, "onnxruntime": "1.31.1", "ort_library": "$ort_lib",
           "commit": "$(git rev-parse --short HEAD 2> /dev/null || echo unknown)",
           "date": "$(date -u +%Y-%m-%dT%H:%MZ)"}, open(sys.argv[1], "w"))
PY

  say "synthetic tensors at ${size}x${size}"
  make_tensors "$work/data-agree-$size" $((3 * batch))
  make_tensors "$work/data-speed-$size-$steps" $((steps * batch))

  say "the first 3 steps on the CPU and on $device (same seed, same batches)"
  attempt "ortl-train, 3 steps on the CPU" train "$work/data-agree-$size/tensors" cpu "$work/agree-cpu.csv"
  # ONNX Runtime's verbose log (ORT_LOG) lists which provider each node was placed on.
  attempt "ortl-train, 3 steps on $device" \
    train "$work/data-agree-$size/tensors" "$device" "$work/agree-gpu.csv" "$work/agree-gpu.log"

  # The summary is rewritten after every phase: a run cut short by a time limit still
  # leaves what it measured.
  python3 scripts/gpu_summary.py "$work" "$out" > /dev/null
  local torch_ok=0
  if ((dry_run)); then
    echo "dry run on the CPU" > "$work/torch-skipped.txt"
  elif python3 -c 'import torch; assert torch.cuda.is_available()' 2> "$work/torch-error.txt"; then
    torch_ok=1
  else
    echo "PyTorch with CUDA is not importable here: $(tail -1 "$work/torch-error.txt")" > "$work/torch-skipped.txt"
  fi
  for ((r = 1; r <= rounds; r++)); do
    say "round $r/$rounds: ortl-train, $steps steps of $batch on $device"
    # ONNX Runtime's CUDA provider uses TF32 by default; NVIDIA_TF32_OVERRIDE=0 makes every
    # NVIDIA library compute in strict FP32, the like-for-like run against PyTorch FP32.
    attempt "ortl-train TF32 (ONNX Runtime's default) round $r" \
      with_memory "$work/ortl-tf32-$r.mem" \
      train "$work/data-speed-$size-$steps/tensors" "$device" "$work/ortl-tf32-$r.csv"
    attempt "ortl-train strict FP32 round $r" strict_fp32 with_memory "$work/ortl-fp32-$r.mem" \
      train "$work/data-speed-$size-$steps/tensors" "$device" "$work/ortl-fp32-$r.csv"
    if ((torch_ok)); then
      for precision in fp32 tf32; do
        say "round $r/$rounds: PyTorch eager $precision"
        attempt "PyTorch $precision round $r" with_memory "$work/pytorch-$precision-$r.mem" \
          python3 bench/gpu_torch.py "$work/data-speed-$size-$steps/tensors" --steps "$steps" \
          --batch "$batch" --precision "$precision" > "$work/pytorch-$precision-$r.json"
      done
    fi
    python3 scripts/gpu_summary.py "$work" "$out" > /dev/null
  done
  python3 scripts/gpu_summary.py "$work" "$out"
  [[ ! -s $work/failures.txt ]] || die "some phases failed: $(grep -c 'failed (exit' "$work/failures.txt") (see the summary)"
}

selftest() { # CPU tests of pack/unpack, library discovery, the dry run and the summary
  # Sourced before the RETURN trap is set: returning from `source` would fire it.
  source scripts/testlib.sh
  local t
  t=$(mktemp -d)
  trap 'rm -rf "$t"' RETURN

  # pack → unpack on a copy of the tree, with fake binaries and libraries.
  pack_roundtrip() {
    mkdir -p "$t/bin" "$t/ort" "$t/far"
    for b in "${binaries[@]}"; do head -c 300000 /dev/urandom > "$t/bin/$b"; chmod +x "$t/bin/$b"; done
    for l in "${ort_libraries[@]}"; do head -c 700000 /dev/urandom > "$t/ort/$l"; done
    GPU_CHECK_BIN=$t/bin ORT_GPU_DIR=$t/ort GPU_CHECK_PART_BYTES=500000 "$0" pack > "$t/pack.out"
    (($(ls "$pack_dir"/part-* | wc -l) >= 5)) || return 1
    grep -q 'carry \["'"$pack_dir"'/MANIFEST", "'"$pack_dir"'/part-00"\]' "$t/pack.out" || return 1
    # The far side: only the scripts and the carried parts.
    mkdir -p "$t/far/scripts" && cp "$0" "$t/far/scripts/" && cp -r "$pack_dir" "$t/far/"
    (cd "$t/far" && scripts/gpu-check.sh unpack) || return 1
    for b in "${binaries[@]}"; do cmp "$t/bin/$b" "$t/far/$bundle/bin/$b" || return 1; done
    for l in "${ort_libraries[@]}"; do cmp "$t/ort/$l" "$t/far/$bundle/ort/$l" || return 1; done
  }
  damaged_part_is_named() {
    printf 'x' | dd of="$t/far/$pack_dir/part-01" bs=1 seek=10 conv=notrunc 2> /dev/null
    ! (cd "$t/far" && scripts/gpu-check.sh unpack) 2> "$t/err" && grep -q 'damaged' "$t/err" && grep -q 'part-01' "$t/err"
  }
  missing_part_is_named() {
    rm "$t/far/$pack_dir/part-02"
    ! (cd "$t/far" && scripts/gpu-check.sh unpack) 2> "$t/err" && grep -q "missing $pack_dir/part-02" "$t/err"
  }
  # Discovery on a fake Python environment laid out as PyTorch's CUDA wheels are.
  discovery() {
    local site=$t/site/lib/python3.12/site-packages
    mkdir -p "$site/nvidia/cu13/lib" "$site/nvidia/cudnn/lib" "$site/torch/lib"
    touch "$site"/nvidia/cu13/lib/{libcudart.so.13,libcublas.so.13,libcublasLt.so.13,libcurand.so.10}
    touch "$site/nvidia/cudnn/lib/libcudnn.so.9"
    GPU_CHECK_SITE=$site GPU_CHECK_SYSTEM_LIBS=0 "$0" libs > "$t/libs.out" || return 1
    grep -qx "LD_LIBRARY_PATH=$site/nvidia/cu13/lib:$site/nvidia/cudnn/lib" "$t/libs.out"
  }
  discovery_names_the_missing() {
    rm "$t/site/lib/python3.12/site-packages/nvidia/cudnn/lib/libcudnn.so.9"
    ! GPU_CHECK_SITE=$t/site/lib/python3.12/site-packages GPU_CHECK_SYSTEM_LIBS=0 "$0" libs 2> "$t/err" > /dev/null &&
      grep -q 'not found: libcudnn.so.9' "$t/err"
  }
  # The whole run on the CPU: data, both devices' first steps, timed rounds, summary.
  dry_run() {
    local bin=${GPU_CHECK_BIN:-target/debug}
    GPU_CHECK_BIN=$bin GPU_CHECK_WORK=$t/work OUT=$t/out "$0" run --dry-run > /dev/null || return 1
    python3 - "$t/out/gpu-check.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["env"]["dry_run"] is True, s["env"]
a = s["agreement"]
assert a["steps"] == 3 and a["agree"] and a["max_relative_difference"] < 1e-6, a
for system in ("ortl-fp32", "ortl-tf32"):
    ortl = s["systems"][system]
    assert len(ortl) == 1 and len(ortl[0]["losses"]) == 5 and ortl[0]["images_per_second"] > 0, ortl
assert any("PyTorch not run" in n for n in s["notes"]), s["notes"]
assert s["placement"]["cpu_nodes"] > 0 and s["placement"]["nodes"].keys() == {"CPUExecutionProvider"}, s["placement"]
PY
    grep -q '^| ortl-fp32 | 1 | ' "$t/out/gpu-check.md"
  }
  # A phase that fails is recorded and the run goes on to a summary, then exits 1.
  failures_are_summarised() {
    local bin=${GPU_CHECK_BIN:-target/debug}
    if GPU_CHECK_BIN=$bin GPU_CHECK_BACKBONE=no-such-net GPU_CHECK_WORK=$t/bad OUT=$t/bad-out \
      "$0" run --dry-run > /dev/null 2> "$t/err"; then
      return 1
    fi
    grep -q 'some phases failed: 4' "$t/err" && grep -q '## Failed phases' "$t/bad-out/gpu-check.md" &&
      grep -q 'no-such-net' "$t/bad-out/gpu-check.md"
  }
  # The summary from fabricated GPU results: ratios, target, disagreement.
  summary() {
    local w=$t/fake
    mkdir -p "$w"
    echo '{"device": "Fake GPU", "batch": 64, "dry_run": false}' > "$w/env.json"
    printf 'epoch,step,loss,lr,seconds\n1,1,0.70,1e-4,1\n1,2,0.69,1e-4,1\n1,3,0.68,1e-4,1\n' > "$w/agree-cpu.csv"
    printf 'epoch,step,loss,lr,seconds\n1,1,0.70,1e-4,1\n1,2,0.69,1e-4,1\n1,3,0.60,1e-4,1\n' > "$w/agree-gpu.csv"
    printf 'epoch,step,loss,lr,seconds\n' > "$w/ortl-fp32-1.csv"
    for i in 1 2 3 4 5 6; do echo "1,$i,0.5,1e-4,0.1" >> "$w/ortl-fp32-1.csv"; done
    echo 2048 > "$w/ortl-fp32-1.mem"
    cat > "$w/agree-gpu.log" << 'LOG'
2026-12-01 10:00:00.1 [V:onnxruntime:, session_state.cc:1578 VerifyEachNodeIsAssignedToAnEp] Node placements
2026-12-01 10:00:00.1 [V:onnxruntime:, session_state.cc:1581 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [CUDAExecutionProvider]. Number of nodes: 1800
2026-12-01 10:00:00.1 [V:onnxruntime:, session_state.cc:1581 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [CPUExecutionProvider]. Number of nodes: 2
2026-12-01 10:00:00.1 [V:onnxruntime:, session_state.cc:1583 VerifyEachNodeIsAssignedToAnEp]   Shape (Shape_1)
2026-12-01 10:00:00.1 [V:onnxruntime:, session_state.cc:1583 VerifyEachNodeIsAssignedToAnEp]   Det (Det_2)
2026-12-01 10:00:00.0 [I:onnxruntime:, cuda_execution_provider.cc:2600 GetCapability] CUDA kernel not found in registries for Op type: Det node name: Det_2
2026-12-01 10:00:00.2 [W:onnxruntime:, session_state.cc:1280 VerifyEachNodeIsAssignedToAnEp] Some nodes were not assigned to the preferred execution providers
2026-12-01 10:00:00.3 [V:onnxruntime:, sequential_executor.cc:1 Execute] unrelated verbose line
Epoch 1/1 - 2.0s - loss: 0.69
LOG
    echo '{"step_seconds": [1, 1, 1, 0.08, 0.08, 0.08], "losses": [0.5]}' > "$w/pytorch-fp32-1.json"
    python3 scripts/gpu_summary.py "$w" "$w/out" > /dev/null || return 1
    python3 - "$w/out/gpu-check.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert abs(s["images_per_second"]["ortl-fp32"] - 640) < 1e-6, s["images_per_second"]
assert abs(s["ratios"]["ortl-fp32/pytorch-fp32"] - 0.8) < 1e-9, s["ratios"]
assert s["target"]["met"] is True
assert s["agreement"]["agree"] is False and abs(s["agreement"]["max_relative_difference"] - 0.08 / 0.68) < 1e-9
assert s["systems"]["ortl-fp32"][0]["peak_memory_mib"] == 2048
p = s["placement"]
assert p["cpu_nodes"] == 2 and p["nodes"] == {"CUDAExecutionProvider": 1800, "CPUExecutionProvider": 2}, p
assert p["lines"][-1].endswith("Det (Det_2)") and len(p["warnings"]) == 1, p
assert len(p["missing_kernels"]) == 1 and "Op type: Det" in p["missing_kernels"][0], p
PY
    grep -q 'DISAGREE' "$w/out/gpu-check.md"
  }

  local saved=
  [[ -d $pack_dir ]] && saved=$t/saved-pack && mv "$pack_dir" "$saved"
  check "pack and unpack round trip" pack_roundtrip
  check "a damaged part is named" damaged_part_is_named
  check "a missing part is named" missing_part_is_named
  rm -rf "$pack_dir"
  [[ -n $saved ]] && mv "$saved" "$pack_dir"
  check "library discovery in a Python environment" discovery
  check "library discovery names what is missing" discovery_names_the_missing
  check "summary of GPU results" summary
  check "dry run on the CPU" dry_run
  check "failed phases are summarised" failures_are_summarised
  finish "gpu-check selftest"
}

case ${1:-} in
  pack) pack ;;
  unpack) unpack ;;
  libs) libs ;;
  run) shift; run "$@" ;;
  selftest) selftest ;;
  *) sed -n '2,25p' "$0" >&2; exit 2 ;;
esac
