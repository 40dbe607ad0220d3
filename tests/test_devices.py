"""Device behaviour: quantisers, stochastic rounding, noise and drift laws, tiles, range
adaptation and training through each chip. (The engine's maths on the ideal device is held
against an independent float64 implementation in `test_engine_reference.py`.)"""

import json
from dataclasses import replace

import numpy as np
import pytest

from neurodecorr import TrainConfig, keys, train
from neurodecorr.devices import CrossbarDevice, DigitalDevice, IdealDevice
from neurodecorr.devices.crossbar import pcm_drift, pcm_program_sigma, pcm_read_sigma
from neurodecorr.devices.loader import default_spec
from neurodecorr.devices.profile import Profile
from neurodecorr.devices.quantise import block_float, fixed_point, stochastic_round, to_grid

F32 = np.float32


# ------------------------------------------------------------------ quantisers
@pytest.mark.parametrize("bits,frac", [(8, 4), (16, 8), (24, 12)])
def test_fixed_point_is_idempotent_on_grid_and_in_range(bits, frac, rng):
    x = (rng.standard_normal(10000) * 2.0 ** (bits - frac)).astype(F32)
    q = fixed_point(x, bits, frac)
    np.testing.assert_array_equal(fixed_point(q, bits, frac), q)
    step = 2.0 ** -frac
    np.testing.assert_array_equal(q / step, np.rint(q / step))
    assert q.max() <= (2 ** (bits - 1) - 1) * step and q.min() >= -(2 ** (bits - 1)) * step
    inside = np.abs(x) < (2 ** (bits - 1) - 1) * step
    assert np.max(np.abs(q[inside] - x[inside])) <= step / 2 + 1e-6 * np.abs(x[inside]).max()
    assert q.dtype == np.float32


def test_block_float_keeps_the_mantissa_width_and_is_idempotent(rng):
    e = (rng.standard_normal(5000) * 1e-3).astype(F32)
    q = block_float(e, 8)
    np.testing.assert_array_equal(block_float(q, 8), q)
    assert len(np.unique(q)) <= 2 ** 8
    assert np.max(np.abs(q - e)) <= np.max(np.abs(e)) / 127
    stochastic = block_float(q, 8, rng)
    np.testing.assert_array_equal(stochastic, q)  # on-grid values never move


def test_stochastic_rounding_is_unbiased():
    """E[round(x)] = x: for 200,000 draws the mean is within 5 standard errors of x."""
    rng = np.random.default_rng(7)
    n = 200_000
    for x in (0.1, 0.37, 2.5, -1.8, 5.999):
        draws = stochastic_round(np.full(n, x, dtype=F32), rng)
        frac = x - np.floor(x)
        stderr = np.sqrt(frac * (1 - frac) / n)
        assert abs(draws.mean() - x) < 5 * stderr + 1e-6
        assert set(np.unique(draws)) <= {np.floor(x), np.floor(x) + 1}


def test_to_grid_clips_to_its_range():
    q = to_grid(np.array([-10, -0.26, 0.26, 10], F32), 0.25, -1.0, 0.75)
    np.testing.assert_array_equal(q, [-1.0, -0.25, 0.25, 0.75])


# ------------------------------------------------------------------ digital chip
DIGITAL = Profile("d", "", "digital", digital=default_spec("digital"))


def test_digital_install_puts_weights_on_an_8_bit_grid(rng):
    dev = DigitalDevice(DIGITAL, rng)
    W = (rng.standard_normal((30, 40)) * 0.05).astype(F32)
    dev.install(keys.W(0), W)
    step = 2.0 ** dev.exponents[keys.W(0)]
    mant = W / step
    np.testing.assert_array_equal(mant, np.rint(mant))
    assert np.abs(mant).max() <= 128
    assert np.abs(mant).max() * step * 2 >= 0.9 * np.abs(W).max()  # headroom 2: half the range used


def test_digital_small_updates_survive_only_with_stochastic_rounding(rng):
    W = np.full((200, 200), 0.5, dtype=F32)
    for rounding, expect_change in (("nearest", False), ("stochastic", True)):
        profile = replace(DIGITAL, digital=default_spec("digital", rounding=rounding))
        dev = DigitalDevice(profile, np.random.default_rng(0))
        w = W.copy()
        dev.install(keys.W(0), w)
        step = 2.0 ** dev.exponents[keys.W(0)]
        start = w.copy()
        for _ in range(20):
            dev.write(w, np.full_like(w, 0.1 * step), keys.W(0))  # a tenth of a step, 20 times
        moved = float(np.mean(start - w))
        if expect_change:
            assert moved == pytest.approx(2 * step, rel=0.1)  # 20 × 0.1 steps on average
        else:
            assert moved == 0.0


