"""The network both PyTorch baselines run (bench/torch_bench.py on the CPU, bench/gpu_torch.py
on a GPU): torchvision's ResNet50, or the same layout defined here when torchvision is not
installed, under the caller's head. Random weights: no downloads."""


def resnet50(torch, head):
    """ResNet50 with `head(nn)` (a module on the pooled [N, 2048] features) in place of its
    classifier, and where the backbone came from. `head` is a function so that the head is
    built after the backbone: a seeded generator gives the backbone the same weights under
    any head."""
    nn = torch.nn
    try:
        import torchvision

        model = torchvision.models.resnet50(weights=None)
        model.fc = head(nn)
        return model, "torchvision"
    except ImportError:
        pass

    class Bottleneck(nn.Module):
        def __init__(self, inplanes, planes, stride):
            super().__init__()
            width, out = planes, planes * 4
            self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, out, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(out)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = None
            if stride != 1 or inplanes != out:
                self.downsample = nn.Sequential(
                    nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out)
                )

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.relu(self.bn2(self.conv2(y)))
            return self.relu(self.bn3(self.conv3(y)) + identity)

    layers = [
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    ]
    inplanes = 64
    for planes, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        for i in range(blocks):
            layers.append(Bottleneck(inplanes, planes, stride if i == 0 else 1))
            inplanes = planes * 4
    layers += [
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        head(nn),
    ]
    return nn.Sequential(*layers), "defined here"
