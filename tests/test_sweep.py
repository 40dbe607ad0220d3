"""Sweeps end to end on digits: Dask, resume, failures, the report, the Pareto front."""

import json
import subprocess
import sys

import pytest

from neurodecorr import TrainConfig, train
from neurodecorr.errors import SpecError
from neurodecorr.sweep import load_sweep, pareto_front

SWEEP = """
name: t
base: {{dataset: digits, model: small-mlp, epochs: 2, batch_size: 128, lr: 0.001}}
grid:
{grid}
"""


def _write(tmp_path, grid):
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP.format(grid=grid))
    return path


def _sweep(path, out):
    return subprocess.run([sys.executable, "-m", "neurodecorr", "sweep", str(path), "--out", str(out),
                           "--workers", "2"], capture_output=True, text=True, timeout=600)


def test_pareto_front_on_a_hand_made_example():
    energy = [1.0, 2.0, 3.0, 1.5, 4.0, 2.0]
    accuracy = [0.5, 0.7, 0.9, 0.4, 0.85, 0.7]
    # (1.5, .4) is beaten by (1, .5); (4, .85) by (3, .9); the second (2, .7) ties the first
    assert pareto_front(energy, accuracy) == [0, 1, 2]
    assert pareto_front([], []) == []


def test_two_point_sweep_end_to_end_and_report(tmp_path):
    out = tmp_path / "out"
    done = _sweep(_write(tmp_path, "  rule: [bp, fa]"), out)
    assert done.returncode == 0, done.stderr
    assert "2 to run" in done.stdout and "[2/2]" in done.stdout
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 3 and all(r.endswith(",finished") for r in rows[1:])
    for name in ("results.md", "pareto.png", "curves.png"):
        assert (out / name).stat().st_size > 500
    table = (out / "results.md").read_text()
    (out / "results.md").unlink()
    report = subprocess.run([sys.executable, "-m", "neurodecorr", "report", str(out)],
                            capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    assert (out / "results.md").read_text() == table
    again = _sweep(_write(tmp_path, "  rule: [bp, fa]"), out)
    assert "2 already finished, 0 to run" in again.stdout


def test_an_interrupted_sweep_reruns_only_what_did_not_finish(tmp_path, digits):
    path = _write(tmp_path, "  rule: [bp, fa, dfa]")
    sweep = load_sweep(path)
    out = tmp_path / "out"
    # the state a kill leaves behind: fa finished, dfa stopped after its first epoch
    for point in sweep.points():
        if point.grid_values["rule"] == "fa":
            train(point.config, out / point.name, data=digits, progress=False, log=lambda s: None)
        if point.grid_values["rule"] == "dfa":
            partial = TrainConfig(**{**point.config.to_dict(), "epochs": 1})
            train(partial, out / point.name, data=digits, progress=False, log=lambda s: None)
    fa_dir = next(out / p.name for p in sweep.points() if p.grid_values["rule"] == "fa")
    fa_mtime = (fa_dir / "metrics.json").stat().st_mtime_ns
    done = _sweep(path, out)
    assert done.returncode == 0, done.stderr
    assert "1 already finished, 2 to run" in done.stdout
    assert (fa_dir / "metrics.json").stat().st_mtime_ns == fa_mtime
    dfa_dir = next(out / p.name for p in sweep.points() if p.grid_values["rule"] == "dfa")
    assert "resuming" in (dfa_dir / "train.log").read_text()
    epochs = json.loads((dfa_dir / "metrics.json").read_text())["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2]


def test_a_failing_run_is_reported_and_the_others_finish(tmp_path):
    out = tmp_path / "out"
    path = tmp_path / "sweep.yaml"  # mnist has no default directory: that run fails when it starts
    path.write_text(SWEEP.format(grid="  dataset: [digits, mnist]").replace("dataset: digits, ", ""))
    done = _sweep(path, out)
    assert done.returncode == 1
    assert "FAILED: DataError" in done.stdout and "mnist" in done.stdout
    rows = (out / "results.csv").read_text().splitlines()[1:]
    assert sorted(r.rsplit(",", 1)[1] for r in rows) == ["failed", "finished"]


def test_bad_sweep_files_name_the_problem(tmp_path):
    with pytest.raises(SpecError, match="grid.rule"):
        load_sweep(_write(tmp_path, "  rule: bp"))
    with pytest.raises(SpecError, match="rule"):
        load_sweep(_write(tmp_path, "  rule: [bp, magic]"))
    with pytest.raises(SpecError, match="does not exist"):
        load_sweep(tmp_path / "missing.yaml")
