"""Conv nets deployed: the emulator against Lava's Conv and SigmaDelta processes at every step,
the emulator against the float network, `deploy --backend lava` on a trained digits conv run,
the refusals (max pooling, Brian2) and the NIR export read back."""

import dataclasses
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from neurodecorr.backends.prepare import relu_variant
from neurodecorr.backends.sigma_delta import _synapses, emulate, parallel_streams, quantise
from neurodecorr.engine.saved import load_run
from neurodecorr.errors import RunError
from neurodecorr.nets.conv import ConvGeometry
from neurodecorr.nets.fold import FoldedLayer, fold, folded_forward

lava = pytest.mark.skipif(importlib.util.find_spec("lava") is None, reason="lava-nc not installed")

# a non-square 7×10 image of 2 channels; stride 2 and padding; a conv whose 3×4 output an avg
# pooling of 2 crops to 1×2; a dense read-out of the flattened pooled image
CONV_A = ConvGeometry(7, 10, 2, 3, kernel=3, stride=2, padding=1)
CONV_B = ConvGeometry(4, 5, 3, 4, kernel=2, stride=1, padding=0, pool="avg", pool_size=2)


def _random_conv_net(rng, sd=0.3) -> list[FoldedLayer]:
    n_flat = int(np.prod(CONV_B.pooled_shape))
    return [FoldedLayer(rng.normal(0, sd, (3, CONV_A.patch_size)), rng.normal(0, 0.3, 3), "relu", CONV_A),
            FoldedLayer(rng.normal(0, sd, (4, CONV_B.patch_size)), rng.normal(0, 0.3, 4), "relu", CONV_B),
            FoldedLayer(rng.normal(0, sd, (5, n_flat)), rng.normal(0, 0.3, 5), "identity")]


@pytest.mark.lava
@lava
@pytest.mark.parametrize("seed,vth,amplitude", [(0, 0, 3000), (1, 7, 3000), (2, 0, 2**21)])
def test_conv_emulator_matches_lava_step_by_step(seed, vth, amplitude):
    from neurodecorr.backends.lava_run import run_lava

    rng = np.random.default_rng(seed)
    net = quantise(_random_conv_net(rng), frac_bits=6, vth=vth)
    assert [l.kind for l in net.layers] == ["conv", "conv", "sum_pool", "dense"]
    stream = rng.integers(-amplitude, amplitude, (net.layers[0].n_in, 12)).astype(np.int32)
    stream[rng.random(stream.shape) < 0.5] = 0  # sparse input events
    lava_out, lava_trace = run_lava(net, stream, record=True)
    tally: dict = {}
    emu_out, emu_trace = emulate(net, stream, record=True, tally=tally)
    np.testing.assert_array_equal(lava_out, emu_out)
    for i in range(len(net.layers)):
        np.testing.assert_array_equal(lava_trace.s_out[i], emu_trace.s_out[i], err_msg=f"s_out {i}")
        np.testing.assert_array_equal(lava_trace.act[i], emu_trace.act[i], err_msg=f"act {i}")
        assert np.abs(emu_trace.s_out[i]).sum() > 0, f"stage {i} sent nothing"
    if amplitude > 2**20:  # sums beyond 24 bits wrap in Lava's Conv buffer; the emulator counts them
        assert sum(tally["wrapped"]) > 0
    else:
        assert sum(tally["wrapped"]) == 0


def test_fan_out_counts_the_synapses_each_message_reaches():
    """Against the unrolled connectivity: input j reaches every (position, channel) whose patch
    holds it — fewer at borders, none in rows the pooling crops."""
    net = quantise(_random_conv_net(np.random.default_rng(3)))
    for layer in net.layers[:3]:
        ones = np.ones_like(layer.weights) if not layer.sum_pool else layer.weights
        probe = dataclasses.replace(layer, weights=ones)
        unrolled, _ = _synapses(probe, ones.astype(np.float64), np.eye(layer.n_in, dtype=np.int32))
        np.testing.assert_array_equal(layer.fan_out(), np.count_nonzero(unrolled, axis=0), err_msg=layer.kind)
    assert net.layers[0].fan_out().min() < net.layers[0].fan_out().max()  # borders reach fewer
    assert net.layers[2].fan_out().min() == 0  # the cropped row


def test_emulator_computes_the_float_conv_net():
    """Dataset rows (c, y, x) → the deployed integers approximate the float network: the image
    order, the kernel layout, the state_exp and the 1/s² folded into the read-out all agree."""
    rng = np.random.default_rng(4)
    layers = _random_conv_net(rng)
    net = quantise(layers, frac_bits=10)
    x = rng.normal(0, 1, (40, CONV_A.in_channels * CONV_A.in_height * CONV_A.in_width))
    out = emulate(net, parallel_streams(net.encode(x), len(net.layers) + 1))[-1].T / 2.0 ** net.frac_bits
    ref = folded_forward(layers, x)
    assert np.abs(out - ref).max() < 0.03 * np.abs(ref).max()


def test_max_pooling_is_refused():
    g = ConvGeometry(8, 8, 1, 4, kernel=3, padding=1, pool="max", pool_size=2)
    layers = [FoldedLayer(np.ones((4, 9)), np.zeros(4), "relu", g),
              FoldedLayer(np.ones((3, 64)), np.zeros(3), "identity")]
    with pytest.raises(RunError, match=r"layer 0 .*max pooling.*use pool: avg for networks you deploy to Lava"):
        quantise(layers)


