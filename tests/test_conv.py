"""Conv layers (`nets.conv`): the geometry against a direct convolution, BP against finite
differences, every rule and device on conv rows, folding, energy per output position, resume
and bad input."""

import json

import numpy as np
import pytest

from neurodecorr import TrainConfig, keys, train
from neurodecorr.devices import make_device
from neurodecorr.devices.ideal import IdealDevice
from neurodecorr.devices.loader import load_profile, profile_names
from neurodecorr.energy import Counts
from neurodecorr.engine.learner import make_learner
from neurodecorr.engine.step import train_step
from neurodecorr.errors import SpecError
from neurodecorr.kernels import _np_im2col
from neurodecorr.nets.conv import ConvGeometry, image_order, to_image
from neurodecorr.nets.fold import fold, folded_forward
from neurodecorr.nets.network import build_network, forward, predict
from neurodecorr.nets.spec import load_spec, spec_from_dict
from neurodecorr.numerics import DTYPE
from neurodecorr.rules import CREDIT_RULES, DECOR_RULES
from neurodecorr.rules.credit import BP
from neurodecorr.rules.plasticity import local_outer

F32 = np.float32
GEOMETRIES = [ConvGeometry(7, 6, 3, 4, 3, 2, 1, "max", 2), ConvGeometry(8, 8, 2, 5, 3, 1, 1, "avg", 2),
              ConvGeometry(9, 9, 1, 2, 5, 2, 0, None)]
TINY = {"hidden": [{"conv": 3, "kernel": 3, "padding": 1, "activation": "tanh"}, {"pool": "avg", "size": 2},
                   {"conv": 4, "kernel": 3, "stride": 2, "padding": 1, "activation": "tanh"},
                   {"width": 5, "activation": "tanh"}]}


def _direct_conv(x, W, g):
    """The convolution written as its definition, position by position (float64)."""
    xp = np.pad(x, ((0, 0), (g.padding,) * 2, (g.padding,) * 2, (0, 0)))
    Wk = W.reshape(g.out_channels, g.kernel, g.kernel, g.in_channels)
    out = np.zeros((len(x), *g.output_shape))
    for i in range(g.out_height):
        for j in range(g.out_width):
            win = xp[:, i * g.stride:i * g.stride + g.kernel, j * g.stride:j * g.stride + g.kernel]
            out[:, i, j] = np.einsum("byxc,oyxc->bo", win, Wk)
    return out


@pytest.mark.parametrize("g", GEOMETRIES, ids=lambda g: f"{g.kernel}s{g.stride}p{g.padding}{g.pool}")
def test_patches_compute_the_convolution_and_back_is_their_transpose(g, rng):
    x = rng.standard_normal((3, g.in_height, g.in_width, g.in_channels)).astype(F32)
    rows = g.patches(x)
    assert rows.shape == (3 * g.positions, g.patch_size) and rows.dtype == F32
    padded = np.pad(x, ((0, 0), (g.padding,) * 2, (g.padding,) * 2, (0, 0)))
    np.testing.assert_array_equal(rows, _np_im2col(padded, g.kernel, g.stride, g.out_height, g.out_width))
    W = rng.standard_normal((g.out_channels, g.patch_size)).astype(F32)
    np.testing.assert_allclose((rows @ W.T).reshape(3, *g.output_shape), _direct_conv(x, W, g),
                               rtol=1e-4, atol=1e-4)
    r = rng.standard_normal(rows.shape).astype(F32)  # ⟨patches(x), r⟩ = ⟨x, patches_back(r)⟩
    np.testing.assert_allclose(np.vdot(rows, r), np.vdot(x, g.patches_back(r, 3)), rtol=1e-4)
    y = rng.standard_normal((3, *g.output_shape)).astype(F32)
    pooled, index = g.pool_forward(y)
    assert pooled.shape == (3, *g.pooled_shape)
    gp = rng.standard_normal(pooled.shape).astype(F32)
    np.testing.assert_allclose(np.vdot(pooled, gp), np.vdot(y, g.pool_backward(gp, index)), rtol=1e-4)


def test_max_pool_passes_the_largest_and_routes_the_gradient_to_it():
    g = ConvGeometry(4, 4, 1, 1, 1, 1, 0, "max", 2)
    y = np.array([[1, 5, 0, 0], [2, 3, 0, 7], [9, 9, 1, 1], [9, 9, 1, 1]], F32)[None, :, :, None]
    pooled, index = g.pool_forward(y)
    np.testing.assert_array_equal(pooled[0, :, :, 0], [[5, 7], [9, 1]])
    back = g.pool_backward(np.ones_like(pooled), index)[0, :, :, 0]
    np.testing.assert_array_equal(back, [[0, 1, 0, 0], [0, 0, 0, 1], [1, 0, 1, 0], [0, 0, 0, 0]])


