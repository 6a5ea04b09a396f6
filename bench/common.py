"""What every bench script reads: ortl-augment's tensors, the batch size."""

import os

import numpy as np

BATCH = 32


def tensors(folder, n, split="train"):
    """The first n images of `split` (uint8 [N,H,W,3]) and labels of ortl-augment's output,
    in tensors.csv order, from however many shards hold them."""
    wanted = {}
    order = []
    with open(os.path.join(folder, "tensors.csv")) as f:
        next(f)
        for line in f:
            name, index, label, _, row_split = line.split(",")[:5]
            if row_split == split and len(order) < n:
                order.append((name, int(index), int(label)))
                wanted.setdefault(name, None)
    if not order:
        return np.zeros((0, 0, 0, 3), np.uint8), np.zeros(0, np.int64)
    shards = {name: np.load(os.path.join(folder, name), mmap_mode="r") for name in wanted}
    images = np.stack([shards[name][index] for name, index, _ in order])
    return images, np.array([label for _, _, label in order], dtype=np.int64)
