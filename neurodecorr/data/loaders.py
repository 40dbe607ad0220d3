"""Named datasets: where each is found, how it is read, and `load_dataset` to get one.

Datasets (the registry `DATASETS`):
    fashion-mnist  IDX files, default directory /usr/share/datasets/fashion-mnist (Debian package
                   dataset-fashion-mnist); 60000 train / 10000 test, 784 features, 10 classes
    mnist          the same IDX layout, no default directory (pass data_dir)
    cifar10        the "CIFAR-10 python version" directory; 50000 / 10000, 3072 features
    digits         scikit-learn's bundled 8x8 digits (1797 samples, 64 features); a fixed,
                   stratified 80/20 split (random_state=0), the same on every call

The IDX datasets need train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte
and t10k-labels-idx1-ubyte in the directory, each gzip-compressed (name + ".gz") or, when the .gz
file is absent, uncompressed.

Scaling: pixel values are divided by 255 (digits' 0..16 values by 16) to lie in [0, 1]; then, by
default (scaling "standardise"), every feature is standardised with TRAINING-set statistics,
x' = (x - mu) / max(sd, 0.1 * mean(sd)), for both splits (see neurodecorr.data.dataset); scaling
"global" subtracts one mean and divides by one standard deviation for all features (torchvision's
Normalize); "unit" keeps the [0, 1] values, as the paper's reference code does for MNIST.
Features are float32, labels int64.
"""

from __future__ import annotations

import os
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurodecorr.data.cifar import read_cifar10
from neurodecorr.data.dataset import Dataset, RawSplit, global_standardised, standardise, unit_scaled
from neurodecorr.data.idx import read_idx
from neurodecorr.errors import DataError
from neurodecorr.numerics import DTYPE

