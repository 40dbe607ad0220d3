"""Tests for neurodecorr.data: IDX files, the dataset loaders, scaling, errors and batches."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from neurodecorr.data import (
    DATASETS,
    batches,
    dataset_names,
    load_dataset,
    read_idx,
    write_idx,
)
from neurodecorr.errors import DataError, SpecError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def make_idx_dir(directory: Path, n_train=50, n_test=20, gz=True, seed=0) -> dict:
    """Write a tiny MNIST-layout directory; return the raw arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    arrays["train_images"][:, 0, 0] = 7  # a constant pixel: its scale must be the floor
    directory.mkdir(parents=True, exist_ok=True)
    for key, base in IDX_NAMES.items():
        write_idx(directory / (base + (".gz" if gz else "")), arrays[key])
    return arrays


# ---------------------------------------------------------------- IDX format


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    "dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
)
def test_idx_round_trip(tmp_path, dtype, suffix):
    rng = np.random.default_rng(1)
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = write_idx(tmp_path / f"a.idx{suffix}", array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype)
    assert back.shape == (3, 4, 5)
    np.testing.assert_array_equal(back, array)
    raw = path.read_bytes()
    assert raw[:2] == (b"\x1f\x8b" if suffix else b"\x00\x00")


def test_idx_header_is_big_endian(tmp_path):
    path = write_idx(tmp_path / "a.idx", np.arange(6, dtype=np.int16).reshape(2, 3))
    raw = path.read_bytes()
    assert raw[:4] == bytes([0, 0, 0x0B, 2])
    assert raw[4:12] == (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    assert raw[12:16] == (0).to_bytes(2, "big") + (1).to_bytes(2, "big")


def test_write_idx_refuses_unsupported_dtype(tmp_path):
    with pytest.raises(DataError, match="int64"):
        write_idx(tmp_path / "a.idx", np.zeros(3, dtype=np.int64))


# ---------------------------------------------------------------- IDX datasets


@pytest.mark.parametrize("gz", [True, False])
def test_idx_dataset_loads_and_standardises(tmp_path, gz):
    raw = make_idx_dir(tmp_path, gz=gz)
    data = load_dataset("mnist", tmp_path)
    assert data.x_train.shape == (50, 784) and data.x_test.shape == (20, 784)
    assert data.x_train.dtype == np.float32 and data.x_test.dtype == np.float32
    assert data.y_train.dtype == np.int64 and data.y_test.dtype == np.int64
    assert data.n_features == 784 and data.n_classes == 10
    assert data.source == str(tmp_path)
    np.testing.assert_array_equal(data.y_train, raw["train_labels"])
    np.testing.assert_array_equal(data.y_test, raw["test_labels"])
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0.0, atol=1e-5)
    assert abs(data.x_test.mean()) > 1e-3  # not re-centred with its own statistics

    # Expected values by hand, in float64, for one ordinary pixel and the constant one.
    train = raw["train_images"].reshape(50, -1) / 255.0
    test = raw["test_images"].reshape(20, -1) / 255.0
    std = train.std(axis=0)
    floor = 0.1 * std.mean()
    j = 300
    expected = (test[:, j] - train[:, j].mean()) / max(std[j], floor)
    np.testing.assert_allclose(data.x_test[:, j], expected, rtol=1e-4, atol=1e-5)
    expected_const = (test[:, 0] - 7 / 255.0) / floor
    np.testing.assert_allclose(data.x_test[:, 0], expected_const, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(data.x_train[:, 0], 0.0, atol=1e-6)


def test_fashion_mnist_uses_data_dir_and_gz_takes_precedence(tmp_path):
    make_idx_dir(tmp_path, seed=0, gz=True)
    other = make_idx_dir(tmp_path / "plain", seed=1, gz=False)
    for base in IDX_NAMES.values():  # uncompressed copies with other content next to the .gz
        (tmp_path / base).write_bytes((tmp_path / "plain" / base).read_bytes())
    data = load_dataset("fashion-mnist", tmp_path)
    assert not np.array_equal(data.y_train, other["train_labels"])


def test_dataset_arrays_are_read_only(tmp_path):
    make_idx_dir(tmp_path)
    data = load_dataset("mnist", tmp_path)
    with pytest.raises(ValueError):
        data.x_train[0, 0] = 1.0


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="Debian dataset-fashion-mnist not installed")
def test_real_fashion_mnist():
    data = load_dataset("fashion-mnist")
    assert data.x_train.shape == (60000, 784) and data.x_test.shape == (10000, 784)
    assert data.y_train.shape == (60000,) and data.y_test.shape == (10000,)
    assert sorted(np.unique(data.y_train)) == list(range(10))
    assert data.source == str(FASHION_DIR)
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0.0, atol=1e-4)


# ---------------------------------------------------------------- IDX dataset errors


def test_missing_file_names_file_and_apt_hint(tmp_path):
    make_idx_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist", tmp_path)
    message = str(err.value)
    assert str(tmp_path / "t10k-labels-idx1-ubyte.gz") in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_truncated_payload(tmp_path):
    make_idx_dir(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    content = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(content[:-100]))
    with pytest.raises(DataError, match="truncated") as err:
        load_dataset("mnist", tmp_path)
    assert str(path) in str(err.value)


