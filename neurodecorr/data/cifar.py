"""Read the "CIFAR-10 python version" directory (data_batch_1..5, test_batch) safely.

Each batch file is a pickle of a dict with b'data', a (N, 3072) uint8 array (1024 red, 1024
green, 1024 blue values of a 32x32 image per row), and b'labels', a list of N ints in 0..9.
A pickle can run arbitrary code, so the files are read with `SafeUnpickler`, which only resolves
the few globals that dicts, lists, bytes and numpy arrays need and refuses every other one with a
DataError. Features are the 3072 values divided by 255.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from neurodecorr.data.dataset import RawSplit
from neurodecorr.errors import DataError
from neurodecorr.numerics import DTYPE

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
SUBDIR = "cifar-10-batches-py"
N_CLASSES = 10
N_FEATURES = 3072

# (module, name) pairs a CIFAR-10 pickle may reference; everything else is refused.
_ALLOWED_GLOBALS = frozenset(
    [(mod, "_reconstruct") for mod in ("numpy.core.multiarray", "numpy._core.multiarray")]
    + [(mod, "scalar") for mod in ("numpy.core.multiarray", "numpy._core.multiarray")]
    + [("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")]
    + [
        (mod, name)
        for mod in ("builtins", "__builtin__")
        for name in ("bytes", "bytearray", "list", "dict", "tuple")
    ]
)


class SafeUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only the globals in `_ALLOWED_GLOBALS`."""

    def __init__(self, file, path: Path) -> None:
        super().__init__(file, encoding="bytes")
        self._path = path

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise DataError(
                f"CIFAR-10 file {self._path} refers to {module}.{name}, which a CIFAR-10 batch "
                "never needs; refusing to unpickle it (the file is corrupt or malicious), "
                "re-download the dataset"
            )
        return super().find_class(module, name)


def _load_pickle(path: Path) -> object:
    """Unpickle `path` with SafeUnpickler; every failure is a DataError naming the file."""
    try:
        with path.open("rb") as handle:
            return SafeUnpickler(handle, path).load()
    except DataError:
        raise
    except OSError as err:
        raise DataError(f"cannot read CIFAR-10 file {path}: {err.strerror or err}") from None
    except Exception as err:  # unpickling malformed bytes can raise almost any exception type
        raise DataError(
            f"CIFAR-10 file {path} is not a readable pickle ({type(err).__name__}: {err}); "
            "re-download the dataset"
        ) from None


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 batch file.

    Shapes: returns x (N, 3072) float32 in [0, 1] and y (N,) int64 in 0..9.
    """
    batch = _load_pickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = list(batch)[:8] if isinstance(batch, dict) else type(batch).__name__
        raise DataError(
            f"CIFAR-10 file {path} holds {keys}, expected a dict with keys b'data' and "
            "b'labels'; is this the python version of CIFAR-10?"
        )
    data = batch[b"data"]
    is_array = isinstance(data, np.ndarray)
    if not is_array or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != N_FEATURES:
        found = f"{data.dtype} {data.shape}" if is_array else type(data).__name__
        raise DataError(
            f"CIFAR-10 file {path}: b'data' is {found}, expected a uint8 array (N, {N_FEATURES})"
        )
    try:
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        labels = None
    if labels is None or labels.shape != (data.shape[0],):
        raise DataError(
            f"CIFAR-10 file {path}: b'labels' does not hold {data.shape[0]} integer labels "
            "(one per row of b'data')"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= N_CLASSES):
        raise DataError(
            f"CIFAR-10 file {path}: labels range {labels.min()}..{labels.max()}, "
            f"expected 0..{N_CLASSES - 1}"
        )
    x = data.astype(DTYPE)
    x /= DTYPE(255.0)
    return x, labels


def read_cifar10(directory: Path, hint: str) -> RawSplit:
    """Read CIFAR-10 from `directory` or from `directory`/cifar-10-batches-py.

    Shapes: x_train (50000, 3072), x_test (10000, 3072) for the full dataset.
    """
    inner = directory / SUBDIR
    root = inner if inner.is_dir() else directory
    for name in (*TRAIN_FILES, TEST_FILE):
        if not (root / name).is_file():
            raise DataError(
                f"CIFAR-10 file {root / name} is missing; expected the python-version layout "
                f"({', '.join(TRAIN_FILES)}, {TEST_FILE}) in {directory} or {inner}; {hint}"
            )
    parts = [read_batch(root / name) for name in TRAIN_FILES]
    x_test, y_test = read_batch(root / TEST_FILE)
    return RawSplit(
        x_train=np.concatenate([x for x, _ in parts]),
        y_train=np.concatenate([y for _, y in parts]),
        x_test=x_test,
        y_test=y_test,
        n_classes=N_CLASSES,
        source=str(root),
        image_shape=(3, 32, 32),  # rows are (c, y, x): 1,024 red, then green, then blue values
    )
