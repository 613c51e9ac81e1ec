"""Elementary image corruptions and their compositions: task variations for compositional studies.

A composition joins elementary corruptions with ``+`` and applies them left to right:
``noise+blur`` adds noise, then blurs; ``none`` leaves the images as they are. Images are
corrupted as images, ``(samples, rows, cols, channels)`` in [0, 1], before they are read as
sequences, and stay in [0, 1]. Resampling and filtering are scipy.ndimage's (bilinear, zero
outside the image).

Each elementary corruption draws its magnitude per image (MNIST-C style) from a generator
seeded by the corruption seed, its own name, how often it already occurred in the composition,
and the split. So the same seed gives the same images; a corruption draws the same magnitudes
wherever it stands in a composition (``rotate+translate`` and ``translate+rotate`` differ only
in their order); and training and validation images get draws of their own.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from simulators.tasks.base import TaskData

NONE = "none"
SEPARATOR = "+"
TRAIN, VALIDATION = 0, 1  # the split's part of a draw's seed


@dataclass(frozen=True)
class Elementary:
    """One corruption: ``apply(images, rng)`` returns new images, drawing its magnitudes from ``rng``."""

    description: str
    apply: Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _signed(rng: np.random.Generator, count: int, low: float, high: float) -> np.ndarray:
    """Magnitudes uniform in [low, high], each with a random sign."""
    return rng.uniform(low, high, count) * rng.choice([-1.0, 1.0], count)


def _affine(images: np.ndarray, forward: np.ndarray, shift: np.ndarray | None = None) -> np.ndarray:
    """Resample image k under the map o = forward[k] (i - c) + c + shift[k] about the centre c."""
    from scipy import ndimage

    count, rows, cols, _ = images.shape
    centre = np.array([(rows - 1) / 2, (cols - 1) / 2])
    shift = np.zeros((count, 2)) if shift is None else shift
    out = np.empty_like(images)
    for k in range(count):
        inverse = np.linalg.inv(forward[k])
        matrix = np.eye(3)
        matrix[:2, :2] = inverse  # the channel axis maps to itself
        offset = [*(centre - inverse @ (centre + shift[k])), 0.0]
        out[k] = ndimage.affine_transform(images[k], matrix, offset=offset, order=1, mode="constant", cval=0.0)
    return out


def _rotation(angles: np.ndarray) -> np.ndarray:
    cos, sin = np.cos(angles), np.sin(angles)
    return np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)


def rotate(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return _affine(images, _rotation(np.deg2rad(_signed(rng, len(images), 15.0, 45.0))))


def shear(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    forward = np.tile(np.eye(2), (len(images), 1, 1))
    forward[:, 1, 0] = _signed(rng, len(images), 0.2, 0.5)  # column += factor * (row - centre)
    return _affine(images, forward)


def scale(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    factors = rng.uniform(0.6, 0.8, len(images))
    return _affine(images, factors[:, None, None] * np.eye(2))


def translate(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = min(images.shape[1:3])
    lengths = rng.uniform(0.1, 0.2, len(images)) * size
    directions = rng.uniform(0.0, 2 * np.pi, len(images))
    shift = lengths[:, None] * np.stack([np.sin(directions), np.cos(directions)], -1)
    return _affine(images, np.tile(np.eye(2), (len(images), 1, 1)), shift)


def flip(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return images[:, :, ::-1].copy()


def noise(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    deviations = rng.uniform(0.1, 0.2, len(images)).astype(images.dtype)
    added = rng.standard_normal(images.shape, dtype=np.float32).astype(images.dtype) * deviations[:, None, None, None]
    return np.clip(images + added, 0.0, 1.0)


def blur(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage

    sigmas = rng.uniform(0.05, 0.08, len(images)) * min(images.shape[1:3])
    return np.stack([ndimage.gaussian_filter(image, (sigma, sigma, 0), mode="nearest")
                     for image, sigma in zip(images, sigmas)])


def contrast(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    factors = rng.uniform(0.3, 0.5, len(images)).astype(images.dtype)[:, None, None, None]
    means = images.mean(axis=(1, 2, 3), keepdims=True)
    return means + factors * (images - means)


def invert(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return 1.0 - images


ELEMENTARY: dict[str, Elementary] = {
    "rotate": Elementary("rotate about the centre by ±15-45 degrees", rotate),
    "shear": Elementary("shear horizontally by ±0.2-0.5 columns per row from the centre", shear),
    "scale": Elementary("shrink about the centre to 0.6-0.8 of the size", scale),
    "translate": Elementary("shift by 0.1-0.2 of the image size in a random direction", translate),
    "flip": Elementary("mirror left to right", flip),
    "noise": Elementary("add Gaussian noise of standard deviation 0.1-0.2, clipped to [0, 1]", noise),
    "blur": Elementary("Gaussian blur of sigma 0.05-0.08 of the image size", blur),
    "contrast": Elementary("scale deviations from the image's mean by 0.3-0.5", contrast),
    "invert": Elementary("1 - pixel value", invert),
}


def parse(composition: str) -> tuple[str, ...]:
    """``'noise+blur'`` -> ``('noise', 'blur')``; ``'none'`` -> ``()``. Raises ValueError naming the fix."""
    if composition == NONE:
        return ()
    names = tuple(composition.split(SEPARATOR)) if isinstance(composition, str) else ()
    unknown = [name for name in names if name not in ELEMENTARY]
    if not names or unknown:
        raise ValueError(
            f"{composition!r} is not a corruption: {', '.join(map(repr, unknown or [composition]))} is not one of "
            f"{', '.join(ELEMENTARY)}; join them with '+' (noise+blur: noise, then blur), or give none"
        )
    return names


def corrupt_images(images: np.ndarray, composition: str, seed: int, split: int) -> np.ndarray:
    """``images`` (samples, rows, cols, channels) after each corruption of ``composition`` in turn."""
    occurrences: dict[str, int] = {}
    for name in parse(composition):
        occurrence = occurrences[name] = occurrences.get(name, -1) + 1
        rng = np.random.default_rng([seed, zlib.crc32(name.encode()), occurrence, split])
        images = ELEMENTARY[name].apply(images, rng).astype(images.dtype, copy=False)
    return images


def _corrupt_sequences(x: np.ndarray, image_shape: tuple[int, int, int], composition: str, seed: int,
                       split: int) -> np.ndarray:
    """Sequences read row by row from images of ``image_shape``, corrupted as images."""
    if composition == NONE:
        return x
    images = np.asarray(x).reshape(len(x), *image_shape)
    return corrupt_images(images, composition, seed, split).reshape(x.shape)


def corrupt_task(data: TaskData, image_shape: tuple[int, int, int] | None, corruption: str, val_corruption: str,
                 seed: int) -> TaskData:
    """The task's training images under ``corruption`` and its validation images under ``val_corruption``."""
    if corruption == NONE and val_corruption == NONE:
        return data
    if image_shape is None:
        raise ValueError(f"corruption {corruption!r} / val_corruption {val_corruption!r}: the dataset is not an image "
                         "task (it declares no image_shape); use corruption: none for it")
    rows, cols, channels = image_shape
    if data.vocabulary or data.x_train.shape[1:] != (rows * cols, channels):
        raise ValueError(f"image_shape {image_shape} does not match sequences of shape {data.x_train.shape[1:]}")
    return replace(
        data,
        x_train=_corrupt_sequences(data.x_train, image_shape, corruption, seed, TRAIN),
        x_val=_corrupt_sequences(data.x_val, image_shape, val_corruption, seed, VALIDATION),
        corruption=corruption,
        val_corruption=val_corruption,
    )


def check_image_datasets(configurations: Iterable[dict[str, Any]]) -> None:
    """Raise ValueError at the first configuration that corrupts a dataset that has no images."""
    from simulators.tasks import task_module

    for configuration in configurations:
        corrupted = {configuration["corruption"], configuration["val_corruption"]} != {NONE}
        if corrupted and getattr(task_module(configuration["dataset"]), "image_shape", None) is None:
            raise ValueError(
                f"space: dataset {configuration['dataset']} has no images to corrupt (corruption "
                f"{configuration['corruption']}, val_corruption {configuration['val_corruption']}); corrupt only "
                f"image datasets, e.g. exclude: [{{dataset: {configuration['dataset']}, corruption: [...]}}]"
            )
