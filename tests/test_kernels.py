"""The fused kernels (`neurodecorr.kernels`) against their pure-numpy versions, in the same run.

Where numba is installed (it is a dependency) the public functions run the compiled kernels and
the `_np_*` functions are the fallback that `NEURODECORR_KERNELS=numpy` selects; both must give
the same float32 values. Without numba both sides are numpy and the checks still hold.
"""

from __future__ import annotations

import numpy as np
import pytest

from neurodecorr import kernels
from neurodecorr.devices.quantise import stochastic_round, to_grid
from neurodecorr.numerics import DTYPE

F32 = np.float32


@pytest.fixture
def x():
    rng = np.random.default_rng(7)
    return (rng.standard_normal(50_001) * 10).astype(DTYPE)


def test_backend_is_numba_where_installed():
    pytest.importorskip("numba")
    assert kernels.BACKEND == ("numpy" if kernels._choice == "numpy" else "numba")


def test_bad_backend_name_is_refused(monkeypatch):
    import importlib

    monkeypatch.setenv(kernels.KERNELS_ENV, "fortran")
    with pytest.raises(ValueError, match="NEURODECORR_KERNELS='fortran'"):
        importlib.reload(kernels)
    monkeypatch.delenv(kernels.KERNELS_ENV)
    importlib.reload(kernels)


def test_adam_matches_numpy(x):
    m, v = x[::-1].copy() * F32(0.1), np.abs(x) * F32(0.01)
    ours = [a.copy() for a in (x, m, v)]
    ref = [a.copy() for a in (x, m, v)]
    kernels.adam_(*ours, 0.9, 0.999, 1e-3, 1e-8)
    kernels._np_adam(*ref, F32(0.9), F32(0.999), F32(1e-3), F32(1e-8))
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=0)


def test_adam_leaves_non_contiguous_arrays_to_numpy(x):
    g = x.reshape(-1, 3)[:, :2]  # a strided view: flattening it would copy, so numpy updates it
    m, v = np.zeros_like(g), np.zeros_like(g)
    before = g.copy()
    kernels.adam_(g, m, v, 0.9, 0.999, 1e-3, 1e-8)
    np.testing.assert_allclose(m, F32(0.1) * before, rtol=1e-6)


@pytest.mark.parametrize("stochastic", [False, True])
def test_to_grid_matches_numpy_bit_for_bit(x, stochastic):
    key = np.uint64(2024) if stochastic else None
    ours = kernels.to_grid(x, 0.25, -100, 90, key)
    ref = kernels._np_to_grid(x, 0.25, -100, 90, key)
    assert ours.dtype == DTYPE and np.array_equal(ours, ref)
    assert ours.min() == -25.0 and ours.max() == 22.5  # clipped to [lo, hi] steps


def test_stochastic_rounding_is_unbiased_and_reproducible():
    x = np.full(400_000, 0.3, dtype=DTYPE)
    a = stochastic_round(x, np.random.default_rng(1))
    assert set(np.unique(a)) == {0.0, 1.0}
    assert abs(a.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / x.size)
    assert np.array_equal(a, stochastic_round(x, np.random.default_rng(1)))
    assert not np.array_equal(a, stochastic_round(x, np.random.default_rng(2)))
    g = to_grid(np.full(100_000, 0.1, DTYPE), 0.25, -1, 1, np.random.default_rng(3))
    assert abs(g.mean() - 0.1) < 4 * 0.25 * np.sqrt(0.4 * 0.6 / g.size)


def test_uniforms_are_uniform():
    u = kernels.uniforms(1_000_000, np.uint64(99))
    assert u.dtype == DTYPE and 0 <= u.min() and u.max() < 1
    counts = np.histogram(u, bins=16, range=(0, 1))[0]
    expected = u.size / 16
    assert np.sum((counts - expected) ** 2 / expected) < 45  # χ², 15 dof: p ≈ 1e-4
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 5e-3  # neighbours independent


def test_half_is_float16_rounding(x):
    special = np.array([0, -0.0, 2**-14, 2**-15 * 1.5, 2**-25, 3e-8, 65504, 65519, 65520, -70000,
                        np.inf, -np.inf, 1 + 2**-11, 1 + 3 * 2**-11], dtype=DTYPE)
    a = np.concatenate([x * F32(1000), x * F32(1e-6), x * F32(1e-9), special])
    with np.errstate(over="ignore"):
        ref = a.astype(np.float16).astype(DTYPE)
    assert np.array_equal(kernels.half(a), ref)
    assert np.array_equal(np.signbit(kernels.half(a)), np.signbit(ref))  # -0.0 and -inf kept
    assert np.isnan(kernels.half(np.array([np.nan, -np.nan], DTYPE))).all()
    with np.errstate(over="ignore"):  # scaled by a power of two, rounded, scaled back
        assert np.array_equal(kernels.half(a, 2.0**10), (a * F32(1024)).astype(np.float16).astype(DTYPE) / F32(1024))


