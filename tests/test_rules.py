"""Conformance of every credit-assignment rule, BP against finite differences, locality."""

import numpy as np
import pytest

from neurodecorr import keys
from neurodecorr.engine.config import TrainConfig
from neurodecorr.engine.learner import make_learner
from neurodecorr.engine.step import train_step
from neurodecorr.nets.network import forward
from neurodecorr.nets.spec import HiddenSpec, NetSpec
from neurodecorr.numerics import DTYPE
from neurodecorr.rules import CREDIT_RULES, credit, plasticity

SPEC = NetSpec("t", (HiddenSpec(12, "leaky_relu"), HiddenSpec(9, "tanh")), "cross_entropy", "all")


def _learner(rule, decor="seed", spec=SPEC, n_in=7, n_classes=4):
    return make_learner(TrainConfig(rule=rule, decor=decor), spec, n_in, n_classes)


def _perturb_R(learner, rng):
    """Give the decorrelation matrices and means non-trivial values."""
    for layer in learner.net.layers:
        if layer.R is not None:
            layer.R += (0.2 * rng.standard_normal(layer.R.shape)).astype(DTYPE)
            layer.mu[:] = rng.standard_normal(layer.mu.shape)


@pytest.mark.parametrize("rule", sorted(CREDIT_RULES))
def test_modulators_have_layer_shapes_and_float32(rule, rng):
    learner = _learner(rule)
    x = rng.standard_normal((5, 7)).astype(DTYPE)
    y = rng.integers(0, 4, 5)
    traces = forward(learner.net, x)
    mods = learner.credit.modulators(learner.net, traces, y, learner.credit_state, rng)
    assert len(mods) == len(learner.net.layers)
    for e, layer in zip(mods, learner.net.layers):
        assert e.shape == (5, layer.shape.n_out)
        assert e.dtype == np.float32
        assert np.all(np.isfinite(e))


def _loss(learner, x, y):
    out = forward(learner.net, x)[-1].h.astype(np.float64)
    return learner.net.loss.per_sample(out, y).mean()


@pytest.mark.parametrize("decor", ["none", "seed"])
def test_bp_matches_finite_differences(decor, rng):
    learner = _learner("bp", decor)
    _perturb_R(learner, rng)
    x = rng.standard_normal((6, 7)).astype(DTYPE)
    y = rng.integers(0, 4, 6)
    traces = forward(learner.net, x)
    mods = learner.credit.modulators(learner.net, traces, y, {}, rng)
    for l, layer in enumerate(learner.net.layers):
        grad = plasticity.local_outer(mods[l], traces[l].x)
        for i, j in [(0, 0), (1, 2), (layer.W.shape[0] - 1, layer.W.shape[1] - 1)]:
            # float32 forward: central differences with a step where rounding stays small
            step, old = 1e-2, layer.W[i, j]
            layer.W[i, j] = old + step
            up = _loss(learner, x, y)
            layer.W[i, j] = old - step
            down = _loss(learner, x, y)
            layer.W[i, j] = old
            numeric = (up - down) / (2 * step)
            assert grad[i, j] == pytest.approx(numeric, rel=2e-2, abs=2e-4), (l, i, j)


def test_fa_and_dfa_feedback_matrices_stay_fixed(digits):
    for rule in ("fa", "dfa"):
        learner = make_learner(TrainConfig(rule=rule, lr=1e-3), _small_spec(), 64, 10)
        before = {k: v.copy() for k, v in learner.credit_state.items()}
        assert before, "feedback alignment must own fixed feedback matrices"
        W_before = learner.net.layers[1].W.copy()
        rng = np.random.default_rng(0)
        for _ in range(20):
            idx = rng.integers(0, len(digits.y_train), 32)
            train_step(learner, digits.x_train[idx], digits.y_train[idx], rng, {})
        for k, v in learner.credit_state.items():
            np.testing.assert_array_equal(v, before[k])
        assert not np.array_equal(learner.net.layers[1].W, W_before)
        if rule == "fa":  # B is not W and is not tied to it
            assert not np.allclose(learner.credit_state[keys.B(1)], learner.net.layers[1].W)


def _small_spec():
    return NetSpec("s", (HiddenSpec(32, "leaky_relu"),), "cross_entropy", "all")


