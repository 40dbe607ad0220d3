"""Each decorrelation rule, run alone on strongly correlated data, decorrelates it to near the
finite-sample floor and reaches the fixed point README gives ("The science in the engine")."""

import numpy as np
import pytest

from neurodecorr.nets.network import build_network, forward
from neurodecorr.nets.spec import NetSpec
from neurodecorr.numerics import DTYPE
from neurodecorr.rules import DECOR_RULES
from neurodecorr.rules.decorrelation import subsample_size

D = 16
N_EVAL = 20000
FLOOR = np.sqrt(2 / np.pi) / np.sqrt(N_EVAL)  # mean |r| of independent units over N_EVAL samples


class Source:
    """Correlated inputs: a shared hidden cause plus mixing, mean 2, per-unit std 0.5 … 3."""

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)
        mix = 0.3 * self.rng.standard_normal((D, D)) + 1.0
        self.mix = mix / np.sqrt(np.diag(mix @ mix.T))[:, None]
        self.scales = np.linspace(0.5, 3, D)

    def __call__(self, n):
        s = self.rng.standard_normal((n, D))
        return ((s @ self.mix.T) * self.scales + 2.0).astype(DTYPE)


def mean_abs_offdiag_corr(z):
    c = np.corrcoef(z, rowvar=False)
    return np.abs(c[~np.eye(len(c), dtype=bool)]).mean()


def run_rule(rule, steps=3000):
    source = Source()
    net = build_network(NetSpec("one", (), "mse", "all"), D, 2, True, np.random.default_rng(1))
    state = rule.init_state(net)
    for _ in range(steps):
        rule.update(net, forward(net, source(256), track_mean=True), state)
    test = source(N_EVAL)
    return test, forward(net, test)[0].x


# (rule settings, steps): learning rates chosen for this data's spectrum (largest eigenvalue ≈ 40)
CASES = {
    "seed": (dict(lr=1e-3), 3000),
    "cpi": (dict(lr=2e-2), 3000),
    "whiten": (dict(lr=3e-3), 8000),
    "zca": (dict(every=20), 400),
}


def run_case(name):
    settings, steps = CASES[name]
    return run_rule(DECOR_RULES[name](**settings), steps)


@pytest.mark.parametrize("name", sorted(DECOR_RULES))
def test_rule_decorrelates_to_near_the_floor(name):
    test, z = run_case(name)
    before, after = mean_abs_offdiag_corr(test), mean_abs_offdiag_corr(z)
    assert before > 0.85
    assert after < 5 * FLOOR, f"{name}: {before:.3f} → {after:.4f} (floor {FLOOR:.4f})"
    assert z.dtype == np.float32


def test_seed_rule_converges_to_covariance_proportional_to_identity():
    test, z = run_case("seed")
    var = z.var(axis=0)
    assert var.std() / var.mean() < 0.05  # one common variance …
    # … set by the global gain g = mean(‖a − μ‖/‖z‖): z keeps the centred input's typical norm
    centred = test - test.mean(axis=0)
    ratio = np.mean(np.linalg.norm(centred, axis=1) / np.linalg.norm(z - z.mean(axis=0), axis=1))
    assert ratio == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("name", ["whiten", "zca"])
def test_whitening_rules_reach_unit_variance(name):
    _, z = run_case(name)
    np.testing.assert_allclose(z.var(axis=0), 1.0, atol=0.2)


def test_rules_learn_from_the_stated_subsample():
    assert subsample_size(256, 0.1) == 26
    assert subsample_size(5, 1.0) == 5


def test_seed_update_costs_two_thin_products_not_a_cubic_one(monkeypatch):
    """C R is formed as Zᵀ(Z R)/n: no d×d covariance matrix is ever materialised."""
    from neurodecorr.rules import decorrelation

    shapes = []
    real = decorrelation.local_outer

    def spy(mod, pre, out=None):
        shapes.append((mod.shape, pre.shape))
        return real(mod, pre, out)

    monkeypatch.setattr(decorrelation, "local_outer", spy)
    net = build_network(NetSpec("one", (), "mse", "all"), D, 2, True, np.random.default_rng(1))
    rule = DECOR_RULES["seed"](lr=1e-3)
    rule.update(net, forward(net, Source()(256), track_mean=True), {})
    assert shapes == [((26, D), (26, D))]


@pytest.mark.parametrize("side", ["left", "right"])
def test_the_seed_rule_writes_its_change_in_one_pass_on_a_plain_device(side):
    """On the ideal device (its write is R − delta) the seed rule forms its change and subtracts
    it in one pass: the same R, bit for bit, and the same counted writes as forming the change
    and handing it to a device's write."""
    from neurodecorr.devices.ideal import IdealDevice
    from neurodecorr.energy import Counts
    from neurodecorr.nets.spec import spec_from_dict
    from neurodecorr.rules.decorrelation import Seed

    class Writing(IdealDevice):  # not plain_writes: the rule hands it the change
        def write(self, array, delta, key):
            super().write(array, delta, key)

    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 12)).astype(DTYPE) @ rng.standard_normal((12, 12)).astype(DTYPE)
    results = []
    for device in (IdealDevice(counter=Counts()), Writing(counter=Counts())):
        net = build_network(spec_from_dict({"hidden": [{"width": 9}]}), 12, 3, True, np.random.default_rng(1))
        net.install(device)
        rule = Seed(lr=0.05, side=side)
        for _ in range(3):
            rule.update(net, forward(net, x, track_mean=True), {})
        results.append(([l.R.copy() for l in net.layers], dict(device.counter.table)))
    assert IdealDevice().plain_writes and not Writing().plain_writes
    (R1, c1), (R2, c2) = results
    for a, b in zip(R1, R2):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, np.eye(len(a)))
    assert c1 == c2 and sum(n for k, n in c1.items() if k[2] == "synapse_writes") > 0