IDX_SPLITS = (
    ("train", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    ("test", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
)
IDX_FILE_LIST = ", ".join(f"{base}.gz" for _, *bases in IDX_SPLITS for base in bases)
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


@dataclass(frozen=True)
class DatasetSource:
    """How to find and read one named dataset.

    `read(directory, source)` returns the dataset scaled to [0, 1] (a RawSplit); `directory` is
    None for datasets with `needs_dir=False`. `hint` tells a user how to get missing files.
    """

    name: str
    read: Callable[[Path | None, DatasetSource], RawSplit]
    needs_dir: bool
    default_dir: str | None
    hint: str


def _idx_path(directory: Path, base: str, what: str, source: DatasetSource) -> Path:
    """Return directory/base.gz, or directory/base when only the uncompressed file exists."""
    compressed, plain = directory / f"{base}.gz", directory / base
    if compressed.is_file():
        return compressed
    if plain.is_file():
        return plain
    raise DataError(
        f"{source.name} file {compressed} is missing (and no uncompressed {plain.name} either); "
        f"expected the IDX file of the {what}; {source.hint}"
    )


def _read_idx_split(
    directory: Path, split: str, images_base: str, labels_base: str, source: DatasetSource
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int] | None]:
    """Read one images/labels pair. Shapes: x (n, rows*cols) float32 in [0, 1], y (n,) int64;
    and the image shape (1, rows, cols)."""
    images_path = _idx_path(directory, images_base, f"{split} images", source)
    labels_path = _idx_path(directory, labels_base, f"{split} labels", source)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim < 2:
        raise DataError(
            f"{source.name} file {images_path} holds {images.dtype} with shape {images.shape}, "
            "expected uint8 images (n, rows, cols); is it a labels file?"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(
            f"{source.name} file {labels_path} holds {labels.dtype} with shape {labels.shape}, "
            "expected uint8 labels (n,); is it an images file?"
        )
    if images.shape[0] == 0:
        raise DataError(f"{source.name} file {images_path} holds no images (its header says 0); "
                        "the file is corrupt, re-download it")
    if labels.shape[0] != images.shape[0]:
        raise DataError(
            f"{source.name}: {labels_path} has {labels.shape[0]} labels but {images_path} has "
            f"{images.shape[0]} images; the files do not belong together, re-download them"
        )
    if labels.size and labels.max() >= 10:
        raise DataError(
            f"{source.name} file {labels_path} holds label {labels.max()}, expected 0..9; "
            "the file is corrupt, re-download it"
        )
    x = images.reshape(images.shape[0], -1).astype(DTYPE)
    x /= DTYPE(255.0)
    return x, labels.astype(np.int64), (1, *images.shape[1:]) if images.ndim == 3 else None


def read_idx_dataset(directory: Path | None, source: DatasetSource) -> RawSplit:
    """Read an MNIST-layout dataset (four IDX files) from `directory`."""
    (x_train, y_train, shape), (x_test, y_test, _) = (
        _read_idx_split(directory, *split, source) for split in IDX_SPLITS
    )
    if x_train.shape[1] != x_test.shape[1]:
        raise DataError(
            f"{source.name} in {directory}: training images have {x_train.shape[1]} pixels but "
            f"test images have {x_test.shape[1]}; the files do not belong together"
        )
    return RawSplit(x_train, y_train, x_test, y_test, n_classes=10, source=str(directory),
                    image_shape=shape)


def read_cifar10_dataset(directory: Path | None, source: DatasetSource) -> RawSplit:
    """Read CIFAR-10 (python version) from `directory` (see neurodecorr.data.cifar)."""
    return read_cifar10(directory, source.hint)


def read_digits(directory: Path | None, source: DatasetSource) -> RawSplit:
    """scikit-learn's digits, values / 16, split 80/20 stratified with random_state=0.

    Shapes: x_train (1437, 64), x_test (360, 64). `directory` is ignored (the data is bundled).
    """
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as err:
        raise DataError(f"dataset 'digits' needs scikit-learn ({err}); {source.hint}") from None
    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=DTYPE) / DTYPE(16.0)
    y = np.asarray(bunch.target, dtype=np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=DIGITS_TEST_FRACTION, stratify=y, random_state=DIGITS_SPLIT_SEED
    )
    return RawSplit(x_train, y_train, x_test, y_test, n_classes=10,
                    source="sklearn.datasets.load_digits", image_shape=(1, 8, 8))


DATASETS = types.MappingProxyType(
    {
        source.name: source
        for source in (
            DatasetSource(
                name="fashion-mnist",
                read=read_idx_dataset,
                needs_dir=True,
                default_dir="/usr/share/datasets/fashion-mnist",
                hint="install it with `apt-get install dataset-fashion-mnist` (Debian) or pass "
                f"--data-dir pointing at a directory with {IDX_FILE_LIST}",
            ),
            DatasetSource(
                name="mnist",
                read=read_idx_dataset,
                needs_dir=True,
                default_dir=None,
                hint=f"pass --data-dir pointing at a directory with {IDX_FILE_LIST} "
                "(the original MNIST files, gzip-compressed or not)",
            ),
            DatasetSource(
                name="cifar10",
                read=read_cifar10_dataset,
                needs_dir=True,
                default_dir=None,
                hint="download cifar-10-python.tar.gz from "
                "https://www.cs.toronto.edu/~kriz/cifar.html, extract it and pass --data-dir "
                "pointing at the extracted directory",
            ),
            DatasetSource(
                name="digits",
                read=read_digits,
                needs_dir=False,
                default_dir=None,
                hint="install scikit-learn (`pip install scikit-learn`)",
            ),
        )
    }
)


def dataset_names() -> list[str]:
    """Names accepted by `load_dataset`, sorted."""
    return sorted(DATASETS)


SCALINGS = {"standardise": standardise, "global": global_standardised, "unit": unit_scaled}


def load_dataset(name: str, data_dir: str | os.PathLike | None = None,
                 scaling: str = "standardise") -> Dataset:
    """Load the dataset called `name`, standardised per feature with training statistics
    (scaling "standardise"), with one mean and std for all features ("global") or with its
    values in [0, 1] as read ("unit").

    `data_dir` overrides the dataset's default directory; it is required for datasets without
    one (mnist, cifar10) and ignored for digits.
    Shapes: see Dataset; e.g. fashion-mnist gives x_train (60000, 784), x_test (10000, 784).
    """
    if not isinstance(name, str) or name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; expected one of {', '.join(dataset_names())}")
    source = DATASETS[name]
    directory = None
    if source.needs_dir:
        chosen = data_dir if data_dir is not None else source.default_dir
        if chosen is None:
            raise DataError(
                f"dataset {name!r} has no default directory and no data_dir was given; "
                f"{source.hint}"
            )
        directory = Path(chosen).expanduser()
        if not directory.is_dir():
            raise DataError(
                f"data directory {directory} for dataset {name!r} does not exist or is not a "
                f"directory; {source.hint}"
            )
    if scaling not in SCALINGS:
        raise DataError(f"unknown scaling {scaling!r}; expected one of {', '.join(SCALINGS)}")
    return SCALINGS[scaling](source.read(directory, source), name)
