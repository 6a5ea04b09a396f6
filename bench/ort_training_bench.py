"""ONNX Runtime 1.19.2's official training build (the last one) on ortl's own model.

  ort_training_bench.py train MODEL.onnx TENSORS N EPOCHS   seconds per epoch (JSON line)
  ort_training_bench.py infer MODEL.onnx TENSORS N          InferenceSession images/s

Training artifacts are generated from ortl's exported classifier (ResNet50 + tutorial head),
trained on its logits with cross-entropy and AdamW. ORT's gradient builder cannot train
BatchNormalization in inference mode with trainable scale and shift (the tutorial's
`training=False` backbone), so the closest configurations it supports are tried in order and
the one that ran is reported: BatchNorm frozen, scale and shift not trained (the same
arithmetic as ortl's `--bn-mode frozen` step less two per-channel gradients); else BatchNorm
switched to training mode (batch statistics) with everything trainable.
"""

import json
import os
import sys
import tempfile
import time
import types

import numpy as np
import onnx
import onnxruntime

# onnxruntime/training/__init__.py imports torch; the artifact and API modules do not need
# it, so they are loaded under a package stub.
package = types.ModuleType("onnxruntime.training")
package.__path__ = [os.path.join(os.path.dirname(onnxruntime.__file__), "training")]
sys.modules["onnxruntime.training"] = package
from onnxruntime.training import artifacts  # noqa: E402
from onnxruntime.training.api import CheckpointState, Module, Optimizer  # noqa: E402

from common import BATCH, tensors  # noqa: E402



def parameters(graph, train_bn):
    slots = {"Conv": (1, 2), "Gemm": (1, 2), "BatchNormalization": (1, 2)}
    names = set()
    for node in graph.node:
        if node.op_type == "BatchNormalization" and not train_bn:
            continue
        for i in slots.get(node.op_type, ()):
            if i < len(node.input):
                names.add(node.input[i])
    initializers = {t.name for t in graph.initializer}
    return sorted(names & initializers)


def forward_model(path, bn_training):
    """ortl's classifier ending at its logits, BatchNorm optionally in training mode."""
    model = onnx.load(path)
    model.ir_version = min(model.ir_version, 10)
    graph = model.graph
    # The loss block reads the class count from the output's shape.
    classes = graph.output[0].type.tensor_type.shape.dim[1].dim_value
    del graph.output[:]
    graph.output.append(
        onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["N", classes])
    )
    if bn_training:
        for node in graph.node:
            if node.op_type == "BatchNormalization":
                node.attribute.append(onnx.helper.make_attribute("training_mode", 1))
                # Training mode must also output the updated running statistics.
                node.output.extend([f"{node.output[0]}.mean", f"{node.output[0]}.var"])
    return model


def train(path, folder, n, epochs):
    images, labels = tensors(folder, n)
    errors = []
    for bn_training in (False, True):
        config = "BatchNorm on batch statistics, all trainable" if bn_training else "BatchNorm frozen"
        try:
            model = forward_model(path, bn_training)
            out = tempfile.mkdtemp(prefix="ortt-")
            trainable = parameters(model.graph, train_bn=True)
            frozen = [t.name for t in model.graph.initializer if t.name not in trainable]
            if not bn_training:
                trainable = parameters(model.graph, train_bn=False)
                frozen = [t.name for t in model.graph.initializer if t.name not in trainable]
            artifacts.generate_artifacts(
                model,
                requires_grad=trainable,
                frozen_params=frozen,
                loss=artifacts.LossType.CrossEntropyLoss,
                optimizer=artifacts.OptimType.AdamW,
                artifact_directory=out,
            )
            state = CheckpointState.load_checkpoint(os.path.join(out, "checkpoint"))
            module = Module(
                os.path.join(out, "training_model.onnx"),
                state,
                os.path.join(out, "eval_model.onnx"),
            )
            optimizer = Optimizer(os.path.join(out, "optimizer_model.onnx"), module)
            module.train()
            seconds = []
            for _ in range(epochs):
                start = time.perf_counter()
                for i in range(0, len(images) - BATCH + 1, BATCH):
                    module(images[i : i + BATCH], labels[i : i + BATCH])
                    optimizer.step()
                    module.lazy_reset_grad()
                seconds.append(time.perf_counter() - start)
            trained = (len(images) // BATCH) * BATCH
            return {"images": trained, "epoch_seconds": seconds, "configuration": config, "errors": errors}
        except Exception as e:  # noqa: BLE001 - reported, then the next configuration
            errors.append(f"{config}: {str(e).splitlines()[0][:300]}")
    return {"images": 0, "epoch_seconds": [], "configuration": None, "errors": errors}


def infer(path, folder, n):
    images, _ = tensors(folder, n)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    session.run(None, {name: images[:BATCH]})
    start = time.perf_counter()
    for i in range(0, len(images), BATCH):
        session.run(None, {name: images[i : i + BATCH]})
    return {"images": len(images), "images_per_second": len(images) / (time.perf_counter() - start)}


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "train":
        result = train(args[0], args[1], int(args[2]), int(args[3]))
    elif command == "infer":
        result = infer(args[0], args[1], int(args[2]))
    else:
        sys.exit(f"unknown command {command}")
    print(json.dumps(result))