def test_truncated_gzip_stream(tmp_path):
    make_idx_dir(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(DataError, match="gzip") as err:
        load_dataset("mnist", tmp_path)
    assert str(path) in str(err.value)


def test_bad_magic(tmp_path):
    make_idx_dir(tmp_path, gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(b"\x12\x34" + path.read_bytes()[2:])
    with pytest.raises(DataError, match="magic") as err:
        load_dataset("mnist", tmp_path)
    assert str(path) in str(err.value)


def test_label_image_count_mismatch(tmp_path):
    make_idx_dir(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(49, dtype=np.uint8))
    with pytest.raises(DataError, match="49 labels but .* 50 images"):
        load_dataset("mnist", tmp_path)


def test_label_out_of_range(tmp_path):
    make_idx_dir(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(20, 10, dtype=np.uint8))
    with pytest.raises(DataError, match="label 10"):
        load_dataset("mnist", tmp_path)


def test_unknown_name_lists_known():
    with pytest.raises(DataError) as err:
        load_dataset("imagenet")
    for name in ("fashion-mnist", "mnist", "cifar10", "digits"):
        assert name in str(err.value)
    assert set(dataset_names()) == set(DATASETS) == {"fashion-mnist", "mnist", "cifar10", "digits"}


def test_mnist_needs_data_dir():
    with pytest.raises(DataError, match="no default directory"):
        load_dataset("mnist")


def test_missing_data_dir(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=str(missing)):
        load_dataset("fashion-mnist", missing)


# ---------------------------------------------------------------- CIFAR-10


def make_cifar_dir(directory: Path, n_per_batch=4) -> list[list[int]]:
    rng = np.random.default_rng(2)
    directory.mkdir(parents=True, exist_ok=True)
    all_labels = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = [int(v) for v in rng.integers(0, 10, n_per_batch)]
        batch = {
            b"batch_label": name.encode(),
            b"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
            b"labels": labels,
            b"filenames": [f"img{i}.png".encode() for i in range(n_per_batch)],
        }
        with open(directory / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=2)
        all_labels.append(labels)
    return all_labels


@pytest.mark.parametrize("nested", [False, True])
def test_cifar10_loads(tmp_path, nested):
    labels = make_cifar_dir(tmp_path / "cifar-10-batches-py" if nested else tmp_path)
    data = load_dataset("cifar10", tmp_path)
    assert data.x_train.shape == (20, 3072) and data.x_test.shape == (4, 3072)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    np.testing.assert_array_equal(data.y_train, sum(labels[:5], []))
    np.testing.assert_array_equal(data.y_test, labels[5])
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0.0, atol=1e-5)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_cifar10_refuses_disallowed_global(tmp_path):
    make_cifar_dir(tmp_path)
    with open(tmp_path / "data_batch_3", "wb") as handle:
        pickle.dump({b"data": _Evil(), b"labels": []}, handle, protocol=2)
    with pytest.raises(DataError, match="system") as err:
        load_dataset("cifar10", tmp_path)
    assert "data_batch_3" in str(err.value)


def test_cifar10_missing_batch(tmp_path):
    make_cifar_dir(tmp_path)
    (tmp_path / "test_batch").unlink()
    with pytest.raises(DataError, match="test_batch"):
        load_dataset("cifar10", tmp_path)


def test_cifar10_garbage_file(tmp_path):
    make_cifar_dir(tmp_path)
    (tmp_path / "data_batch_1").write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match="data_batch_1"):
        load_dataset("cifar10", tmp_path)


# ---------------------------------------------------------------- digits


def test_digits():
    first, second = load_dataset("digits"), load_dataset("digits")
    assert first.x_train.shape[0] + first.x_test.shape[0] == 1797
    assert first.n_features == 64 and first.n_classes == 10
    assert first.x_test.shape[0] == 360
    assert first.source == "sklearn.datasets.load_digits"
    np.testing.assert_array_equal(first.x_train, second.x_train)
    np.testing.assert_array_equal(first.y_test, second.y_test)
    assert sorted(np.unique(first.y_test)) == list(range(10))
    np.testing.assert_allclose(first.x_train.mean(axis=0), 0.0, atol=1e-5)


# ---------------------------------------------------------------- batches


def test_batches_cover_each_index_once_and_keep_partial():
    got = list(batches(103, 10, np.random.default_rng(5)))
    assert [len(b) for b in got] == [10] * 10 + [3]
    together = np.concatenate(got)
    np.testing.assert_array_equal(np.sort(together), np.arange(103))
    assert not np.array_equal(together, np.arange(103))  # shuffled


def test_batches_same_seed_same_order():
    a = np.concatenate(list(batches(50, 7, np.random.default_rng(9))))
    b = np.concatenate(list(batches(50, 7, np.random.default_rng(9))))
    c = np.concatenate(list(batches(50, 7, np.random.default_rng(10))))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_batches_rejects_bad_arguments():
    with pytest.raises(SpecError, match="batch_size=0"):
        batches(10, 0, np.random.default_rng(0))
    with pytest.raises(SpecError, match="n_samples=-1"):
        batches(-1, 4, np.random.default_rng(0))
    with pytest.raises(TypeError, match="Generator"):
        batches(10, 4, 0)
