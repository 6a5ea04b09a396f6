"""Per-operator profile of exported training-step graphs under ONNX Runtime's profiler (issue 16).

    ortl-train TENSORS -o RUN --backbone resnet50 --head tutorial --bn-mode train \
        --export-step-graph A.onnx [--conv-layout plain]
    python bench/profile_step.py A.onnx [B.onnx ...] [STEPS]

Each graph gets step_graph_ab.py's synthetic batch; sessions alternate one step at a time
(a noisy machine slows each alike), after two warm-up steps that the profile leaves out.
Prints, per operator type, the kernel seconds per step of each graph (profiling inflates them
~20 %), largest first.
"""
import collections
import json
import sys

from step_graph_ab import feeds_for, session_for


def main():
    paths = [a for a in sys.argv[1:] if not a.isdigit()]
    steps = int(next((a for a in sys.argv[1:] if a.isdigit()), 4))
    runs = []
    for path in paths:
        session = session_for(path, profiling=True)
        feeds = feeds_for(session)
        runs.append((session, feeds))
    for _ in range(steps + 2):
        for session, feeds in runs:
            session.run(None, feeds)
    tables = []
    for session, _ in runs:
        events = json.load(open(session.end_profiling()))
        runs_seen = [e for e in events if e.get("name") == "model_run"]
        # The two warm-up runs end before this time: their kernels are not counted.
        counted_from = runs_seen[2]["ts"] if len(runs_seen) > 2 else 0
        seconds = collections.Counter()
        for e in events:
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= counted_from:
                seconds[e["args"]["op_name"]] += e["dur"] / 1e6 / steps
        tables.append(seconds)
    ops = sorted(set().union(*tables), key=lambda op: -max(t[op] for t in tables))
    print("| operator | " + " | ".join(paths) + " |")
    print("|---" * (len(paths) + 1) + "|")
    for op in ops:
        print(f"| {op} | " + " | ".join(f"{t[op]:.3f}" for t in tables) + " |")
    print("| all kernels | " + " | ".join(f"{sum(t.values()):.3f}" for t in tables) + " |")


if __name__ == "__main__":
    main()
