"""`neurodecorr evaluate`: a trained run on another chip without retraining — the deployed
(folded) network programmed, quantised or read as each chip does, per drift time."""

import json
import subprocess
import sys

import numpy as np
import pytest

from neurodecorr.engine.evaluate import evaluate
from neurodecorr.errors import RunError


def test_every_chip_evaluates_the_trained_run(deploy_run):
    ideal = evaluate(deploy_run, "ideal", log=lambda s: None)
    assert ideal["results"][0]["accuracy"] == pytest.approx(ideal["rate_accuracy_ideal"], abs=0.01)  # folding
    for name in ("loihi2", "analog-pcm", "analog-rram"):
        report = evaluate(deploy_run, name, log=lambda s: None)
        result = report["results"][0]
        assert result["accuracy"] > ideal["results"][0]["accuracy"] - 0.1  # a chip, not a broken copy
        assert result["inference_per_sample_j"] > 0
        assert json.loads((deploy_run / f"evaluate-{name}.json").read_text())["results"] == report["results"]
    assert (evaluate(deploy_run, "analog-pcm", log=lambda s: None)["results"][0]["inference_per_sample_j"]
            < ideal["results"][0]["inference_per_sample_j"])


def test_pcm_drift_is_evaluated_per_time(deploy_run):
    report = evaluate(deploy_run, "analog-pcm", [1.0, 3600.0, 30 * 86400.0], log=lambda s: None)
    assert [r["inference_time_s"] for r in report["results"]] == [1.0, 3600.0, 30 * 86400.0]
    assert all(0.5 < r["accuracy"] <= 1 for r in report["results"])
    energies = [r["inference_per_sample_j"] for r in report["results"]]
    # drift changes what is read, not how much is done: only event-driven counts move, when an
    # output lands exactly on 0 (one run: no message, 10 fewer effective synops of 30 M at 1 h)
    assert max(energies) / min(energies) - 1 < 1e-4


