"""The tutorial's Keras code paths, timed on the same data ortl uses (bench/bench.sh).

Each workload prints one JSON line on stdout. Random weights (weights=None): no downloads,
and the cost of a step does not depend on the weights' values.

  keras_bench.py train  TENSORS N EPOCHS [frozen|bn-train]
                                                   model.fit with the validation rows as
                                                   validation_data (the tutorial's fit; ortl-train
                                                   validates every epoch too), seconds per epoch
                                                   (frozen: backbone not trained; bn-train: its
                                                   BatchNorm on batch statistics,
                                                   base(x, training=True))
  keras_bench.py infer  TENSORS N                  model.predict, images/s
  keras_bench.py data   DIR                        image_dataset_from_directory + augmentation
  keras_bench.py resize SRC DST SIZE               writes SIZE×SIZE PNG copies (data prep)
"""

import glob
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
from common import BATCH, tensors  # noqa: E402
import tensorflow as tf  # noqa: E402



def tutorial_model(size, frozen, bn_training=False):
    """The tutorial's model: preprocess_input, ResNet50 (training=False unless bn_training),
    its head."""
    base = tf.keras.applications.ResNet50(
        weights=None, include_top=False, input_shape=(size, size, 3)
    )
    base.trainable = not frozen
    inputs = tf.keras.Input((size, size, 3))
    x = tf.keras.applications.resnet50.preprocess_input(inputs)
    x = base(x, training=bn_training)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.Dropout(0.8)(x)
    x = tf.keras.layers.Dense(128, kernel_regularizer=tf.keras.regularizers.l2(0.3))(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.Activation("relu")(x)
    x = tf.keras.layers.Dense(2, kernel_regularizer=tf.keras.regularizers.l2(0.3))(x)
    x = tf.keras.layers.BatchNormalization()(x)
    outputs = tf.keras.layers.Activation("sigmoid")(x)
    model = tf.keras.Model(inputs, outputs)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(1e-5),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


class EpochTimer(tf.keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)

    def on_train_begin(self, logs=None):
        self.seconds = []


def train(folder, n, epochs, mode):
    images, labels = tensors(folder, n)
    val_images, val_labels = tensors(folder, len(labels), "val")
    model = tutorial_model(images.shape[1], mode == "frozen", mode == "bn-train")
    timer = EpochTimer()
    model.fit(
        images.astype("float32"),
        labels,
        batch_size=BATCH,
        epochs=epochs,
        verbose=0,
        callbacks=[timer],
        validation_data=(val_images.astype("float32"), val_labels) if len(val_labels) else None,
    )
    return {"images": len(images), "epoch_seconds": timer.seconds}


def infer(folder, n):
    images, _ = tensors(folder, n)
    model = tutorial_model(images.shape[1], True)
    x = images.astype("float32")
    model.predict(x[:BATCH], batch_size=BATCH, verbose=0)  # tracing
    start = time.perf_counter()
    model.predict(x, batch_size=BATCH, verbose=0)
    return {"images": len(x), "images_per_second": len(x) / (time.perf_counter() - start)}


def data(folder):
    """The tutorial's input pipeline: decode + resize to 100×100 + its augmentation."""
    augment = tf.keras.Sequential(
        [
            tf.keras.layers.RandomFlip("horizontal_and_vertical"),
            tf.keras.layers.RandomRotation(0.2),
            tf.keras.layers.RandomContrast(1.0),
            tf.keras.layers.RandomZoom(0.5, 0.2),
            tf.keras.layers.RandomTranslation(0.3, 0.5),
        ]
    )
    ds = tf.keras.utils.image_dataset_from_directory(
        folder, image_size=(100, 100), batch_size=BATCH, shuffle=True, seed=1, verbose=False
    )
    ds = ds.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    start = time.perf_counter()
    count = 0
    for x, _ in ds:
        count += int(x.shape[0])
    return {"images": count, "images_per_second": count / (time.perf_counter() - start)}


def resize(src, dst, size):
    paths = sorted(glob.glob(os.path.join(src, "*", "*.png")))
    for path in paths:
        cls = os.path.basename(os.path.dirname(path))
        os.makedirs(os.path.join(dst, cls), exist_ok=True)
        img = tf.io.decode_png(tf.io.read_file(path), channels=1)
        big = tf.cast(tf.image.resize(img, (size, size)), tf.uint8)
        tf.io.write_file(os.path.join(dst, cls, os.path.basename(path)), tf.io.encode_png(big))
    return {"images": len(paths)}


if __name__ == "__main__":
    tf.config.threading.set_intra_op_parallelism_threads(0)
    command, args = sys.argv[1], sys.argv[2:]
    if command == "train":
        result = train(args[0], int(args[1]), int(args[2]), args[3] if len(args) > 3 else "full")
    elif command == "infer":
        result = infer(args[0], int(args[1]))
    elif command == "data":
        result = data(args[0])
    elif command == "resize":
        result = resize(args[0], args[1], int(args[2]))
    else:
        sys.exit(f"unknown command {command}")
    print(json.dumps(result))
