"""The one place where neurodecorr's floating-point type is set.

Every array the engine creates or accepts is float32: it halves memory traffic against float64
and is what neuromorphic and GPU training use. Code that needs more precision for one
computation (a loss difference, a covariance eigen-decomposition) says so where it does it.
"""

import numpy as np

DTYPE = np.float32


def as_float(array) -> np.ndarray:
    """Return `array` as a C-contiguous float32 array (no copy when it already is one)."""
    return np.ascontiguousarray(array, dtype=DTYPE)
