"""PyTorch eager baseline for `make gpu-check`: the same network, batch, optimizer and uint8
tensors as the ortl-train run beside it, on the same card.

ResNet50 (bench/torch_nets.py: torchvision's, or its layout when torchvision is missing) with a
linear head (dropout 0.2, 2048 -> classes), ImageNet normalisation applied on the device to
the uint8 NHWC batch, softmax cross-entropy, Adam (Keras defaults, as ortl), BatchNorm in
training mode. Per step: copy the batch to the device, forward, backward, update, read the
loss back: the work ortl-train does per step. Prints one JSON object.

    python3 bench/gpu_torch.py TENSORS --steps 30 --batch 64 --precision fp32|tf32
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import tensors  # noqa: E402
from torch_nets import resnet50  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("tensors")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--precision", choices=["fp32", "tf32"], default="fp32")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()

    import torch

    tf32 = args.precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(args.seed)
    device = torch.device("cuda")

    images, labels = tensors(args.tensors, args.steps * args.batch)
    classes = int(labels.max()) + 1
    model, source = resnet50(
        torch, lambda nn: nn.Sequential(nn.Dropout(0.2), nn.Linear(2048, max(classes, 2)))
    )
    model = model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1) * 255
    host_images = torch.from_numpy(images)
    host_labels = torch.from_numpy(labels)

    losses, seconds = [], []
    steps = len(images) // args.batch
    torch.cuda.reset_peak_memory_stats()
    for step in range(steps):
        start = time.perf_counter()
        rows = slice(step * args.batch, (step + 1) * args.batch)
        x = host_images[rows].to(device, non_blocking=False)
        y = host_labels[rows].to(device)
        x = (x.permute(0, 3, 1, 2).float() - mean) / std
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())  # synchronises, as ortl reads its loss back
        seconds.append(time.perf_counter() - start)
    timed = sorted(seconds[args.warmup :]) or sorted(seconds)
    median = timed[len(timed) // 2]
    print(
        json.dumps(
            {
                "system": f"pytorch-{args.precision}",
                "torch": torch.__version__,
                "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version(),
                "model_source": source,
                "device": torch.cuda.get_device_name(0),
                "batch": args.batch,
                "size": list(images.shape[1:3]),
                "steps": steps,
                "median_step_seconds": median,
                "images_per_second": args.batch / median,
                "peak_allocated_mib": torch.cuda.max_memory_allocated() / 2**20,
                "peak_reserved_mib": torch.cuda.max_memory_reserved() / 2**20,
                "losses": losses,
                "step_seconds": seconds,
            }
        )
    )


if __name__ == "__main__":
    main()