@pytest.fixture(scope="module")
def conv_run(tmp_path_factory, digits):
    from neurodecorr import TrainConfig, train

    run_dir = tmp_path_factory.mktemp("conv-deploy") / "small-conv"
    config = TrainConfig(dataset="digits", model="small-conv", epochs=3, batch_size=32, lr=1e-3, decor_lr=1e-3)
    train(config, run_dir, data=digits, progress=False, log=lambda _: None)
    return run_dir


def test_brian2_refuses_conv_nets(conv_run):
    from neurodecorr.backends import Brian2Backend, DeployOptions
    from neurodecorr.backends.prepare import prepare

    d = prepare(conv_run, 5, Brian2Backend.neurons, log=lambda _: None)
    with pytest.raises(RunError, match=r"dense networks only.*--backend lava"):
        Brian2Backend().run(d, DeployOptions(samples=5, steps=10), lambda _: None)


@pytest.mark.lava
@lava
def test_deploy_cli_on_a_conv_run(conv_run, digits):
    done = subprocess.run([sys.executable, "-m", "neurodecorr", "deploy", str(conv_run), "--backend", "lava",
                           "--samples", "6", "--steps", "8"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads((conv_run / "deploy-lava.json").read_text())
    assert report["agreement"] == 1.0 and report["outputs_identical"]
    assert report["samples"] == 6 and report["steps"] == 8
    assert [l["kind"] for l in report["layers"]] == ["conv", "sum_pool", "conv", "sum_pool", "dense", "dense"]
    assert report["layers"][2]["input"] == [4, 4, 16] and report["layers"][2]["output"] == [4, 4, 32]
    by_stage = report["per_sample"]["by_layer"]
    assert all(n > 0 for n in by_stage["messages"]) and all(n > 0 for n in by_stage["acs"])
    assert sum(by_stage["wrapped"]) == 0
    # the deployed integers classify the whole test set about as the float ReLU network does
    _, learner, _ = load_run(conv_run)
    float_accuracy = np.mean(folded_forward(relu_variant(fold(learner.net)), digits.x_test).argmax(1) == digits.y_test)
    assert report["emulator_full_test_accuracy"] >= float_accuracy - 0.05
    assert report["energy_per_sample_j"] > 0


def _nir_forward(graph, x: np.ndarray) -> np.ndarray:
    """The graph's linear maps in float64 on (c, y, x) rows, IF neurons as rate units ReLU/θ."""
    import nir

    following = dict(graph.edges)
    name, a = "input", x.reshape(len(x), *graph.nodes["input"].input_type["input"])
    while following[name] != "output":
        name = following[name]
        node = graph.nodes[name]
        if isinstance(node, nir.Conv2d):
            (sy, sx), (py, px) = node.stride, node.padding
            padded = np.pad(a, ((0, 0), (0, 0), (py, py), (px, px)))
            C_out, _, kh, kw = node.weight.shape
            ho, wo = (padded.shape[2] - kh) // sy + 1, (padded.shape[3] - kw) // sx + 1
            out = np.zeros((len(a), C_out, ho, wo)) + node.bias[None, :, None, None]
            for ky in range(kh):
                for kx in range(kw):
                    window = padded[:, :, ky:ky + sy * (ho - 1) + 1:sy, kx:kx + sx * (wo - 1) + 1:sx]
                    out += np.einsum("nchw,oc->nohw", window, node.weight[:, :, ky, kx])
            a = out
        elif isinstance(node, nir.IF):
            a = np.maximum(a, 0.0) / node.v_threshold
        elif isinstance(node, nir.AvgPool2d):
            s = int(node.kernel_size[0])
            h, w = a.shape[2] // s, a.shape[3] // s
            a = a[:, :, :h * s, :w * s].reshape(len(a), a.shape[1], h, s, w, s).mean(axis=(3, 5))
        elif isinstance(node, nir.Flatten):
            a = a.reshape(len(a), -1)
        elif isinstance(node, nir.Affine):
            a = a @ node.weight.T + node.bias
        else:
            raise AssertionError(f"unexpected node {name}: {type(node).__name__}")
    return a


def test_nir_export_of_a_conv_run_reads_back_and_computes_the_deployed_net(conv_run, digits, tmp_path):
    nir = pytest.importorskip("nir")
    from neurodecorr.backends.nir_export import deployed_layers, export_nir

    graph, net_int = export_nir(conv_run, tmp_path / "net.nir")
    back = nir.read(tmp_path / "net.nir")
    assert sorted(back.nodes) == sorted(graph.nodes) and sorted(back.edges) == sorted(graph.edges)
    chain = ["input", "conv0", "if0", "pool0", "conv1", "if1", "pool1", "flatten", "affine2", "if2", "affine3",
             "output"]
    assert sorted(back.edges) == sorted(zip(chain[:-1], chain[1:]))
    assert list(back.nodes["input"].input_type["input"]) == [1, 8, 8]  # (C, H, W)
    assert back.nodes["conv1"].weight.shape == (32, 16, 3, 3)
    assert back.nodes["if1"].v_threshold.shape == (32, 4, 4)
    assert isinstance(back.nodes["pool0"], nir.AvgPool2d)
    x = digits.x_test[:20]
    np.testing.assert_allclose(_nir_forward(back, x), folded_forward(deployed_layers(net_int), x),
                               rtol=1e-4, atol=1e-4)
    # and the deployed float net is the trained one, up to 8-bit weights and frac_bits biases
    _, learner, _ = load_run(conv_run)
    ref = folded_forward(relu_variant(fold(learner.net)), x)
    assert np.abs(folded_forward(deployed_layers(net_int), x) - ref).max() < 0.1 * np.abs(ref).max()
