"""Fused element-wise kernels: one pass over memory where numpy makes several.

A training step's matrix products run at the BLAS's rate; what kept the engine below it was
element-wise work done as chains of numpy passes, each reading and writing whole arrays: Adam's
ten passes over every synapse, the fixed-point rounding of every write on a digital chip, the
float16 operands, DACs, ADCs and noise of a crossbar. Each kernel here does one chain in one
pass (`make bench` and README "Speed" show what it bought).

With numba (a dependency) the kernels are compiled once per machine (cached beside this file)
and run on one thread: numba's parallel loops measured up to 20× slower while another process
kept a core busy (each launch waits for a second core), and the BLAS already uses both.
`NEURODECORR_KERNELS=numpy` selects the pure-numpy versions, which compute the same values
(`tests/test_kernels.py` holds the two together in the same run); without numba, numpy is used.

Random numbers are counter-based: one 64-bit key drawn from the caller's generator per call,
and for element i the 64 bits z_i = splitmix64(key + i·φ). Stochastic rounding takes the
uniform (z_i >> 40)·2^−24. `normals` forms √(−2 ln u)·cos θ and √(−2 ln u)·sin θ (Box–Muller)
from one draw's bits, u from its high 32 bits (as a float32: 24 significant bits) and θ from
the 24 below them, in float32 arithmetic without library calls, so that the loops that draw
them vectorise; in each block of 32 elements, element l < 16 takes draw 16q + l's cosine and
element 16 + l its sine. A result depends on the generator's state and i alone, not on threads.

Shapes: any (arrays are flattened; they must be C-contiguous float32 where written in place).
"""

from __future__ import annotations

import importlib.util
import math
import os

import numpy as np

from neurodecorr.numerics import DTYPE

KERNELS_ENV = "NEURODECORR_KERNELS"
_CHOICES = ("numba", "numpy")

_choice = os.environ.get(KERNELS_ENV, "numba")
if _choice not in _CHOICES:
    raise ValueError(f"{KERNELS_ENV}={_choice!r}: expected one of {', '.join(_CHOICES)}")
_HAVE_NUMBA = _choice == "numba" and importlib.util.find_spec("numba") is not None
BACKEND = "numba" if _HAVE_NUMBA else "numpy"
_compiled = None


def _nb():
    """The compiled kernels (`neurodecorr._compiled`), imported on first use."""
    global _compiled
    if _compiled is None:
        from neurodecorr import _compiled as module

        _compiled = module
    return _compiled

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S40 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(40)
_TO_UNIT = np.float32(2.0 ** -24)
_F16_MIN_NORMAL = np.float32(2.0 ** -14)   # float16's smallest normal number
_F16_SUB_STEP = np.float32(2.0 ** -24)     # float16's spacing below it
_F16_OVERFLOW = np.float32(65520.0)        # float16 rounds this and above to infinity
# the same thresholds as |x|'s bit patterns (these order as the non-negative floats), and +inf's
_F16_MIN_NORMAL_BITS, _F16_OVERFLOW_BITS, _INF_BITS = (
    np.array([_F16_MIN_NORMAL, _F16_OVERFLOW, np.inf], np.float32).view(np.uint32))
MIN_STEP = np.float32(1e-12)  # a device's pulse step as divided by: 0 (a device with none) floored


# Standard normals by Box–Muller, two per counter-based draw: its top 24 bits and the next 8
# give the radius's uniform u ∈ (0, 1] (formed in float32: 24 significant bits, down to 2^-33,
# so |ξ| < 6.764), bits 8–31 the angle. ξ = √(−2 ln u)·cos θ and √(−2 ln u)·sin θ in float32
# arithmetic alone (no library calls, so that a loop of them vectorises): ln u from u's exponent
# and an atanh series of its mantissa in [√½, √2), cos θ and sin θ from θ's quadrant and Taylor
# series of sin and cos on [0, π/2) (both series are formed for either, so a draw's second
# normal is nearly free: 0.93 against 1.54 ns a normal drawn alone).
_S8, _LOW8, _LOW24 = np.uint64(8), np.uint64(0xFF), np.uint64(0xFFFFFF)
_HALF, _ONE, _TWO = np.float32(0.5), np.float32(1), np.float32(2)
_INV256, _LN2, _SQRT2 = np.float32(2.0 ** -8), np.float32(math.log(2)), np.float32(math.sqrt(2))
_MANTISSA, _ONE_BITS = np.uint32(0x7FFFFF), np.uint32(0x3F800000)
_ATANH = tuple(np.float32(1 / k) for k in (3, 5, 7, 9))  # ln m = 2 s (1 + s²/3 + s⁴/5 + …), s = (m−1)/(m+1)
_QUARTER = np.float32(math.pi / 2 * 2.0 ** -22)  # a quadrant's 22 bits of angle, in radians
_SIN = tuple(np.float32((-1) ** k / math.factorial(2 * k + 1)) for k in range(1, 6))
_COS = tuple(np.float32((-1) ** k / math.factorial(2 * k)) for k in range(1, 7))


