"""Tables for bench/last-run.md from bench.sh's results.jsonl: medians over repetitions
and the ratios the project's targets are stated in."""

import json
import statistics
import sys
from collections import defaultdict


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=1):
    return "—" if v is None else f"{v:.{digits}f}"


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
by = defaultdict(list)
for r in rows:
    by[(r["workload"], r["system"])].append(r["result"])
reps = max((r["rep"] for r in rows), default=0)
out = [f"Repetitions: {reps} (medians shown; systems interleaved within each repetition).", ""]

# 1. Full fine-tuning: epoch 2 (epoch 1 includes graph building / tracing).
def epoch_rate(results, epoch):
    rates = []
    for r in results:
        s = r.get("epoch_seconds") or []
        rates.append(r["images"] / s[epoch] if len(s) > epoch and s[epoch] > 0 else None)
    return median(rates)


def pytorch_label(workload, form=""):
    """PyTorch's row name, with the version and threads it reported."""
    r = next(iter(by[(workload, "pytorch")]), {})
    return f"PyTorch {r.get('torch', '')} eager{form} (channels-last, {r.get('threads', '?')} threads)"


def section_full():
    global out
    systems = ("keras", "ortl", "ortl-plain", "pytorch", "ort-1.19.2")
    full = {s: epoch_rate(by[("full", s)], 1) for s in systems}
    rss = {s: median([r.get("peak_rss_mib") for r in by[("full", s)]]) for s in ("keras", "ortl", "ortl-plain", "pytorch")}
    out += ["## 1. Full fine-tuning, ResNet50 + tutorial head, 100×100, batch 32", "",
            "| system | training images/s (epoch 2) | peak RSS MiB |", "|---|---|---|"]
    configuration = next((r.get("configuration") for r in by[("full", "ort-1.19.2")] if r.get("configuration")), None)
    labels = {"ortl": "ortl (blocked convolutions, the default)",
              "ortl-plain": "ortl --conv-layout plain",
              "pytorch": pytorch_label("full", ", backbone BatchNorm in eval()"),
              "ort-1.19.2": f"ORT 1.19.2 training ({configuration or 'did not run'})"}
    for s in systems:
        label = labels.get(s, s)
        out.append(f"| {label} | {fmt(full[s])} | {fmt(rss.get(s), 0)} |")
    errors = sorted({e for r in by[("full", "ort-1.19.2")] for e in r.get("errors", [])})
    out += ["", f"ortl / Keras: **{fmt(ratio(full['ortl'], full['keras']), 2)}** (target ≥ 1.5); "
            f"ortl / PyTorch: **{fmt(ratio(full['ortl'], full['pytorch']), 2)}**; "
            f"ortl / ORT 1.19.2: **{fmt(ratio(full['ortl'], full['ort-1.19.2']), 2)}** (target ≥ 1.0); "
            f"blocked / plain layout: {fmt(ratio(full['ortl'], full['ortl-plain']), 2)}."]
    for e in errors:
        out.append(f"- ORT 1.19.2: {e}")
    out.append("")


def section_bn_train():
    global out
    systems = ("keras", "ortl", "pytorch")
    rate = {s: epoch_rate(by[("bn-train", s)], 1) for s in systems}
    rss = {s: median([r.get("peak_rss_mib") for r in by[("bn-train", s)]]) for s in systems}
    out += ["## 1b. Full fine-tuning, BatchNorm on batch statistics (training from scratch)", "",
            "| system | training images/s (epoch 2) | peak RSS MiB |", "|---|---|---|",
            f"| Keras, base(x, training=True) | {fmt(rate['keras'])} | {fmt(rss['keras'], 0)} |",
            f"| ortl --bn-mode train | {fmt(rate['ortl'])} | {fmt(rss['ortl'], 0)} |",
            f"| {pytorch_label('bn-train')} | {fmt(rate['pytorch'])} | {fmt(rss['pytorch'], 0)} |", "",
            f"ortl / Keras: **{fmt(ratio(rate['ortl'], rate['keras']), 2)}** (target ≥ 1.2); "
            f"ortl / PyTorch: **{fmt(ratio(rate['ortl'], rate['pytorch']), 2)}**.", ""]


# 2. Head only.
def section_head():
    global out
    out += ["## 2. Head only (frozen backbone)", "",
            "| system | epoch 1 s | later epochs s (mean) |", "|---|---|---|"]
    later = {}
    for s in ("keras", "ortl"):
        first = median([r["epoch_seconds"][0] for r in by[("head", s)] if r.get("epoch_seconds")])
        later[s] = median([statistics.mean(r["epoch_seconds"][1:]) for r in by[("head", s)] if len(r.get("epoch_seconds", [])) > 1])
        out.append(f"| {s} | {fmt(first, 2)} | {fmt(later[s], 2)} |")
    out += ["", f"Later epochs, Keras / ortl: **{fmt(ratio(later['keras'], later['ortl']), 1)}×** (target ≥ 5×).", ""]