def test_leaky_relu_and_its_derivative_match_numpy(x):
    slope = F32(0.01)
    assert np.array_equal(kernels.leaky_relu(x, slope), kernels._np_leaky(x, slope))
    signal = np.random.default_rng(0).standard_normal(x.shape).astype(DTYPE)
    ref = signal.copy()
    kernels._np_leaky_back(x, ref, slope)
    assert np.array_equal(kernels.times_leaky_derivative_(x, signal.copy(), slope), ref)
    h = np.array([np.nan, 0.0, -1.0], DTYPE)
    assert np.isnan(kernels.times_leaky_derivative_(h, np.ones(3, DTYPE), slope)[0])


def test_accumulator_and_pulses_match_numpy(x):
    change = x * F32(1e-3)
    acc_ours, acc_ref = np.zeros_like(x), np.zeros_like(x)
    for limit in (3, np.iinfo(np.int32).max):
        n_ours = kernels.accumulate_pulses_(acc_ours, change, 0.002, limit)
        n_ref = kernels._np_accumulate(acc_ref, change, F32(0.002), F32(limit))
        assert np.array_equal(n_ours, n_ref) and np.array_equal(acc_ours, acc_ref)
    assert np.abs(n_ours).max() > 0 and np.abs(acc_ours).max() < 0.002
    w_ours, w_ref = np.tanh(x), np.tanh(x)
    moved = kernels.pulse_(w_ours, n_ours, 0.01, 0.3, np.random.default_rng(4), (-1, 1))
    key = kernels.draw_key(np.random.default_rng(4))
    kernels._np_pulse(w_ref, n_ours, F32(0.01), F32(0.3), key, F32(-1), F32(1))
    assert moved == np.count_nonzero(n_ours) and np.array_equal(w_ours, w_ref)
    assert np.abs(w_ours).max() <= 1


def test_max_abs_diff(x):
    y = x[::-1].copy()
    assert kernels.max_abs_diff(x, y) == float(np.max(np.abs(x - y)))
    y[10] = np.nan
    assert np.isnan(kernels.max_abs_diff(x, y))
    assert kernels.max_abs_diff(x[:0], y[:0]) == 0.0


@pytest.mark.parametrize("n", [1, 7, 8, 9, 23, 64])
def test_max_abs_diff_finds_the_peak_and_a_nan_at_every_position(n):
    """The kernel takes its maximum over bit patterns: the largest entry, or a NaN (which wins,
    as in numpy's max, also when a larger value follows it), wherever it sits; the same for
    `max_abs` of one array."""
    rng = np.random.default_rng(n)
    a, b = rng.standard_normal(n).astype(DTYPE), rng.standard_normal(n).astype(DTYPE)
    for i in range(n):
        top = a.copy()
        top[i] = 100.0
        assert kernels.max_abs_diff(top, b) == float(np.max(np.abs(top - b)))
        assert kernels.max_abs(-top) == float(np.max(np.abs(top)))
        bad = top.copy()
        bad[i] = np.nan
        bad[(i + 1) % n] = 1e30 if n > 1 else bad[0]  # a larger value after the NaN
        assert np.isnan(kernels.max_abs_diff(bad, b))
        assert np.isnan(kernels.max_abs(bad))
        inf = top.copy()
        inf[i] = -np.inf
        assert kernels.max_abs(inf) == kernels.max_abs_diff(inf, b) == np.inf
    assert kernels.max_abs(a[:0]) == 0.0


def test_seed_delta_matches_numpy(x):
    R, grad = x.reshape(-1, 1)[:50_000].reshape(250, 200), x[:50_000].reshape(250, 200)[::-1].copy()
    ref = grad.copy()
    kernels._np_seed_delta(R, ref, F32(1.01), F32(1e-4))
    assert np.array_equal(kernels.seed_delta_(R, grad, 1.01, 1e-4), ref)


