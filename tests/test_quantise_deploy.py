"""The fixed-point mapping for Lava, without Lava: rounding is unbiased, folding is exact."""

import numpy as np

from neurodecorr.backends.sigma_delta import emulate, integer_ann, parallel_streams, quantise
from neurodecorr.nets.fold import FoldedLayer


def test_quantised_weights_are_unbiased_and_on_lavas_grid():
    rng = np.random.default_rng(0)
    W = rng.normal(0, 0.03, (300, 400))
    net = quantise([FoldedLayer(W, np.zeros(300), "identity")])
    layer = net.layers[0]
    assert np.all(layer.weights % 2 == 0)  # mixed signs: Lava keeps even mantissas
    error = layer.weights * 2.0 ** layer.weight_exp - W
    step = 2 * 2.0 ** layer.weight_exp
    assert abs(error.mean()) < 0.01 * step  # nearest rounding, not a floor
    assert np.abs(error).max() <= step / 2 + 1e-12


def test_one_message_per_neuron_reproduces_the_integer_network():
    """A single-layer net receives its input once: sigma-delta equals the closed form exactly."""
    rng = np.random.default_rng(1)
    net = quantise([FoldedLayer(rng.normal(0, 0.2, (7, 5)), rng.normal(0, 0.3, 7), "identity")])
    x_int = net.encode(rng.normal(0, 1, (20, 5)))
    out = emulate(net, parallel_streams(x_int, 3))
    np.testing.assert_array_equal(out[-1].T, integer_ann(net, x_int))