def test_dataset_rows_become_channels_last_images():
    x = np.arange(2 * 3 * 4 * 5, dtype=F32).reshape(2, 3 * 4 * 5)  # (c, y, x) order
    img = to_image(x, (3, 4, 5))
    assert img.shape == (2, 4, 5, 3) and img[1, 2, 3, 1] == x[1, 1 * 20 + 2 * 5 + 3]
    np.testing.assert_array_equal(img.reshape(2, -1), x[:, image_order((3, 4, 5))])


def _tiny_net(centre="batch", seed=0):
    rng = np.random.default_rng(seed)
    net = build_network(spec_from_dict(TINY), (2, 8, 8), 3, True, rng, centre)
    for layer in net.layers:  # away from the identity and zero mean, so that both matter
        layer.R += (0.1 * rng.standard_normal(layer.R.shape)).astype(F32)
        layer.mu += (0.3 * rng.standard_normal(layer.mu.shape)).astype(F32)
    return net


def test_conv_layers_take_their_shapes_from_the_spec():
    net = _tiny_net()
    assert [l.W.shape for l in net.layers] == [(3, 18), (4, 27), (5, 16), (3, 5)]
    assert [l.R.shape for l in net.layers] == [(18, 18), (27, 27), (16, 16), (5, 5)]
    assert [l.mu.shape for l in net.layers] == [(2,), (3,), (16,), (5,)]  # per input channel for conv
    assert [l.shape.rows for l in net.layers] == [64, 4, 1, 1]


def test_bp_on_conv_layers_is_the_gradient(rng):
    """Centring with the batch mean (part of the forward map), float32 central differences."""
    net = _tiny_net("batch")
    x, y = rng.standard_normal((4, 128)).astype(F32), np.array([0, 1, 2, 1])
    saved = [l.mu.copy() for l in net.layers]

    def loss():
        traces = forward(net, x, track_mean=True)
        for layer, mu in zip(net.layers, saved):
            layer.mu[...] = mu  # track_mean centres with the batch mean; keep μ itself fixed
        return float(np.mean(net.loss.per_sample(traces[-1].h.astype(np.float64), y))), traces

    _, traces = loss()
    mods = BP().modulators(net, traces, y, {}, rng)
    for i, (layer, trace, e) in enumerate(zip(net.layers, traces, mods)):
        assert e.shape == (len(x) * layer.shape.rows, layer.shape.n_out) and e.dtype == F32
        grad = local_outer(e, trace.x, samples=len(x))
        for a, b in [(0, 0), (1, 2), (layer.W.shape[0] - 1, layer.W.shape[1] - 1)]:
            old, eps = layer.W[a, b], F32(1e-2)
            layer.W[a, b] = old + eps
            up = loss()[0]
            layer.W[a, b] = old - eps
            down = loss()[0]
            layer.W[a, b] = old
            np.testing.assert_allclose(grad[a, b], (up - down) / (2 * eps), rtol=2e-2, atol=2e-5,
                                       err_msg=f"layer {i} W[{a},{b}]")


def _one_by_one(device):
    """`device` with its neuron state overridden on a subclass (to the same values): its
    neurons are then not known to be exact or fixed point (`neuron_grids` None), and the forward
    pass forms bias, noise, state, f, activation, pooling and messages one step at a time."""
    cls = type(device)

    def state(self, h):
        return cls.state(self, h)

    device.__class__ = type(f"OneByOne{cls.__name__}", (cls,), {"state": state})
    return device