def test_seed_step_is_the_change_then_the_plain_write(x):
    """One pass, the same bits as `seed_delta_` and R − delta, its count the deltas' nonzeros
    (a gain of 1 and a zero gradient change nothing); a Fortran-ordered R takes the numpy path."""
    R = x.reshape(-1, 1)[:50_000].reshape(250, 200).copy()
    grad = x[:50_000].reshape(250, 200)[::-1].copy()
    grad[:10] = 0
    for gain in (1.01, 1.0):
        delta = kernels.seed_delta_(R, grad.copy(), gain, 1e-4)
        for layout in (np.ascontiguousarray, np.asfortranarray):
            ours = layout(R.copy())
            assert kernels.seed_step_(ours, grad.copy(), gain, 1e-4) == np.count_nonzero(delta)
            assert np.array_equal(ours, R - delta)
    assert 0 < np.count_nonzero(kernels.seed_delta_(R, grad.copy(), 1.0, 1e-4)) < R.size


@pytest.mark.parametrize("diag", [False, True])
@pytest.mark.parametrize("key", [None, np.uint64(11)])
def test_grid_write_matches_numpy(diag, key):
    rng = np.random.default_rng(8)
    step = 2.0 ** -7
    array = (np.round(rng.standard_normal((300, 300)) * 20) * step).astype(DTYPE)
    if diag:
        array += np.eye(300, dtype=DTYPE)
    delta = (rng.standard_normal((300, 300)) * step).astype(DTYPE)
    ours, ref = array.copy(), array.copy()
    moved = kernels.grid_write_(ours, delta, step, -128, 127, key, diag)
    assert moved == kernels._np_grid_write(ref, delta, F32(step), F32(-128), F32(127), key, diag)
    assert np.array_equal(ours, ref) and 0 < moved < array.size
    offset = np.eye(300, dtype=DTYPE) if diag else 0
    assert kernels.max_abs_diff(array, delta, diag) == float(np.max(np.abs(array - offset - delta)))


@pytest.mark.parametrize("key", [None, np.uint64(11)])
def test_the_flat_grid_write_stores_the_bits_of_the_row_by_row_one(key):
    """Without the identity the write runs as one flat loop: the same bits as the row-by-row
    kernel, signed zeros included (a value rounded to −0.0 is stored as +0.0 by both)."""
    pytest.importorskip("numba")
    from neurodecorr import _compiled

    rng = np.random.default_rng(9)
    step = 2.0 ** -7
    array = (np.round(rng.standard_normal((64, 37)) * 3) * step).astype(DTYPE)
    delta = (rng.standard_normal((64, 37)) * step).astype(DTYPE)
    delta[:8] = array[:8] + F32(1e-4) * step  # these round to −0.0
    flat, rows = array.copy(), array.copy()
    moved = kernels.grid_write_(flat, delta, step, -128, 127, key)
    k = np.uint64(0) if key is None else key
    assert moved == _compiled._nb_grid_write(rows, delta, F32(step), F32(-128), F32(127), k, key is not None, False)
    assert np.array_equal(flat.view(np.uint32), rows.view(np.uint32))
    assert not np.signbit(flat[:8][flat[:8] == 0]).any()


def test_normals_are_standard_normal_and_match_the_fallback():
    from scipy import stats

    z = kernels.normals((1000, 2000), np.random.default_rng(3))
    assert z.shape == (1000, 2000) and z.dtype == DTYPE
    x = z.ravel().astype(np.float64)
    assert abs(x.mean()) < 4 / np.sqrt(x.size) and abs(x.std() - 1) < 0.005
    assert stats.kstest(x[:200_000], "norm").pvalue > 1e-3
    for c in (1, 2, 3, 4):  # the tails, each within 5 binomial standard deviations
        p = 2 * stats.norm.sf(c)
        assert abs(np.mean(np.abs(x) > c) - p) < 5 * np.sqrt(p * (1 - p) / x.size), c
    assert np.abs(x).max() < 6.764  # the smallest uniform is 2^-33: √(66 ln 2) = 6.7637
    fallback = kernels._np_normals(x.size, kernels.draw_key(np.random.default_rng(3)))
    assert np.array_equal(z.ravel(), fallback)
    assert np.array_equal(z, kernels.normals((1000, 2000), np.random.default_rng(3)))
    scaled = kernels.normals((1000, 2000), np.random.default_rng(3), 1e-3)  # NP's σ ξ, in the same pass
    assert np.array_equal(scaled, z * F32(1e-3))