def _mix(z):
    """splitmix64's finaliser (uint64 arithmetic wraps, as intended)."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
        return z ^ (z >> _S31)


def _np_normals(n, key):
    return _np_normals_at(np.arange(n, dtype=np.uint64), key)


def _np_normal_pairs(p: np.ndarray, key):
    """Draws p's (uint64) two standard normals, r·cos θ and r·sin θ of one uniform u and angle θ
    (Box–Muller), by the same float32 operations in the same order as
    `_compiled._nb_normal_pair`: ln u from u's exponent and an atanh series of its mantissa,
    sin and cos from θ's quadrant and Taylor series on [0, π/2)."""
    with np.errstate(over="ignore"):
        z = _mix(p * _GOLDEN + key)
    top = (z >> _S40).astype(np.int32).astype(DTYPE)
    low = ((z >> np.uint64(32)) & _LOW8).astype(np.int32).astype(DTYPE)
    u = (top + (low + _HALF) * _INV256) * _TO_UNIT
    bits = u.view(np.uint32)
    e = ((bits >> np.uint32(23)).astype(np.int32) - np.int32(127)).astype(DTYPE)
    m = ((bits & _MANTISSA) | _ONE_BITS).view(DTYPE)
    big = m > _SQRT2
    m = np.where(big, m * _HALF, m)
    e = np.where(big, e + _ONE, e)
    s = (m - _ONE) / (m + _ONE)
    s2 = s * s
    a3, a5, a7, a9 = _ATANH
    log_m = _TWO * s * (_ONE + s2 * (a3 + s2 * (a5 + s2 * (a7 + s2 * a9))))
    r = np.sqrt(np.float32(-2) * (e * _LN2 + log_m))
    angle = ((z >> _S8) & _LOW24).astype(np.int32)
    quadrant = angle >> np.int32(22)
    f = (angle & np.int32(0x3FFFFF)).astype(DTYPE) * _QUARTER
    f2 = f * f
    s3, s5, s7, s9, s11 = _SIN
    c2, c4, c6, c8, c10, c12 = _COS
    sin = f * (_ONE + f2 * (s3 + f2 * (s5 + f2 * (s7 + f2 * (s9 + f2 * s11)))))
    cos = _ONE + f2 * (c2 + f2 * (c4 + f2 * (c6 + f2 * (c8 + f2 * (c10 + f2 * c12)))))
    odd = (quadrant & np.int32(1)) != 0
    c = np.where(odd, sin, cos)  # cos(q·π/2 + f)
    c = np.where(((quadrant + np.int32(1)) & np.int32(2)) != 0, -c, c)
    sn = np.where(odd, cos, sin)  # sin(q·π/2 + f)
    sn = np.where((quadrant & np.int32(2)) != 0, -sn, sn)
    return (r * c).astype(DTYPE), (r * sn).astype(DTYPE)


def _np_normals_at(index: np.ndarray, key):
    """The normals of elements `index` (uint64) of `key`'s stream: `normals`' values there. In
    each block of 32 elements, element l < 16 takes draw 16q + l's cosine and element 16 + l its
    sine (so a loop forms both of a draw's normals at once, and each stays contiguous)."""
    index = np.asarray(index, dtype=np.uint64)
    c, sn = _np_normal_pairs((index >> np.uint64(5)) * np.uint64(16) + (index & np.uint64(15)), key)
    return np.where((index & np.uint64(16)) != 0, sn, c)


def draw_key(rng: np.random.Generator) -> np.uint64:
    """The 64-bit key of one call's uniforms, drawn from `rng` (advances it by one draw)."""
    return np.uint64(rng.integers(0, 2**63, dtype=np.int64))


# ----------------------------------------------------------------------- pure numpy
def _np_uniforms(n: int, key: np.uint64) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = _mix(np.arange(n, dtype=np.uint64) * _GOLDEN + key)
    return (z >> _S40).astype(DTYPE) * _TO_UNIT


def _np_adam(g, m, v, b1, b2, lr_t, eps_t):
    tmp = np.multiply(g, DTYPE(1) - b1)
    m *= b1
    m += tmp
    np.square(g, out=tmp)
    tmp *= DTYPE(1) - b2
    v *= b2
    v += tmp
    np.sqrt(v, out=tmp)
    tmp += eps_t
    np.divide(m, tmp, out=g)
    g *= lr_t


def _np_leaky(h, slope):
    return np.maximum(h, h * slope)


def _np_leaky_back(h, signal, slope):
    signal *= np.maximum(np.sign(h), slope)


def _np_to_grid(x, step, lo, hi, key):
    scaled = x / DTYPE(step)
    if key is None:
        rounded = np.rint(scaled)
    else:
        low = np.floor(scaled)
        rounded = low + (_np_uniforms(scaled.size, key).reshape(scaled.shape) < (scaled - low))
    return (np.clip(rounded, DTYPE(lo), DTYPE(hi)) * DTYPE(step)).astype(DTYPE, copy=False)


def _np_accumulate(acc, change, step, limit):
    acc += change
    n = np.trunc(acc / step)
    np.clip(n, -limit, limit, out=n)
    moved = n != 0
    acc[moved] -= n[moved] * step
    return n


def _np_pulse_counts(change, step, limit, key):
    n = change / np.where(step > MIN_STEP, step, MIN_STEP)
    return _np_to_grid(np.ascontiguousarray(n, dtype=DTYPE), DTYPE(1), -limit, limit, key)


def _pulse_normals(n, key):
    """The normals of the pulsed devices (n ≠ 0), in order: each device i's normal i of `key`."""
    return _np_normals_at(np.flatnonzero(n).astype(np.uint64), key)


