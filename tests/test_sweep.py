"""Sweeps end to end on digits: Dask, resume, failures, the report, the Pareto front, and
bookkeeping that cannot mix runs: every grid key a configuration, settings hashed, damaged or
foreign directories reported, hostile sweep files refused."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from neurodecorr import TrainConfig, train
from neurodecorr.errors import RunError, SpecError
from neurodecorr.sweep import load_sweep, pareto_front, report
from neurodecorr.sweep import runner as sweep_runner

SWEEP = """
name: t
base: {{dataset: digits, model: small-mlp, epochs: 2, batch_size: 128, lr: 0.001}}
grid:
{grid}
"""


def _write(tmp_path, grid, base=None, name="sweep.yaml"):
    path = tmp_path / name
    text = SWEEP.format(grid=grid)
    if base is not None:
        text = text.replace("base: {dataset: digits, model: small-mlp, epochs: 2, batch_size: 128, lr: 0.001}",
                            f"base: {base}")
    path.write_text(text)
    return path


def _sweep(path, out, *extra, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "neurodecorr", "sweep", str(path), "--out", str(out),
                           "--workers", "2", *extra], capture_output=True, text=True, timeout=600, cwd=cwd,
                          env=env)


def _rows(out):
    import csv

    return list(csv.DictReader((out / "results.csv").open()))


def test_pareto_front_on_a_hand_made_example():
    energy = [1.0, 2.0, 3.0, 1.5, 4.0, 2.0]
    accuracy = [0.5, 0.7, 0.9, 0.4, 0.85, 0.7]
    # (1.5, .4) is beaten by (1, .5); (4, .85) by (3, .9); the second (2, .7) ties the first
    assert pareto_front(energy, accuracy) == [0, 1, 2]
    assert pareto_front([], []) == []


def test_two_point_sweep_end_to_end_and_report(tmp_path):
    out = tmp_path / "out"
    temp = tmp_path / "tmp"  # the system's temporary directory, for this sweep
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    done = _sweep(_write(tmp_path, "  rule: [bp, fa]"), out, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "2 to run" in done.stdout and "[2/2]" in done.stdout
    rows = _rows(out)
    assert len(rows) == 2 and all(r["status"] == "finished" for r in rows)
    for name in ("results.md", "pareto.png", "curves.png"):
        assert (out / name).stat().st_size > 500
    table = (out / "results.md").read_text()
    assert "dataset digits; model small-mlp; epochs 2; seeds 42" in table
    assert "accuracy/µJ inference" in table and "Pareto inference" in table
    (out / "results.md").unlink()
    again = subprocess.run([sys.executable, "-m", "neurodecorr", "report", str(out)],
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert (out / "results.md").read_text() == table
    rerun = _sweep(_write(tmp_path, "  rule: [bp, fa]"), out, cwd=tmp_path, env=env)
    assert "2 already finished, 0 to run" in rerun.stdout
    # nothing written outside --out: no Dask scratch space (workers' or scheduler's) in the
    # working directory or the temporary directory, nor left in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "sweep.yaml", "tmp"]
    assert list(temp.iterdir()) == []
    assert not (out / ".dask-scratch").exists()
    # a run directory that is not a point of the sweep (an earlier grid's) is not reported
    shutil.copytree(out / "rule-fa", out / "rule-dfa")
    assert len(report(out)[0]) == 2


def test_every_grid_key_but_the_seed_is_a_configuration(tmp_path):
    out = tmp_path / "out"
    done = _sweep(_write(tmp_path, "  lr: [0.001, 0.01]\n  seed: [1, 2]",
                         base="{dataset: digits, epochs: 2, batch_size: 128}"), out)
    assert done.returncode == 0, done.stderr
    rows = _rows(out)
    assert sorted({r["lr"] for r in rows}) == ["0.001", "0.01"] and len(rows) == 4
    rows, agg = report(out)
    assert sorted(a["lr"] for a in agg) == [0.001, 0.01]  # never averaged together
    assert all(a["runs"] == 2 and a["seeds"] == [1, 2] for a in agg)
    table = (out / "results.md").read_text()
    assert "| lr | rule | decor | profile | model | runs |" in table


def test_a_sweep_with_changed_settings_is_refused_unless_rerun(tmp_path):
    out = tmp_path / "out"
    assert _sweep(_write(tmp_path, "  decor: [none]", base="{dataset: digits, epochs: 1, rule: fa}"),
                  out).returncode == 0
    edited = _write(tmp_path, "  decor: [none]", base="{dataset: digits, epochs: 1, rule: bp}")
    refused = _sweep(edited, out)
    assert refused.returncode == 2 and "other settings" in refused.stderr and "--rerun" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert [r["rule"] for r in _rows(out)] == ["fa"]  # the old run is untouched
    redone = _sweep(edited, out, "--rerun")
    assert redone.returncode == 0, redone.stderr
    assert [r["rule"] for r in _rows(out)] == ["bp"]


def test_an_edited_profile_file_is_another_run(tmp_path):
    from neurodecorr.devices.loader import load_profile

    chip = tmp_path / "chip.toml"
    chip.write_text(open(load_profile("loihi2").source).read())
    path = _write(tmp_path, "  decor: [none]", base=f"{{dataset: digits, epochs: 1, profile: {chip}}}")
    out = tmp_path / "out"
    assert _sweep(path, out).returncode == 0
    chip.write_text(chip.read_text().replace("weight_bits = 8", "weight_bits = 6"))
    refused = _sweep(path, out)
    assert refused.returncode == 2 and "other settings" in refused.stderr, refused.stderr


def test_two_profiles_of_the_same_file_name_get_their_own_runs(tmp_path):
    from neurodecorr.devices.loader import load_profile

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        text = open(load_profile("loihi2").source).read()
        (tmp_path / folder / "chip.toml").write_text(text.replace("weight_bits = 8", "weight_bits = 6")
                                                     if folder == "b" else text)
    sweep = load_sweep(_write(tmp_path, f"  profile: [{tmp_path}/a/chip.toml, {tmp_path}/b/chip.toml]"))
    names = [p.name for p in sweep.points()]
    assert len(set(names)) == 2 and all(n.startswith("profile-chip-") for n in names)


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
    assert sorted(r["status"] for r in _rows(out)) == ["failed", "finished"]


def test_damaged_run_folders_are_reported_not_fatal(tmp_path, digits):
    out = tmp_path / "out"
    sweep = load_sweep(_write(tmp_path, "  rule: [bp, fa, dfa]"))
    for point in sweep.points():
        train(point.config, out / point.name, data=digits, progress=False, log=lambda s: None)
    (out / "sweep.json").write_text(json.dumps(sweep.to_dict()))
    bp, fa, _ = (out / p.name for p in sweep.points())
    (bp / "metrics.json").write_text("[]")
    (fa / "config.json").write_text("garbage {")
    rows, agg = report(out)
    status = {r["run"]: r["status"] for r in rows}
    assert status[bp.name] == "damaged" and status[fa.name] == "damaged"
    assert [a["rule"] for a in agg] == ["dfa"]


def test_report_on_something_that_is_not_a_sweep_is_a_clear_error(tmp_path, digits):
    run = tmp_path / "run"
    train(TrainConfig(epochs=1), run, data=digits, progress=False, log=lambda s: None)
    (tmp_path / "empty").mkdir()
    # a folder that holds runs of `train`, not of a sweep (here: tmp_path itself)
    for target, message in ((run, "single training run"), (tmp_path / "nothing", "not a directory"),
                            (tmp_path / "empty", "not a sweep"), (tmp_path, "not a sweep")):
        done = subprocess.run([sys.executable, "-m", "neurodecorr", "report", str(target)],
                              capture_output=True, text=True)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert not (run / "results.md").exists() and not (tmp_path / "results.md").exists()


def test_bad_sweep_files_name_the_problem(tmp_path):
    with pytest.raises(SpecError, match="grid.rule"):
        load_sweep(_write(tmp_path, "  rule: bp"))
    with pytest.raises(SpecError, match="rule"):
        load_sweep(_write(tmp_path, "  rule: [bp, magic]"))
    with pytest.raises(SpecError, match="does not exist"):
        load_sweep(tmp_path / "missing.yaml")
    huge = "\n".join(f"  k{i}: [{', '.join(str(j) for j in range(10))}]" for i in range(6))
    with pytest.raises(SpecError, match="1,000,000 points"):
        load_sweep(_write(tmp_path, huge))
    with pytest.raises(SpecError, match="more than once"):
        load_sweep(_write(tmp_path, "  rule: [bp, bp]"))


@pytest.mark.parametrize("workers", ["0", "-1"])
def test_a_bad_worker_count_is_refused(tmp_path, workers):
    done = subprocess.run([sys.executable, "-m", "neurodecorr", "sweep", str(_write(tmp_path, "  rule: [bp]")),
                           "--out", str(tmp_path / "out"), "--workers", workers],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--workers" in done.stderr


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_runner, "CONNECT_TIMEOUT_S", 2)
    with pytest.raises(RunError, match="expected an address"):
        sweep_runner._client("not a url", None, tmp_path)
    with pytest.raises(RunError, match="cannot reach"):
        sweep_runner._client("tcp://127.0.0.1:1", None, tmp_path)