def test_np_uses_no_backward_pass(monkeypatch, digits):
    def forbidden(*a, **k):
        raise AssertionError("node perturbation must not propagate errors backwards")

    monkeypatch.setattr(credit, "propagate_back", forbidden)
    learner = make_learner(TrainConfig(rule="np"), _small_spec(), 64, 10)
    rng = np.random.default_rng(0)
    idx = np.arange(32)
    train_step(learner, digits.x_train[idx], digits.y_train[idx], rng, {})
    assert not learner.credit.uses_backward


@pytest.mark.parametrize("centre", ["running", "batch"])
def test_np_noisy_pass_centres_as_the_clean_pass(centre, rng):
    """Without noise, the noisy pass is the clean pass exactly: δL = 0 whatever the centring."""
    learner = make_learner(TrainConfig(rule="np", decor="seed", decor_centre=centre), SPEC, 7, 4)
    x = rng.standard_normal((9, 7)).astype(DTYPE)
    clean = forward(learner.net, x, track_mean=True)
    zeros = [np.zeros_like(t.h) for t in clean]
    again = forward(learner.net, x, noise=zeros, means=[t.mean for t in clean])
    np.testing.assert_array_equal(again[-1].h, clean[-1].h)
    if centre == "batch":  # the running mean is not what the clean pass used
        assert not np.array_equal(forward(learner.net, x, noise=zeros)[-1].h, clean[-1].h)


@pytest.mark.parametrize("decor", ["none", "seed"])
def test_np_modulators_estimate_the_gradient(decor, rng):
    """Averaged over many noise draws, NP's modulators approach BP's (unbiased estimate)."""
    learner = _learner("np", decor)
    _perturb_R(learner, rng)
    x = np.repeat(rng.standard_normal((1, 7)).astype(DTYPE), 20000, axis=0)
    y = np.repeat(rng.integers(0, 4, 1), 20000)
    traces = forward(learner.net, x)
    np_mods = learner.credit.modulators(learner.net, traces, y, {}, rng)
    bp_mods = credit.BP().modulators(learner.net, traces, y, {}, rng)
    for e_np, e_bp in zip(np_mods, bp_mods):
        est, true = e_np.mean(axis=0), e_bp[0]
        cos = est @ true / (np.linalg.norm(est) * np.linalg.norm(true))
        assert cos > 0.9


def test_every_synapse_changes_only_through_the_device_write(monkeypatch, digits):
    """Locality by construction: the device's write is the only code that changes W, b or R —
    or, on a device whose write is the plain subtraction, the optimiser's step applied in the
    pass that forms it, which the device is told of (`written`)."""
    for rule in sorted(CREDIT_RULES):
        learner = make_learner(TrainConfig(rule=rule, decor="seed", lr=1e-3), _small_spec(), 64, 10)
        written = set()
        device = learner.net.device
        real, real_written = device.write, device.written

        def spy(synapses, delta, key, written=written, real=real):
            written.add(id(synapses))
            real(synapses, delta, key)

        def spy_written(synapses, delta, key, written=written, real=real_written):
            written.add(id(synapses))
            real(synapses, delta, key)

        monkeypatch.setattr(device, "write", spy)
        monkeypatch.setattr(device, "written", spy_written)
        before = {k: v.copy() for k, v in learner.net.arrays().items()}
        idx = np.arange(64)
        train_step(learner, digits.x_train[idx], digits.y_train[idx], np.random.default_rng(0), {})
        for name, arr in learner.net.arrays().items():
            if name.endswith(".mu"):
                continue  # running statistics, not synapses
            changed = not np.array_equal(arr, before[name])
            assert changed, f"{rule}: {name} did not learn"
            assert id(arr) in written, f"{rule}: {name} changed outside plasticity.write"


def test_local_outer_scales_the_product_when_that_is_exact(rng):
    """For a power-of-two divisor, scaling the small product instead of the tall modulator gives
    the same bits; otherwise the modulator is scaled first."""
    from neurodecorr.rules.plasticity import local_outer

    e = rng.standard_normal((4096, 16)).astype(np.float32)
    x = rng.standard_normal((4096, 9)).astype(np.float32)
    for n in (64, 48):
        np.testing.assert_array_equal(local_outer(e, x, samples=n), (e * np.float32(1.0 / n)).T @ x)
    out = np.empty((16, 9), np.float32)
    assert local_outer(e, x, out=out) is out
