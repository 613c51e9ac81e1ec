"""A Keras dataset cache of tiny files in the real formats, for the real keras.datasets loaders."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np


def write_idx(path, array: np.ndarray) -> None:
    """IDX as Fashion-MNIST ships it: magic, big-endian dimensions, then the bytes, gzipped."""
    header = struct.pack(">I", 0x0800 + array.ndim) + b"".join(struct.pack(">I", n) for n in array.shape)
    with gzip.open(path, "wb") as file:
        file.write(header + array.astype(np.uint8).tobytes())


def write_cache(directory) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    images = {split: rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8) for split, n in [("train", 6), ("test", 4)]}
    labels = {"train": np.arange(6) % 10, "test": np.arange(4) % 10}
    np.savez(directory / "mnist.npz", x_train=images["train"], y_train=labels["train"],
             x_test=images["test"], y_test=labels["test"])
    (directory / "fashion-mnist").mkdir()
    for split, prefix in [("train", "train"), ("test", "t10k")]:
        write_idx(directory / f"fashion-mnist/{prefix}-images-idx3-ubyte.gz", images[split])
        write_idx(directory / f"fashion-mnist/{prefix}-labels-idx1-ubyte.gz", labels[split])
    cifar = directory / "cifar-10-batches-py-target/cifar-10-batches-py"
    cifar.mkdir(parents=True)
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:  # the loader wants 10000 per batch
        batch = {b"data": np.full((10_000, 3072), 255, np.uint8), b"labels": [3] * 10_000}
        (cifar / name).write_bytes(pickle.dumps(batch))
    reviews = np.array([[5, 6, 7], [8, 30_000, 9, 10], [11], [12, 13]], dtype=object)
    np.savez(directory / "imdb.npz", x_train=reviews, y_train=np.array([0, 1, 1, 0]),
             x_test=reviews[:2], y_test=np.array([1, 0]))
    wires = np.array([[4, 5, 6]] * 10, dtype=object)
    np.savez(directory / "reuters.npz", x=wires, y=np.arange(10) % 46)
    return images
