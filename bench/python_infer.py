"""ONNX Runtime from Python as a user writes it, end to end from image files, the baseline
for ortl-infer on the same list (bench/bench.sh times both processes whole): Pillow decodes
each image, converts it to RGB and resizes it (bilinear) to the model's input size; batches
of 32 go to an InferenceSession with its default settings (ortl-infer's too: one thread per
physical core) on the model ortl-infer runs; one CSV row per image (path, predicted class,
probabilities) goes to stdout. ortl's models take uint8 pixels and normalise inside the
graph, so the pipeline hands the session uint8, as ortl-infer does.

  python_infer.py MODEL.onnx LIST threaded|sequential
      LIST: one image path a line. threaded: images decoded on a concurrent.futures thread
      pool (its default size) while the session runs (Pillow releases the GIL while it
      decodes and resizes); sequential: one after another, batch by batch.
"""

import csv
import sys
from concurrent.futures import ThreadPoolExecutor
from itertools import islice, repeat

import numpy as np
import onnxruntime
from common import BATCH
from PIL import Image


def load(path, size):
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize(size, Image.Resampling.BILINEAR))


def main(model, listing, threaded):
    with open(listing) as f:
        paths = [line.rstrip("\n") for line in f if line.strip()]
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    image_input = session.get_inputs()[0]
    _, height, width, _ = image_input.shape
    probabilities = session.get_outputs()[0].name
    if threaded:
        images = ThreadPoolExecutor().map(load, paths, repeat((width, height)))
    else:
        images = (load(path, (width, height)) for path in paths)
    rows = csv.writer(sys.stdout)
    for start in range(0, len(paths), BATCH):
        batch = np.stack(list(islice(images, BATCH)))
        (scores,) = session.run([probabilities], {image_input.name: batch})
        for path, p in zip(paths[start : start + BATCH], scores):
            rows.writerow([path, int(p.argmax()), *(f"{v:.6f}" for v in p)])


if __name__ == "__main__":
    model, listing, form = sys.argv[1:]
    if form not in ("threaded", "sequential"):
        sys.exit(f"unknown form {form} (threaded or sequential)")
    main(model, listing, form == "threaded")
