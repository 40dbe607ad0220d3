"""Training end to end on scikit-learn's digits: learning, run directories, resume, errors."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from neurodecorr import TrainConfig, train
from neurodecorr.engine import trainer
from neurodecorr.errors import DivergenceError, RunError, SpecError

FAST = dict(dataset="digits", model="small-mlp", batch_size=32, lr=1e-3, decor_lr=1e-3)


@pytest.mark.parametrize("rule,decor,floor", [
    ("bp", "none", 0.9), ("bp", "seed", 0.9), ("fa", "seed", 0.85), ("dfa", "seed", 0.85),
    ("np", "none", 0.6), ("np", "seed", 0.7),
])
def test_each_rule_learns_digits_well_above_chance(rule, decor, floor, digits):
    result = train(TrainConfig(rule=rule, decor=decor, epochs=5, **FAST), data=digits,
                   progress=False, log=lambda s: None)
    accs = [r["test_accuracy"] for r in result.epochs]
    assert accs[-1] >= floor, accs  # chance is 0.1
    for layer in result.learner.net.layers:
        assert layer.W.dtype == np.float32 and layer.b.dtype == np.float32
        assert layer.R is None or layer.R.dtype == np.float32


def test_same_seed_gives_identical_metrics(digits):
    cfg = TrainConfig(rule="fa", epochs=2, **FAST)
    a = train(cfg, data=digits, progress=False, log=lambda s: None)
    b = train(cfg, data=digits, progress=False, log=lambda s: None)
    key = lambda r: (r["train_loss"], r["test_accuracy"])  # noqa: E731
    assert [key(r) for r in a.epochs] == [key(r) for r in b.epochs]
    c = train(TrainConfig(rule="fa", epochs=2, seed=7, **FAST), data=digits, progress=False,
              log=lambda s: None)
    assert [key(r) for r in c.epochs] != [key(r) for r in a.epochs]


def test_run_directory_contents(tmp_path, digits):
    out = tmp_path / "run"
    train(TrainConfig(rule="np", epochs=2, **FAST), out, data=digits, progress=False,
          log=lambda s: None)
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["epoch"] for r in metrics["epochs"]] == [1, 2]
    for r in metrics["epochs"]:
        assert set(r) == {"epoch", "train_loss", "test_accuracy", "seconds"}
        assert 0 <= r["test_accuracy"] <= 1 and r["seconds"] > 0
    assert metrics["samples_per_second"] > 0
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [float(r["train_loss"]) for r in rows] == [r["train_loss"] for r in metrics["epochs"]]
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["rule"] == "np" and config["train"]["np_sigma"] == 1e-3
    assert config["model_spec"]["name"] == "small-mlp"
    assert [l["n_in"] for l in config["layers"]] == [64, 256, 256]
    weights = np.load(out / "weights.npz", allow_pickle=False)
    assert weights["net/layer0.W"].shape == (256, 64) and weights["net/layer0.R"].shape == (64, 64)
    png = (out / "learning_curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_resume_equals_uninterrupted(tmp_path, digits):
    cfg = TrainConfig(rule="fa", decor="seed", epochs=3, **FAST)
    whole = train(cfg, tmp_path / "whole", data=digits, progress=False, log=lambda s: None)
    part = TrainConfig(**{**cfg.to_dict(), "epochs": 2})
    train(part, tmp_path / "split", data=digits, progress=False, log=lambda s: None)
    resumed = train(cfg, tmp_path / "split", resume=True, data=digits, progress=False,
                    log=lambda s: None)
    key = lambda r: (r["epoch"], r["train_loss"], r["test_accuracy"])  # noqa: E731
    assert [key(r) for r in resumed.epochs] == [key(r) for r in whole.epochs]
    a = np.load(tmp_path / "whole" / "checkpoint.npz")
    b = np.load(tmp_path / "split" / "checkpoint.npz")
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        if k != "meta/state":  # bookkeeping, with wall-clock seconds
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_resume_after_a_crash_between_checkpoint_and_metrics(tmp_path, digits):
    """checkpoint.npz is the truth: a metrics.json one epoch behind it does not mislead resume."""
    cfg = TrainConfig(rule="fa", epochs=3, **FAST)
    whole = train(cfg, tmp_path / "whole", data=digits, progress=False, log=lambda s: None)
    two = TrainConfig(**{**cfg.to_dict(), "epochs": 2})
    train(two, tmp_path / "split", data=digits, progress=False, log=lambda s: None)
    metrics = json.loads((tmp_path / "split" / "metrics.json").read_text())
    metrics["epochs"] = metrics["epochs"][:1]  # as if killed after checkpoint.npz was replaced
    (tmp_path / "split" / "metrics.json").write_text(json.dumps(metrics))
    resumed = train(cfg, tmp_path / "split", resume=True, data=digits, progress=False,
                    log=lambda s: None)
    key = lambda r: (r["epoch"], r["train_loss"], r["test_accuracy"])  # noqa: E731
    assert [key(r) for r in resumed.epochs] == [key(r) for r in whole.epochs]


def test_a_damaged_checkpoint_is_a_clear_error(tmp_path, digits):
    cfg = TrainConfig(rule="bp", epochs=1, **FAST)
    train(cfg, tmp_path / "r", data=digits, progress=False, log=lambda s: None)
    path = tmp_path / "r" / "checkpoint.npz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(RunError, match="damaged"):
        train(TrainConfig(**{**cfg.to_dict(), "epochs": 2}), tmp_path / "r", resume=True,
              data=digits, progress=False, log=lambda s: None)


def test_resume_refuses_changed_settings_and_new_run_refuses_old_dir(tmp_path, digits):
    cfg = TrainConfig(rule="bp", epochs=1, **FAST)
    train(cfg, tmp_path / "r", data=digits, progress=False, log=lambda s: None)
    with pytest.raises(RunError, match="already holds a run"):
        train(cfg, tmp_path / "r", data=digits, progress=False, log=lambda s: None)
    other = TrainConfig(**{**cfg.to_dict(), "lr": 0.5})
    with pytest.raises(RunError, match="lr"):
        train(other, tmp_path / "r", resume=True, data=digits, progress=False, log=lambda s: None)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the inf we inject
def test_divergence_names_layer_and_step_and_keeps_checkpoint(tmp_path, digits, monkeypatch):
    cfg = TrainConfig(rule="bp", epochs=1, **FAST)
    out = tmp_path / "r"
    train(cfg, out, data=digits, progress=False, log=lambda s: None)
    saved = dict(np.load(out / "checkpoint.npz"))
    assert "meta/state" in saved
    real_step = trainer.train_step
    calls = []

    def poisoned(learner, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # a blow-up in the third step of epoch 2
            learner.net.layers[1].W[0, 0] = np.inf
        return real_step(learner, *args, **kwargs)

    monkeypatch.setattr(trainer, "train_step", poisoned)
    longer = TrainConfig(**{**cfg.to_dict(), "epochs": 2})
    with pytest.raises(DivergenceError) as err:
        train(longer, out, resume=True, data=digits, progress=False, log=lambda s: None)
    message = str(err.value)
    assert "layer 1" in message and "epoch 2, step 3" in message and "--lr" in message
    assert json.loads((out / "checkpoint.json").read_text())["epoch"] == 1
    kept = np.load(out / "checkpoint.npz")
    for k, v in saved.items():
        np.testing.assert_array_equal(kept[k], v)


def test_bad_settings_are_named():
    with pytest.raises(SpecError, match="rule"):
        TrainConfig(rule="sgd-magic")
    with pytest.raises(SpecError, match="decor"):
        TrainConfig(decor="pca")
    with pytest.raises(SpecError, match="lr"):
        TrainConfig(lr=-1)
    with pytest.raises(SpecError, match="batch_size"):
        TrainConfig(batch_size=0)


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "neurodecorr", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_cli_train_end_to_end_and_resume(tmp_path):
    args = ["train", "--dataset", "digits", "--model", "small-mlp", "--rule", "dfa",
            "--decor", "seed", "--epochs", "2", "--batch-size", "64", "--lr", "1e-3",
            "--out", str(tmp_path / "run"), "--quiet"]
    done = _cli(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "epoch   2" in done.stdout and "test accuracy" in done.stdout
    more = _cli("train", "--out", str(tmp_path / "run"), "--resume", "--epochs", "3", "--quiet",
                cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    assert "resuming" in more.stdout and "epoch   3" in more.stdout and "epoch   1" not in more.stdout
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [r["epoch"] for r in metrics["epochs"]] == [1, 2, 3]


@pytest.mark.parametrize("args,expected", [
    (["--dataset", "imagenet"], "unknown dataset"),
    (["--dataset", "fashion-mnist", "--data-dir", "/nonexistent/fmnist"], "/nonexistent/fmnist"),
    (["--rule", "magic"], "rule"),
    (["--model", "no-such-model"], "no-such-model"),
])
def test_cli_errors_are_one_line_without_traceback(tmp_path, args, expected):
    done = _cli("train", "--dataset", "digits", *args, "--out", str(tmp_path / "x"), cwd=tmp_path)
    assert done.returncode == 2
    assert expected in done.stderr.lower() or expected in done.stderr
    assert "Traceback" not in done.stderr


# NP's digits defaults are 100 epochs (engine/presets.py), and this test runs the defaults as
# shipped: NP + seed took 40 s on a slow 2-core host (19 s without R), so those two are marked
@pytest.mark.parametrize("rule,decor", [
    (rule, decor) if rule != "np" else pytest.param(rule, decor, marks=pytest.mark.slow)
    for rule in ("bp", "fa", "dfa", "np") for decor in ("none", "seed")])
def test_the_defaults_train_digits_well(rule, decor, digits):
    """At its defaults (engine/presets.py), every rule with and without decorrelation reaches
    90 % on digits (measured 95-98 % over seeds 1-3 and 42); the default run reaches 95 %."""
    result = train(TrainConfig(dataset="digits", rule=rule, decor=decor), data=digits, progress=False,
                   log=lambda s: None)
    assert result.epochs[-1]["test_accuracy"] >= (0.95 if (rule, decor) == ("bp", "seed") else 0.9)
    assert TrainConfig(dataset="digits", rule=rule, decor=decor).to_dict() == result.learner.config.to_dict()


def test_presets_resolve_in_order_and_are_recorded():
    from neurodecorr.engine import presets

    digits_np = TrainConfig(dataset="digits", rule="np")
    assert (digits_np.lr, digits_np.epochs, digits_np.batch_size) == (5e-4, 100, 32)
    assert TrainConfig(dataset="digits", rule="np", lr=1e-2).lr == 1e-2  # given beats preset
    ref = TrainConfig(dataset="fashion-mnist", preset="reference")
    assert (ref.model, ref.decor_lr, ref.decor_gain, ref.np_sigma) == ("paper-mlp-reference", 1e-5, "raw", 1e-6)
    assert TrainConfig(rule="np", profile="analog-rram").np_sigma == 0.03  # chosen for crossbars
    assert presets.origin("np_sigma", "digits", "np", None, "crossbar") == "crossbar, np"
    assert presets.origin("lr", "digits", "np", None) == "digits, np"
    assert TrainConfig.from_dict(ref.to_dict()) == ref
    with pytest.raises(SpecError, match="preset"):
        TrainConfig(preset="fast")