def test_bad_evaluate_input_is_one_line(deploy_run, tmp_path):
    with pytest.raises(RunError, match="PCM"):
        evaluate(deploy_run, "loihi2", [3600.0], log=lambda s: None)
    with pytest.raises(RunError, match="positive"):
        evaluate(deploy_run, "analog-pcm", [-1.0], log=lambda s: None)
    done = subprocess.run([sys.executable, "-m", "neurodecorr", "evaluate", str(tmp_path), "--profile",
                           "analog-pcm"], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "config.json" in done.stderr
    done = subprocess.run([sys.executable, "-m", "neurodecorr", "evaluate", str(deploy_run), "--profile",
                           "analog-pcm", "--inference-time", "soon"], capture_output=True, text=True)
    assert done.returncode == 2 and "--inference-time" in done.stderr


def test_kept_decorrelation_is_programmed_and_paid_for(deploy_run):
    for name in ("analog-pcm", "analog-pcm-periphery", "loihi2"):
        folded = evaluate(deploy_run, name, log=lambda s: None)["results"][0]
        kept = evaluate(deploy_run, name, keep_decorrelation=True, log=lambda s: None)
        assert kept["decorrelation"] == "kept as arrays"
        # R read as its own arrays: more operations per sample than the folded network
        assert kept["results"][0]["inference_per_sample_j"] > folded["inference_per_sample_j"]
        assert kept["results"][0]["accuracy"] > folded["accuracy"] - 0.1


def test_a_run_is_evaluated_on_the_inputs_it_was_trained_on(tmp_path, digits):
    from neurodecorr import TrainConfig, train
    from neurodecorr.data import load_dataset

    for scaling in ("unit", "global"):
        run = tmp_path / scaling
        train(TrainConfig(dataset="digits", rule="bp", epochs=2, input_scaling=scaling), run,
              data=load_dataset("digits", scaling=scaling), progress=False, log=lambda _: None)
        final = json.loads((run / "metrics.json").read_text())["epochs"][-1]["test_accuracy"]
        report = evaluate(run, "ideal", log=lambda s: None)
        # the same network on the same inputs: equal up to BLAS rounding on a sample or two
        assert report["rate_accuracy_ideal"] == pytest.approx(final, abs=0.006)
        assert report["results"][0]["accuracy"] == pytest.approx(final, abs=0.006)


def _decorrelated_net(conv: bool, rng):
    """A small network whose R are trained-like: a gain of ~4 that nearly nulls a few shared
    input directions (the shape the seed rule learns), and a nonzero running mean."""
    from neurodecorr.nets.network import build_network
    from neurodecorr.nets.spec import load_spec
    from neurodecorr.numerics import DTYPE

    spec = load_spec("small-conv" if conv else "small-mlp")
    net = build_network(spec, (1, 8, 8) if conv else 64, 10, True, rng)
    for layer in net.layers:
        n = len(layer.R)
        Q = np.linalg.qr(rng.standard_normal((n, n)))[0]
        s = 4 + rng.uniform(-0.5, 0.5, n)
        s[: max(1, n // 8)] = rng.uniform(0.05, 0.4, max(1, n // 8))
        layer.R[...] = ((Q * s) @ Q.T + 0.05 * rng.standard_normal((n, n))).astype(DTYPE)
        layer.mu[...] = rng.uniform(0, 1, layer.mu.shape).astype(DTYPE)
    return net


@pytest.mark.parametrize("conv", [False, True])
def test_low_rank_fold_computes_the_trained_network(conv, rng):
    from neurodecorr.nets.fold import folded_network, low_rank_split
    from neurodecorr.nets.network import predict

    net = _decorrelated_net(conv, rng)
    x = rng.uniform(0, 1, (40, 64)).astype(np.float32)
    reference = predict(net, x, fold=False)
    for rank in (1, 3, 100):
        deployed = folded_network(net, rank=rank)
        for layer, trained in zip(deployed.layers, net.layers):
            kept = min(rank, trained.shape.n_in // 2)
            assert layer.R.shape == (kept, trained.shape.n_in) and layer.shape.decorrelation_rank == kept
            np.testing.assert_array_equal(layer.mu, trained.mu)  # the centring stays in the periphery
        # the same function: W' (c − c Ṽ Ṽᵀ) + b = W R c + b, up to float32 rounding; and
        # folded once more (the stage into W'), the fully folded network
        for fold in (False, True):
            out = predict(deployed, x, fold=fold)
            np.testing.assert_allclose(out, reference, atol=2e-4 * np.abs(reference).max())
    # what the array is left with: R P⁻¹ keeps R's singular values but for the k smallest, which
    # are raised to the median (nothing left for the weights to cancel)
    R = net.layers[-1].R
    s = np.linalg.svd(R.astype(np.float64), compute_uv=False)
    Vt, R_unshrunk = low_rank_split(R, 3)
    left = np.linalg.svd(R_unshrunk, compute_uv=False)
    np.testing.assert_allclose(np.sort(left), np.sort(np.r_[s[:-3], [np.median(s)] * 3]), rtol=1e-9)
    np.testing.assert_allclose(Vt @ Vt.T, np.diag(1 - s[-3:] / np.median(s)), atol=1e-9)


def test_low_rank_fold_is_paid_for_in_the_periphery(deploy_run):
    folded = evaluate(deploy_run, "analog-pcm-periphery", log=lambda s: None)
    kept = evaluate(deploy_run, "analog-pcm-periphery", keep_decorrelation=True, log=lambda s: None)
    ranked = evaluate(deploy_run, "analog-pcm-periphery", decorrelation_rank=4, log=lambda s: None)
    assert ranked["decorrelation"] == "rank 4 kept, the rest folded"
    energy = [r["results"][0]["inference_per_sample_j"] for r in (folded, ranked, kept)]
    assert energy[0] < energy[1] < energy[2]
    assert ranked["results"][0]["accuracy"] > folded["results"][0]["accuracy"] - 0.1
    # the stage's count: two reads of Ṽᵀ (4 × n_in) per sample, in the periphery
    from neurodecorr.devices import make_device
    from neurodecorr.devices.loader import load_profile
    from neurodecorr.energy import Counts
    from neurodecorr.engine.saved import load_run
    from neurodecorr.nets.fold import folded_network
    from neurodecorr.nets.network import predict

    _, learner, data = load_run(deploy_run)
    net = folded_network(learner.net, rank=4)
    counts = Counts()
    net.install(make_device(load_profile("analog-pcm-periphery"), np.random.default_rng(0), counts))
    predict(net, data.x_test[:50], fold=False)
    for i, layer in enumerate(net.layers):
        # every decorrelation stage of the run: Ṽᵀ read forward and transposed, dense inputs
        # counted where they are nonzero (at most 2 · 4 · n_in per sample)
        done = counts.total(kind="periphery_synops", stage=f"{i}R")
        assert 0 < done <= 50 * 2 * 4 * layer.shape.n_in


def test_bad_decorrelation_rank_is_one_line(deploy_run, tmp_path):
    from neurodecorr import TrainConfig, train
    from neurodecorr.data import load_dataset

    with pytest.raises(RunError, match="positive"):
        evaluate(deploy_run, "analog-pcm-periphery", decorrelation_rank=-1, log=lambda s: None)
    with pytest.raises(RunError, match="choose one"):
        evaluate(deploy_run, "analog-pcm-periphery", decorrelation_rank=2, keep_decorrelation=True,
                 log=lambda s: None)
    with pytest.raises(RunError, match="R − I"):
        evaluate(deploy_run, "loihi2-residual", decorrelation_rank=2, log=lambda s: None)
    with pytest.raises(RunError, match="analog-pcm-periphery"):  # R on an analogue array
        evaluate(deploy_run, "analog-pcm", decorrelation_rank=2, log=lambda s: None)
    assert evaluate(deploy_run, "loihi2", decorrelation_rank=2, log=lambda s: None)["results"][0]["accuracy"] > 0.8
    plain = tmp_path / "plain"
    train(TrainConfig(dataset="digits", rule="bp", decor="none", epochs=1), plain, data=load_dataset("digits"),
          progress=False, log=lambda _: None)
    with pytest.raises(RunError, match="no decorrelation"):
        evaluate(plain, "ideal", decorrelation_rank=2, log=lambda s: None)
    done = subprocess.run([sys.executable, "-m", "neurodecorr", "evaluate", str(deploy_run), "--profile",
                           "ideal", "--decorrelation-rank", "2", "--samples", "50"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    written = json.loads((deploy_run / "evaluate-ideal.json").read_text())
    assert written["decorrelation"] == "rank 2 kept, the rest folded"


def test_training_on_pcm_evaluates_each_epoch_with_its_rank(tmp_path, digits, monkeypatch):
    """`train --decorrelation-rank K` on a PCM profile: each epoch's test accuracy is read from a
    fresh chip programmed with the low-rank deployment (`evaluate --decorrelation-rank K`'s), and
    training itself is unchanged: the same arrays as the run evaluated with the plain fold."""
    from neurodecorr import TrainConfig, train
    from neurodecorr.nets import fold

    ranks, original = [], fold.folded_network
    monkeypatch.setattr(fold, "folded_network", lambda net, rank=0: ranks.append(rank) or original(net, rank))
    runs = {}
    for k in (0, 3):
        ranks.clear()
        config = TrainConfig(dataset="digits", profile="analog-pcm-periphery", rule="bp", decor="seed",
                             epochs=2, decorrelation_rank=k)
        result = train(config, tmp_path / f"rank{k}", data=digits, progress=False, log=lambda _: None)
        runs[k] = result, list(ranks)
        assert json.loads((tmp_path / f"rank{k}" / "config.json").read_text())["train"]["decorrelation_rank"] == k
    (plain, plain_ranks), (low, low_ranks) = runs[0], runs[3]
    assert plain_ranks == [0, 0] and low_ranks == [3, 3]  # one deployment per epoch's evaluation
    assert all(r["test_accuracy"] > 0.7 for r in low.epochs)
    # PCM's evaluation reads the deployed network, so the deployed inference energy is what it
    # counted: with the low-rank stage's periphery products kept (also re-priced by `neurodecorr
    # energy`), more than the plain fold's
    for run in (plain, low):
        assert run.energy["inference_folded_per_sample_j"] == run.energy["inference_per_sample_j"]
    assert low.energy["inference_folded_per_sample_j"] > plain.energy["inference_folded_per_sample_j"]
    done = subprocess.run([sys.executable, "-m", "neurodecorr", "energy", str(tmp_path / "rank3")],
                          capture_output=True, text=True)
    assert done.returncode == 0 and "with decorrelation folded" not in done.stdout, done.stderr
    for a, b in zip(plain.learner.net.layers, low.learner.net.layers):
        np.testing.assert_array_equal(a.W, b.W)
        np.testing.assert_array_equal(a.R, b.R)


def test_a_training_rank_where_it_cannot_apply_is_one_line(tmp_path):
    """Refused when made: negative, without decorrelation, on a chip whose test evaluation keeps R
    (every profile but PCM's), or with R on an analogue array; and a default rank keeps the
    settings hash of the runs made before the setting existed."""
    import hashlib

    from neurodecorr import TrainConfig
    from neurodecorr.errors import SpecError

    for settings, match in [({"decorrelation_rank": -1}, "integer ≥ 0"),
                            ({"decor": "none", "profile": "analog-pcm-periphery"}, "no decorrelation"),
                            ({"profile": "ideal"}, "as trained"),
                            ({"profile": "analog-rram-periphery"}, "as trained"),
                            ({"profile": "analog-pcm"}, "analogue array")]:
        with pytest.raises(SpecError, match=match):
            TrainConfig(**{"decorrelation_rank": 4, **settings})
    config = TrainConfig(profile="analog-pcm-periphery")
    before = {k: v for k, v in config.to_dict().items() if k not in ("epochs", "decorrelation_rank")}
    assert config.settings_hash() == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]
    assert TrainConfig(profile="analog-pcm-periphery", decorrelation_rank=4).settings_hash() != config.settings_hash()
    done = subprocess.run([sys.executable, "-m", "neurodecorr", "train", "--dataset", "digits",
                           "--decorrelation-rank", "4", "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "as trained" in done.stderr
    assert not (tmp_path / "x").exists()
