"""Exports real vision transformers and modern CNNs with random weights, for
scripts/try-exports.sh (issue #38, "Tried on real exports"); no network is needed.

    python scripts/try_exports.py export DIR [NAME ...]   # DIR/NAME.{torchscript,dynamo}.onnx
    python scripts/try_exports.py list                     # the model names
    python scripts/try_exports.py run BIN TENSORS DIR [NAME ...]  # ortl on each export
    python scripts/try_exports.py table DIR/results.jsonl  # the Markdown outcome table

Each export writes one JSON line to DIR/exports.jsonl: model, exporter, ok, seconds and,
when it failed, the exception's last line. `run` trains on each export as a user would
(`ortl-train TENSORS -o RUN --backbone FILE.onnx --fine-tune 1,1`: one epoch of the head
on the frozen backbone, then one of the whole model), runs `ortl-infer --cam` on three
fixture images with the run's best.onnx, and writes one JSON line per export to
DIR/results.jsonl.
"""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

# Wall-clock limit of one ortl-train run (both epochs) on this 2-core machine; past it the
# run is stopped with SIGINT (ortl checkpoints) and the epochs finished so far count.
TRAIN_SECONDS = int(os.environ.get("TRY_EXPORTS_TRAIN_SECONDS", "300"))
INFER_SECONDS = 300
CAM_IMAGES = ["fixtures/xray/normal", "fixtures/xray/tuberculosis"]

SIZE = 224
# Batch 2 in the example input: torch.export specialises a dimension of size 1.
BATCH = 2


def torchvision_model(name):
    def build():
        import torchvision

        return getattr(torchvision.models, name)(weights=None)

    return build


def timm_model(name, **kwargs):
    def build():
        import timm

        return timm.create_model(name, pretrained=False, **kwargs)

    return build


# DINOv2 is exported at 224 (its default is 518) so that it runs on the same 224×224 tensors
# as the others; patch 14 gives a 16×16 grid.
MODELS = {
    "tv_vit_b_16": torchvision_model("vit_b_16"),
    "tv_swin_t": torchvision_model("swin_t"),
    "tv_convnext_tiny": torchvision_model("convnext_tiny"),
    "tv_maxvit_t": torchvision_model("maxvit_t"),
    "timm_vit_tiny_patch16_224": timm_model("vit_tiny_patch16_224"),
    "timm_deit_tiny_patch16_224": timm_model("deit_tiny_patch16_224"),
    "timm_vit_small_patch14_dinov2": timm_model("vit_small_patch14_dinov2", img_size=SIZE),
    "timm_convnext_atto": timm_model("convnext_atto"),
    "timm_swin_tiny_patch4_window7_224": timm_model("swin_tiny_patch4_window7_224"),
    "timm_efficientvit_b0": timm_model("efficientvit_b0"),
    "timm_mobilevit_xxs": timm_model("mobilevit_xxs"),
}


