"""The vision-transformer workload (bench/bench.sh vit): timm's ViT-Tiny/16 at 224×224 with
random weights, fine-tuned whole, in PyTorch eager on the CPU, beside ortl-train on the same
model exported to ONNX. Both read the same uint8 tensors, batch 32, Adam at lr 1e-5, a
linear head on the class token with dropout 0.2 and softmax cross-entropy (ortl-train's
`--head linear` on an imported classifier), ImageNet normalisation, the same thread count.

  vit_bench.py export OUT.onnx          the model for ortl-train (torch.onnx.export, opset
                                        17, dynamic batch), as a user exports it
  vit_bench.py train TENSORS N EPOCHS THREADS
                                        seconds per epoch: a shuffled pass over the training
                                        rows, then the validation rows evaluated (as
                                        ortl-train does); one JSON line on stdout
"""

import json
import sys
import time

import timm
import torch
from common import BATCH, tensors

MODEL = "vit_tiny_patch16_224"
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def model_for(classes):
    torch.manual_seed(1)
    model = timm.create_model(MODEL, pretrained=False, num_classes=classes, drop_rate=0.2)
    return model


def export(path):
    model = model_for(1000).eval()
    torch.onnx.export(
        model,
        torch.randn(2, 3, 224, 224),
        path,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )


def pixels(images):
    """uint8 NHWC rows → normalised NCHW floats, as ortl's imported preprocessing does."""
    x = images.permute(0, 3, 1, 2).float() / 255.0
    return (x - MEAN) / STD


def train(folder, n, epochs):
    images, labels = tensors(folder, n)
    val_images, _ = tensors(folder, len(labels), "val")
    x, y, val_x = map(torch.from_numpy, (images, labels, val_images))
    model = model_for(max(int(labels.max()) + 1, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5, eps=1e-7)
    cross_entropy = torch.nn.CrossEntropyLoss()
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(y))
        for i in range(0, len(y), BATCH):
            batch = order[i : i + BATCH]
            optimizer.zero_grad(set_to_none=True)
            cross_entropy(model(pixels(x[batch])), y[batch]).backward()
            optimizer.step()
        model.eval()
        with torch.inference_mode():
            for i in range(0, len(val_x), BATCH):
                model(pixels(val_x[i : i + BATCH]))
        seconds.append(time.perf_counter() - start)
    return {"images": len(y), "epoch_seconds": seconds}


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "export":
        export(sys.argv[2])
    else:
        folder, n, epochs, threads = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        torch.set_num_threads(threads)
        result = train(folder, n, epochs)
        result.update(torch=torch.__version__, timm=timm.__version__, threads=threads)
        print(json.dumps(result))
