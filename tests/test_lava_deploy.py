"""The fixed-point emulator against Lava itself: identical payloads and activations at every step."""

import importlib.util

import numpy as np
import pytest

from neurodecorr.backends.sigma_delta import (IntLayer, IntNet, emulate, lava_weight_grid,
                                              parallel_streams, sample_stream)

lava = pytest.mark.skipif(importlib.util.find_spec("lava") is None, reason="lava-nc not installed")
pytestmark = [pytest.mark.lava, lava]


def _random_net(rng, sign):
    sizes = [int(rng.integers(2, 10)) for _ in range(int(rng.integers(2, 5)))]
    layers = []
    for i in range(len(sizes) - 1):
        raw = rng.integers(-300, 300, (sizes[i + 1], sizes[i]))
        if sign == "excitatory":
            raw = np.abs(raw)
        elif sign == "inhibitory":
            raw = -np.abs(raw)
        layers.append(IntLayer(lava_weight_grid(raw), int(rng.integers(-4, 3)),
                               rng.integers(-3000, 3000, sizes[i + 1]).astype(np.int32),
                               relu=bool(rng.integers(0, 2)) or i < len(sizes) - 2))
    return IntNet(tuple(layers), frac_bits=6, vth=int(rng.choice([0, 1, 7, 60]))), sizes[0]


@pytest.mark.parametrize("seed,sign", [(0, "mixed"), (1, "mixed"), (2, "excitatory"),
                                       (3, "inhibitory"), (4, "mixed"), (5, "excitatory")])
def test_emulator_matches_lava_step_by_step(seed, sign):
    from neurodecorr.backends.lava_run import run_lava

    rng = np.random.default_rng(seed)
    net, n_in = _random_net(rng, sign)
    stream = rng.integers(-3000, 3000, (n_in, 30)).astype(np.int32)
    stream[rng.random(stream.shape) < 0.5] = 0  # sparse input events
    lava_out, lava_trace = run_lava(net, stream, record=True)
    emu_out, emu_trace = emulate(net, stream, record=True)
    np.testing.assert_array_equal(lava_out, emu_out)
    for i in range(len(net.layers)):
        np.testing.assert_array_equal(lava_trace.s_out[i], emu_trace.s_out[i], err_msg=f"s_out {i}")
        np.testing.assert_array_equal(lava_trace.act[i], emu_trace.act[i], err_msg=f"act {i}")
    assert any(np.abs(t).sum() for t in emu_trace.s_out)  # the network did send something


def test_emulator_matches_lava_when_int32_wraps():
    """Sums beyond 2^31 wrap around in Lava's int32 arithmetic; the emulator wraps alike."""
    from neurodecorr.backends.lava_run import run_lava

    W = lava_weight_grid(np.full((2, 4), 254))
    net = IntNet((IntLayer(W, 2, np.zeros(2, np.int32), relu=False),), frac_bits=0, vth=0)
    stream = np.zeros((4, 6), np.int32)
    stream[:, 0] = 2**22  # 4 × 254 × 2^22 × 2^2 overflows int32
    stream[:, 3] = -(2**21)
    lava_out = run_lava(net, stream)
    emu_out = emulate(net, stream)
    np.testing.assert_array_equal(lava_out, emu_out)
    exact = 4 * 254 * 2**22 * 4
    assert abs(int(emu_out[1, 0])) != exact  # it did wrap


def test_sequential_samples_give_identical_predictions(digits):
    """A small trained network: Lava and the emulator classify the same stream identically."""
    from neurodecorr import TrainConfig, train
    from neurodecorr.backends.fold import fold
    from neurodecorr.backends.lava_run import run_lava
    from neurodecorr.backends.sigma_delta import quantise

    result = train(TrainConfig(dataset="digits", rule="bp", decor="seed", epochs=2, batch_size=32,
                               lr=1e-3, decor_lr=1e-3), data=digits, progress=False, log=lambda s: None)
    net = quantise(fold(result.learner.net))
    x_int = net.encode(digits.x_test[:25])
    steps = len(net.layers) + 2
    lava_out = run_lava(net, sample_stream(x_int, steps), reset_every=steps)
    emu_out = emulate(net, parallel_streams(x_int, steps))  # (steps, n_out, 25)
    np.testing.assert_array_equal(lava_out.reshape(25, steps, -1), emu_out.transpose(2, 0, 1))
    predictions = emu_out[-1].T.argmax(axis=1)
    assert np.mean(predictions == digits.y_test[:25]) > 0.8
    # without resets the floors of many messages accumulate: still bit-exact, but drifting
    drifting = sample_stream(x_int, steps, resets=False)
    np.testing.assert_array_equal(run_lava(net, drifting), emulate(net, drifting))