def test_normals_are_box_muller_of_their_bits_to_float32_precision():
    """The float32 series for ln u, sin and cos give √(−2 ln u)·cos θ and √(−2 ln u)·sin θ of
    the same uniforms as float64's library functions do, to a few float32 rounding steps, in the
    tails and at the quadrants' edges too; each block of 32 elements takes 16 draws' cosines,
    then their sines."""
    index = np.arange(2_000_000, dtype=np.uint64)
    key = np.uint64(12345)
    ours = kernels._np_normals_at(index, key).astype(np.float64)
    draw = (index >> np.uint64(5)) * np.uint64(16) + (index & np.uint64(15))
    with np.errstate(over="ignore"):
        z = kernels._mix(draw * kernels._GOLDEN + key)
    top, low = (z >> np.uint64(40)).astype(F32), ((z >> np.uint64(32)) & np.uint64(255)).astype(F32)
    u = ((top + (low + F32(0.5)) * F32(2.0**-8)) * F32(2.0**-24)).astype(np.float64)  # u as drawn, in float32
    theta = ((z >> np.uint64(8)) & np.uint64(0xFFFFFF)).astype(np.float64) * (2 * np.pi / 2**24)
    sine = (index & np.uint64(16)) != 0
    exact = np.sqrt(-2 * np.log(u)) * np.where(sine, np.sin(theta), np.cos(theta))
    assert sine.mean() == 0.5
    assert np.max(np.abs(ours - exact)) < 2e-6  # 0.9e-6 measured, at |ξ| = 4.2
    assert np.max(np.abs(ours - exact) / np.maximum(np.abs(exact), 1)) < 1e-6


def test_compiled_normals_match_at_every_alignment():
    """Kernels draw a row's normals from any start (a tile row of 784 outputs starts mid-block):
    the blocks of 32 a pair at a time, the ends one at a time, the same values as the stream."""
    key = kernels.draw_key(np.random.default_rng(7))
    stream = kernels._np_normals(3000, key)
    parts = np.zeros((2, 3, 97), DTYPE)  # rows of 97 start 0, 1, … 5 past a block of 32
    got = kernels.adc_sum(parts, np.random.default_rng(7), inv_scale=1, bound=100, step=2.0**-20,
                          noise_sd=1.0)
    expected = np.rint(stream[:2 * 3 * 97].reshape(2, 3, 97) / F32(2.0**-20)) * F32(2.0**-20)
    np.testing.assert_allclose(got, expected.sum(axis=0), rtol=0, atol=1e-5)
    short = kernels.adc_sum(np.zeros((1, 4, 7), DTYPE), np.random.default_rng(7), inv_scale=1, bound=100,
                            step=2.0**-20, noise_sd=1.0)  # rows of 7 inside one block of 32
    np.testing.assert_allclose(short.ravel(), np.rint(stream[:28] / F32(2.0**-20)) * F32(2.0**-20), atol=1e-5)
    W = np.zeros(9000, DTYPE)  # add_noise's chunks of 4096 and a tail
    noisy = kernels.add_noise(W, np.ones_like(W), 1.0, np.random.default_rng(8))
    assert np.array_equal(noisy, kernels._np_normals(9000, kernels.draw_key(np.random.default_rng(8))))


@pytest.mark.parametrize("var_shape", [None, "entry", "row"])
def test_adc_sum_is_the_adc_of_the_same_normals(var_shape):
    rng = np.random.default_rng(6)
    parts = rng.standard_normal((3, 40, 50)).astype(DTYPE)
    var = {None: None, "entry": parts * parts * F32(0.01),
           "row": np.abs(parts[:, :, :1]) * F32(0.02)}[var_shape]
    row_scale = rng.uniform(0.5, 2.0, (40, 1)).astype(DTYPE)
    ours = kernels.adc_sum(parts, np.random.default_rng(1), inv_scale=0.5, bound=1.0, step=0.01,
                           noise_sd=0.06, var=var, sd_factor=0.5, row_scale=row_scale)
    sd = F32(0.06) * F32(0.5) if var is None else np.sqrt(var + F32(0.06 ** 2)) * F32(0.5)
    noise = kernels.normals(parts.shape, np.random.default_rng(1)) * sd
    ref = kernels._np_adc_sum(parts * F32(0.5), noise, F32(1.0), F32(0.01)) * row_scale
    assert ours.shape == (40, 50) and np.abs(ref).max() > 0.5
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="variance"):
        kernels.adc_sum(parts, rng, inv_scale=1, bound=1, step=0.1, noise_sd=0.1, var=parts[:, :2])
    with pytest.raises(ValueError, match="row scales"):  # one per row, not per output
        kernels.adc_sum(parts, rng, inv_scale=1, bound=1, step=0.1, noise_sd=0.1, row_scale=row_scale[:39])
    flat = kernels.adc_sum(parts, np.random.default_rng(1), inv_scale=0.5, bound=1.0, step=0.01,
                           noise_sd=0.06, var=var, sd_factor=0.5, row_scale=row_scale.ravel())
    assert np.array_equal(flat, ours)  # (B,) or (B, 1): each row's scale


