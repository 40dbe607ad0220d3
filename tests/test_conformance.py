"""One shared check for every registered component, the scikit-learn way: every device kind
(each with the shipped profiles of its kind), every credit-assignment and decorrelation rule and
every optimiser implements its protocol and keeps its contract. A new device, rule or optimiser
added to its registry is checked here without a new test."""

import numpy as np
import pytest

from neurodecorr import TrainConfig, keys
from neurodecorr.devices import DEVICE_KINDS, Device, make_device
from neurodecorr.devices.loader import load_profile, profile_names
from neurodecorr.energy import Counts
from neurodecorr.engine.optim import OPTIMIZERS, Optimizer
from neurodecorr.rules import CREDIT_RULES, DECOR_RULES, CreditRule, DecorRule

F32 = np.float32
PROFILES = {name: load_profile(name) for name in profile_names()}


def test_every_device_kind_has_a_shipped_profile():
    assert set(DEVICE_KINDS) == {p.kind for p in PROFILES.values()}


def _device(name, seed=0, counter=None):
    return make_device(PROFILES[name], np.random.default_rng(seed), counter)


def _arrays(seed=0):
    rng = np.random.default_rng(seed)
    W = (rng.uniform(-0.3, 0.3, (40, 300))).astype(F32)  # 300 inputs: two crossbar tiles
    x = rng.standard_normal((16, 300)).astype(F32)
    e = (1e-2 * rng.standard_normal((16, 40))).astype(F32)
    return W, x, e


def _installed(name, seed=0, counter=None):
    dev = _device(name, seed, counter)
    W, x, e = _arrays()
    installed = W.copy()
    dev.install(keys.W(0), installed)
    return dev, W, installed, x, e


