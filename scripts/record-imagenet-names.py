#!/usr/bin/env python3
"""Record the tensor names of timm's ImageNet checkpoints and the timm->torchvision renames.

`--weights imagenet` downloads timm's Hugging Face checkpoints (model.safetensors of
repos such as timm/resnet50.tv2_in1k). Those files hold `model.state_dict()` of the
timm model, so this script records, for each timm architecture that ortl maps to a
built-in backbone, the state_dict of `timm.create_model(arch, pretrained=False)`
(1000 classes; no download, no network):

  crates/models/tests/data/imagenet-names/<arch>.tsv
      `# ` header line (timm, torch, torchvision versions), then one line per
      state_dict entry, in state_dict order: name<TAB>dtype<TAB>shape, shape
      comma-separated (`64,3,7,7`), empty for a scalar (num_batches_tracked).

  crates/models/data/rename/<arch>.tsv   (mobilenetv2_100, efficientnet_b0 only)
      `# ` header lines, then timm_module_prefix<TAB>torchvision_module_prefix:
      replacing the module prefix of a timm tensor name (the part before its last
      .weight/.bias/.running_mean/.running_var/.num_batches_tracked) gives the
      torchvision name. Built by zipping the modules that directly own parameters or
      buffers (named_modules order) of the timm model and of torchvision's model,
      asserting that each pair owns the same tensor names with the same shapes;
      the classifiers (timm `classifier`, torchvision `classifier.*`) are left out.

It also prints, for checking by hand (nothing of it is written to files):
  * for resnet50, resnet101, densenet121, densenet201, vgg19, vgg19_bn, inception_v3:
    the differences between timm's state_dict and torchvision's (classifier / head /
    pre_logits / fc / AuxLogits and num_batches_tracked left out), names and shapes;
  * timm's pretrained_cfg of the tags that `--weights imagenet` uses;
  * the BatchNorm eps of each timm model and of the matching torchvision model;
  * max |timm.forward_features(x) - torchvision features(x)| with timm's random
    weights (BN statistics randomised) loaded into torchvision's model by name
    (through the rename map where there is one), strict on the backbone.

Ran with: Python 3.11.7, torch 2.15.0+cu132, torchvision 0.29.2+cu132, timm 1.0.31,
safetensors 0.8.0 (CPU only). Run it with

    python3 -m venv /tmp/timm-venv
    /tmp/timm-venv/bin/pip install torch torchvision timm safetensors
    /tmp/timm-venv/bin/python scripts/record-imagenet-names.py

from the repository root (or anywhere: paths are relative to this file). The output
files depend only on the timm / torch / torchvision versions.

Caveat: the hub files were written by an older timm (2023). timm 1.0.31 still carries
load-time remaps for three of these families, so their hub files may hold other names
than recorded here: densenet (`_filter_torchvision_pretrained`: denselayer
`norm.1`/`conv.1`/... -> `norm1`/`conv1`), vgg (`_filter_fn`: `classifier.0/3/6` ->
`pre_logits.fc1/fc2`, `head.fc`, reshaping the Linear weights to convs) and
inception_v3.tv_in1k (loaded non-strict because that checkpoint also holds the 14
`AuxLogits.*` tensors). The other families have no pretrained filter.
"""

import os
import sys
import warnings

import timm
import torch
import torchvision

warnings.filterwarnings("ignore")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES_DIR = os.path.join(ROOT, "crates", "models", "tests", "data", "imagenet-names")
RENAME_DIR = os.path.join(ROOT, "crates", "models", "data", "rename")

MODELS = [
    "resnet50",
    "resnet101",
    "resnet26",
    "densenet121",
    "densenet201",
    "vgg19",
    "vgg19_bn",
    "inception_v3",
    "mobilenetv2_100",
    "efficientnet_b0",
    "inception_resnet_v2",
]

