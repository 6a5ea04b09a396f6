"""PyTorch eager on the CPU, the peer most users would pick instead of ortl (bench/bench.sh):
torchvision's ResNet50 with the tutorial's head, channels-last, on the same uint8 tensors,
batch, optimizer (Adam, lr 1e-5, Keras' epsilon) and thread count as ortl-train beside it.
Random weights (no downloads; a step's cost does not depend on them). Each workload prints
one JSON line on stdout.

  torch_bench.py train TENSORS N EPOCHS THREADS [bn-train]
                            seconds per epoch: a shuffled pass over the training rows, then
                            the validation rows evaluated (as ortl-train and the tutorial's
                            fit do). The backbone's BatchNorm runs on its stored statistics
                            with scale and shift trained (ortl --bn-mode frozen, Keras
                            base(x, training=False)); bn-train: on batch statistics
  torch_bench.py infer TENSORS N THREADS
                            eval mode under inference_mode, images/s after one warm-up batch
"""

import json
import sys
import time

import torch
from common import BATCH, tensors
from torch_nets import resnet50

# Keras' layer defaults, as ortl's tutorial head has them: BatchNorm epsilon 1e-3 and
# moving-average momentum 0.99 (PyTorch counts the other way: 0.01).
KERAS_BN = {"eps": 1e-3, "momentum": 0.01}
L2 = 0.3


def tutorial_head(nn, classes):
    """GAP → BatchNorm → Dropout 0.8 → Dense 128 → BatchNorm → ReLU → Dense → BatchNorm →
    sigmoid (the pooling is the backbone's); the Dense layers' L2 is in `loss`."""
    return nn.Sequential(
        nn.BatchNorm1d(2048, **KERAS_BN),
        nn.Dropout(0.8),
        nn.Linear(2048, 128),
        nn.BatchNorm1d(128, **KERAS_BN),
        nn.ReLU(),
        nn.Linear(128, classes),
        nn.BatchNorm1d(classes, **KERAS_BN),
        nn.Sigmoid(),
    )


def model_for(classes):
    model, _ = resnet50(torch, lambda nn: tutorial_head(nn, classes))
    return model.to(memory_format=torch.channels_last)


def caffe(images):
    """Keras' resnet50.preprocess_input on uint8 NHWC rows: RGB → BGR, minus the ImageNet
    means; an NCHW view of channels-last memory, as the model runs."""
    bgr = images.flip(-1).permute(0, 3, 1, 2).float()
    mean = torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    return (bgr - mean).contiguous(memory_format=torch.channels_last)


def loss(probabilities, labels, dense):
    """Keras' sparse categorical cross-entropy on the sigmoids (rescaled to sum to 1) plus the
    L2 penalty of the `dense` weights."""
    p = probabilities / probabilities.sum(1, keepdim=True)
    nll = -torch.log(p.clamp(1e-7, 1 - 1e-7)).gather(1, labels[:, None]).mean()
    return nll + L2 * sum(w.square().sum() for w in dense)


def train(folder, n, epochs, mode):
    images, labels = tensors(folder, n)
    val_images, _ = tensors(folder, len(labels), "val")
    x, y, val_x = map(torch.from_numpy, (images, labels, val_images))
    model = model_for(max(int(labels.max()) + 1, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5, eps=1e-7)
    # The head's layers are the only Dense ones, the backbone's BatchNorm the only 2-D ones.
    dense = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]
    stored_statistics = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        if mode != "bn-train":
            for bn in stored_statistics:
                bn.eval()
        order = torch.randperm(len(x))
        # Up to len - 1: a last batch of one image cannot train the head's BatchNorm.
        for i in range(0, len(x) - 1, BATCH):
            rows = order[i : i + BATCH]
            optimizer.zero_grad(set_to_none=True)
            loss(model(caffe(x[rows])), y[rows], dense).backward()
            optimizer.step()
        model.eval()
        with torch.inference_mode():
            for i in range(0, len(val_x), BATCH):
                model(caffe(val_x[i : i + BATCH]))
        seconds.append(time.perf_counter() - start)
    return {"images": len(x), "epoch_seconds": seconds}


def infer(folder, n):
    images, labels = tensors(folder, n)
    x = torch.from_numpy(images)
    model = model_for(max(int(labels.max()) + 1, 2)).eval()
    with torch.inference_mode():
        model(caffe(x[:BATCH]))
        start = time.perf_counter()
        for i in range(0, len(x), BATCH):
            model(caffe(x[i : i + BATCH]))
        took = time.perf_counter() - start
    return {"images": len(x), "images_per_second": len(x) / took}


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    torch.manual_seed(1)
    if command == "train":
        torch.set_num_threads(int(args[3]))
        result = train(args[0], int(args[1]), int(args[2]), args[4] if len(args) > 4 else "full")
    elif command == "infer":
        torch.set_num_threads(int(args[2]))
        result = infer(args[0], int(args[1]))
    else:
        sys.exit(f"unknown command {command}")
    print(json.dumps({**result, "torch": torch.__version__, "threads": torch.get_num_threads()}))