def test_add_noise_and_dac_match_numpy():
    rng = np.random.default_rng(9)
    W = rng.standard_normal((60, 70)).astype(DTYPE)
    sd = np.abs(W) * F32(0.05)
    ours = kernels.add_noise(W, sd, 2.0, np.random.default_rng(2))
    assert np.array_equal(ours, W + F32(2.0) * sd * kernels.normals(W.shape, np.random.default_rng(2)))
    x = W.copy()
    x[3] = 0
    xq, peak = kernels.dac(x, 63, 1.0)
    ref_peak = np.max(np.abs(x), axis=1, keepdims=True)
    ref_peak[ref_peak == 0] = 1
    assert np.array_equal(peak, ref_peak)
    assert np.array_equal(xq, np.rint(np.clip(x / ref_peak, -1, 1) * F32(63)) * F32(1 / 63))
    assert np.all(xq[3] == 0) and np.abs(xq).max() == 1
    xq2, peak2, squares = kernels.dac(x, 63, 1.0, squares=True)
    assert np.array_equal(xq2, xq) and np.array_equal(peak2, peak) and np.array_equal(squares, xq * xq)


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("sparse", [False, True])
def test_rram_pulses_match_numpy(soft, sparse):
    rng = np.random.default_rng(12)
    scale = F32(0.37)  # the array held in the crossbar's units: scale × the device weights
    w = (rng.uniform(-0.6, 0.6, (80, 90)) * scale).astype(DTYPE)
    n = np.rint(rng.standard_normal(w.shape) * 1.5).astype(DTYPE)
    if sparse:  # most of the kernel's blocks without a pulse (a decorrelation array's steps)
        n[rng.uniform(size=n.shape) > 0.002] = 0
    dw = np.abs(0.01 + 0.003 * rng.standard_normal(w.shape)).astype(DTYPE)
    ud = (0.05 * rng.standard_normal(w.shape)).astype(DTYPE)
    ours, ref = w.copy(), w.copy()
    moved = kernels.rram_pulse_(ours, n, dw, ud, soft, (-0.6, 0.6), 0.3, np.random.default_rng(1), scale)
    key = kernels.draw_key(np.random.default_rng(1))
    kernels._np_rram_pulse(ref, n, dw, ud, soft, F32(-0.6), F32(0.6), F32(0.3), key, scale)
    assert moved == np.count_nonzero(n) and np.array_equal(ours, ref)
    assert np.array_equal(ours[n == 0], w[n == 0]) and not np.array_equal(ours[n != 0], w[n != 0])
    assert np.abs(ours).max() <= F32(0.6) * scale * (1 + 1e-6)


@pytest.mark.parametrize("scale", [1.0, 0.043])
def test_sparse_pulses_match_numpy(scale):
    """A device without pulses is left exactly as it is, even outside the bounds (no conversion
    to device units and back); a pulsed one is converted, moved, clipped and converted back."""
    rng = np.random.default_rng(13)
    scale = F32(scale)
    w = (rng.uniform(-1.2, 1.2, 50_003) * scale).astype(DTYPE)  # some outside (-1, 1) × scale
    n = np.zeros_like(w)
    hit = rng.choice(w.size, 40, replace=False)
    n[hit] = rng.choice([-2, -1, 1, 3], 40).astype(DTYPE)
    ours, ref = w.copy(), w.copy()
    moved = kernels.pulse_(ours, n, 0.01, 0.3, np.random.default_rng(5), (-1, 1), scale)
    key = kernels.draw_key(np.random.default_rng(5))
    kernels._np_pulse(ref, n, F32(0.01), F32(0.3), key, F32(-1), F32(1), scale)
    assert moved == 40 and np.array_equal(ours, ref)
    assert np.array_equal(ours[n == 0], w[n == 0])
    z = kernels._np_normals_at(hit.astype(np.uint64), key)
    expected = np.clip(w[hit] / scale + (n[hit] * F32(0.01) + F32(0.3) * np.sqrt(np.abs(n[hit])) * F32(0.01) * z),
                       -1, 1) * scale
    assert np.array_equal(ours[hit], expected)


@pytest.mark.parametrize("fraction", [0.0, 0.001, 0.3])
def test_nonzero_indices_are_flatnonzero(fraction):
    rng = np.random.default_rng(14)
    x = np.where(rng.uniform(size=(301, 257)) < fraction, rng.standard_normal((301, 257)), 0).astype(DTYPE)
    x[0, :2] = (-0.0, np.nan)  # −0.0 is zero, NaN is not
    assert np.array_equal(kernels.nonzero_indices(x), np.flatnonzero(x != 0))
    assert np.array_equal(kernels.nonzero_indices(x != 0), np.flatnonzero(x != 0))  # any dtype


