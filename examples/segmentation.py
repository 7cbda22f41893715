"""A small U-Net segmenting generated shapes: every pixel is background, square or disk.

Images are generated on the fly (no download): a noisy background with one
bright filled square and one dark filled disk at random places and sizes. The
target is a class per pixel (0 background, 1 square, 2 disk), learned with a pixel-wise
`SparseCategoricalCrossentropy` on logits shaped `(batch, height, width, 3)`.

The network is a two-level U-Net: `Conv2D` blocks going down with `MaxPooling2D`,
a `SeparableConv2D` bottleneck, and two ways back up that Keras users know: a
learned `Conv2DTranspose` (stride 2) and a fixed bilinear `UpSampling2D`, each
followed by a `Concatenate` with the skip connection of the same resolution.
The test set is scored by pixel accuracy and Keras' `MeanIoU` metric (mean
intersection-over-union over the three classes, from the argmax of the logits),
checked against a NumPy confusion matrix.

    python examples/segmentation.py
    python examples/segmentation.py --smoke
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

import funkeras as fk

CLASSES = 3  # background, square, disk


def make_data(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` images `(size, size, 1)` float32 and their masks `(size, size)` int32."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    images = rng.normal(0.0, 0.3, (n, size, size)).astype(np.float32)
    masks = np.zeros((n, size, size), np.int32)
    for i in range(n):
        side = rng.integers(size // 5, size // 3 + 1)
        top, left = rng.integers(0, size - side, size=2)
        square = (
            (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)
        )
        radius = rng.uniform(size / 10, size / 5)
        cy, cx = rng.uniform(radius, size - radius, size=2)
        disk = (rows - cy) ** 2 + (cols - cx) ** 2 <= radius**2
        masks[i][square] = 1
        masks[i][disk] = 2  # the disk is drawn over the square where they overlap
        images[i][square & ~disk] += 1.0  # squares are bright, disks dark
        images[i][disk] -= 1.0
    return images[..., None], masks


def conv_block(x: Any, filters: int) -> Any:
    """Two 3x3 "same" convolutions with ReLU, on a symbolic tensor `x`."""
    x = fk.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    return fk.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)


def build_model(size: int, width: int = 8, seed: int = 0) -> fk.Model:
    """The U-Net: logits `(size, size, 3)` for images `(size, size, 1)`."""
    layers = fk.layers
    inputs = fk.Input(shape=(size, size, 1), name="image")
    skip1 = conv_block(inputs, width)  # size
    skip2 = conv_block(layers.MaxPooling2D()(skip1), 2 * width)  # size / 2
    h = layers.MaxPooling2D()(skip2)  # size / 4
    h = layers.SeparableConv2D(4 * width, 3, padding="same", activation="relu")(h)
    # Up by a learned transposed convolution, then by fixed bilinear interpolation.
    h = layers.Conv2DTranspose(2 * width, 2, strides=2, padding="same")(h)
    h = conv_block(layers.Concatenate()([h, skip2]), 2 * width)
    h = layers.UpSampling2D(interpolation="bilinear")(h)
    h = conv_block(layers.Concatenate()([h, skip1]), width)
    logits = layers.Conv2D(CLASSES, 1, name="logits")(h)
    return fk.Model(inputs, logits, seed=seed)


def mean_iou(labels: np.ndarray, predicted: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean over classes of |label & predicted| / |label | predicted|, and per class."""
    confusion = np.bincount(
        labels.ravel() * CLASSES + predicted.ravel(), minlength=CLASSES**2
    ).reshape(CLASSES, CLASSES)
    inter = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - inter
    per_class = inter / np.maximum(union, 1)
    return float(per_class[union > 0].mean()), per_class


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train on generated shapes; return test `loss`, `accuracy`, `mean_iou`, ..."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, seconds")
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument(
        "--size", type=int, default=None, help="image side (multiple of 4)"
    )
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)
    n = args.samples or (256 if args.smoke else 2048)
    size = args.size or (16 if args.smoke else 32)
    epochs = args.epochs or (6 if args.smoke else 15)
    if size % 4:
        parser.error(f"--size must be a multiple of 4 (two 2x poolings), got {size}")

    x, y = make_data(n, size)
    split = int(0.8 * n)
    model = build_model(size)
    model.compile(
        optimizer=fk.optimizers.Adam(learning_rate=3e-3),
        loss=fk.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy", fk.metrics.MeanIoU(CLASSES, sparse_y_pred=False)],
    )
    if not args.smoke:
        model.summary()
    history = model.fit(
        x[:split],
        y[:split],
        batch_size=16,
        epochs=epochs,
        verbose=0 if args.smoke else 2,
    )
    logs = model.evaluate(x[split:], y[split:], return_dict=True, verbose=0)
    predicted = model.predict(x[split:], verbose=0).argmax(-1)
    miou, per_class = mean_iou(y[split:], predicted)
    # A model that says "background" everywhere: right on most pixels, IoU 1/3 at best.
    baseline_miou, _ = mean_iou(y[split:], np.zeros_like(y[split:]))

    print(
        f"test: loss {logs['loss']:.4f}, pixel accuracy {logs['accuracy']:.3f}, "
        f"MeanIoU {logs['mean_io_u']:.3f} (NumPy: {miou:.3f}; background "
        f"{per_class[0]:.3f}, square {per_class[1]:.3f}, disk {per_class[2]:.3f}); "
        "all-background mean IoU "
        f"{baseline_miou:.3f}"
    )
    return {
        "loss": float(logs["loss"]),
        "first_loss": float(history.history["loss"][0]),
        "accuracy": float(logs["accuracy"]),
        "mean_iou": miou,
        "mean_iou_metric": float(logs["mean_io_u"]),
        "baseline_mean_iou": baseline_miou,
    }


if __name__ == "__main__":
    main()
