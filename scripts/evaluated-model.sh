#!/usr/bin/env sh
# The model file of an ortl-train run folder that `make` evaluates: best.onnx (the best epoch
# by the run's --checkpoint metric) when the run has one, else model.onnx, saying why.
#   scripts/evaluated-model.sh RUN_DIR
run=$1
if [ -f "$run/best.onnx" ]; then
  echo "$run/best.onnx"
else
  echo "make: $run has no best.onnx (no validation images to choose the best epoch by); evaluating model.onnx" >&2
  echo "$run/model.onnx"
fi