# The pretrained tags `--weights imagenet` uses (hf_hub_id timm/<tag>).
TAGS = [
    "resnet50.tv_in1k",
    "resnet50.tv2_in1k",
    "resnet101.tv2_in1k",
    "resnet101.tv_in1k",
    "resnet26.bt_in1k",
    "densenet121.tv_in1k",
    "densenet201.tv_in1k",
    "vgg19.tv_in1k",
    "vgg19_bn.tv_in1k",
    "inception_v3.tv_in1k",
    "mobilenetv2_100.ra_in1k",
    "efficientnet_b0.ra_in1k",
    "inception_resnet_v2.tf_in1k",
]

# timm arch -> torchvision constructor, for the families torchvision has.
RENAMED = {"mobilenetv2_100": "mobilenet_v2", "efficientnet_b0": "efficientnet_b0"}
IDENTITY = {
    "resnet50": "resnet50",
    "resnet101": "resnet101",
    "densenet121": "densenet121",
    "densenet201": "densenet201",
    "vgg19": "vgg19",
    "vgg19_bn": "vgg19_bn",
    "inception_v3": "inception_v3",
}

# First name components that belong to a classifier, not to the backbone.
HEAD_ROOTS = {"classifier", "head", "pre_logits", "fc", "AuxLogits", "classif"}

TENSOR_SUFFIXES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

VERSIONS = (
    f"timm {timm.__version__}, torch {torch.__version__}, "
    f"torchvision {torchvision.__version__}"
)


def dtype_name(t):
    return str(t.dtype).replace("torch.", "")


def shape_text(t):
    return ",".join(str(d) for d in t.shape)


def create_timm(arch):
    return timm.create_model(arch, pretrained=False)


def create_tv(name):
    ctor = getattr(torchvision.models, name)
    if name == "inception_v3":
        # weights=None: torchvision leaves transform_input False, as timm has no such step.
        return ctor(weights=None, aux_logits=False, init_weights=True, transform_input=False)
    return ctor(weights=None)


def write_names(arch, model):
    sd = model.state_dict()
    path = os.path.join(NAMES_DIR, f"{arch}.tsv")
    with open(path, "w") as f:
        f.write(
            f"# timm.create_model({arch!r}, pretrained=False).state_dict(): "
            f"name<TAB>dtype<TAB>shape; {VERSIONS}; scripts/record-imagenet-names.py\n"
        )
        for k, v in sd.items():
            f.write(f"{k}\t{dtype_name(v)}\t{shape_text(v)}\n")
    print(f"wrote {os.path.relpath(path, ROOT)}: {len(sd)} tensors")


def is_head(name):
    return name.split(".")[0] in HEAD_ROOTS


def owners(model, skip_root):
    """(module name, {tensor name: shape}) for the modules that directly own tensors."""
    out = []
    for name, m in model.named_modules():
        if name.split(".")[0] == skip_root:
            continue
        own = {}
        for k, p in m.named_parameters(recurse=False):
            own[k] = tuple(p.shape)
        for k, b in m.named_buffers(recurse=False):
            own[k] = tuple(b.shape)
        if own:
            out.append((name, own))
    return out


def split_name(key):
    prefix, _, leaf = key.rpartition(".")
    assert leaf in TENSOR_SUFFIXES, key
    return prefix, leaf


