#!/usr/bin/env bash
# The DICOM corpus of crates/imaging/tests/corpus.rs: the real test files pydicom ships (CT,
# MR, RT dose, secondary capture; every transfer syntax it has), from the pinned pydicom wheel
# on PyPI, checked against its sha256, into .cache/dicom-corpus/ (only the .dcm files).
# Run by `make test`; a verified cache is re-used, anything else is fetched again.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=3.0.2
SHA256=abf971a5440f84dbaf42c4b6758e30e62480902584f8b270b9a5d146e278a07b
WHEEL=.cache/pydicom-$VERSION-py3-none-any.whl
CORPUS=.cache/dicom-corpus

verified() { [ -f "$WHEEL" ] && echo "$SHA256  $WHEEL" | sha256sum --check --status; }

if ! verified; then
  rm -f "$WHEEL"
  mkdir -p .cache
  python3 -m pip download --quiet --no-deps --only-binary=:all: "pydicom==$VERSION" -d .cache
  if ! verified; then
    echo "fetch-dicom-corpus: $WHEEL does not match the pinned sha256 $SHA256; delete it and run again" >&2
    exit 1
  fi
fi

# The stamp names the wheel the folder was unpacked from; unpacking goes through a temporary
# folder so that an interrupted run leaves no half corpus behind.
if [ "$(cat "$CORPUS/.wheel-sha256" 2>/dev/null)" != "$SHA256" ]; then
  rm -rf "$CORPUS" "$CORPUS.partial"
  python3 - "$WHEEL" "$CORPUS.partial" <<'PY'
import sys, zipfile
from pathlib import Path

prefix = "pydicom/data/test_files/"
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for name in wheel.namelist():
        if name.startswith(prefix) and name.endswith(".dcm"):
            target = Path(sys.argv[2]) / name[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(wheel.read(name))
PY
  echo "$SHA256" > "$CORPUS.partial/.wheel-sha256"
  mv "$CORPUS.partial" "$CORPUS"
fi
echo "fetch-dicom-corpus: $(find "$CORPUS" -name '*.dcm' | wc -l) files in $CORPUS (pydicom $VERSION)" >&2
