"""The optimisers against their equations, computed independently in float64."""

import numpy as np
import pytest

from neurodecorr import keys
from neurodecorr.engine.optim import SGD, Adam


def test_adam_matches_its_equations():
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(5)]
    opt = Adam(lr=1e-2, betas=(0.9, 0.99), eps=1e-8)
    m = v = np.zeros((3, 4))
    for t, g in enumerate(grads, start=1):
        opt.next_step()
        step = opt.step(keys.W(0), g.copy())
        m = 0.9 * m + 0.1 * g
        v = 0.99 * v + 0.01 * g.astype(np.float64) ** 2
        expected = 1e-2 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.99**t)) + 1e-8)
        np.testing.assert_allclose(step, expected, rtol=1e-5)
        assert step.dtype == np.float32


def test_sgd_momentum_matches_its_equations():
    opt = SGD(lr=0.5, momentum=0.9)
    g1, g2 = np.ones(3, np.float32), np.full(3, 2, np.float32)
    np.testing.assert_allclose(opt.step(keys.W(0), g1.copy()), 0.5)
    np.testing.assert_allclose(opt.step(keys.W(0), g2.copy()), 0.5 * (0.9 + 2))
    plain = SGD(lr=0.5, momentum=0.0)
    np.testing.assert_allclose(plain.step(keys.W(0), g2.copy()), 1.0)


def test_adam_state_is_per_synapse_array():
    opt = Adam(lr=1.0)
    opt.next_step()
    opt.step(keys.W(0), np.ones(2, np.float32))
    opt.step(keys.W(1), np.ones(3, np.float32))
    assert {"layer0.W.m", "layer0.W.v", "layer1.W.m", "layer1.W.v", "t"} == set(opt.state)
    assert int(opt.state["t"]) == 1
    with pytest.raises(ValueError):
        opt.step(keys.W(0), np.ones(3, np.float32))  # a shape change for the same synapses is a bug