def test_digital_state_saturates_at_its_width():
    dev = DigitalDevice(DIGITAL)
    top = (2 ** 23 - 1) * 2.0 ** -12
    np.testing.assert_array_equal(dev.state(np.array([1e9, -1e9, 1.0], F32)), [top, -top - 2.0 ** -12, 1.0])


# ------------------------------------------------------------------ crossbars
def _pcm(**crossbar):
    return Profile("p", "", "crossbar", crossbar=default_spec("crossbar", **crossbar), pcm=default_spec("pcm"))


def _rram(**rram):
    return Profile("r", "", "crossbar", crossbar=default_spec("crossbar", technology="rram"),
                   rram=default_spec("rram", **rram))


def test_pcm_read_noise_has_the_stated_variance(rng):
    """With a fine DAC/ADC and no output noise, the spread of repeated reads is Σ_j x_j² σ_ij²."""
    profile = _pcm(dac_bits=24, adc_bits=24, output_noise=0.0, output_bound=100.0, tile_size=1000)
    dev = CrossbarDevice(profile, np.random.default_rng(1))
    W = (rng.uniform(-1, 1, (3, 50))).astype(F32)
    dev.install(keys.W(0), W)
    x = np.repeat(rng.uniform(-1, 1, (1, 50)).astype(F32), 20000, axis=0)
    x[:, 0] = 1.0  # max |x| = 1: no input rescaling
    y = dev.mvm(x, W, keys.W(0))
    g = np.abs(W) / dev.scales[keys.W(0)]
    sigma = g * pcm_read_sigma(g, profile.pcm.t0_s, profile.pcm.t_read_s) * dev.scales[keys.W(0)]
    expected_sd = np.sqrt((x[0] ** 2 * sigma ** 2).sum(axis=1))
    np.testing.assert_allclose(y.std(axis=0), expected_sd, rtol=0.05)
    np.testing.assert_allclose(y.mean(axis=0), x[0] @ W.T, atol=5 * expected_sd.max() / np.sqrt(20000))


@pytest.mark.parametrize("decorrelation", ["array", "residual"])
@pytest.mark.parametrize("scope", ["read", "step"])
def test_pcm_read_noise_follows_the_writes(rng, decorrelation, scope):
    """σ is kept per device and updated where a write moved devices (and anew on a rescale):
    after every write it is σ recomputed from the stored weights, and reads use it."""
    profile = _pcm(decorrelation=decorrelation, read_noise_scope=scope, dac_bits=24, adc_bits=24,
                   output_noise=0.0, output_bound=1e3)
    dev = CrossbarDevice(profile, np.random.default_rng(2))
    R = (np.eye(40) + 0.05 * rng.standard_normal((40, 40))).astype(F32)
    key = keys.R(1)
    dev.install(key, R)
    x = np.eye(40, dtype=F32)  # one-hot rows: each read returns a column, with its devices' noise
    for step in range(30):
        dev.begin_step()
        dev.mvm(x, R, key)
        size = 0.3 if step == 10 else 2e-3  # step 10 leaves the range: the scale is reset
        dev.write(R, (size * rng.standard_normal(R.shape)).astype(F32), key)
        values = dev._values(R, key)
        fresh = dev._read_sigma(np.abs(values) / F32(dev.scales[key]))
        kept = dev._device_sigma(values, key)
        np.testing.assert_allclose(kept[1], fresh, rtol=1e-6, atol=1e-12)
        if kept[2] is not None:
            np.testing.assert_allclose(kept[2], fresh * fresh, rtol=2e-6, atol=1e-18)
    # the devices' own σ reaches the reads: the spread of one-hot reads is σ times the scale
    reads = np.stack([dev.mvm(x, R, key) for _ in range(400 if scope == "read" else 1)])
    if scope == "read":
        spread = reads.std(axis=0).T  # (n_out, n_in), as the devices sit
        np.testing.assert_allclose(np.median(spread / (fresh * dev.scales[key])), 1.0, rtol=0.05)