@pytest.mark.parametrize("profile", ["ideal", "loihi2"])
@pytest.mark.parametrize("pool", ["avg", "max"])
def test_fused_neurons_compute_what_the_step_by_step_path_does(pool, profile, rng):
    """On an exact device (ideal) or one whose neurons round to nearest onto fixed-point grids
    (digital), a layer's neurons run as one kernel (`kernels.leaky_layer_`; on ideal also its
    backward pass, `kernels.pool_back_leaky`): traces, BP's and NP's modulators and the energy
    counts are the same bits as the unfused path's; a conv layer without pooling, a cropping pool
    and dense rows included."""
    spec = spec_from_dict({"hidden": [{"conv": 4, "kernel": 3, "padding": 1}, {"pool": pool, "size": 2},
                                      {"conv": 6, "kernel": 3}, {"conv": 5, "kernel": 1}, {"pool": pool, "size": 2},
                                      {"width": 7}]})
    x = rng.standard_normal((5, 2 * 9 * 9)).astype(F32)
    labels = np.array([0, 1, 2, 1, 0])
    runs = []
    for step_by_step in (False, True):
        device = make_device(load_profile(profile), np.random.default_rng(3), Counts())
        if step_by_step:
            _one_by_one(device)
        assert (device.neuron_grids is None) is step_by_step
        net = build_network(spec, (2, 9, 9), 3, True, np.random.default_rng(1))
        assert [l.shape.activation for l in net.layers[:-1]] == ["leaky_relu"] * 4  # the fused kind
        net.install(device)
        traces = forward(net, x, track_mean=True)
        mods = BP().modulators(net, traces, labels, {}, rng)
        noise = [np.random.default_rng(2).standard_normal(t.h.shape).astype(F32) for t in traces]
        noisy = forward(net, x, noise=noise, means=[t.mean for t in traces])
        runs.append((traces, mods, noisy, device.counter.table))
    (t1, m1, n1, c1), (t2, m2, n2, c2) = runs
    for a, b in zip(t1 + n1, t2 + n2):
        for name in ("h", "sent", "pool_index", "x"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for a, b in zip(m1, m2):
        np.testing.assert_array_equal(a, b)
    assert c1 == c2 and sum(v for k, v in c1.items() if k[2] == "messages") > 0
    if profile != "ideal":  # the states are on the chip's grid, not merely float32
        assert not np.array_equal(t1[0].h, forward(net, x, device=IdealDevice())[0].h)


def _recomputing(device):
    """`device` with its product overridden on a subclass: not `repeatable_products`, so that
    node perturbation's noisy pass computes its first layer again."""
    cls = type(device)

    def mvm(self, x, W, key):
        return cls.mvm(self, x, W, key)

    device.__class__ = type(f"Recomputing{cls.__name__}", (cls,), {"mvm": mvm})
    return device


@pytest.mark.parametrize("profile", ["ideal", "loihi2", "loihi2-residual", "loihi2-sliced"])
@pytest.mark.parametrize("conv", [True, False])
def test_the_noisy_pass_reuses_the_first_layer_only_where_that_changes_nothing(conv, profile, rng):
    """NP's noisy pass on a device whose products repeat bit for bit (ideal; digital, its
    fixed-point h formed from the product kept by the clean pass) takes its first layer's x̃ and
    W x̃ from the clean pass: its traces, NP's modulators and the energy counts (the skipped
    products counted as done, a residual R's wired identity too) equal a device's that computes
    them again; the first layer's products are not run."""
    hidden = ([{"conv": 4, "kernel": 3, "padding": 1}, {"pool": "avg", "size": 2}, {"width": 7}] if conv
              else [{"width": 9}, {"width": 7}])
    spec = spec_from_dict({"hidden": hidden, "decorrelate": "all"})
    x = rng.standard_normal((5, 2 * 8 * 8)).astype(F32)
    labels = np.array([0, 1, 2, 1, 0])
    runs = []
    for recompute in (False, True):
        device = make_device(load_profile(profile), np.random.default_rng(4), Counts())
        if recompute:
            _recomputing(device)
        assert device.repeatable_products is not recompute
        net = build_network(spec, (2, 8, 8) if conv else 128, 3, True, np.random.default_rng(1))
        net.install(device)
        products, mvm = [], device.mvm
        device.mvm = lambda a, W, key, _log=products, _mvm=mvm: _log.append(key) or _mvm(a, W, key)
        rule = CREDIT_RULES["np"]()
        traces = forward(net, x, track_mean=True, keep_product=rule.repeats_forward)
        mods = rule.modulators(net, traces, labels, {}, np.random.default_rng(5))
        runs.append((traces, mods, dict(device.counter.table), products))
    (t1, m1, c1, p1), (t2, m2, c2, p2) = runs
    for a, b in zip(t1, t2):
        for name in ("h", "sent", "x"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for a, b in zip(m1, m2):
        np.testing.assert_array_equal(a, b)
    assert any(np.any(m != 0) for m in m1)
    assert c1 == c2
    first = {keys.R(0), keys.W(0)}
    assert sorted(map(str, p2)) == sorted(map(str, p1 + list(first)))  # each computed once less


def test_folding_a_decorrelated_conv_net_changes_nothing(rng):
    net = _tiny_net("running")
    x = rng.standard_normal((6, 128)).astype(F32)
    np.testing.assert_allclose(predict(net, x, fold=True), predict(net, x, fold=False), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(folded_forward(fold(net), x), predict(net, x, fold=False), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("rule", sorted(CREDIT_RULES))
@pytest.mark.parametrize("decor", sorted(DECOR_RULES))
def test_every_rule_trains_conv_layers_through_the_device(rule, decor, digits):
    cfg = TrainConfig(dataset="digits", model="small-conv", rule=rule, decor=decor, batch_size=32)
    counts = Counts()
    learner = make_learner(cfg, load_spec("small-conv"), digits.input_shape, 10, counter=counts)
    before = {k.name: a.copy() for k, a in learner.net.keyed_arrays().items()}
    rng, buffers = np.random.default_rng(0), {}
    x, y = np.ascontiguousarray(digits.x_train[:32]), digits.y_train[:32]
    for _ in range(2 if decor != "zca" else 50):  # zca recomputes R every 50 steps
        loss = train_step(learner, x, y, rng, buffers)
    assert np.isfinite(loss)
    after = learner.net.keyed_arrays()
    for key, array in after.items():
        assert array.dtype == F32 and np.all(np.isfinite(array)), key
        assert not np.array_equal(array, before[key.name]), f"{key} did not change"
    assert counts.total(phase="weight_update", kind="synapse_writes", stage="0") > 0
    assert counts.total(phase="decorrelation", kind="synapse_writes", stage="0R") > 0


@pytest.mark.parametrize("profile", sorted(profile_names()))
def test_every_device_trains_a_conv_net(profile, digits):
    """A training step on each shipped profile moves the conv kernels (or, on a chip with a
    digital accumulator per synapse, that accumulator: three small steps need not add up to one
    device pulse) and keeps them finite."""
    cfg = TrainConfig(dataset="digits", model="small-conv", rule="fa", decor="seed", batch_size=32,
                      profile=profile)
    learner = make_learner(cfg, load_spec("small-conv"), digits.input_shape, 10, profile=load_profile(profile))
    W0 = learner.net.layers[0].W.copy()
    rng, buffers = np.random.default_rng(0), {}
    x, y = np.ascontiguousarray(digits.x_train[:32]), digits.y_train[:32]
    for _ in range(3):
        assert np.isfinite(train_step(learner, x, y, rng, buffers))
    W = learner.net.layers[0].W
    acc = getattr(learner.net.device, "extra", {}).get(("acc", keys.W(0)))
    assert np.all(np.isfinite(W))
    assert not np.array_equal(W0, W) or (acc is not None and np.abs(acc).max() > 0)
    h = predict(learner.net, digits.x_test[:50])
    assert h.shape == (50, 10) and np.all(np.isfinite(h))


def test_energy_counts_every_output_position(digits):
    """Inference of N images: layer 0 reads its kernel at every one of its P positions."""
    counts = Counts()
    spec = load_spec("small-conv")
    net = build_network(spec, digits.input_shape, 10, False, np.random.default_rng(0))
    net.install(make_device(load_profile("analog-pcm"), np.random.default_rng(0), counts))
    n = 40
    with counts.during("inference"):
        forward(net, digits.x_test[:n], device=net.device)
    g = net.layers[0].shape.conv
    assert g.positions == 64
    assert counts.total("inference", "dense_synops", "0") == n * g.positions * g.patch_size * g.out_channels
    assert counts.total("inference", "neuron_updates", "0") == n * g.positions * g.out_channels
    rows = {n_in: r for n_in, _, r, _ in counts.select_products("inference", "0")}
    assert rows == {g.patch_size: n * g.positions}  # one array read (conversions) per position


def test_conv_run_resumes_exactly_and_records_its_geometry(tmp_path, digits):
    cfg = TrainConfig(dataset="digits", model="small-conv", rule="bp", decor="seed", epochs=2,
                      batch_size=64, train_samples=512)
    whole = train(cfg, tmp_path / "whole", data=digits, progress=False, log=lambda s: None)
    train(TrainConfig(**{**cfg.to_dict(), "epochs": 1}), tmp_path / "split", data=digits, progress=False,
          log=lambda s: None)
    resumed = train(cfg, tmp_path / "split", resume=True, data=digits, progress=False, log=lambda s: None)
    key = lambda r: (r["train_loss"], r["test_accuracy"])  # noqa: E731
    assert [key(r) for r in resumed.epochs] == [key(r) for r in whole.epochs]
    config = json.loads((tmp_path / "whole" / "config.json").read_text())
    assert config["layers"][0]["conv"]["positions"] == 64 and config["data"]["image_shape"] == [1, 8, 8]
    energy = json.loads((tmp_path / "whole" / "energy.json").read_text())
    assert energy  # written, as for a dense run


@pytest.mark.parametrize("entries, fragment", [
    ([{"width": 8}, {"conv": 4, "kernel": 3}], "conv layer after a dense one"),
    ([{"pool": "avg", "size": 2}], "pooling follows a conv layer"),
    ([{"conv": 4, "kernel": 3}, {"pool": "median"}], "pool: max | avg"),
    ([{"conv": 4}], "kernel required"),
    ([{"conv": 4, "kernel": 0}], "'hidden[0].kernel'"),
    ([{"conv": 4, "kernel": 3, "padding": -1}], "'hidden[0].padding'"),
])
def test_bad_conv_specs_name_the_entry(entries, fragment):
    with pytest.raises(SpecError, match="bad.yaml") as err:
        spec_from_dict({"hidden": entries}, "bad.yaml")
    assert fragment in str(err.value)


def test_conv_layers_need_images_that_fit():
    spec = spec_from_dict({"hidden": [{"conv": 4, "kernel": 9, "padding": 0}]}, "big.yaml")
    with pytest.raises(SpecError, match="does not fit its 8×8 input"):
        spec.layers((1, 8, 8), 10)
    with pytest.raises(SpecError, match="need a dataset of images"):
        spec.layers(64, 10)


def test_conv_specs_round_trip():
    for name in ("small-conv", "paper-convnet"):
        spec = load_spec(name)
        assert spec_from_dict(spec.to_dict(), name) == spec
    paper = load_spec("paper-convnet").layers((3, 32, 32), 10)
    assert [(l.n_in, l.n_out) for l in paper] == [(27, 32), (288, 32), (288, 64), (576, 64), (4096, 1000),
                                                  (1000, 10)]
    assert [l.conv.pool if l.conv else None for l in paper] == [None, "max", None, "max", None, None]


def test_cli_refuses_a_conv_net_too_big_for_its_images(tmp_path, capsys):
    from neurodecorr.cli import main

    spec = tmp_path / "wide.yaml"
    spec.write_text("hidden:\n  - {conv: 4, kernel: 11, padding: 0}\n")
    assert main(["train", "--model", str(spec), "--dataset", "digits", "--out", str(tmp_path / "r")]) != 0
    err = capsys.readouterr().err
    assert "does not fit" in err and "Traceback" not in err
    assert not (tmp_path / "r" / "checkpoint.npz").exists()


def test_patch_decorrelation_samples_every_patch_of_the_first_samples(digits):
    """The seed rule's C on a conv layer is the mean over all patches of the first ⌊0.1·B⌋ + 1
    samples (the reference's Decorrelator2D): only those samples' patches change R."""
    cfg = TrainConfig(dataset="digits", model="small-conv", rule="bp", decor="seed", batch_size=30)
    learner = make_learner(cfg, load_spec("small-conv"), digits.input_shape, 10)
    net = learner.net
    x = np.ascontiguousarray(digits.x_train[:30])
    traces = forward(net, x, track_mean=True)
    R0 = net.layers[0].R.copy()
    learner.decor.update(net, traces, learner.decor_state)
    changed = R0 - net.layers[0].R
    x2 = x.copy()
    x2[4:] = digits.x_train[100:126]  # samples beyond the first 4 (= ⌊3⌋ + 1) do not matter
    learner2 = make_learner(cfg, load_spec("small-conv"), digits.input_shape, 10)
    traces2 = forward(learner2.net, x2, means=[t.mean for t in traces])
    learner2.decor.update(learner2.net, traces2, learner2.decor_state)
    np.testing.assert_allclose(R0 - learner2.net.layers[0].R, changed, rtol=1e-5, atol=1e-9)
    assert np.abs(changed).max() > 0
    assert keys.R(0) in net.keyed_arrays() and net.layers[0].R.dtype == DTYPE


def test_the_papers_cifar_convnet_trains_a_step_on_cifar_shaped_images():
    """CIFAR-10 is user-provided: the paper's ConvNet runs on images of its shape."""
    spec = load_spec("paper-convnet")
    cfg = TrainConfig(dataset="cifar10", model="paper-convnet", rule="fa", decor="seed", batch_size=4)
    learner = make_learner(cfg, spec, (3, 32, 32), 10)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3 * 32 * 32)).astype(F32)
    loss = train_step(learner, x, np.array([0, 1, 2, 3]), rng, {})
    assert np.isfinite(loss) and abs(loss - np.log(10)) < 1.0  # near chance at the start
    assert [l.W.shape for l in learner.net.layers][-2:] == [(1000, 4096), (10, 1000)]