def _np_pulse(w, n, eps, coeff, key, lo, hi, scale=_ONE):
    moved = n != 0
    inc = n[moved] * eps
    stepped = w[moved] / scale + (inc + coeff * np.sqrt(np.abs(n[moved])) * eps * _pulse_normals(n, key))
    w[moved] = np.clip(stepped, lo, hi) * scale


def _np_rram_pulse(w, n, dw, ud, soft, w_min, w_max, ctoc, key, scale=_ONE):
    moved = n != 0
    n_m, w_m, dw_m, ud_m = n[moved], w[moved] / scale, dw[moved], ud[moved]
    up = n_m > 0
    step = dw_m * np.where(up, 1 + ud_m, 1 - ud_m)
    if soft:
        step = step * np.where(up, 1 - w_m / w_max, 1 - w_m / w_min)
    step = np.maximum(step, 0)
    noise = ctoc * step * np.sqrt(np.abs(n_m))
    w[moved] = np.clip(w_m + n_m * step + noise * _pulse_normals(n, key), w_min, w_max) * scale


def _np_max_abs_diff(a, b):
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def _np_seed_delta(R, grad, gain, lr):
    grad[...] = R - gain * (R - lr * grad)


def _np_grid_write(array, delta, step, lo, hi, key, diag):
    offset = np.eye(len(array), dtype=DTYPE) if diag else DTYPE(0)
    values = array - offset
    new = _np_to_grid(values - delta, step, lo, hi, key)
    moved = int(np.count_nonzero(new != values))
    array[...] = new + offset
    return moved


def _np_half(a):
    with np.errstate(over="ignore"):  # beyond float16's range: ±inf, as intended
        return a.astype(np.float16).astype(DTYPE)


def _np_adc_sum(parts, noise, bound, step):
    parts = parts + noise
    np.clip(parts, -bound, bound, out=parts)
    return (np.rint(parts / step) * step).sum(axis=0, dtype=DTYPE)


def _fused(*arrays: np.ndarray) -> bool:
    """Whether the compiled kernel takes these arrays (flattened as views, written in place)."""
    return _HAVE_NUMBA and all(a.flags.c_contiguous and a.dtype == DTYPE for a in arrays)


# ----------------------------------------------------------------------- the kernels
def uniforms(n: int, key: np.uint64) -> np.ndarray:
    """The n uniforms in [0, 1) of `key` (float32), as the stochastic rounding draws them."""
    return _np_uniforms(n, key)


def normals(shape, rng: np.random.Generator, scale=1.0) -> np.ndarray:
    """Standard normal float32 draws of `shape`, times `scale` (in float32, in the same pass):
    Box–Muller on the counter-based draws of one key drawn from `rng` (one draw of it; element
    i's value depends on the key and i alone), both normals of each draw used, in float32
    arithmetic that vectorises (see `_np_normals_at`; |ξ| < 6.764). About nine times faster
    than numpy's own generator here (0.93 against ~8.5 ns a normal); the numpy fallback gives
    the same values."""
    key = draw_key(rng)
    n = int(np.prod(shape))
    scale = DTYPE(scale)
    if not _HAVE_NUMBA:
        return (_np_normals(n, key) * scale).reshape(shape)
    out = np.empty(shape, dtype=DTYPE)
    _nb()._nb_normals(key, out.reshape(-1), scale)
    return out


def adc_sum(parts: np.ndarray, rng: np.random.Generator, *, inv_scale, bound: float, step: float,
            noise_sd: float, var: np.ndarray | None = None, sd_factor=1.0,
            row_scale: np.ndarray | None = None) -> np.ndarray:
    """A crossbar's tiles read out and added: y[b] = row_scale[b]·Σ_t ADC(parts[t, b]·inv_scale
    + sd·ξ), ξ standard normal (`normals(parts.shape, rng)`), the ADC clipping to ±bound and
    rounding to its step. parts (T, B, N); the noise's sd is sd_factor·noise_sd, or with `var`
    (the read noise's variance, (T, B, N) per entry or (T, B, 1) per row)
    sd_factor·√(var + noise_sd²). Returns (B, N); the noise is drawn in the kernel, never stored."""
    inv_scale, bound, step = DTYPE(inv_scale), DTYPE(bound), DTYPE(step)
    sd0, var0, factor = DTYPE(noise_sd) * DTYPE(sd_factor), DTYPE(noise_sd ** 2), DTYPE(sd_factor)
    per_entry = var is not None and var.shape == parts.shape
    if var is not None and not per_entry and var.shape != (*parts.shape[:2], 1):
        raise ValueError(f"read-noise variance of shape {var.shape} for tiles of shape {parts.shape}")
    if row_scale is not None:
        row_scale = np.ascontiguousarray(row_scale, dtype=DTYPE).reshape(-1, 1)
        if parts.ndim != 3 or len(row_scale) != parts.shape[1]:
            raise ValueError(f"{len(row_scale)} row scales for tiles of shape {parts.shape}")
    if not _fused(parts) or parts.ndim != 3 or not (var is None or _fused(var)):
        if var is None:
            sd = sd0
        else:
            sd = np.sqrt(var + var0)
            sd *= factor
        out = _np_adc_sum(parts * inv_scale, normals(parts.shape, rng) * sd, bound, step)
        return out if row_scale is None else out * row_scale
    key = draw_key(rng)
    empty3 = np.empty((0, 0, 0), DTYPE)
    rows = np.empty(0, DTYPE) if row_scale is None else row_scale.reshape(-1)
    out = np.empty(parts.shape[1:], dtype=DTYPE)
    _nb()._nb_adc_sum(parts, empty3 if var is None else var, per_entry, sd0, var0, factor, inv_scale,
                      bound, step, rows, key, out)
    return out


