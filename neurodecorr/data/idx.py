"""Read and write IDX files, the format of MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then the array in
C order, big-endian:

    magic = 0x00 0x00 <dtype code> <ndim>
    dims  = ndim x uint32 (big-endian)
    data  = prod(dims) x itemsize bytes

Dtype codes: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.
A path ending in ``.gz`` is gzip-compressed. Every problem with a file is a `DataError` that
names the file and what was wrong.
"""

from __future__ import annotations

import gzip
import math
import os
import types
import zlib
from pathlib import Path

import numpy as np

from neurodecorr.errors import DataError

# IDX dtype code -> big-endian numpy dtype (a read-only mapping, not mutable module state).
IDX_DTYPES = types.MappingProxyType(
    {
        0x08: np.dtype(">u1"),
        0x09: np.dtype(">i1"),
        0x0B: np.dtype(">i2"),
        0x0C: np.dtype(">i4"),
        0x0D: np.dtype(">f4"),
        0x0E: np.dtype(">f8"),
    }
)

_HEADER_BYTES = 4
_DIM_BYTES = 4


MAX_PAYLOAD_BYTES = 2**31  # 2 GiB: forty times Fashion-MNIST's training images


def _open(path: Path):
    try:
        return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"IDX file {path} does not exist") from None
    except OSError as err:
        raise DataError(f"cannot read IDX file {path}: {err.strerror or err}") from None


def _read_exactly(stream, n: int, path: Path) -> bytes:
    """Up to n bytes (fewer at the end of the file); gzip damage is a DataError."""
    try:
        return stream.read(n)
    except (OSError, EOFError, zlib.error) as err:
        if path.suffix != ".gz":
            raise DataError(f"cannot read IDX file {path}: {getattr(err, 'strerror', None) or err}") from None
        raise DataError(
            f"IDX file {path} is not a valid gzip file ({err}); "
            "re-download it, or remove the .gz suffix if it is not compressed"
        ) from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzip when the name ends in .gz) into a native-endian numpy array.

    Shapes: returns an array with the shape stored in the file header, e.g. (n, 28, 28) for
    MNIST images and (n,) for labels; its dtype is the native-endian form of the stored one.

    Raises DataError when the file is missing, not gzip (for .gz), has a bad magic number or
    an unknown dtype code, declares more than MAX_PAYLOAD_BYTES, or its payload size does not
    match the header. The header is read first and the payload streamed: a compressed file
    that would expand beyond what its header declares is refused after reading one byte more.
    """
    path = Path(path)
    with _open(path) as stream:
        head = _read_exactly(stream, _HEADER_BYTES, path)
        if len(head) < _HEADER_BYTES:
            raise DataError(
                f"IDX file {path} is {len(head)} bytes long, shorter than the 4-byte magic number; "
                "the file is truncated, re-download it"
            )
        zero0, zero1, code, ndim = head[0], head[1], head[2], head[3]
        if zero0 != 0 or zero1 != 0:
            raise DataError(
                f"IDX file {path} has magic number 0x{head[:4].hex()}, expected 0x0000<dtype><ndim>; "
                "it is not an IDX file (or is compressed without a .gz suffix)"
            )
        if code not in IDX_DTYPES:
            known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
            raise DataError(
                f"IDX file {path} has dtype code 0x{code:02X}, expected one of {known}; "
                "the file is corrupt or not an IDX file"
            )
        if ndim == 0:
            raise DataError(f"IDX file {path} declares 0 dimensions, expected at least 1")
        dim_bytes = _read_exactly(stream, _DIM_BYTES * ndim, path)
        if len(dim_bytes) < _DIM_BYTES * ndim:
            raise DataError(
                f"IDX file {path} is truncated inside its header: {_HEADER_BYTES + len(dim_bytes)} bytes, "
                f"expected at least {_HEADER_BYTES + _DIM_BYTES * ndim} for {ndim} dimensions; re-download it"
            )
        dims = tuple(int(d) for d in np.frombuffer(dim_bytes, dtype=">u4", count=ndim))
        dtype = IDX_DTYPES[code]
        expected = math.prod(dims) * dtype.itemsize  # Python integers: no wrap-around
        if expected > MAX_PAYLOAD_BYTES:
            raise DataError(
                f"IDX file {path} declares shape {dims} of {dtype.newbyteorder('=')}: {expected:,} bytes, "
                f"more than the {MAX_PAYLOAD_BYTES:,} a dataset file here may hold; is it corrupt?"
            )
        payload = _read_exactly(stream, expected + 1, path)
    found = len(payload)
    if found != expected:
        what = "truncated" if found < expected else "longer than its header says"
        detail = f"found {found}" if found < expected else "found more"
        raise DataError(
            f"IDX file {path} is {what}: header shape {dims} of {dtype.newbyteorder('=')} needs "
            f"{expected} data bytes, {detail}; re-download it"
        )
    array = np.frombuffer(payload, dtype=dtype).reshape(dims)
    return array.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write `array` as an IDX file (gzip-compressed when the name ends in .gz); return the path.

    Shapes: any array with 1..255 dimensions, each below 2**32; its dtype must be one of
    uint8, int8, int16, int32, float32, float64.
    """
    path = Path(path)
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): c for c, dt in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        known = ", ".join(str(dt) for dt in codes)
        raise DataError(
            f"cannot write dtype {array.dtype} to IDX file {path}; expected one of {known}, "
            "convert the array with .astype() first"
        )
    if not 1 <= array.ndim <= 255 or any(d >= 2**32 for d in array.shape):
        raise DataError(
            f"cannot write shape {array.shape} to IDX file {path}; expected 1..255 dimensions, "
            "each below 2**32"
        )
    header = bytes([0, 0, codes[native], array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[codes[native]]).tobytes()
    if path.suffix == ".gz":
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    try:
        path.write_bytes(payload)
    except OSError as err:
        raise DataError(f"cannot write IDX file {path}: {err.strerror or err}") from None
    return path