def test_pcm_read_noise_law():
    g = np.array([0.0005, 0.1, 0.5, 1.0], F32)
    s = pcm_read_sigma(g, 20.0, 250e-9)
    factor = np.sqrt(np.log((20.0 + 250e-9) / (2 * 250e-9)))
    np.testing.assert_allclose(s, np.minimum(0.2, 0.0088 / np.maximum(g ** 0.65, 1e-3)) * factor, rtol=1e-5)
    assert s[0] == pytest.approx(0.2 * factor, rel=1e-5)  # capped


def test_pcm_drift_follows_its_power_law():
    rng = np.random.default_rng(3)
    g = np.full(200_000, 0.5, F32)
    t, t0 = 3600.0, 20.0
    g_t = pcm_drift(g, t, t0, rng)
    nu = -np.log(g_t / g) / np.log((t + t0) / t0)
    mu = np.clip(-0.0155 * np.log(0.5) + 0.0244, 0.049, 0.1)
    sd = np.clip(-0.0125 * np.log(0.5) - 0.0059, 0.008, 0.045)
    assert nu.mean() == pytest.approx(mu, rel=0.02)
    assert nu.std() == pytest.approx(sd, rel=0.05)
    np.testing.assert_allclose(pcm_drift(g[:10], 0.0, t0, rng), g[:10], rtol=1e-6)  # no drift at t = 0


def test_pcm_programming_noise_and_drift_compensation(rng):
    """A fresh chip programmed with differential pairs: the active device's programming noise,
    and the idle one's, programmed toward 0 and clipped there (|noise|, half the time 0)."""
    profile = _pcm(dac_bits=24, adc_bits=24, output_noise=0.0, output_bound=100.0, tile_size=1000)
    profile = replace(profile, pcm=replace(profile.pcm, read_noise=False, drift=False))
    dev = CrossbarDevice(profile, np.random.default_rng(2))
    W = np.full((400, 500), 0.4, F32)
    dev.install(keys.W(0), W)
    view = dev.inference()
    assert view.folds_for_inference
    programmed = view._program(W, keys.W(0))[1] / view.scales[keys.W(0)]
    g = 1 / profile.crossbar.weight_headroom  # the largest weight fills 1/headroom of g_max
    active, idle = (float(pcm_program_sigma(np.array([v]), profile.pcm.prog_noise_us)[0]) for v in (g, 0.0))
    expected = np.sqrt(active**2 + idle**2 * (0.5 - 1 / (2 * np.pi)))  # var of max(0, N(0, s))
    assert programmed.std() == pytest.approx(expected, rel=0.05)
    assert programmed.mean() == pytest.approx(g - idle / np.sqrt(2 * np.pi), abs=0.002)
    zero = np.zeros((400, 500), F32)
    zero[0, 0] = 0.4  # a pair at zero is unbiased: its two idle devices cancel on average
    assert abs(view._program(zero, keys.W(1))[1][1:].mean()) < 1e-4
    drifting = CrossbarDevice(replace(profile, pcm=replace(profile.pcm, drift=True, drift_compensation=False)),
                              np.random.default_rng(2))
    drifting.install(keys.W(0), W)
    compensated = CrossbarDevice(replace(profile, pcm=replace(profile.pcm, drift=True)), np.random.default_rng(2))
    compensated.install(keys.W(0), W)
    lost = drifting.inference()._program(W, keys.W(0))[1].mean() / W.mean()
    kept = compensated.inference()._program(W, keys.W(0))[1].mean() / W.mean()
    # an hour of drift at g = 0.8 (ν ≈ 0.049): ((3600 + 20)/20)^(−0.049) ≈ 0.78 of the conductance
    assert lost == pytest.approx(((3600 + 20) / 20) ** -0.049, rel=0.02)
    assert kept == pytest.approx(1.0, abs=0.02)


def test_partial_sums_are_digitised_per_tile(rng):
    """Two tiles whose partial sums each fit the ADC range although their total does not."""
    profile = _pcm(dac_bits=24, adc_bits=24, output_noise=0.0, output_bound=12.0, tile_size=256)
    profile = replace(profile, pcm=replace(profile.pcm, read_noise=False))
    dev = CrossbarDevice(profile, rng)
    W = np.full((1, 512), 1.0, F32)
    dev.install(keys.W(0), W)
    x = np.zeros((1, 512), F32)
    x[0, :10] = 1.0
    x[0, 256:266] = 1.0
    y = dev.mvm(x, W, keys.W(0))  # each tile: 10 × (1/1.25) = 8 < 12; total 20 in device units
    assert y[0, 0] == pytest.approx(20.0, rel=1e-4)
    one_tile = CrossbarDevice(replace(profile, crossbar=replace(profile.crossbar, tile_size=512)), rng)
    one_tile.install(keys.W(0), W)
    assert one_tile.mvm(x, W, keys.W(0))[0, 0] == pytest.approx(12.0 * 1.25, rel=1e-4)  # clipped