def add_noise(W: np.ndarray, sd: np.ndarray, scale, rng: np.random.Generator) -> np.ndarray:
    """W + scale·sd·ξ, ξ standard normal (`normals(W.shape, rng)`), as a new array."""
    scale = DTYPE(scale)
    if not _HAVE_NUMBA or not _fused(W, sd) or W.shape != sd.shape:
        return (W + scale * sd * normals(W.shape, rng)).astype(DTYPE)
    key = draw_key(rng)
    out = np.empty_like(W)
    _nb()._nb_add_noise(W.reshape(-1), sd.reshape(-1), scale, key, out.reshape(-1))
    return out


def dac(x: np.ndarray, levels: int, bound: float, squares: bool = False):
    """A DAC per input row: each row divided by its max |value| (1 for a zero row), clipped to
    [−1, 1], rounded to ±levels and scaled to ±bound. Returns (xq, the rows' peaks (B, 1)), and
    with `squares` xq² as a third (formed in the same pass)."""
    levels, bound_step = DTYPE(levels), DTYPE(bound / levels)
    if not _fused(x) or x.ndim != 2:
        peak = np.max(np.abs(x), axis=1, keepdims=True)
        peak[peak == 0] = 1
        xq = np.rint(np.clip(x / peak, -1, 1) * levels) * bound_step
        return (xq, peak, xq * xq) if squares else (xq, peak)
    xq, peak = np.empty_like(x), np.empty((len(x), 1), DTYPE)
    sq = np.empty_like(x) if squares else np.empty((0, 0), DTYPE)
    _nb()._nb_dac(x, levels, bound_step, xq, peak, sq)
    return (xq, peak, sq) if squares else (xq, peak)


def adam_(g: np.ndarray, m: np.ndarray, v: np.ndarray, b1, b2, lr_t, eps_t,
          apply_to: np.ndarray | None = None) -> np.ndarray:
    """Adam's moment updates and step, in place: m ← b1·m + (1−b1)·g, v ← b2·v + (1−b2)·g²,
    g ← lr_t · m / (√v + eps_t); with `apply_to`, also apply_to ← apply_to − g in the same pass.
    All float32 (the scalars too); returns g, the step."""
    _adam(g, m, v, b1, b2, lr_t, eps_t, apply_to, count=False)
    return g


def adam_apply_(g: np.ndarray, m: np.ndarray, v: np.ndarray, b1, b2, lr_t, eps_t,
                W: np.ndarray) -> int:
    """`adam_` with the step subtracted from W in the same pass; returns how many entries of
    the step are nonzero (the synapse writes a device whose write is plain counts), counted in
    that pass too. g holds the step afterwards."""
    return _adam(g, m, v, b1, b2, lr_t, eps_t, W, count=True)


def _adam(g, m, v, b1, b2, lr_t, eps_t, apply_to, count: bool) -> int:
    if not g.shape == m.shape == v.shape or (apply_to is not None and apply_to.shape != g.shape):
        raise ValueError(f"Adam: gradient {g.shape}, moments {m.shape}, {v.shape} and weights "
                         f"{None if apply_to is None else apply_to.shape} differ in shape")
    b1, b2, lr_t, eps_t = DTYPE(b1), DTYPE(b2), DTYPE(lr_t), DTYPE(eps_t)
    arrays = (g, m, v) if apply_to is None else (g, m, v, apply_to)
    if _fused(*arrays):
        W = g if apply_to is None else apply_to
        return int(_nb()._nb_adam(g.reshape(-1), m.reshape(-1), v.reshape(-1), b1, b2, lr_t, eps_t,
                                  W.reshape(-1), apply_to is not None))
    _np_adam(g, m, v, b1, b2, lr_t, eps_t)
    if apply_to is not None:
        np.subtract(apply_to, g, out=apply_to)
    return count_nonzero(g) if count else 0


def leaky_relu(h: np.ndarray, slope) -> np.ndarray:
    """max(h, slope·h) (slope < 1), as a new array."""
    slope = DTYPE(slope)
    if not _fused(h):
        return _np_leaky(h, slope)
    out = np.empty_like(h)
    _nb()._nb_leaky(h.reshape(-1), out.reshape(-1), slope)
    return out


def times_leaky_derivative_(h: np.ndarray, signal: np.ndarray, slope) -> np.ndarray:
    """signal ⊙ f'(h) of the leaky ReLU (1 for h > 0, else slope), in place; returns signal."""
    slope = DTYPE(slope)
    if _fused(h, signal) and h.shape == signal.shape:
        _nb()._nb_leaky_back(h.reshape(-1), signal.reshape(-1), slope)
    else:
        _np_leaky_back(h, signal, slope)
    return signal


