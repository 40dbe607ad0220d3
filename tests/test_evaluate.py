"""`neurodecorr evaluate`: a trained run on another chip without retraining — the deployed
(folded) network programmed, quantised or read as each chip does, per drift time."""

import json
import subprocess
import sys

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
