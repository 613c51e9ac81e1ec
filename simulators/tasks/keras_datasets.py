"""The study's downloaded datasets, read by the real ``keras.datasets`` loaders from the cache.

Images are read pixel by pixel (MNIST and Fashion-MNIST: 784 steps of 1 feature; CIFAR-10:
1024 steps of 3 colour features), scaled to [0, 1]. IMDB and Reuters are word-index sequences
(vocabulary 20000, length 500) for an embedding. The official test split is the validation set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from simulators.tasks import keras_cache
from simulators.tasks.base import Objective, TaskData


class ImageOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    train_samples: int | None = Field(None, ge=1, description="Use the first n training images (all: None).")
    val_samples: int | None = Field(None, ge=1, description="Use the first n test images (all: None).")


class TextOptions(ImageOptions):
    vocabulary: int = Field(20_000, ge=4, description="Keep the most frequent words; rarer ones become OOV.")
    length: int = Field(500, ge=1, description="Sequences are cut or zero-padded (at the front) to this length.")


@dataclass(frozen=True)
class KerasDataset:
    """One ``keras.datasets`` loader and the cache files it reads."""

    loader: str
    files: tuple[str, ...]
    objective: Objective
    n_classes: int
    text: bool = False
    image_shape: tuple[int, int, int] | None = None  # rows, columns, channels: images read row by row

    @property
    def Options(self) -> type[BaseModel]:
        return TextOptions if self.text else ImageOptions

    def missing_files(self, data_dir: Path | None) -> list[str]:
        return keras_cache.missing_files(self.loader, self.files, data_dir)

    def load(self, options: BaseModel, data_dir: Path | None = None) -> TaskData:
        for problem in self.missing_files(data_dir):
            raise keras_cache.DatasetMissing(problem)
        with keras_cache.offline_loader(self.loader, data_dir) as module:
            if self.text:
                (x_train, y_train), (x_val, y_val) = module.load_data(num_words=options.vocabulary)
            else:
                (x_train, y_train), (x_val, y_val) = module.load_data()
        x_train, y_train = x_train[: options.train_samples], y_train[: options.train_samples]
        x_val, y_val = x_val[: options.val_samples], y_val[: options.val_samples]
        inputs = _word_sequences if self.text else _pixel_sequences
        return TaskData(
            inputs(x_train, options),
            np.asarray(y_train).reshape(-1).astype("int32"),
            inputs(x_val, options),
            np.asarray(y_val).reshape(-1).astype("int32"),
            objective=self.objective,
            n_classes=self.n_classes,
            vocabulary=options.vocabulary if self.text else None,
        )


def _pixel_sequences(images: np.ndarray, options: ImageOptions) -> np.ndarray:
    """(n, rows, cols[, channels]) uint8 -> (n, rows*cols, channels) in [0, 1], row by row."""
    channels = images.shape[3] if images.ndim == 4 else 1
    return (images.reshape(len(images), -1, channels) / 255.0).astype("float32")


def _word_sequences(sequences: np.ndarray, options: TextOptions) -> np.ndarray:
    from keras.utils import pad_sequences

    return pad_sequences(list(sequences), maxlen=options.length, dtype="int32")


_CIFAR = "cifar-10-batches-py-target/cifar-10-batches-py"
_FASHION = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz")

mnist = KerasDataset("mnist", ("mnist.npz",), "classification", 10, image_shape=(28, 28, 1))
fashion_mnist = KerasDataset("fashion_mnist", tuple(f"fashion-mnist/{name}" for name in _FASHION), "classification", 10,
                             image_shape=(28, 28, 1))
cifar10 = KerasDataset(
    "cifar10", tuple(f"{_CIFAR}/{batch}" for batch in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]),
    "classification", 10, image_shape=(32, 32, 3),
)
imdb = KerasDataset("imdb", ("imdb.npz",), "binary", 2, text=True)
reuters = KerasDataset("reuters", ("reuters.npz",), "classification", 46, text=True)