def to_grid(x: np.ndarray, step: float, lo: float, hi: float, key: np.uint64 | None = None) -> np.ndarray:
    """round(x / step) clipped to [lo, hi] (in steps), times step, as a new float32 array: to
    nearest (ties to even), or, with a `key`, stochastically (up with probability equal to the
    fraction: unbiased)."""
    x = np.ascontiguousarray(x, dtype=DTYPE)
    if not _fused(x):
        return _np_to_grid(x, step, lo, hi, key)
    out = np.empty_like(x)
    _nb()._nb_to_grid(x.reshape(-1), out.reshape(-1), DTYPE(step), DTYPE(lo), DTYPE(hi),
                np.uint64(0) if key is None else key, key is not None)
    return out


def half(a: np.ndarray, scale=1.0) -> np.ndarray:
    """a·scale rounded to the nearest float16 value (ties to even), divided by scale, held in
    float32 (a float16 operand after a power-of-two scaling, in one pass)."""
    a = np.ascontiguousarray(a, dtype=DTYPE)
    scale = DTYPE(scale)
    if not _fused(a):
        out = _np_half(a * scale)
        out /= scale
        return out
    out = np.empty_like(a)
    _nb()._nb_half(a.reshape(-1), scale, out.reshape(-1))
    return out


def accumulate_pulses_(acc: np.ndarray, change: np.ndarray, step, limit, divisor=1.0) -> np.ndarray:
    """A digital accumulator's pulses: acc += change / divisor (a change in other units, divided
    in the same pass); n = trunc(acc / step), at most `limit` either way; acc −= n·step (in
    place). Returns n (float32 integers)."""
    step, limit, divisor = DTYPE(step), DTYPE(limit), DTYPE(divisor)
    if not _fused(acc, change) or acc.shape != change.shape:
        return _np_accumulate(acc, change / divisor, step, limit)
    n = np.empty_like(acc)
    _nb()._nb_accumulate(acc.reshape(-1), change.reshape(-1), step, limit, n.reshape(-1), divisor)
    return n


def pulses(change: np.ndarray, step, limit, key: np.uint64, divisor=1.0) -> np.ndarray:
    """Each device's pulses for a requested change: stochastic_round((change / divisor) / step)
    (step a scalar or one per device, floored at `MIN_STEP`), at most `limit` either way (float32
    integers), the rounding drawn from `key` as `to_grid` draws it. One pass."""
    change = np.ascontiguousarray(change, dtype=DTYPE)
    limit, divisor = DTYPE(min(limit, 2**31)), DTYPE(divisor)
    per_device = np.ndim(step) > 0
    step = np.ascontiguousarray(step, dtype=DTYPE)
    if not _fused(change) or (per_device and step.shape != change.shape):
        return _np_pulse_counts(change / divisor, step, limit, key)
    n = np.empty_like(change)
    _nb()._nb_pulse_counts(change.reshape(-1), step.reshape(-1), per_device, limit, key, n.reshape(-1), divisor)
    return n


def pulse_(w: np.ndarray, n: np.ndarray, eps, coeff, rng: np.random.Generator, bounds,
           scale=1.0) -> int:
    """n pulses of size eps on each device where n ≠ 0 (in place), with relative noise
    coeff·√|n| (device i's normal is normal i of one key drawn from `rng`, as `normals` draws
    them), each pulsed device then clipped to `bounds`; a device without pulses is left as it
    is. w holds scale × the devices' values (a pulsed one is divided by it, moved and multiplied
    back). Returns how many devices were pulsed."""
    eps, coeff, scale = DTYPE(eps), DTYPE(coeff), DTYPE(scale)
    lo, hi = DTYPE(bounds[0]), DTYPE(bounds[1])
    key = draw_key(rng)
    if _fused(w, n) and w.shape == n.shape:
        return int(_nb()._nb_pulse(w.reshape(-1), n.reshape(-1), eps, coeff, lo, hi, key, scale))
    _np_pulse(w, n, eps, coeff, key, lo, hi, scale)
    return int(np.count_nonzero(n))


def rram_pulse_(w: np.ndarray, n: np.ndarray, dw: np.ndarray, ud: np.ndarray, soft_bounds: bool,
                bounds, ctoc, rng: np.random.Generator, scale=1.0) -> int:
    """n pulses on each RRAM device where n ≠ 0 (in place): a step dw·(1 ± ud) up or down, with
    soft bounds × (1 − w/w_max) up, × (1 − w/w_min) down, cycle-to-cycle noise ctoc·step·√|n|
    (device i's normal as in `pulse_`), each pulsed device then clipped to bounds; w holds
    scale × the devices' values, as in `pulse_`. Returns the count pulsed."""
    w_min, w_max, ctoc, scale = DTYPE(bounds[0]), DTYPE(bounds[1]), DTYPE(ctoc), DTYPE(scale)
    key = draw_key(rng)
    if _fused(w, n, dw, ud) and w.shape == n.shape == dw.shape == ud.shape:
        return int(_nb()._nb_rram_pulse(w.reshape(-1), n.reshape(-1), dw.reshape(-1), ud.reshape(-1),
                                        bool(soft_bounds), w_min, w_max, ctoc, key, scale))
    _np_rram_pulse(w, n, dw, ud, soft_bounds, w_min, w_max, ctoc, key, scale)
    return int(np.count_nonzero(n))


def max_abs(a: np.ndarray) -> float:
    """max |a| in one pass (0 for an empty array; NaN if a holds one)."""
    if not _fused(a) or not a.size:
        return float(np.max(np.abs(a))) if a.size else 0.0
    return float(_nb()._nb_max_abs(a.reshape(-1)))