# 3. Inference.
def section_infer():
    global out
    out += ["## 3. Inference, batch 32", "", "| system | images/s |", "|---|---|"]
    results = by[("infer", "ortl")]
    systems = ("keras", "pytorch", "ort-python", "bare", "ortl", "python-threaded", "python-sequential")
    inf = {s: median([r["images_per_second"] for r in by[("infer", s)]]) for s in systems}
    inf["steady"] = median([r.get("steady_images_per_second") for r in results])
    startup = median([r.get("startup_seconds") for r in results])
    labels = {"keras": "Keras predict (arrays in memory)",
              "pytorch": f"{pytorch_label('infer')}, inference_mode (arrays in memory)",
              "ort-python": "ORT Python 1.19.2 InferenceSession (arrays in memory)",
              "bare": "bare Rust session, ORT 1.31.1 (arrays in memory; bench/infer.sh's baseline)",
              "ortl": "ortl-infer end to end (512×512 PNG decode + resize + rows, start-up included)",
              "steady": f"ortl-infer once running: (N − 32) / (t(N) − t(32)); start-up {fmt(startup, 2)} s",
              "python-threaded": "Python pipeline from the same PNGs: PIL decode + resize on a thread pool, ORT 1.31.1 session (start-up included)",
              "python-sequential": "the same, decoding one image after another"}
    for s, label in labels.items():
        out.append(f"| {label} | {fmt(inf[s])} |")
    out += ["", f"ortl end to end / threaded Python pipeline: **{fmt(ratio(inf['ortl'], inf['python-threaded']), 2)}** (target ≥ 1.2); "
            f"ortl end to end / sequential Python pipeline: {fmt(ratio(inf['ortl'], inf['python-sequential']), 2)}; "
            f"ortl end to end / ORT Python on arrays: **{fmt(ratio(inf['ortl'], inf['ort-python']), 2)}**; "
            f"ortl once running / bare session: **{fmt(ratio(inf['steady'], inf['bare']), 2)}** (target ≥ 1.0); "
            f"ortl end to end / Keras: {fmt(ratio(inf['ortl'], inf['keras']), 2)}; "
            f"ortl end to end / PyTorch on arrays: {fmt(ratio(inf['ortl'], inf['pytorch']), 2)}.", ""]


# 4. Data pipeline.
def section_data():
    global out
    data = {s: median([r["images_per_second"] for r in by[("data", s)]]) for s in ("keras", "ortl")}
    out += ["## 4. Data pipeline, 512×512 PNG → 100×100 with the tutorial's augmentation", "",
            "| system | images/s |", "|---|---|",
            f"| Keras image_dataset_from_directory + augmentation layers | {fmt(data['keras'])} |",
            f"| ortl-augment --preset tutorial --copies 1 | {fmt(data['ortl'])} |", "",
            f"ortl / Keras: **{fmt(ratio(data['ortl'], data['keras']), 2)}** (target ≥ 2.5).", ""]


# 5. Scaling.
def section_scale():
    global out
    out += ["## 5. ortl-train scaling (full fine-tuning, 64 images, one epoch)", "",
            "| size | batch | threads | images/s |", "|---|---|---|---|"]
    for r in by[("scale", "ortl")]:
        s = r.get("epoch_seconds") or []
        rate = r["images"] / s[0] if s and s[0] > 0 else None
        out.append(f"| {r['size']} | {r['batch']} | {r['threads']} | {fmt(rate)} |")


# 6. Vision transformer.
def section_vit():
    global out
    rate = {s: epoch_rate(by[("vit", s)], 1) for s in ("ortl", "pytorch")}
    rss = {s: median([r.get("peak_rss_mib") for r in by[("vit", s)]]) for s in ("ortl", "pytorch")}
    r = next(iter(by[("vit", "pytorch")]), {})
    images = next((x.get("images") for x in by[("vit", "ortl")]), "?")
    out += ["## 6. Full fine-tuning, timm ViT-Tiny/16 at 224×224 (12 attention blocks), batch 32", "",
            f"{images} training images; Adam, lr 1e-5, a linear head on the class token.", "",
            "| system | training images/s (epoch 2) | peak RSS MiB |", "|---|---|---|",
            f"| ortl-train on its torch.onnx export | {fmt(rate['ortl'])} | {fmt(rss['ortl'], 0)} |",
            f"| PyTorch {r.get('torch', '')} eager, timm {r.get('timm', '')} ({r.get('threads', '?')} threads) "
            f"| {fmt(rate['pytorch'])} | {fmt(rss['pytorch'], 0)} |", "",
            f"ortl / PyTorch: **{fmt(ratio(rate['ortl'], rate['pytorch']), 2)}** "
            "(target: at least 1 / 1.5 = 0.67).", ""]


# Only the workloads that ran (BENCH_ONLY).
for workload, section in (("full", section_full), ("bn-train", section_bn_train),
                          ("head", section_head), ("infer", section_infer),
                          ("data", section_data), ("vit", section_vit),
                          ("scale", section_scale)):
    if any(w == workload for w, _ in by):
        section()
print("\n".join(out))
