"""The `Dataset` record, training-statistics standardisation and seeded mini-batch indices.

Standardisation (applied by `load_dataset` after the raw values are scaled to [0, 1]):

    mu_j    = mean of feature j over the training set
    sd_j    = standard deviation of feature j over the training set
    scale_j = max(sd_j, 0.1 * mean_k(sd_k))      (1 where that is 0)
    x'_ij   = (x_ij - mu_j) / scale_j           for training AND test rows

Flooring the scale at 10 % of the mean feature std keeps near-constant features (MNIST border
pixels) from being blown up into huge values by a tiny std. The test set never contributes to
mu or scale.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from neurodecorr.errors import DataError, SpecError
from neurodecorr.numerics import DTYPE, as_float

STD_FLOOR_FRACTION = 0.1
_CHUNK_ROWS = 8192


class RawSplit(NamedTuple):
    """A dataset as read from disk, features already scaled to [0, 1], not yet standardised.

    Shapes: x_train (n_train, n_features) float32, y_train (n_train,) int64,
    x_test (n_test, n_features) float32, y_test (n_test,) int64.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    source: str
    image_shape: tuple[int, int, int] | None = None  # (channels, height, width) of image data


@dataclass(frozen=True)
class Dataset:
    """A classification dataset ready for training; its arrays are read-only.

    Shapes: x_train (n_train, n_features) float32, standardised with training statistics;
    y_train (n_train,) int64 in 0..n_classes-1; x_test (n_test, n_features) float32,
    standardised with the same training statistics; y_test (n_test,) int64. Image datasets say
    their `image_shape` (channels, height, width): each row is then C·H·W values in (c, y, x)
    order, and conv layers can read it (`nets.conv`).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    source: str
    scaling: str = "standardise"  # "standardise" (per feature, as below), "global" or "unit" ([0, 1])
    image_shape: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        for field in ("x_train", "x_test"):
            x = getattr(self, field)
            if x.dtype != DTYPE or x.ndim != 2:
                raise DataError(
                    f"dataset {self.name!r}: {field} is {x.dtype} with shape {x.shape}, "
                    f"expected a 2-D {np.dtype(DTYPE)} array (n_samples, n_features)"
                )
        for field, x_field in (("y_train", "x_train"), ("y_test", "x_test")):
            y, x = getattr(self, field), getattr(self, x_field)
            if y.dtype != np.int64 or y.shape != (x.shape[0],):
                raise DataError(
                    f"dataset {self.name!r}: {field} is {y.dtype} with shape {y.shape}, "
                    f"expected int64 with shape ({x.shape[0]},) to match {x_field}"
                )
            if y.size and (y.min() < 0 or y.max() >= self.n_classes):
                raise DataError(
                    f"dataset {self.name!r}: {field} holds labels {y.min()}..{y.max()}, "
                    f"expected 0..{self.n_classes - 1}"
                )
        if self.x_train.shape[1] != self.x_test.shape[1]:
            raise DataError(
                f"dataset {self.name!r}: {self.x_train.shape[1]} training features but "
                f"{self.x_test.shape[1]} test features; the two splits must match"
            )
        if self.image_shape is not None and int(np.prod(self.image_shape)) != self.x_train.shape[1]:
            raise DataError(f"dataset {self.name!r}: image shape {self.image_shape} holds "
                            f"{int(np.prod(self.image_shape))} values, but a row has {self.x_train.shape[1]}")
        for field in ("x_train", "y_train", "x_test", "y_test"):
            getattr(self, field).flags.writeable = False

    @property
    def n_features(self) -> int:
        """Number of input features (columns of x_train)."""
        return int(self.x_train.shape[1])

    @property
    def input_shape(self) -> int | tuple[int, int, int]:
        """What a network is built for: the image shape (C, H, W) if known, else n_features."""
        return self.image_shape if self.image_shape is not None else self.n_features


def unit_scaled(raw: RawSplit, name: str) -> Dataset:
    """The split as read, features in [0, 1] (the paper's reference code feeds MNIST this way)."""
    return Dataset(name=name, x_train=as_float(raw.x_train), y_train=np.asarray(raw.y_train, dtype=np.int64),
                   x_test=as_float(raw.x_test), y_test=np.asarray(raw.y_test, dtype=np.int64),
                   n_classes=int(raw.n_classes), source=raw.source, scaling="unit",
                   image_shape=raw.image_shape)


def global_standardised(raw: RawSplit, name: str) -> Dataset:
    """One mean and one standard deviation for every feature, from the training set (torchvision's
    `Normalize((mean,), (std,))`, the usual way image datasets are fed to torch models)."""
    x_train, x_test = as_float(raw.x_train), as_float(raw.x_test)
    if x_train.shape[0] == 0:
        raise DataError(f"dataset {name!r} has no training samples; cannot standardise it")
    mean = float(x_train.mean(dtype=np.float64))
    std = float(x_train.std(dtype=np.float64)) or 1.0
    for x in (x_train, x_test):
        x -= DTYPE(mean)
        x /= DTYPE(std)
    return Dataset(name=name, x_train=x_train, y_train=np.asarray(raw.y_train, dtype=np.int64),
                   x_test=x_test, y_test=np.asarray(raw.y_test, dtype=np.int64),
                   n_classes=int(raw.n_classes), source=raw.source, scaling="global",
                   image_shape=raw.image_shape)


def standardise(raw: RawSplit, name: str) -> Dataset:
    """Standardise both splits of `raw` with training statistics and wrap them as a Dataset.

    Shapes: as RawSplit -> as Dataset (same shapes, float32 features, int64 labels).
    raw's feature arrays are overwritten when they are already float32 (a loader's own arrays).
    Statistics are accumulated in float64, a block of rows at a time (no full float64 copy).
    """
    x_train, x_test = as_float(raw.x_train), as_float(raw.x_test)
    n_rows, n_features = x_train.shape
    if n_rows == 0:
        raise DataError(f"dataset {name!r} has no training samples; cannot standardise it")
    blocks = range(0, n_rows, _CHUNK_ROWS)
    total = np.zeros(n_features, dtype=np.float64)
    for start in blocks:
        total += x_train[start : start + _CHUNK_ROWS].sum(axis=0, dtype=np.float64)
    mean = (total / n_rows).astype(DTYPE)
    x_train -= mean
    sq = np.zeros(n_features, dtype=np.float64)
    for start in blocks:
        block = x_train[start : start + _CHUNK_ROWS]
        sq += np.einsum("ij,ij->j", block, block)
    std = np.sqrt(sq / n_rows)
    scale = np.maximum(std, STD_FLOOR_FRACTION * std.mean())
    scale[scale == 0.0] = 1.0
    scale = scale.astype(DTYPE)
    x_train /= scale
    x_test -= mean
    x_test /= scale
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=np.asarray(raw.y_train, dtype=np.int64),
        x_test=x_test,
        y_test=np.asarray(raw.y_test, dtype=np.int64),
        n_classes=int(raw.n_classes),
        source=raw.source,
        image_shape=raw.image_shape,
    )


def batches(n_samples: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Yield shuffled index arrays that cover range(n_samples) once (one epoch).

    Shapes: each yielded array is (batch_size,) int64, except the last, which holds the
    n_samples % batch_size remaining indices when that is non-zero (the partial batch is kept).
    The order depends only on `rng`'s state, so the same seed gives the same batches.
    """
    if not _is_count(n_samples) or n_samples < 0:
        raise SpecError(f"n_samples={n_samples!r}; expected a non-negative integer")
    if not _is_count(batch_size) or batch_size < 1:
        raise SpecError(f"batch_size={batch_size!r}; expected a positive integer, e.g. 64")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng is {type(rng).__name__}; expected a numpy.random.Generator, "
            "e.g. np.random.default_rng(seed)"
        )
    order = rng.permutation(int(n_samples))
    step = int(batch_size)
    return (order[start : start + step] for start in range(0, int(n_samples), step))


def _is_count(value: object) -> bool:
    """True for Python or numpy integers (bool excluded)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
