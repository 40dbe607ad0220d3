"""Quantisers: uniform fixed-point grids, block floating point, stochastic rounding.

All take and return float32 arrays holding values on the grid (the engine computes in float32
on exactly representable grid values). Shapes: any.
"""

from __future__ import annotations

import numpy as np

from neurodecorr import kernels
from neurodecorr.numerics import DTYPE


def stochastic_round(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Round to a neighbouring integer, up with probability equal to the fractional part:
    E[stochastic_round(x)] = x (unbiased), so updates smaller than one step are not lost.
    One draw of `rng` per call (the key of `kernels`' counter-based uniforms)."""
    return kernels.to_grid(x, 1.0, -np.inf, np.inf, kernels.draw_key(rng))


def to_grid(x: np.ndarray, step: float, lo: float, hi: float, rng: np.random.Generator | None = None,
            ) -> np.ndarray:
    """x on the grid {k·step} clipped to [lo, hi]: nearest rounding, or stochastic with `rng`
    (one fused pass, `kernels.to_grid`)."""
    key = None if rng is None else kernels.draw_key(rng)
    return kernels.to_grid(x, step, lo / step, hi / step, key)


def fixed_point_grid(bits: int, frac_bits: int) -> tuple[float, float, float]:
    """Signed `bits`-bit fixed point with `frac_bits` fractional bits: (step, lo, hi), lo and hi
    in steps (as `kernels.to_grid` takes them)."""
    top = 2 ** (bits - 1)
    return 2.0 ** -frac_bits, float(-top), float(top - 1)


def fixed_point(x: np.ndarray, bits: int, frac_bits: int, rng: np.random.Generator | None = None,
                ) -> np.ndarray:
    """Signed `bits`-bit fixed point with `frac_bits` fractional bits, saturating."""
    step, lo, hi = fixed_point_grid(bits, frac_bits)
    return to_grid(x, step, lo * step, hi * step, rng)  # powers of two: lo·step / step is lo


def shared_exponent(max_abs: float, bits: int, headroom: float = 1.0) -> int:
    """The smallest exponent e such that headroom·max_abs fits in a signed `bits`-bit mantissa
    times 2^e."""
    top = 2 ** (bits - 1) - 1
    if max_abs <= 0:
        return -126
    return int(np.ceil(np.log2(headroom * max_abs / top)))


def block_float(x: np.ndarray, bits: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Signed `bits`-bit mantissas with one exponent for the whole array, set by its max |x|
    (block floating point, as Loihi's learning engine represents a factor: mantissa·2^exp)."""
    max_abs = kernels.max_abs(np.asarray(x, dtype=DTYPE))
    if max_abs == 0.0 or not np.isfinite(max_abs):
        return np.asarray(x, dtype=DTYPE)
    step = 2.0 ** shared_exponent(max_abs, bits)
    top = (2 ** (bits - 1) - 1) * step
    return to_grid(x, step, -top - step, top, rng)
