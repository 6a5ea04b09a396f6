"""What every bench script reads: ortl-augment's tensors, the batch size."""

import os

import numpy as np

BATCH = 32


def tensors(folder, n):
    """The first n training images (uint8 [N,H,W,3]) and labels of ortl-augment's output."""
    shard = np.load(os.path.join(folder, "shard-00000.npy"))
    rows = []
    with open(os.path.join(folder, "tensors.csv")) as f:
        next(f)
        for line in f:
            name, index, label, _, split = line.split(",")[:5]
            if name == "shard-00000.npy" and split == "train":
                rows.append((int(index), int(label)))
    rows = rows[:n]
    images = shard[[i for i, _ in rows]]
    return images, np.array([label for _, label in rows], dtype=np.int64)
