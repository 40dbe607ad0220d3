"""The fixed-point emulator against Lava itself: identical payloads and activations at every step."""

import importlib.util

import numpy as np
import pytest

from neurodecorr.backends.sigma_delta import (
    IntLayer,
    IntNet,
    emulate,
    lava_weight_grid,
    parallel_streams,
    sample_stream,
)

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
        bits = int(rng.choice([5, 6, 7, 8]))
        layers.append(IntLayer(lava_weight_grid(raw, bits), int(rng.integers(-4, 3)),
                               rng.integers(-3000, 3000, sizes[i + 1]).astype(np.int32),
                               relu=bool(rng.integers(0, 2)) or i < len(sizes) - 2,
                               weight_bits=bits))
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
    from neurodecorr.backends.lava_run import run_lava
    from neurodecorr.backends.sigma_delta import quantise
    from neurodecorr.nets.fold import fold

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


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("deploy") / "run"
    done = subprocess.run([sys.executable, "-m", "neurodecorr", "train", "--dataset", "digits",
                           "--rule", "fa", "--decor", "seed", "--epochs", "2", "--batch-size", "32",
                           "--lr", "1e-3", "--decor-lr", "1e-3", "--out", str(out), "--quiet"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return out


def test_deploy_cli_writes_its_report(trained_run):
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "neurodecorr", "deploy", str(trained_run),
                           "--backend", "lava", "--samples", "30", "--steps", "5"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads((trained_run / "deploy-lava.json").read_text())
    for key in ("accuracy", "rate_accuracy", "agreement", "samples", "steps", "energy_per_sample_j"):
        assert key in report
    assert report["agreement"] == 1.0 and report["outputs_identical"]
    assert report["samples"] == 30 and report["steps"] == 5
    assert report["accuracy"] >= report["rate_accuracy"] - 0.1
    assert report["energy_per_sample_j"] > 0 and report["per_sample"]["messages"] > 0


def test_folding_decorrelation_preserves_the_function(trained_run):
    from neurodecorr.engine.saved import load_run
    from neurodecorr.nets.fold import fold, folded_forward
    from neurodecorr.nets.network import predict

    _, learner, data = load_run(trained_run)
    assert any(layer.R is not None for layer in learner.net.layers)
    folded = folded_forward(fold(learner.net), data.x_test[:50])
    np.testing.assert_allclose(folded, predict(learner.net, data.x_test[:50]), rtol=1e-4, atol=1e-4)


def test_nir_export_reads_back_with_the_deployed_weights(trained_run, tmp_path):
    import nir

    from neurodecorr.backends.nir_export import deployed_float_layers, export_nir

    _, net_int = export_nir(trained_run, tmp_path / "net.nir")
    graph = nir.read(tmp_path / "net.nir")
    layers = deployed_float_layers(net_int)
    chain = ["input"] + [n for i in range(len(layers)) for n in (f"affine{i}", f"if{i}")][:-1] + ["output"]
    assert sorted(graph.edges) == sorted(zip(chain[:-1], chain[1:]))
    scale = 1.0
    for i, (W, b) in enumerate(layers):
        node = graph.nodes[f"affine{i}"]
        assert isinstance(node, nir.Affine)
        np.testing.assert_allclose(node.weight, W * scale, rtol=1e-6)
        np.testing.assert_allclose(node.bias, b, rtol=1e-6)
        if i < len(layers) - 1:
            neuron = graph.nodes[f"if{i}"]
            assert isinstance(neuron, nir.IF)
            scale = float(neuron.v_threshold[0])
    # as a rate-coded network (IF ≈ ReLU/θ) the graph computes the deployed network exactly
    x = np.random.default_rng(0).standard_normal((5, layers[0][0].shape[1]))
    a, ref = x, x
    for i, (W, b) in enumerate(layers):
        node = graph.nodes[f"affine{i}"]
        h, ref_h = a @ node.weight.T + node.bias, ref @ W.T + b
        if i < len(layers) - 1:
            a = np.maximum(h, 0) / graph.nodes[f"if{i}"].v_threshold
            ref = np.maximum(ref_h, 0)
    np.testing.assert_allclose(h, ref_h, rtol=1e-4, atol=1e-5)