def test_pulse_noise_is_each_devices_normal_of_one_key():
    """Device i's cycle-to-cycle noise is normal i of the call's key: the same whichever other
    devices pulse (so a device's noise does not shift when another one's count changes)."""
    w = np.zeros(4000, DTYPE)
    n = np.zeros_like(w)
    n[::3] = 1
    kernels.pulse_(w, n, 0.01, 0.5, np.random.default_rng(8), (-1, 1))
    z = kernels.normals(w.shape, np.random.default_rng(8))
    np.testing.assert_allclose(w[::3], 0.01 + 0.5 * 0.01 * z[::3], rtol=1e-6, atol=1e-9)
    assert np.all(w[1::3] == 0) and np.all(w[2::3] == 0)


@pytest.mark.parametrize("per_device", [False, True])
def test_pulse_counts_round_stochastically_within_the_limit(per_device):
    rng = np.random.default_rng(3)
    change = (rng.standard_normal((60, 70)) * 0.05).astype(DTYPE)
    step = (np.abs(0.01 + 0.003 * rng.standard_normal(change.shape)).astype(DTYPE) if per_device
            else DTYPE(0.01))
    if per_device:  # devices with no step: divided by the floor, so at the limit, or 0 for no change
        step[0, :5] = 0
        change[0, 0] = 0  # 0 / 0 without the floor: NaN
    key = kernels.draw_key(np.random.default_rng(2))
    n = kernels.pulses(change, step, 3, key)
    # the same as stochastic rounding of change / step (the floored step), then the limit
    scaled = change / np.where(step > kernels.MIN_STEP, step, kernels.MIN_STEP)
    expected = np.clip(kernels.to_grid(scaled, 1.0, -np.inf, np.inf, key), -3, 3)
    assert np.array_equal(n, expected)
    assert np.array_equal(n, kernels._np_pulse_counts(change, np.asarray(step, DTYPE), F32(3), key))
    assert np.abs(n).max() == 3 and np.all(n == np.rint(n))
    if per_device:
        assert n[0, 0] == 0 and np.all(np.abs(n[0, 1:5]) == 3)
    else:  # unbiased: the mean count is the mean of change / step
        many = kernels.pulses(np.full(200_000, 0.0037, DTYPE), DTYPE(0.01), 3, key)
        assert many.mean() == pytest.approx(0.37, abs=0.005)


def test_adam_applied_to_the_weights_is_adam_then_the_subtraction(x):
    W = np.cos(x)
    m, v = np.zeros_like(x), np.zeros_like(x)
    step = kernels.adam_(x.copy(), m.copy(), v.copy(), 0.9, 0.999, 1e-3, 1e-8)
    fused = W.copy()
    assert np.array_equal(kernels.adam_(x.copy(), m, v, 0.9, 0.999, 1e-3, 1e-8, apply_to=fused), step)
    assert np.array_equal(fused, W - step)


@pytest.mark.parametrize("n", [1, 3, 9, 17])
def test_max_abs_diff_of_a_residual_array_at_every_position(n):
    """max |a − I − b|, row by row around the diagonal: the peak or a NaN wherever it sits."""
    rng = np.random.default_rng(n)
    a, b = (np.eye(n) + rng.standard_normal((n, n))).astype(DTYPE), rng.standard_normal((n, n)).astype(DTYPE)
    eye = np.eye(n, dtype=DTYPE)
    for i in range(n * n):
        top = a.copy()
        top.flat[i] = 100.0
        assert kernels.max_abs_diff(top, b, diag=True) == float(np.max(np.abs(top - eye - b)))
        top.flat[i] = np.nan
        assert np.isnan(kernels.max_abs_diff(top, b, diag=True))


def test_adam_applied_counts_the_entries_it_changed(x):
    """`adam_apply_` is `adam_` with the subtraction, and counts the step's nonzero entries (the
    synapse writes) in that pass: the count of the step itself, also with exact zeros in it."""
    W = np.cos(x)
    g = x.copy()
    g[::5] = 0.0  # no gradient and no moment: a zero step, no write
    m, v = np.zeros_like(x), np.zeros_like(x)
    step = kernels.adam_(g.copy(), m.copy(), v.copy(), 0.9, 0.999, 1e-3, 1e-8)
    fused, g2 = W.copy(), g.copy()
    changed = kernels.adam_apply_(g2, m, v, 0.9, 0.999, 1e-3, 1e-8, fused)
    assert np.array_equal(g2, step) and np.array_equal(fused, W - step)
    assert changed == np.count_nonzero(step) == x.size - len(x[::5])