def _correlation(a, b):
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_device_implements_the_protocol(name):
    dev = _device(name)
    assert isinstance(dev, Device) and isinstance(dev.inference(), Device)
    assert isinstance(dev, DEVICE_KINDS[PROFILES[name].kind])


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_device_install_keeps_shape_dtype_and_values(name):
    _, W, installed, _, _ = _installed(name)
    assert installed.shape == W.shape and installed.dtype == F32
    # on the device's grid, near where it was: an 8-bit grid with headroom 2 moves a weight by at
    # most half a step, 1/254 of twice the largest weight; the others do not move it
    assert np.max(np.abs(installed - W)) <= np.max(np.abs(W)) / 100 * 2


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_device_products_are_the_products_it_stores(name):
    dev, W, installed, x, e = _installed(name)
    y, back = dev.mvm(x, installed, keys.W(0)), dev.mvm_t(e, installed, keys.W(0))
    assert y.shape == (16, 40) and back.shape == (16, 300)
    assert y.dtype == F32 and back.dtype == F32
    assert _correlation(y, x @ installed.T) > 0.99
    assert _correlation(back, e @ installed) > 0.99
    if PROFILES[name].kind != "crossbar":  # digital products of on-grid values are exact
        np.testing.assert_allclose(y, x @ installed.T, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_device_signals_are_float32_and_idempotent(name):
    dev, _, _, x, e = _installed(name)
    for method, value in ((dev.activation, x), (dev.state, x), (dev.signal, e)):
        once = method(value)
        assert once.shape == value.shape and once.dtype == F32
        np.testing.assert_array_equal(method(once), once)  # a value on the grid stays there


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_device_write_moves_the_array_toward_the_target(name):
    dev, _, installed, _, _ = _installed(name)
    before = installed.copy()
    rng = np.random.default_rng(4)
    delta = (0.05 * rng.standard_normal(installed.shape)).astype(F32)
    dev.write(installed, delta, keys.W(0))
    assert installed.dtype == F32
    # pulsed RRAM (device-to-device and cycle-to-cycle spread, soft bounds) is the least exact
    assert _correlation(before - installed, delta) > 0.8
    bias = np.zeros(40, F32)
    dev.install(keys.b(0), bias)
    dev.write(bias, np.full(40, -0.25, F32), keys.b(0))
    np.testing.assert_allclose(bias, 0.25, atol=0.01)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_a_device_with_repeatable_products_repeats_them_and_counts_a_repeat_as_a_product(name):
    """`repeatable_products`: the same operands give the same bits again (for R too, where a
    residual or sliced R adds counts of its own), and `count_product` counts what `mvm` counts;
    a device whose reads are noisy does not claim it."""
    counted, skipped = Counts(), Counts()
    dev, _, installed, x, _ = _installed(name, counter=counted)
    repeatable = getattr(dev, "repeatable_products", False)
    assert repeatable is (PROFILES[name].kind != "crossbar")
    if not repeatable:
        return
    R = np.eye(300, dtype=F32) + np.float32(0.01) * np.random.default_rng(2).standard_normal((300, 300), dtype=F32)
    dev.install(keys.R(0), R)
    for key, M in ((keys.W(0), installed), (keys.R(0), R)):
        first = dev.mvm(x, M, key)
        np.testing.assert_array_equal(dev.mvm(x, M, key), first)
        dev.counter = skipped
        dev.count_product(x, M, key)
        dev.counter = counted
    half = {k: n // 2 for k, n in counted.table.items()}  # each product ran twice
    assert skipped.table == half and counted.products.keys() == skipped.products.keys()


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_device_reports_to_the_counter_it_was_given(name):
    counts = Counts()
    dev, _, installed, x, e = _installed(name, counter=counts)
    with counts.during("inference"):
        dev.mvm(x, installed, keys.W(0))
    with counts.during("feedback"):
        dev.mvm_t(e, installed, keys.W(0))
    with counts.during("weight_update"):
        dev.write(installed, np.full_like(installed, 0.01), keys.W(0))
    assert counts.total("inference", "dense_synops", "0") == 16 * 300 * 40
    assert counts.total("feedback", "dense_synops", "0") == 16 * 40 * 300
    assert counts.total("weight_update", "written_synapses", "0") == installed.size
    assert 0 < counts.total("weight_update", "synapse_writes", "0") <= installed.size
    silent, _, quiet, _, _ = _installed(name)  # the default counter counts nothing, and works
    silent.mvm(x, quiet, keys.W(0))


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_device_state_round_trips_and_reseeding_repeats_its_noise(name):
    dev, _, installed, x, _ = _installed(name)
    dev.write(installed, np.full_like(installed, 0.01), keys.W(0))
    state = dev.state_arrays()
    fresh = _device(name, seed=99)
    fresh.load_state_arrays(state)
    restored = fresh.state_arrays()
    assert sorted(restored) == sorted(state)
    for k in state:
        np.testing.assert_array_equal(restored[k], state[k], err_msg=k)
    outputs = []
    for device in (dev, fresh):
        device.reseed(np.random.default_rng(7))
        outputs.append(device.mvm(x, installed, keys.W(0)))
    np.testing.assert_array_equal(outputs[0], outputs[1])


@pytest.mark.parametrize("name", sorted(CREDIT_RULES))
def test_credit_rules_implement_the_protocol(name):
    rule = CREDIT_RULES[name].from_config(TrainConfig(rule=name))
    assert isinstance(rule, CreditRule) and rule.name == name


@pytest.mark.parametrize("name", sorted(DECOR_RULES))
def test_decorrelation_rules_implement_the_protocol(name):
    rule = DECOR_RULES[name].from_config(TrainConfig(decor=name))
    assert isinstance(rule, DecorRule) and rule.name == name


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizers_implement_the_protocol(name):
    opt = OPTIMIZERS[name].from_config(TrainConfig(optimizer=name, lr=0.1))
    assert isinstance(opt, Optimizer)
    opt.next_step()
    step = opt.step(keys.W(0), np.ones((2, 3), F32))
    assert step.shape == (2, 3) and step.dtype == F32 and np.all(step > 0)