def max_abs_diff(a: np.ndarray, b: np.ndarray, diag: bool = False) -> float:
    """max |a − b| without the temporary (0 for empty arrays); diag: of a − I − b (a square)."""
    if not _fused(a, b) or a.shape != b.shape or not a.size:
        return _np_max_abs_diff(a - np.eye(len(a), dtype=DTYPE) if diag else a, b)
    if diag:
        return float(_nb()._nb_max_abs_diff_diag(a, b))
    return float(_nb()._nb_max_abs_diff(a.reshape(-1), b.reshape(-1)))


def grid_write_(array: np.ndarray, delta: np.ndarray, step, lo, hi, key: np.uint64 | None = None,
                diag: bool = False) -> int:
    """A fixed-point array's write: array ← to_grid(array − delta) as `to_grid` rounds it (lo, hi
    in steps), in place. diag: the grid holds array − I (a residual R; array square). Returns
    how many entries now hold another value."""
    step, lo, hi = DTYPE(step), DTYPE(lo), DTYPE(hi)
    if not _fused(array, delta) or array.shape != delta.shape or array.ndim > 2:
        return _np_grid_write(array, delta, step, lo, hi, key, diag)
    if not diag:
        return int(_nb()._nb_grid_write_flat(array.reshape(-1), delta.reshape(-1), step, lo, hi,
                                             np.uint64(0) if key is None else key, key is not None))
    a2, d2 = (array.reshape(1, -1), delta.reshape(1, -1)) if array.ndim < 2 else (array, delta)
    return int(_nb()._nb_grid_write(a2, d2, step, lo, hi, np.uint64(0) if key is None else key,
                              key is not None, diag))


def seed_delta_(R: np.ndarray, grad: np.ndarray, gain, lr) -> np.ndarray:
    """The seed rule's change R − g·(R − η·grad), written into grad; returns it."""
    gain, lr = DTYPE(gain), DTYPE(lr)
    if _fused(R, grad) and R.shape == grad.shape:
        _nb()._nb_seed_delta(R.reshape(-1), grad.reshape(-1), gain, lr)
    else:
        _np_seed_delta(R, grad, gain, lr)
    return grad


def seed_step_(R: np.ndarray, grad: np.ndarray, gain, lr) -> int:
    """`seed_delta_` and the plain write R ← R − delta in one pass (R in place; grad is
    scratch); returns how many entries' deltas are nonzero (the synapse writes counted)."""
    gain, lr = DTYPE(gain), DTYPE(lr)
    if _fused(R, grad) and R.shape == grad.shape:
        return int(_nb()._nb_seed_step(R.reshape(-1), grad.reshape(-1), gain, lr))
    delta = seed_delta_(R, grad, gain, lr)
    changed = count_nonzero(delta)
    np.subtract(R, delta, out=R)
    return changed


# im2col: runs of k·C values at least this long are copied by the compiled kernel. Measured on
# 64×28×28 and 256×32×32 images (AMD EPYC, numba 0.60): numpy's nine strided copies win only
# for one channel and a 3×3 kernel (0.24 against 0.48 ms); at 3 channels (CIFAR's first layer)
# the kernel takes 3.0 against 13.2 ms, at one channel and 5×5 5.2 against 13.1.
_RUN = 5


def im2col(image: np.ndarray, k: int, s: int, p: int, ho: int, wo: int) -> np.ndarray:
    """The patch matrix of images (B, H, W, C) zero-padded by p: (B·ho·wo, k·k·C), rows ordered
    (sample, y, x), entries (ky, kx, c) (`nets.conv`). The compiled kernel copies each patch
    row's k·C-long runs and pads on the fly; for runs shorter than `_RUN` (a 1-channel image
    under a 3×3 kernel) numpy's k·k strided copies, one per kernel offset, measured faster."""
    C = image.shape[-1]
    if _fused(image) and k * C >= _RUN:
        out = np.empty((len(image) * ho * wo, k * k * C), dtype=image.dtype)
        _nb()._nb_im2col(image, out, k, s, p, ho, wo)
        return out
    return _np_im2col(np.pad(image, ((0, 0), (p, p), (p, p), (0, 0))) if p else image, k, s, ho, wo)


def _np_im2col(padded, k, s, ho, wo):
    """`im2col` of an already padded image: one strided copy per kernel offset."""
    B, C = len(padded), padded.shape[-1]
    out = np.empty((B * ho * wo, k * k * C), dtype=padded.dtype)
    grid = out.reshape(B, ho, wo, k, k, C)
    for dy in range(k):
        for dx in range(k):
            grid[:, :, :, dy, dx] = padded[:, dy:dy + s * (ho - 1) + 1:s, dx:dx + s * (wo - 1) + 1:s]
    return out


def col2im(rows: np.ndarray, batch: int, shape: tuple[int, int, int], k: int, s: int, p: int,
           ho: int, wo: int) -> np.ndarray:
    """The transpose of `im2col`: every patch entry summed back onto the image position it was
    read from; (B·ho·wo, k·k·C) → (B, H, W, C) for images of `shape` (H, W, C), contiguous."""
    H, W, C = shape
    if _fused(rows):
        image = np.empty((batch, H, W, C), dtype=rows.dtype)
        _nb()._nb_col2im(rows, image, k, s, p, ho, wo)
        return image
    padded = np.zeros((batch, H + 2 * p, W + 2 * p, C), dtype=rows.dtype)
    _np_col2im(rows, padded, k, s, ho, wo)
    return np.ascontiguousarray(padded[:, p:p + H, p:p + W]) if p else padded