def test_only_the_plain_subtraction_is_fused_into_the_optimiser():
    from neurodecorr.devices import DEVICE_KINDS

    # a device made without __init__: plain_writes depends on its class alone
    fused = {kind for kind, cls in DEVICE_KINDS.items() if object.__new__(cls).plain_writes}
    assert fused == {"ideal"}


@pytest.mark.parametrize("k, s, p, C", [(3, 1, 1, 1), (3, 2, 1, 16), (5, 1, 2, 4), (3, 1, 0, 8), (3, 3, 2, 6),
                                        (3, 1, 1, 3), (5, 2, 2, 1), (3, 2, 2, 2)])
def test_im2col_and_col2im_match_numpy(k, s, p, C):
    """Patches are copies (identical); their transpose sums in another order (within 1e-6).
    k·C below `kernels._RUN` (one channel, 3×3) takes numpy's copies; the rest the compiled
    kernel, short runs (3 channels, or one under a 5×5 kernel), padding and border (p up to
    k − 1) included."""
    assert (k * C >= kernels._RUN) == (C > 1 or k > 3)
    rng = np.random.default_rng(3)
    image = rng.standard_normal((3, 9, 8, C)).astype(F32)
    ho, wo = (9 + 2 * p - k) // s + 1, (8 + 2 * p - k) // s + 1
    rows = kernels.im2col(image, k, s, p, ho, wo)
    padded = np.pad(image, ((0, 0), (p, p), (p, p), (0, 0)))
    np.testing.assert_array_equal(rows, kernels._np_im2col(padded, k, s, ho, wo))
    back = kernels.col2im(rows, 3, (9, 8, C), k, s, p, ho, wo)
    ref = np.zeros_like(padded)
    kernels._np_col2im(rows, ref, k, s, ho, wo)
    np.testing.assert_allclose(back, ref[:, p:p + 9, p:p + 8], rtol=1e-6, atol=1e-6)


@pytest.fixture
def numpy_only(monkeypatch):
    """Within the test, every kernel takes its numpy fallback."""
    def run(f, *args):
        with monkeypatch.context() as m:
            m.setattr(kernels, "_HAVE_NUMBA", False)
            return f(*args)
    return run


