"""Summarises one `scripts/gpu-check.sh run` into gpu-check.json and gpu-check.md.

    python3 scripts/gpu_summary.py WORK OUT

WORK holds what the run left: env.json; agree-cpu.csv and agree-gpu.csv (ortl-train
--step-log of the same first steps on each device); ortl-fp32-R.csv and ortl-tf32-R.csv (step
logs of the timed rounds, strict FP32 and ONNX Runtime's default TF32); pytorch-P-R.json (bench/gpu_torch.py); *.mem (peak device memory in MiB, one
number, from nvidia-smi); torch-skipped.txt (why PyTorch did not run). Standard library
only: the GPU machine has no network.
"""

import csv
import glob
import json
import os
import re
import statistics
import sys

WARMUP = 3
# Relative loss difference under which the devices agree: TF32 convolutions and cuDNN's
# algorithm choice change the last digits, not the trajectory.
AGREEMENT = 5e-3
TARGET = 0.8


def step_log(path):
    with open(path) as f:
        return [(float(r["loss"]), float(r["seconds"])) for r in csv.DictReader(f)]


def median_step(seconds):
    timed = seconds[WARMUP:] or seconds
    return statistics.median(timed)


def memory(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        return float(text) if text else None
    except FileNotFoundError:
        return None


def rounds(work, pattern):
    found = sorted(glob.glob(os.path.join(work, pattern)))
    return sorted(found, key=lambda p: int(re.findall(r"-(\d+)\.", p)[-1]))


def placement(log):
    """Where ONNX Runtime placed the GPU step's nodes, from its verbose log (ORT_LOG=verbose):
    the "Node placements" lines of session_state.cc (one per provider and per node placed
    off the GPU), "kernel not found" lines from the providers' GetCapability, and every
    warning or error."""
    stamped = re.compile(r"^\d{4}-\d\d-\d\d \S+ \[([VIWEF]):onnxruntime")
    lines, warnings, missing, nodes, inside = [], [], [], {}, False
    with open(log, errors="replace") as f:
        for raw in f:
            line = raw.rstrip("\n")
            match = stamped.match(line)
            if match:
                inside = "VerifyEachNodeIsAssignedToAnEp" in line and match.group(1) == "V"
                if match.group(1) in "WEF":
                    warnings.append(line.strip())
                if "kernel not found in registries" in line:
                    missing.append(line.strip())
            elif not line.startswith("  ") or not lines:
                inside = False
            if inside:
                lines.append(line.strip())
                placed = re.search(r"placed on \[(\w+)\]\. Number of nodes: (\d+)", line)
                if placed:
                    nodes[placed.group(1)] = nodes.get(placed.group(1), 0) + int(placed.group(2))
    return {
        "nodes": nodes,
        "cpu_nodes": nodes.get("CPUExecutionProvider", 0),
        "lines": lines[:500],
        "warnings": warnings[:100],
        "missing_kernels": missing[:100],
    }


def summarise(work):
    with open(os.path.join(work, "env.json")) as f:
        env = json.load(f)
    batch = env["batch"]
    summary = {"env": env, "systems": {}, "agreement": None, "notes": []}

    cpu, gpu = (os.path.join(work, f"agree-{d}.csv") for d in ("cpu", "gpu"))
    if os.path.exists(cpu) and os.path.exists(gpu):
        a, b = step_log(cpu), step_log(gpu)
        diffs = [abs(x - y) / max(abs(x), 1e-12) for (x, _), (y, _) in zip(a, b)]
        summary["agreement"] = {
            "steps": len(diffs),
            "cpu_losses": [x for x, _ in a],
            "gpu_losses": [y for y, _ in b],
            "max_relative_difference": max(diffs) if diffs else None,
            "tolerance": AGREEMENT,
            "agree": bool(diffs) and len(a) == len(b) and max(diffs) <= AGREEMENT,
        }

    log = os.path.join(work, "agree-gpu.log")
    if os.path.exists(log):
        summary["placement"] = placement(log)

    for precision in ("fp32", "tf32"):
        runs = []
        for path in rounds(work, f"ortl-{precision}-*.csv"):
            log = step_log(path)
            runs.append(
                {
                    "round": len(runs) + 1,
                    "images_per_second": batch / median_step([s for _, s in log]),
                    "peak_memory_mib": memory(path[:-4] + ".mem"),
                    "losses": [loss for loss, _ in log],
                }
            )
        if runs:
            summary["systems"][f"ortl-{precision}"] = runs
    for precision in ("fp32", "tf32"):
        runs = []
        for path in rounds(work, f"pytorch-{precision}-*.json"):
            with open(path) as f:
                result = json.load(f)
            result["images_per_second"] = batch / median_step(result["step_seconds"])
            result["peak_memory_mib"] = memory(path[:-5] + ".mem")
            runs.append(result)
        if runs:
            summary["systems"][f"pytorch-{precision}"] = runs
    failures = os.path.join(work, "failures.txt")
    if os.path.exists(failures):
        with open(failures) as f:
            summary["failures"] = f.read().rstrip()
    skipped = os.path.join(work, "torch-skipped.txt")
    if os.path.exists(skipped):
        with open(skipped) as f:
            summary["notes"].append("PyTorch not run: " + f.read().strip())

    def best(name):
        runs = summary["systems"].get(name)
        return statistics.median(r["images_per_second"] for r in runs) if runs else None

    summary["images_per_second"] = {
        name: best(name) for name in summary["systems"]
    }
    ratios = {}
    for precision in ("fp32", "tf32"):
        ours, theirs = f"ortl-{precision}", f"pytorch-{precision}"
        if best(ours) and best(theirs):
            ratios[f"{ours}/{theirs}"] = best(ours) / best(theirs)
    summary["ratios"] = ratios
    if "ortl-fp32/pytorch-fp32" in ratios:
        summary["target"] = {
            "ortl-fp32/pytorch-fp32": TARGET,
            "met": ratios["ortl-fp32/pytorch-fp32"] >= TARGET,
        }
    return summary


def fmt(value, digits=1):
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(summary):
    env = summary["env"]
    lines = [
        "# ortl GPU check",
        "",
        f"- device: {env.get('device', '?')}{' (dry run on the CPU)' if env.get('dry_run') else ''}",
        f"- driver: {env.get('driver') or '–'}; ONNX Runtime {env.get('onnxruntime', '?')}; "
        f"{env.get('backbone', '?')} at {env.get('size', '?')}, batch {env.get('batch', '?')}, "
        f"{env.get('steps', '?')} steps per round (median step time after {WARMUP} warm-up steps)",
        f"- date: {env.get('date', '?')}; ortl commit {env.get('commit', '?')}",
        "",
        "| system | round | images/s | peak device memory (MiB) |",
        "|---|---|---|---|",
    ]
    for name, runs in summary["systems"].items():
        for i, run in enumerate(runs, 1):
            lines.append(
                f"| {name} | {i} | {fmt(run['images_per_second'])} | {fmt(run['peak_memory_mib'], 0)} |"
            )
    lines.append("")
    for name, ratio in summary["ratios"].items():
        lines.append(f"- {name} (medians over rounds): **{ratio:.2f}×**")
    if "target" in summary:
        t = summary["target"]
        lines.append(
            f"- target ortl ≥ {t['ortl-fp32/pytorch-fp32']}× PyTorch eager FP32 (both strict FP32): "
            f"{'met' if t['met'] else 'missed'}"
        )
    agreement = summary["agreement"]
    if agreement:
        lines += [
            "",
            f"First {agreement['steps']} steps, CPU vs GPU (same seed and batches): max relative "
            f"loss difference {agreement['max_relative_difference']:.2e} "
            f"(tolerance {agreement['tolerance']:.0e}): "
            f"{'agree' if agreement['agree'] else 'DISAGREE'}",
            "",
            "| step | CPU loss | GPU loss |",
            "|---|---|---|",
        ]
        for i, (c, g) in enumerate(zip(agreement["cpu_losses"], agreement["gpu_losses"]), 1):
            lines.append(f"| {i} | {c:.6f} | {g:.6f} |")
    ortl = summary["systems"].get("ortl-fp32") or summary["systems"].get("ortl-tf32")
    if ortl:
        losses = ortl[0]["losses"]
        lines += ["", "ortl loss curve (round 1): " + ", ".join(f"{x:.4f}" for x in losses)]
    placed = summary.get("placement")
    if placed is not None:
        where = ", ".join(f"{n} on {ep}" for ep, n in placed["nodes"].items()) or "not logged"
        lines += ["", f"Node placement of the GPU step (ONNX Runtime's log): {where}."]
        if placed["cpu_nodes"]:
            lines += ["", "```"] + placed["lines"][:40] + ["```"]
        lines += [f"- {w}" for w in placed["missing_kernels"][:20] + placed["warnings"][:10]]
    if summary.get("failures"):
        lines += ["", "## Failed phases", "", "```", summary["failures"], "```"]
    for note in summary["notes"]:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def write(path, text):
    tmp = path + ".partial"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: gpu_summary.py WORK OUT")
    work, out = sys.argv[1], sys.argv[2]
    summary = summarise(work)
    os.makedirs(out, exist_ok=True)
    write(os.path.join(out, "gpu-check.json"), json.dumps(summary, indent=2) + "\n")
    text = markdown(summary)
    write(os.path.join(out, "gpu-check.md"), text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