def export_torchscript(model, path):
    import torch

    torch.onnx.export(
        model,
        (torch.randn(BATCH, 3, SIZE, SIZE),),
        str(path),
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


def export_dynamo(model, path):
    import torch

    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.onnx.export(
        model,
        (torch.randn(BATCH, 3, SIZE, SIZE),),
        input_names=["input"],
        output_names=["logits"],
        dynamic_shapes=({0: batch},),
        dynamo=True,
    )
    program.save(str(path))


EXPORTERS = {"torchscript": export_torchscript, "dynamo": export_dynamo}


def export_transformers_vit(out):
    """transformers' ViTForImageClassification, random weights at ViT-Tiny/16's size (the
    library's default config is ViT-B/16, which tv_vit_b_16 already covers), exported by
    transformers' own ONNX path, optimum-cli (dynamic batch, its default opset)."""
    from transformers import ViTConfig, ViTForImageClassification

    import torch

    torch.manual_seed(0)
    config = ViTConfig(hidden_size=192, num_attention_heads=3, intermediate_size=768,
                       image_size=SIZE, patch_size=16, num_labels=1000)
    saved = out / "hf_vit_tiny.saved"
    ViTForImageClassification(config).eval().save_pretrained(saved)
    folder = out / "hf_vit_tiny.optimum"
    done = subprocess.run([str(Path(sys.executable).parent / "optimum-cli"), "export", "onnx",
                           "--model", str(saved), "--task", "image-classification", str(folder)],
                          stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    (folder / "model.onnx").rename(out / "hf_vit_tiny.optimum.onnx")


def last_line(error):
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    text = lines[-1] if lines else type(error).__name__
    return f"{type(error).__name__}: {text}"[:300]


def export_all(out, names):
    import torch

    torch.manual_seed(0)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "exports.jsonl"
    # An export already recorded (made or failed) is not redone: delete its line to redo it.
    done = set()
    if log_path.exists():
        done = {(e["model"], e["exporter"]) for e in map(json.loads, open(log_path)) if e}
    with open(log_path, "a") as log:
        if "hf_vit_tiny" in names and ("hf_vit_tiny", "optimum") not in done:
            record = {"model": "hf_vit_tiny", "exporter": "optimum",
                      "file": str(out / "hf_vit_tiny.optimum.onnx")}
            start = time.time()
            try:
                export_transformers_vit(out)
                record["ok"] = True
            except Exception as error:  # as for the other exporters
                traceback.print_exc()
                record.update(ok=False, error=last_line(error))
            record["seconds"] = round(time.time() - start, 1)
            print(json.dumps(record), flush=True)
            log.write(json.dumps(record) + "\n")
            log.flush()
        for name in (n for n in names if n in MODELS):
            todo = [e for e in EXPORTERS if (name, e) not in done]
            if not todo:
                continue
            model = MODELS[name]().eval()
            for exporter in todo:
                export = EXPORTERS[exporter]
                path = out / f"{name}.{exporter}.onnx"
                start = time.time()
                record = {"model": name, "exporter": exporter, "file": str(path)}
                try:
                    # Not under no_grad: there torch.nn.MultiheadAttention takes its fused
                    # fast path (aten::_native_multi_head_attention), which
                    # torch.onnx.export cannot write.
                    export(model, path)
                    record["ok"] = True
                except Exception as error:  # an exporter failing is an outcome to record
                    traceback.print_exc()
                    path.unlink(missing_ok=True)
                    record.update(ok=False, error=last_line(error))
                record["seconds"] = round(time.time() - start, 1)
                print(json.dumps(record), flush=True)
                log.write(json.dumps(record) + "\n")
                log.flush()


def run_logged(command, log, seconds):
    """Runs `command` with its output in `log`; its exit status, or None when it ran past
    `seconds` and was interrupted."""
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            return process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            return None


def ortl_error(log):
    """The last line ortl wrote about an error (its messages start with the tool's name)."""
    lines = [line for line in Path(log).read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "refus" in line.lower()]
    return (errors or lines or ["no output"])[-1][:600]


def cam_images(count=3):
    images = []
    for folder in CAM_IMAGES:
        images += sorted(str(p) for p in Path(folder).iterdir() if p.suffix.lower() == ".png")[:2]
    return images[:count]


def train(bin_dir, tensors, run_dir, log, export, extra):
    """One `ortl-train --fine-tune 1,1` run: its exit status (None: stopped at the limit),
    the cut it printed, and the rows of its history.csv."""
    command = [f"{bin_dir}/ortl-train", str(tensors), "-o", str(run_dir), "--force",
               "--backbone", export["file"], "--fine-tune", "1,1", *extra]
    status = run_logged(command, log, TRAIN_SECONDS)
    cut = re.search(r"ortl-train: backbone .*?, cut (.*), normalisation ", log.read_text(errors="replace"))
    history = run_dir / "history.csv"
    epochs = list(csv.DictReader(open(history))) if history.exists() else []
    return " ".join(command), status, cut.group(1) if cut else None, epochs


def try_export(bin_dir, tensors, out, export):
    row = {"model": export["model"], "exporter": export["exporter"]}
    if not export["ok"]:
        row["export_error"] = export["error"]
        return row
    name = f"{export['model']}.{export['exporter']}"
    run_dir, log = out / "runs" / name, out / "runs" / f"{name}.train.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    row["train_command"], status, cut, epochs = train(bin_dir, tensors, run_dir, log, export, [])
    if cut:
        row["cut"] = cut
    elif status != 0:
        row["refused"] = ortl_error(log)
        return row
    if not epochs and status not in (0, None) and "Missing Input" in ortl_error(log):
        # The head-only feature cache failed to run the backbone: record it, and train
        # again without the cache to see whether the rest works.
        row["feature_cache_error"] = ortl_error(log)
        log = out / "runs" / f"{name}.no-cache.train.log"
        row["train_command"], status, cut, epochs = train(
            bin_dir, tensors, run_dir, log, export, ["--no-feature-cache"])
    for stage, epoch in (("head", 0), ("finetune", 1)):
        if epoch < len(epochs):
            record = epochs[epoch]
            row[stage] = {"ok": True, "seconds": round(float(record["seconds"]), 1),
                          "val_accuracy": round(float(record["val_accuracy"]), 3)}
        elif status is None:
            row[f"{stage}_skipped"] = f"stopped at the {TRAIN_SECONDS} s limit"
        elif status != 0:
            row[stage] = {"ok": False, "error": ortl_error(log)}
            break
    best = run_dir / "best.onnx"
    if not best.exists():
        return row
    cam_dir, infer_log = out / "runs" / f"{name}.cam", out / "runs" / f"{name}.infer.log"
    command = [f"{bin_dir}/ortl-infer", "--model", str(best), "--cam", str(cam_dir), "--force",
               "-o", str(out / "runs" / f"{name}.predictions.csv"), *cam_images()]
    status = run_logged(command, infer_log, INFER_SECONDS)
    maps = list(cam_dir.glob("*.png")) if cam_dir.exists() else []
    if status == 0 and maps:
        row["cam"] = {"ok": True, "maps": len(maps)}
    else:
        error = ortl_error(infer_log) if status is not None else f"ran past {INFER_SECONDS} s"
        row["cam"] = {"ok": False, "error": error}
    return row


def run_all(bin_dir, tensors, out, names):
    exports = [json.loads(line) for line in open(out / "exports.jsonl") if line.strip()]
    latest = {(e["model"], e["exporter"]): e for e in exports}
    with open(out / "results.jsonl", "a") as results:
        for (model, exporter), export in latest.items():
            if names and model not in names:
                continue
            row = try_export(bin_dir, Path(tensors), out, export)
            print(json.dumps(row), flush=True)
            results.write(json.dumps(row) + "\n")
            results.flush()


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(results):
    latest = {}
    for line in open(results):
        if line.strip():
            row = json.loads(line)
            latest[(row["model"], row["exporter"])] = row
    rows = list(latest.values())
    header = (
        "| model | exporter | imported (cut) | head only, 1 epoch | fine-tune, 1 epoch | infer --cam |\n"
        "|---|---|---|---|---|---|"
    )
    lines = [header]
    for row in rows:
        def run(stage):
            result = row.get(stage)
            if result is None:
                return row.get(f"{stage}_skipped", "not run")
            if not result["ok"]:
                return f"failed: `{cell(result['error'])}`"
            text = f"{result['seconds']} s, val acc {result['val_accuracy']}"
            if stage == "head" and row.get("feature_cache_error"):
                text = (f"feature cache failed: `{cell(row['feature_cache_error'])}`; "
                        f"with --no-feature-cache: {text}")
            return text

        if row.get("export_error"):
            imported = f"export failed: `{cell(row['export_error'])}`"
        elif row.get("refused"):
            imported = f"refused: `{cell(row['refused'])}`"
        else:
            imported = f"`{cell(row.get('cut', '?'))}`"
        cam = row.get("cam")
        cam_text = "not run" if cam is None else ("ok" if cam["ok"] else f"failed: `{cell(cam['error'])}`")
        lines.append(
            f"| {row['model']} | {row['exporter']} | {imported} | {run('head')} | {run('finetune')} | {cam_text} |"
        )
    return "\n".join(lines)


def main(argv):
    command = argv[1] if len(argv) > 1 else ""
    if command == "export":
        names = argv[3:] or [*MODELS, "hf_vit_tiny"]
        export_all(Path(argv[2]), names)
    elif command == "list":
        print("\n".join([*MODELS, "hf_vit_tiny"]))
    elif command == "run":
        run_all(argv[2], argv[3], Path(argv[4]), argv[5:])
    elif command == "table":
        print(table(argv[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