@pytest.mark.parametrize("shape, s", [((3, 8, 8, 5), 2), ((2, 7, 9, 3), 2), ((2, 9, 7, 4), 3)])
def test_pooling_matches_numpy_bit_for_bit(numpy_only, shape, s):
    """Average and max pooling and their backward passes, windows that crop the image
    included; ties (small integers) go to the first offset in both."""
    rng = np.random.default_rng(5)
    y = rng.standard_normal(shape).astype(F32)
    ties = rng.integers(0, 3, shape).astype(F32)
    nans = y.copy()
    nans[0, 0, 0, 0] = nans[0, 1, 1, 1] = nans[-1, -1, 0, 0] = np.nan  # a NaN wins its window, as in numpy
    np.testing.assert_array_equal(kernels.avg_pool(y, s), numpy_only(kernels.avg_pool, y, s))
    for values in (y, ties, nans):
        top, index = kernels.max_pool(values, s)
        ref_top, ref_index = numpy_only(kernels.max_pool, values, s)
        np.testing.assert_array_equal(top, ref_top)
        np.testing.assert_array_equal(index, ref_index)
    g = rng.standard_normal(top.shape).astype(F32)
    for idx in (None, index):
        back = kernels.pool_back(g, idx, shape[1:], s)
        np.testing.assert_array_equal(back, numpy_only(kernels.pool_back, g, idx, shape[1:], s))
    cropped = kernels.pool_back(g, None, shape[1:], s)
    assert not cropped[:, shape[1] // s * s:].any() and not cropped[:, :, shape[2] // s * s:].any()


# a digital chip's neurons: state on 1/16 saturating at ±2, activations on 1/8 at ±2 (both hit)
FIXED_NEURONS = ((2.0 ** -4, -32.0, 31.0), (2.0 ** -3, -16.0, 15.0))


@pytest.mark.parametrize("grids", [(None, None), FIXED_NEURONS])
@pytest.mark.parametrize("shape, s", [((3, 8, 8, 5), 2), ((2, 7, 9, 3), 2), ((2, 9, 7, 4), 3), ((2, 28, 28, 16), 2)])
def test_fused_layer_neurons_match_the_kernels_one_by_one(numpy_only, shape, s, grids):
    """A layer's bias, NP's noise, state grid, leaky ReLU, activation grid, pooling and message
    count in one pass give the bits, offsets and count of `add_rows_`, +=, `to_grid`,
    `leaky_relu`, `to_grid`, `avg_pool`/`max_pool` and `count_nonzero` in numpy; NaNs, ties
    (h = −b: f = 0), saturation and cropped windows included."""
    rng = np.random.default_rng(8)
    C = shape[-1]
    b = rng.standard_normal(C).astype(F32)
    h = rng.standard_normal(shape).astype(F32)
    h.reshape(-1, C)[::7] = -b  # zero outputs, so that ties and the message count matter
    h.reshape(-1, C)[3::11] = 5.0  # beyond the grids' range
    h[0, 0, 0, 0] = h[-1, 1, 1, 0] = h[-1, -1, -1, -1] = np.nan
    noise = (1e-3 * rng.standard_normal(shape)).astype(F32)
    for pool in (None, "avg", "max"):
        for xi in (None, noise):
            rows = lambda: h.reshape(-1, C).copy()  # noqa: E731
            args = (F32(0.01), None if xi is None else xi.reshape(-1, C), shape, pool, s, grids)
            h1, h2 = rows(), rows()
            sent, index, messages = kernels.leaky_layer_(h1, b, *args)
            ref_sent, ref_index, ref_messages = numpy_only(kernels.leaky_layer_, h2, b, *args)
            np.testing.assert_array_equal(h1, h2)  # h itself, in place
            np.testing.assert_array_equal(sent, ref_sent)
            np.testing.assert_array_equal(index, ref_index)
            f = kernels._np_leaky(h2, F32(0.01))
            if grids != (None, None):
                f = kernels._np_to_grid(f, *grids[1], None)
            assert messages == ref_messages == np.count_nonzero(f)
            if grids[0] is not None:  # h on its grid, some of it saturated
                finite = h2[np.isfinite(h2)]
                assert np.array_equal(finite, np.rint(finite * 16) / 16) and finite.max() == F32(31 / 16)
                assert finite.min() == -2
            assert sent.shape == ((len(h1), C) if pool is None else (shape[0], shape[1] // s, shape[2] // s, C))


@pytest.mark.parametrize("shape, s", [((3, 8, 8, 5), 2), ((2, 7, 9, 3), 2), ((2, 28, 28, 16), 2)])
def test_pool_back_times_fprime_matches_the_kernels_one_by_one(numpy_only, shape, s):
    rng = np.random.default_rng(9)
    h = rng.standard_normal(shape).astype(F32)
    h[0, 0, 0, 0] = h[-1, 1, 0, 1] = np.nan  # f'(NaN) is NaN, also where no gradient arrives
    h[0, -1, -1, 0] = 0
    _, index = kernels.max_pool(h, s)
    g = rng.standard_normal(index.shape).astype(F32)
    for idx in (None, index):
        fused = kernels.pool_back_leaky(g, idx, h, s, 0.01)
        ref = numpy_only(kernels.pool_back_leaky, g, idx, h, s, 0.01)
        np.testing.assert_array_equal(fused, ref)
        one_by_one = kernels.times_leaky_derivative_(h, kernels.pool_back(g, idx, shape[1:], s), 0.01)
        np.testing.assert_array_equal(fused, one_by_one)


def test_rows_and_columns_match_numpy(numpy_only):
    rng = np.random.default_rng(6)
    e = rng.standard_normal((1001, 7)).astype(F32)
    b = rng.standard_normal(7).astype(F32)
    np.testing.assert_array_equal(kernels.column_sum(e), e.sum(axis=0))  # the same order
    np.testing.assert_array_equal(kernels.column_sum(e), numpy_only(kernels.column_sum, e))
    np.testing.assert_array_equal(kernels.add_rows_(e.copy(), b), e + b)
    scale = rng.standard_normal(143).astype(F32)
    np.testing.assert_array_equal(kernels.scale_rows_(e.copy(), scale, 7), np.repeat(scale, 7)[:, None] * e)
    np.testing.assert_array_equal(kernels.scale_rows_(e.copy(), scale, 7),
                                  numpy_only(kernels.scale_rows_, e.copy(), scale, 7))
    with pytest.raises(ValueError, match="143 scales × 3 for 1001 rows"):
        kernels.scale_rows_(e, scale, 3)


def test_count_nonzero_counts_negative_zero_as_zero(numpy_only):
    x = np.array([[0.0, -0.0, 1.0], [np.nan, -2.0, 0.0]], dtype=F32)
    assert kernels.count_nonzero(x) == numpy_only(kernels.count_nonzero, x) == 3
