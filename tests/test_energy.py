"""Energy counters and pricing: exact counts by hand, totals that add up, re-pricing."""

import json
import subprocess
import sys

import numpy as np
import pytest

from neurodecorr import TrainConfig, train
from neurodecorr.devices import IdealDevice
from neurodecorr.devices.loader import load_profile, profile_names
from neurodecorr.energy import PRICE_KEYS, Counts, build_report, operations, required_prices
from neurodecorr.energy.cost import PricingError, joules
from neurodecorr.engine.learner import make_learner
from neurodecorr.engine.step import train_step
from neurodecorr.nets.network import Layer, Network, forward
from neurodecorr.nets.spec import HiddenSpec, NetSpec

F32 = np.float32


def _dead_hidden_net():
    """4 inputs → 3 ReLU units that never fire on positive inputs → 2 outputs."""
    spec = NetSpec("dead", (HiddenSpec(3, "relu"),), "cross_entropy", "none")
    shapes = spec.layers(4, 2)
    layers = [Layer(shapes[0], -np.ones((3, 4), F32), -np.ones(3, F32)),
              Layer(shapes[1], np.ones((2, 3), F32), np.array([0.5, 0.0], F32))]
    return Network(spec, layers, IdealDevice(counter=Counts()))


def test_exact_counts_of_a_forward_pass_and_a_silent_layer():
    net = _dead_hidden_net()
    x = np.array([[1, 0, 2, 0], [3, 4, 0, 0], [1, 1, 1, 1]], F32)  # 8 nonzero inputs
    with net.device.counter.during("inference"):
        forward(net, x)
    c = net.device.counter
    assert c.total("inference", "dense_synops", "0") == 3 * 4 * 3
    assert c.total("inference", "effective_synops", "0") == 8 * 3
    assert c.total("inference", "dense_synops", "1") == 3 * 3 * 2
    assert c.total("inference", "effective_synops", "1") == 0  # all hidden outputs are zero
    assert c.total("inference", "neuron_updates") == 3 * 3 + 3 * 2
    assert c.total("inference", "messages", "0") == 0
    assert c.total("inference", "messages", "1") == 3  # outputs = bias = (0.5, 0) per sample
    # a silent layer costs no accumulates on an event-driven chip, but full MACs on a crossbar
    loihi = operations(c, load_profile("loihi2"), "inference", layer="1")
    pcm = operations(c, load_profile("analog-pcm"), "inference", layer="1")
    assert loihi["acs"] == 0
    assert pcm["macs"] == 18 and pcm["adc_conversions"] == 3 * 2 and pcm["dac_conversions"] == 3 * 3


def test_exact_counts_of_one_training_step():
    spec = NetSpec("s", (HiddenSpec(5, "leaky_relu"),), "cross_entropy", "all")
    counts = Counts()
    learner = make_learner(TrainConfig(rule="bp", decor="seed"), spec, 4, 3, counter=counts)
    B = 10
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, 4)).astype(F32)
    R_before = [layer.R.copy() for layer in learner.net.layers]
    train_step(learner, x, rng.integers(0, 3, B), rng, {})
    R_changed = sum(int(np.count_nonzero(layer.R != old)) for layer, old in zip(learner.net.layers, R_before))
    syn = lambda phase: counts.total(phase, "dense_synops")  # noqa: E731
    # forward: R0 (4×4), W0 (5×4), R1 (5×5), W1 (3×5)
    assert syn("learning_forward") == B * (16 + 20 + 25 + 15)
    # feedback to layer 0: through W1ᵀ (3→5) and R1ᵀ (5→5)
    assert syn("feedback") == B * (15 + 25)
    # decorrelation: the transposed read Rᵀz on the sub-sample of 10 % + 1 = 2 samples
    assert syn("decorrelation") == 2 * (16 + 25)
    assert counts.total("decorrelation", "update_macs") == 2 * (16 + 25)
    assert counts.total("weight_update", "update_macs") == B * (20 + 15)
    # every forward weight changes under Adam's first step (biases are not synapses, but their
    # memory traffic counts); of R, the entries whose change survives float32 rounding (a
    # diagonal 1 − 1e-4·… may round back to 1)
    assert counts.total("weight_update", "synapse_writes") == 20 + 15
    assert counts.total("weight_update", "written_synapses") == 20 + 5 + 15 + 3
    assert counts.total("decorrelation", "synapse_writes") == R_changed > 30
    assert counts.total("learning_forward", "neuron_updates") == B * (4 + 5 + 5 + 3)


