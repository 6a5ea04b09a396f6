#!/usr/bin/env bash
# Installs the ONNX Runtime C library from its PyPI wheel into .ort/ (no Python at run time:
# the wheel is only a zip that carries the library). Pinned version, sha256-checked.
#   scripts/setup-ort.sh cpu    onnxruntime       -> libonnxruntime.so.1.31.1
#   scripts/setup-ort.sh cuda   onnxruntime-gpu   -> + CUDA execution provider libraries
set -euo pipefail

kind=${1:-cpu}
version=1.31.1
dest=${ORT_DIR:-.ort}
case "$kind" in
  cpu)  package=onnxruntime;     sha256=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f ;;
  cuda) package=onnxruntime-gpu; sha256=e26c475fe361b2015f45b4b824bd13f0bb20204e59b62814e6f0acd5f3d491a6 ;;
  *) echo "setup-ort: unknown kind '$kind' (use cpu or cuda)" >&2; exit 2 ;;
esac

stamp="$dest/INSTALLED"
if [ -f "$stamp" ] && grep -qx "$package==$version" "$stamp"; then
  exit 0
fi
# A CUDA install also serves the CPU; do not downgrade it.
if [ "$kind" = cpu ] && [ -f "$stamp" ] && grep -qx "onnxruntime-gpu==$version" "$stamp"; then
  exit 0
fi

python=$(command -v python3 || command -v python || true)
[ -n "$python" ] || { echo "setup-ort: python3 with pip is needed to fetch the wheel" >&2; exit 1; }
download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
echo "setup-ort: fetching $package==$version from PyPI" >&2
# Pin the exact wheel (CPython 3.11 tag, manylinux_2_28) whatever Python runs pip, so the
# checksum below always applies; the library inside does not depend on Python.
"$python" -m pip download --quiet --no-deps --only-binary=:all: \
  --python-version 3.11 --platform manylinux_2_28_x86_64 \
  -d "$download" "$package==$version"
wheel=$(ls "$download"/*.whl)
echo "$sha256  $wheel" | sha256sum --check --quiet - || {
  echo "setup-ort: checksum mismatch for $wheel; refusing to install it" >&2; exit 1; }

mkdir -p "$dest"
"$python" - "$wheel" "$dest" <<'PY'
import os, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = info.filename
        if name.startswith("onnxruntime/capi/lib") and ".so" in name:
            target = os.path.join(dest, os.path.basename(name))
            tmp = target + ".partial"
            with z.open(info) as src, open(tmp, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
            os.replace(tmp, target)
PY
echo "$package==$version" > "$stamp"
echo "setup-ort: installed $package $version into $dest/" >&2