def build_rename(arch, tv_name, tm, tv):
    a = owners(tm, "classifier")
    b = owners(tv, "classifier")
    assert len(a) == len(b), (arch, len(a), len(b))
    pairs = []
    for (na, oa), (nb, ob) in zip(a, b):
        assert oa == ob, (arch, na, oa, nb, ob)
        pairs.append((na, nb))
    mapping = dict(pairs)
    # The map, applied to every backbone tensor name, gives exactly torchvision's names.
    tsd, vsd = tm.state_dict(), tv.state_dict()
    mapped = {}
    for k, v in tsd.items():
        if is_head(k):
            continue
        prefix, leaf = split_name(k)
        mapped[f"{mapping[prefix]}.{leaf}"] = tuple(v.shape)
    want = {k: tuple(v.shape) for k, v in vsd.items() if not is_head(k)}
    assert mapped == want, (arch, set(mapped) ^ set(want))
    path = os.path.join(RENAME_DIR, f"{arch}.tsv")
    with open(path, "w") as f:
        f.write(
            f"# timm {arch} -> torchvision.models.{tv_name}: module-prefix rename map "
            f"(classifier excluded)\n"
            f"# replace the module prefix of a timm tensor name (before its last "
            f".weight/.bias/.running_mean/.running_var/.num_batches_tracked)\n"
            f"# generated by scripts/record-imagenet-names.py with {VERSIONS}\n"
            f"# timm_module_prefix<TAB>torchvision_module_prefix\n"
        )
        for na, nb in pairs:
            f.write(f"{na}\t{nb}\n")
    print(f"wrote {os.path.relpath(path, ROOT)}: {len(pairs)} modules, {len(mapped)} tensors")
    return mapping


def compare_identity(arch, tm, tv):
    """Print the name/shape differences between timm's and torchvision's state_dicts."""
    def backbone(sd):
        return {
            k: tuple(v.shape)
            for k, v in sd.items()
            if not is_head(k) and not k.endswith(".num_batches_tracked")
        }

    tsd, vsd = tm.state_dict(), tv.state_dict()
    a, b = backbone(tsd), backbone(vsd)
    only_timm = [k for k in a if k not in b]
    only_tv = [k for k in b if k not in a]
    shape = [k for k in a if k in b and a[k] != b[k]]
    order_same = [k for k in a if k in b] == [k for k in b if k in a]
    ok = not only_timm and not only_tv and not shape
    print(
        f"  backbone names: timm {len(a)}, torchvision {len(b)}: "
        f"{'IDENTICAL (names and shapes)' if ok else 'DIFFER'}; same order: {order_same}"
    )
    for k in only_timm:
        print(f"    only in timm:        {k} {a[k]}")
    for k in only_tv:
        print(f"    only in torchvision: {k} {b[k]}")
    for k in shape:
        print(f"    shape differs:       {k} timm {a[k]} torchvision {b[k]}")
    nbt_a = [k for k in tsd if k.endswith(".num_batches_tracked") and not is_head(k)]
    nbt_b = [k for k in vsd if k.endswith(".num_batches_tracked") and not is_head(k)]
    print(f"  num_batches_tracked: timm {len(nbt_a)}, torchvision {len(nbt_b)}, same names: {nbt_a == nbt_b}")
    # The classifier side, for information.
    ha = [(k, tuple(v.shape)) for k, v in tsd.items() if is_head(k)]
    hb = [(k, tuple(v.shape)) for k, v in vsd.items() if is_head(k)]
    print(f"  timm head:        {ha}")
    print(f"  torchvision head: {hb}")


def bn_eps(model):
    return sorted({m.eps for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)})


def randomise_bn(model, gen, size):
    """Random BN affine parameters, running statistics from one train-mode batch.

    Statistics measured on the data keep the activations O(1) through deep stacks
    (random running_mean/var would make them explode), so differences stay readable.
    """
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        n = m.num_features
        with torch.no_grad():
            m.weight.copy_(0.5 + torch.rand(n, generator=gen))
            m.bias.copy_(0.1 * torch.randn(n, generator=gen))
        m.reset_running_stats()
        m.momentum = None  # cumulative average: after one batch, that batch's statistics
    model.train()
    with torch.no_grad():
        model.forward_features(torch.randn(2, 3, size, size, generator=gen))
    for m in bns:
        m.momentum = 0.1
    model.eval()


def set_eps(model, eps):
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eps = eps


def tv_features(arch, tv, x):
    if arch.startswith("resnet"):
        x = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))
        return tv.layer4(tv.layer3(tv.layer2(tv.layer1(x))))
    if arch == "inception_v3":
        assert not tv.transform_input
        for name in [
            "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1",
            "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2",
            "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c",
            "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c",
        ]:
            x = getattr(tv, name)(x)
        return x
    return tv.features(x)