def test_node_perturbation_has_no_feedback_and_two_forward_passes():
    spec = NetSpec("s", (HiddenSpec(6, "leaky_relu"),), "cross_entropy", "none")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 5)).astype(F32)
    y = rng.integers(0, 3, 8)
    totals = {}
    for rule in ("bp", "np"):
        counts = Counts()
        learner = make_learner(TrainConfig(rule=rule, decor="none"), spec, 5, 3, counter=counts)
        train_step(learner, x, y, np.random.default_rng(0), {})
        totals[rule] = counts
    assert totals["np"].total("feedback") == 0
    assert totals["bp"].total("feedback", "dense_synops") > 0
    assert (totals["np"].total("learning_forward", "dense_synops")
            == 2 * totals["bp"].total("learning_forward", "dense_synops"))


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory, digits):
    out = tmp_path_factory.mktemp("energy") / "run"
    result = train(TrainConfig(dataset="digits", profile="loihi2", rule="fa", decor="seed",
                               epochs=2, batch_size=64, lr=1e-3),
                   out, data=digits, progress=False, log=lambda s: None)
    return out, result


def test_energy_json_totals_add_up(digits_run):
    out, result = digits_run
    report = json.loads((out / "energy.json").read_text())
    for key in ("profile", "training_j", "training_per_sample_j", "inference_per_sample_j",
                "phases", "layers"):
        assert key in report
    phases = report["phases"]
    training = sum(phases[p]["joules"] for p in phases if p != "inference")
    assert report["training_j"] == pytest.approx(training)
    assert report["training_per_sample_j"] == pytest.approx(training / (2 * 1437))
    assert report["inference_per_sample_j"] == pytest.approx(phases["inference"]["joules"] / 360)
    for phase, entry in phases.items():
        assert entry["joules"] == pytest.approx(sum(entry["joules_by_kind"].values()))
        by_layer = sum(layer[phase]["joules"] for layer in report["layers"].values() if phase in layer)
        assert by_layer == pytest.approx(entry["joules"])
        for kind, n in entry["counts"].items():
            assert n == sum(layer[phase]["counts"].get(kind, 0)
                            for layer in report["layers"].values() if phase in layer)
    assert report["training_j"] > 0 and report["inference_per_sample_j"] > 0
    # decorrelation stages are their own layers; deployed, they fold away
    assert list(report["layers"])[:2] == ["0R", "0"]
    folded = sum(entry["inference"]["joules"] for label, entry in report["layers"].items()
                 if not label.endswith("R"))
    assert report["inference_folded_per_sample_j"] == pytest.approx(folded / 360)
    assert report["inference_folded_per_sample_j"] < report["inference_per_sample_j"]


def test_repricing_changes_joules_not_counts(digits_run):
    out, _ = digits_run
    counts = Counts.from_dict(json.loads((out / "energy.json").read_text())["counts"])
    a = build_report(counts, load_profile("loihi2"))
    b = build_report(counts, load_profile("ideal"))
    for phase in a["phases"]:
        assert a["phases"][phase]["counts"] == b["phases"][phase]["counts"]
    assert a["training_j"] != b["training_j"]
    done = subprocess.run([sys.executable, "-m", "neurodecorr", "energy", str(out), "--profile",
                           "analog-pcm"], capture_output=True, text=True)
    assert done.returncode == 0 and "priced for 'analog-pcm'" in done.stdout


@pytest.mark.parametrize("name", profile_names())
def test_every_shipped_profile_prices_what_its_chip_performs(name, digits):
    profile = load_profile(name)
    assert required_prices(profile) <= set(profile.energy)
    result = train(TrainConfig(dataset="digits", profile=name, rule="bp", decor="seed", epochs=1,
                               batch_size=128), data=digits, progress=False, log=lambda s: None)
    for entry in result.energy["phases"].values():
        for kind in entry["operations"]:  # priced, or priced at zero on purpose
            assert entry["joules_by_kind"][kind] > 0 or profile.energy[PRICE_KEYS[kind]] == 0


def test_a_missing_price_is_an_error_not_a_zero():
    profile = load_profile("loihi2")
    counts = Counts()
    counts.add("0", "effective_synops", 10)
    stripped = type(profile)(**{**profile.__dict__, "energy": {}})
    with pytest.raises(PricingError, match="ac_pj"):
        joules(operations(counts, stripped), stripped)


def test_a_profile_without_prices_trains_and_its_counts_can_be_priced_later(tmp_path, digits):
    profile = tmp_path / "mine.toml"
    profile.write_text('name = "mine"\nkind = "digital"\n[digital]\n')
    out = tmp_path / "run"
    result = train(TrainConfig(dataset="digits", profile=str(profile), epochs=1, batch_size=128),
                   out, data=digits, progress=False, log=lambda s: None)
    saved = json.loads((out / "energy.json").read_text())
    assert saved["training_j"] is None and "ac_pj" in saved["missing_prices"]
    assert result.epochs and saved["counts"]["table"]
    priced = build_report(Counts.from_dict(saved["counts"]), load_profile("loihi2"))
    assert priced["training_j"] > 0