def test_dac_quantises_inputs_to_its_levels(rng):
    profile = _pcm(dac_bits=3, adc_bits=24, output_noise=0.0, output_bound=100.0)
    profile = replace(profile, pcm=replace(profile.pcm, read_noise=False))
    dev = CrossbarDevice(profile, rng)
    W = np.eye(8, dtype=F32)
    dev.install(keys.W(0), W)
    x = np.linspace(-1, 1, 8, dtype=F32)[None, :]
    y = dev.mvm(x, W, keys.W(0))
    np.testing.assert_allclose(y[0], np.rint(x[0] * 3) / 3, atol=2e-5)  # 3 bits: levels k/3 (± half an ADC step)


def test_rram_pulses_follow_soft_bounds_and_cycle_noise():
    r = dict(dw_min=0.01, dw_min_dtod=0.0, dw_min_ctoc=0.3, up_down=0.0, up_down_dtod=0.0)
    dev = CrossbarDevice(_rram(**r), np.random.default_rng(5))
    W = np.zeros((300, 300), F32)
    dev.install(keys.W(0), W)
    W[...] = 0.5 * dev.scales[keys.W(0)]  # device weight 0.5
    scale = dev.scales[keys.W(0)]
    dev.write(W, np.full_like(W, -4 * 0.01 * scale), keys.W(0))  # asks for +4 pulses
    change = W / scale - 0.5
    step = 0.01 * (1 - 0.5 / 1.25)
    assert change.mean() == pytest.approx(4 * step, rel=0.02)
    assert change.std() == pytest.approx(0.3 * step * 2, rel=0.05)  # ctoc · step · √4


def test_rram_weights_stay_within_bounds():
    profile = _rram(dw_min=0.05)
    profile = replace(profile, crossbar=replace(profile.crossbar, adapt_range=False))
    dev = CrossbarDevice(profile, np.random.default_rng(5))
    W = np.zeros((50, 50), F32)
    dev.install(keys.W(0), W)
    W[...] = 0.1 * dev.scales[keys.W(0)]
    for _ in range(50):
        dev.write(W, np.full_like(W, -1.0), keys.W(0))  # far beyond max_pulses each time
    w = W / dev.scales[keys.W(0)]
    assert w.max() <= 1.25 + 1e-6 and w.min() >= -0.75 - 1e-6 and w.mean() > 1.0


# ------------------------------------------------------------------ the ideal device
def test_ideal_device_operations_are_exact_identities(rng):
    dev = IdealDevice()
    x = rng.standard_normal((4, 5)).astype(F32)
    W = rng.standard_normal((3, 5)).astype(F32)
    np.testing.assert_array_equal(dev.mvm(x, W, keys.W(0)), x @ W.T)
    np.testing.assert_array_equal(dev.mvm_t(x[:, :3], W, keys.W(0)), x[:, :3] @ W)
    assert dev.activation(x) is x and dev.state(x) is x and dev.signal(x) is x
    before = W.copy()
    dev.write(W, x[:3], keys.W(0))
    np.testing.assert_array_equal(W, before - x[:3])


# ------------------------------------------------------------------ training through each chip
@pytest.mark.parametrize("profile,floor", [("loihi2", 0.85), ("analog-pcm", 0.6), ("analog-rram", 0.7)])
def test_each_shipped_chip_trains_digits_well_above_chance(profile, floor, digits):
    cfg = TrainConfig(dataset="digits", profile=profile, rule="bp", decor="none", epochs=3,
                      batch_size=32, lr=3e-4)
    result = train(cfg, data=digits, progress=False, log=lambda s: None)
    assert result.epochs[-1]["test_accuracy"] >= floor  # chance is 0.1
    if profile == "loihi2":  # the trained weights are still on their 8-bit grids
        dev = result.learner.net.device
        for i, layer in enumerate(result.learner.net.layers):
            mant = layer.W / 2.0 ** dev.exponents[keys.W(i)]
            np.testing.assert_array_equal(mant, np.rint(mant))
            assert np.abs(mant).max() <= 128