def numeric_check(arch, tv_name, tm, tv, mapping, sizes=(224,)):
    gen = torch.Generator().manual_seed(0)
    randomise_bn(tm, gen, sizes[0])
    tsd = tm.state_dict()
    sd = {}
    for k, v in tsd.items():
        if is_head(k):
            continue
        if mapping is None:
            sd[k] = v
        else:
            prefix, leaf = split_name(k)
            sd[f"{mapping[prefix]}.{leaf}"] = v
    missing, unexpected = tv.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not is_head(k)]
    assert not missing and not unexpected, (arch, missing, unexpected)
    tm.eval()
    tv.eval()
    eps_t, eps_v = bn_eps(tm), bn_eps(tv)
    for size in sizes:
        x = torch.randn(1, 3, size, size, generator=gen)
        with torch.no_grad():
            ft = tm.forward_features(x)
            raw = tv_features(arch, tv, x)
            diff_raw = (ft - raw).abs().max().item() if ft.shape == raw.shape else None
            extra = ""
            if arch.startswith("densenet"):
                # timm's norm5 is a BatchNormAct2d (BN + ReLU); torchvision applies the
                # ReLU after `features`, in forward().
                extra = f"; vs relu(tv.features(x)): {(ft - torch.relu(raw)).abs().max().item():.3g}"
            if eps_t != eps_v:
                set_eps(tv, eps_t[0])
                fv = tv_features(arch, tv, x)
                extra += f"; with torchvision BN eps set to timm's {eps_t[0]}: {(ft - fv).abs().max().item():.3g}"
            elif eps_t:
                # Sensitivity: what a wrong eps (1e-3 <-> 1e-5) would cost.
                other = 1e-3 if eps_t[0] != 1e-3 else 1e-5
                set_eps(tv, other)
                fv = tv_features(arch, tv, x)
                set_eps(tv, eps_t[0])
                extra += f"; (were torchvision's BN eps {other:g}: {(ft - fv).abs().max().item():.3g})"
        print(
            f"  numeric {size}x{size}: timm forward_features {tuple(ft.shape)} max|.| "
            f"{ft.abs().max().item():.3g}; torchvision {tuple(raw.shape)}; max abs diff "
            f"{diff_raw if diff_raw is None else format(diff_raw, '.3g')}{extra}"
        )


def print_cfg(tag):
    cfg = timm.models.get_pretrained_cfg(tag)
    if cfg is None:
        print(f"  {tag}: NO pretrained_cfg in timm {timm.__version__}")
        return
    d = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    keys = ["hf_hub_id", "num_classes", "input_size", "test_input_size", "interpolation",
            "crop_pct", "test_crop_pct", "crop_mode", "mean", "std"]
    print(f"  {tag}: " + ", ".join(f"{k}={d.get(k)!r}" for k in keys if k in d))


def main():
    os.makedirs(NAMES_DIR, exist_ok=True)
    os.makedirs(RENAME_DIR, exist_ok=True)
    print(f"# {VERSIONS}")
    torch.manual_seed(0)
    for arch in MODELS:
        print(f"== {arch}")
        tm = create_timm(arch)
        write_names(arch, tm)
        print(f"  timm BN eps: {bn_eps(tm)}")
        tv_name = RENAMED.get(arch) or IDENTITY.get(arch)
        if tv_name is None:
            print("  (no torchvision model)")
            continue
        tv = create_tv(tv_name)
        print(f"  torchvision.models.{tv_name} BN eps: {bn_eps(tv)}")
        if arch in RENAMED:
            mapping = build_rename(arch, tv_name, tm, tv)
        else:
            compare_identity(arch, tm, tv)
            mapping = None
        sizes = (224, 299) if arch == "inception_v3" else (224,)
        numeric_check(arch, tv_name, tm, tv, mapping, sizes)
    print("== pretrained_cfg")
    for tag in TAGS:
        print_cfg(tag)


if __name__ == "__main__":
    sys.exit(main())