def _np_col2im(rows, padded, k, s, ho, wo):
    """`col2im`'s sums into the zero-padded image, one strided add per kernel offset."""
    grid = rows.reshape(len(padded), ho, wo, k, k, padded.shape[-1])
    for dy in range(k):
        for dx in range(k):
            padded[:, dy:dy + s * (ho - 1) + 1:s, dx:dx + s * (wo - 1) + 1:s] += grid[:, :, :, dy, dx]


# ------------------------------------------------------------------ pooling (channels last)
def _windows(y: np.ndarray, s: int) -> list[np.ndarray]:
    """The s·s strided views of y (B, H', W', C), one per offset in a pooling window (the
    rows and columns beyond the last whole window left out)."""
    h, w = y.shape[1] // s * s, y.shape[2] // s * s
    return [y[:, dy:h:s, dx:w:s] for dy in range(s) for dx in range(s)]


def avg_pool(y: np.ndarray, s: int) -> np.ndarray:
    """The mean of each s×s window of y (B, H', W', C) → (B, H'//s, W'//s, C): the window's
    values summed in order, times 1/s²."""
    scale = y.dtype.type(1.0 / (s * s))
    if _fused(y):
        out = np.empty((len(y), y.shape[1] // s, y.shape[2] // s, y.shape[3]), dtype=y.dtype)
        _nb()._nb_avg_pool(y, out, s, scale)
        return out
    views = _windows(y, s)
    total = views[0].copy()
    for v in views[1:]:
        total += v
    total *= scale
    return total


def max_pool(y: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Each s×s window's maximum, and its offset in the window (int8, dy·s + dx; the first of
    equal values)."""
    if _fused(y):
        shape = (len(y), y.shape[1] // s, y.shape[2] // s, y.shape[3])
        out, index = np.empty(shape, dtype=y.dtype), np.empty(shape, dtype=np.int8)
        _nb()._nb_max_pool(y, out, index, s)
        return out, index
    views = _windows(y, s)
    top = views[0].copy()
    for v in views[1:]:
        np.maximum(top, v, out=top)
    index = np.full(top.shape, len(views) - 1, dtype=np.int8)
    for k in range(len(views) - 2, -1, -1):  # the first offset holding the maximum wins
        index[views[k] == top] = k
    return top, index


def pool_back(g: np.ndarray, index: np.ndarray | None, shape: tuple[int, int, int], s: int) -> np.ndarray:
    """The gradient g (B, H'', W'', C) on a pooled image → on the image it pooled, (B, *shape):
    an average pooling's (index None) spread evenly over each window, a max pooling's routed
    to each window's maximum; the rows and columns the pooling left out get 0."""
    scale = g.dtype.type(1.0 / (s * s))
    if _fused(g):
        out = np.empty((len(g), *shape), dtype=g.dtype)
        is_max = index is not None
        _nb()._nb_pool_back(g, index if is_max else np.zeros((1, 1, 1, 1), np.int8), out, s, scale, is_max)
        return out
    out = np.zeros((len(g), *shape), dtype=g.dtype)
    views = _windows(out, s)
    if index is None:
        share = g * scale
        for v in views:
            v[...] = share
    else:
        for k, v in enumerate(views):
            np.copyto(v, g, where=index == k)
    return out


def pool_back_leaky(g: np.ndarray, index: np.ndarray | None, h: np.ndarray, s: int, slope) -> np.ndarray:
    """`pool_back` of g onto the image of h (B, H', W', C), times the leaky ReLU's f'(h): a
    pooled conv layer's modulator from the gradient on what it sent, in one pass (a new array
    of h's shape)."""
    slope = DTYPE(slope)
    if _fused(g, h) and h.ndim == 4:
        out = np.empty_like(h)
        is_max = index is not None
        _nb()._nb_pool_back_leaky(g, index if is_max else _NO_INDEX, h, out, s, DTYPE(1.0 / (s * s)), is_max,
                                  slope, np.empty(h.shape[2] * h.shape[3], dtype=DTYPE))
        return out
    return times_leaky_derivative_(h, pool_back(g, index, h.shape[1:], s), slope)


Grid = tuple[float, float, float]  # a fixed-point grid: (step, lo, hi), lo and hi in steps


def leaky_layer_(h: np.ndarray, b: np.ndarray, slope, noise: np.ndarray | None = None,
                 image: tuple[int, int, int, int] | None = None, pool: str | None = None,
                 s: int = 2, grids: tuple[Grid, Grid] | tuple[None, None] = (None, None),
                 ) -> tuple[np.ndarray, np.ndarray | None, int]:
    """A layer's neurons in one pass: h (rows, n) += b (+ noise, NP's perturbation), in place;
    then f(h) = max(h, slope·h), sent on as rows (pool None), or pooled ('avg', 'max') over s×s
    windows of h seen as the output image `image` (B, H', W', C). grids: where a device's neuron
    state and activations are fixed point, their grids (state, activation; (None, None): exact
    float32): h after the bias and f(h) before pooling are rounded to nearest on them. Returns (sent, the
    max pooling's offsets or None, the number of nonzero entries of f(h): the messages its
    neurons send). The values are those of `add_rows_`, `to_grid`, `leaky_relu`, `to_grid`,
    `avg_pool` / `max_pool` and `count_nonzero` in turn."""
    slope = DTYPE(slope)
    state_grid, out_grid = grids
    fixed = state_grid is not None
    if fixed != (out_grid is not None):
        raise ValueError(f"leaky_layer_ takes both neuron grids or neither, not {grids}")
    grid_values = np.array([*state_grid, *out_grid] if fixed else [1] * 6, dtype=DTYPE)
    B, H, W, C = image if pool is not None else (len(h), 1, 1, h.shape[-1])  # rows: no windows
    if _fused(h, b) and (noise is None or _fused(noise)) and h.size == B * H * W * C:
        if pool is None:
            rows = h.reshape(-1, C)
            sent = np.empty_like(h)
            kernel = _nb()._nb_fixed_leaky_rows if fixed else _nb()._nb_leaky_rows
            messages = kernel(rows, b, _NO_NOISE_ROWS if noise is None else noise.reshape(rows.shape),
                              noise is not None, slope, sent.reshape(rows.shape), grid_values)
            return sent, None, int(messages)
        shape = (B, H // s, W // s, C)
        sent = np.empty(shape, dtype=DTYPE)
        index = np.empty(shape, dtype=np.int8) if pool == "max" else _NO_INDEX
        kernel = _nb()._nb_fixed_leaky_pool if fixed else _nb()._nb_leaky_pool
        messages = kernel(h.reshape(image), np.tile(b, W), _NO_NOISE if noise is None else noise.reshape(image),
                          noise is not None, slope, sent, index, s, DTYPE(1.0 / (s * s)), pool == "max",
                          np.empty(W * C, dtype=DTYPE), grid_values)
        return sent, index if pool == "max" else None, int(messages)
    add_rows_(h, b)
    if noise is not None:
        h += noise
    if fixed:
        h[...] = to_grid(h, *state_grid)
    out = leaky_relu(h, slope)
    if fixed:
        out = to_grid(out, *out_grid)
    messages = count_nonzero(out)
    if pool is None:
        return out, None, messages
    if pool == "avg":
        return avg_pool(out.reshape(image), s), None, messages
    return (*max_pool(out.reshape(image), s), messages)


_NO_NOISE, _NO_NOISE_ROWS = np.zeros((1, 1, 1, 1), dtype=DTYPE), np.zeros((1, 1), dtype=DTYPE)  # unread
_NO_INDEX = np.zeros((1, 1, 1, 1), dtype=np.int8)  # avg pooling keeps no offsets


# ------------------------------------------------------------------ rows and columns
def add_rows_(h: np.ndarray, b: np.ndarray) -> np.ndarray:
    """h (n, m) += b (m,) on every row, in place; returns h."""
    if _fused(h, b) and h.ndim == 2 and b.shape == h.shape[1:]:
        _nb()._nb_add_rows(h, b)
    else:
        h += b
    return h


def minus_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a (n, m) − b (m,) on every row, as a new array."""
    if _fused(a, b) and a.ndim == 2 and b.shape == a.shape[1:]:
        out = np.empty_like(a)
        _nb()._nb_minus_rows(a, b, out)
        return out
    return a - b


def column_sum(e: np.ndarray) -> np.ndarray:
    """e (n, m) summed over its rows, (m,) float32, in numpy's order: row after row for m > 1
    (how numpy reduces a C-ordered array over axis 0), numpy's own pairwise sum for one column."""
    if _fused(e) and e.ndim == 2 and len(e) > 0 and e.shape[1] > 1:
        out = np.empty(e.shape[1], dtype=DTYPE)
        _nb()._nb_column_sum(e, out)
        return out
    return e.sum(axis=0, dtype=DTYPE)


def scale_rows_(x: np.ndarray, scale: np.ndarray, repeat: int = 1) -> np.ndarray:
    """x (n, m) with row i times scale[i // repeat], in place (scale (n / repeat,)); returns x."""
    scale = np.ascontiguousarray(scale, dtype=DTYPE).reshape(-1)
    if len(scale) * repeat != len(x):
        raise ValueError(f"scale_rows_: {len(scale)} scales × {repeat} for {len(x)} rows")
    if _fused(x) and x.ndim == 2:
        _nb()._nb_scale_rows(x, scale, repeat)
    else:
        x *= np.repeat(scale, repeat)[:, None]
    return x


def nonzero_indices(x: np.ndarray) -> np.ndarray:
    """The flat indices of x's nonzero entries (−0.0 counts as zero), ascending: np.flatnonzero,
    skipping blocks without one (a write that moved ~0.1 % of an array's devices)."""
    if not _fused(x):
        return np.flatnonzero(x)
    out = np.empty(x.size, dtype=np.int64)
    return out[:_nb()._nb_nonzero_indices(x.reshape(-1), out)]


def count_nonzero(x: np.ndarray) -> int:
    """How many entries of x are nonzero (−0.0 counts as zero), in one pass without a temporary."""
    if _fused(x):
        return int(_nb()._nb_count_nonzero(x.reshape(-1)))
    return int(np.count_nonzero(x != 0))
