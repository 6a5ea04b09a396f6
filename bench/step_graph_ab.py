"""Interleaved A/B timing of exported training-step graphs (issue 4).

    ortl-train TENSORS -o RUN --backbone resnet50 --head tutorial --bn-mode frozen \
        --optimizer adam --export-step-graph A.onnx      # once per code version
    python bench/step_graph_ab.py A.onnx B.onnx [ROUNDS]

Any onnxruntime wheel (numpy) runs it. Every graph gets the same synthetic batch of 32 and
state; all sessions are loaded first, warmed up twice, then run in turn each round, so a
noisy machine slows every version alike. Prints min and median seconds per step.
"""
import sys
import time

import numpy as np
import onnxruntime as ort

BATCH = 32


def feeds_for(session):
    rng = np.random.default_rng(0)
    feeds = {}
    for i in session.get_inputs():
        shape = [d if isinstance(d, int) else BATCH for d in i.shape]
        if i.type == "tensor(uint8)":
            feeds[i.name] = rng.integers(0, 255, shape, dtype=np.uint8)
        elif i.name == "target":
            feeds[i.name] = np.eye(shape[1], dtype=np.float32)[rng.integers(0, shape[1], BATCH)]
        elif i.name == "sample_weight":
            feeds[i.name] = np.ones(shape, np.float32)
        elif i.name == "lr":
            feeds[i.name] = np.array(1e-3, np.float32)
        elif i.name.startswith("bias_correction"):
            feeds[i.name] = np.array(0.5, np.float32)
        elif i.name.endswith(".v") or "running_var" in i.name:
            feeds[i.name] = np.ones(shape, np.float32)
        else:
            feeds[i.name] = (rng.standard_normal(shape) * 0.05).astype(np.float32)
    return feeds


def session_for(path, profiling=False):
    """A CPU session on two threads, as ortl-train runs its step on this machine."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.log_severity_level = 3
    options.enable_profiling = profiling
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def main():
    args = [a for a in sys.argv[1:] if not a.isdigit()]
    rounds = int(next((a for a in sys.argv[1:] if a.isdigit()), 8))
    runs = []
    for path in args:
        session = session_for(path)
        feeds = feeds_for(session)
        for _ in range(2):
            session.run(None, feeds)
        runs.append((session, feeds, []))
    for _ in range(rounds):
        for session, feeds, times in runs:
            start = time.perf_counter()
            session.run(None, feeds)
            times.append(time.perf_counter() - start)
    for path, (_, _, times) in zip(args, runs):
        times.sort()
        print(f"{path}: min {times[0]:.3f} median {times[len(times) // 2]:.3f} s/step")


if __name__ == "__main__":
    main()