@pytest.mark.parametrize("profile", ["loihi2", "analog-pcm", "analog-rram"])
def test_resume_on_a_device_equals_uninterrupted(profile, digits, tmp_path):
    cfg = TrainConfig(dataset="digits", profile=profile, rule="fa", decor="seed", epochs=2,
                      batch_size=64, lr=3e-4, decor_lr=1e-4)
    whole = train(cfg, tmp_path / "whole", data=digits, progress=False, log=lambda s: None)
    train(TrainConfig(**{**cfg.to_dict(), "epochs": 1}), tmp_path / "split", data=digits,
          progress=False, log=lambda s: None)
    resumed = train(cfg, tmp_path / "split", resume=True, data=digits, progress=False, log=lambda s: None)
    key = lambda r: (r["train_loss"], r["test_accuracy"])  # noqa: E731
    assert [key(r) for r in resumed.epochs] == [key(r) for r in whole.epochs]
    config = json.loads((tmp_path / "whole" / "config.json").read_text())
    assert config["profile"]["name"] == profile and config["train"]["profile"] == profile


# ------------------------------------------------------------------ range adaptation
def test_digital_exponent_adapts_instead_of_saturating():
    dev = DigitalDevice(DIGITAL, np.random.default_rng(0))
    W = np.eye(4, dtype=F32)
    dev.install(keys.R(0), W)
    before = dev.exponents[keys.R(0)]
    dev.write(W, -9.0 * np.eye(4, dtype=F32), keys.R(0))  # the diagonal grows to 10 (range ±4)
    np.testing.assert_allclose(np.diag(W), 10.0, rtol=0.02)
    assert dev.exponents[keys.R(0)] > before
    fixed = DigitalDevice(replace(DIGITAL, digital=default_spec("digital", adapt_range=False)),
                          np.random.default_rng(0))
    W2 = np.eye(4, dtype=F32)
    fixed.install(keys.R(0), W2)
    fixed.write(W2, -9.0 * np.eye(4, dtype=F32), keys.R(0))
    assert np.diag(W2).max() < 4.0  # saturated at the fixed range


def test_crossbar_scale_adapts_instead_of_clipping():
    profile = _rram(dw_min=1e-4, dw_min_dtod=0.0, dw_min_ctoc=0.0, up_down_dtod=0.0,
                    soft_bounds=False, max_pulses=100000)
    for adapt, grows in ((True, True), (False, False)):
        p = replace(profile, crossbar=replace(profile.crossbar, adapt_range=adapt))
        dev = CrossbarDevice(p, np.random.default_rng(0))
        W = np.full((3, 3), 0.5, F32)
        dev.install(keys.W(0), W)
        dev.write(W, np.full_like(W, -1.0), keys.W(0))  # to 1.5: beyond the installed range
        assert (abs(W.mean() - 1.5) < 0.01) == grows


def test_crossbar_products_do_not_depend_on_the_dac_range(rng):
    for bound in (1.0, 2.0):
        profile = _pcm(dac_bits=16, adc_bits=24, output_noise=0.0, output_bound=1000.0, input_bound=bound)
        profile = replace(profile, pcm=replace(profile.pcm, read_noise=False))
        dev = CrossbarDevice(profile, rng)
        W = rng.uniform(-1, 1, (4, 6)).astype(F32)
        dev.install(keys.W(0), W)
        x = rng.uniform(-1, 1, (3, 6)).astype(F32)
        np.testing.assert_allclose(dev.mvm(x, W, keys.W(0)), x @ W.T, rtol=1e-3, atol=1e-3)


def test_a_rescaling_write_is_counted_once():
    from neurodecorr.energy import Counts

    profile = _rram(dw_min=1e-4, dw_min_dtod=0.0, dw_min_ctoc=0.0, up_down_dtod=0.0,
                    soft_bounds=False, max_pulses=100000)
    dev = CrossbarDevice(profile, np.random.default_rng(0), Counts())
    W = np.full((3, 3), 0.5, F32)
    dev.install(keys.W(0), W)
    dev.write(W, np.full_like(W, -1.0), keys.W(0))  # rescales: all 9 devices reprogrammed
    assert dev.counter.total(kind="synapse_writes") == 9
