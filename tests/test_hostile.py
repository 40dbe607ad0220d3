"""Bad input and faults, as a hostile reviewer tried them: each is a one-line error (exit status
2, no traceback) or correct behaviour, nothing of the user's is overwritten, nothing is written
outside --out."""

import errno
import gzip
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neurodecorr import TrainConfig, cli, train
from neurodecorr.data import read_idx
from neurodecorr.engine import rundir
from neurodecorr.errors import DataError, DivergenceError, RunError, SpecError
from neurodecorr.nets.spec import load_spec

QUIET = dict(progress=False, log=lambda s: None)


def _cli(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "neurodecorr", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def _one_line_error(done, *expected):
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert len(lines[0]) < 1000
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def two_epoch_run(tmp_path_factory, digits):
    out = tmp_path_factory.mktemp("hostile") / "run"
    train(TrainConfig(rule="fa", epochs=2), out, data=digits, **QUIET)
    return out


# ---------------------------------------------------------------- data loss
def test_out_holding_the_users_files_is_never_written(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "metrics.json").write_text('{"mine": true}')
    _one_line_error(_cli("train", "--epochs", "1", "--out", out, "--quiet"), "not empty", "metrics.json")
    assert (out / "metrics.json").read_text() == '{"mine": true}'
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json"]


# ---------------------------------------------------------------- resume that was silently wrong
def test_resume_trains_the_network_it_started_with(tmp_path, digits):
    spec = tmp_path / "net.yaml"
    spec.write_text("name: net\nhidden:\n  - {width: 16, activation: leaky_relu}\n")
    whole = train(TrainConfig(model=str(spec), epochs=2), tmp_path / "whole", data=digits, **QUIET)
    train(TrainConfig(model=str(spec), epochs=1), tmp_path / "split", data=digits, **QUIET)
    spec.write_text("name: net\nhidden:\n  - {width: 16, activation: tanh}\n")  # edited since
    notes = []
    resumed = train(TrainConfig(model=str(spec), epochs=2), tmp_path / "split", resume=True, data=digits,
                    progress=False, log=notes.append)
    assert any("has changed since this run started" in n for n in notes)
    assert [e["test_accuracy"] for e in resumed.epochs] == [e["test_accuracy"] for e in whole.epochs]
    assert resumed.learner.net.layers[0].shape.activation == "leaky_relu"


def test_a_checkpoint_from_another_run_is_refused(tmp_path, digits):
    train(TrainConfig(rule="fa", profile="loihi2", epochs=1), tmp_path / "fa", data=digits, **QUIET)
    train(TrainConfig(rule="bp", epochs=1), tmp_path / "bp", data=digits, **QUIET)
    (tmp_path / "bp" / "checkpoint.npz").write_bytes((tmp_path / "fa" / "checkpoint.npz").read_bytes())
    with pytest.raises(RunError, match="other settings"):
        train(TrainConfig(rule="bp", epochs=2), tmp_path / "bp", resume=True, data=digits, **QUIET)


def test_resume_refuses_flags_that_would_change_the_run(two_epoch_run):
    _one_line_error(_cli("train", "--out", two_epoch_run, "--resume", "--lr", "0.5"), "--lr", "--resume")
    _one_line_error(_cli("train", "--out", two_epoch_run, "--resume", "--rule", "bp"), "--rule")


def test_resume_cannot_undo_completed_epochs(two_epoch_run):
    before = (two_epoch_run / "config.json").read_text()
    _one_line_error(_cli("train", "--out", two_epoch_run, "--resume", "--epochs", "1"), "completed 2 epochs")
    assert (two_epoch_run / "config.json").read_text() == before


@pytest.mark.parametrize("flag,value", [("--np-sigma", "inf"), ("--lr", "nan"), ("--decor-lr", "-1"),
                                        ("--epochs", "0"), ("--preset", "fast")])
def test_non_finite_or_out_of_range_settings_are_named(tmp_path, flag, value):
    _one_line_error(_cli("train", flag, value, "--out", tmp_path / "x"), flag.lstrip("-").replace("-", "_"))
    assert not (tmp_path / "x").exists()


def test_an_empty_out_is_refused(tmp_path):
    _one_line_error(_cli("train", "--out", "", cwd=tmp_path), "--out")
    _one_line_error(_cli("sweep", "sweeps/demo.yaml", "--out", "", cwd=tmp_path), "--out")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow that makes it diverge
def test_divergence_in_the_first_epoch_says_there_is_no_checkpoint(tmp_path, digits):
    with pytest.raises(DivergenceError) as err:
        train(TrainConfig(optimizer="sgd", lr=1e30, decor="none", epochs=1), tmp_path / "r", data=digits,
              **QUIET)
    assert "no checkpoint" in str(err.value) and "is kept" not in str(err.value)


def test_interrupting_a_sweep_names_the_way_to_resume_it(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_sweep", interrupted)
    monkeypatch.setitem(cli.main.__globals__, "_cmd_sweep", interrupted)
    assert cli.main(["sweep", "x.yaml", "--out", "y"]) == 130
    message = capsys.readouterr().err
    assert "--resume" not in message and "same sweep command again" in message


def test_energy_of_an_empty_or_malformed_report_is_an_error(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for text, expected in (('{"counts": {}}', "no operations"), ("[1, 2]", "no readable"),
                           ("{not json", "cannot be read")):
        (run / "energy.json").write_text(text)
        _one_line_error(_cli("energy", run), expected)


# ---------------------------------------------------------------- what used to be tracebacks
@pytest.mark.parametrize("where", ["/proc/neurodecorr-x", "a-file", "a-file/under", "/dev/null"])
def test_an_out_that_cannot_be_written_fails_before_training(tmp_path, where):
    (tmp_path / "a-file").write_text("x")
    out = where if where.startswith("/") else tmp_path / where
    line = _one_line_error(_cli("train", "--epochs", "1", "--out", out, "--quiet"))
    assert "run directory" in line or "--out" in line
    assert (tmp_path / "a-file").read_text() == "x"


def test_deploy_refuses_a_run_directory_it_cannot_write_before_running(two_epoch_run, monkeypatch):
    import os

    from neurodecorr.engine.saved import check_writable

    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(RunError, match="cannot write the report"):
        check_writable(two_epoch_run)


def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "checkpoint.npz"
    target.write_bytes(b"the previous checkpoint")

    def full(self, data):
        self.open("wb").write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(RunError, match="No space left on device.*previous file is kept"):
        rundir.write_npz(target, {"a": np.zeros(1000)})
    monkeypatch.undo()
    assert target.read_bytes() == b"the previous checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]


def _idx_header(*dims, code=0x08):
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def test_idx_files_with_no_images_or_an_overflowing_header_are_errors(tmp_path):
    from neurodecorr.data import load_dataset, write_idx

    for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        write_idx(tmp_path / name, np.zeros((0, 28, 28), np.uint8))
    for name in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        write_idx(tmp_path / name, np.zeros(0, np.uint8))
    with pytest.raises(DataError, match="holds no images"):
        load_dataset("mnist", tmp_path)
    huge = tmp_path / "huge-idx3-ubyte"
    huge.write_bytes(_idx_header(2**22, 2**22, 2**20) + b"\0" * 100)  # 2^64 bytes: wraps int64 to 0
    with pytest.raises(DataError, match="more than"):
        read_idx(huge)


def test_a_gzip_bomb_is_refused_after_reading_what_its_header_declares(tmp_path):
    path = tmp_path / "bomb-idx1-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(_idx_header(1000))
        zeros = b"\0" * (1 << 20)
        for _ in range(256):  # 256 MiB of payload behind a header that declares 1000 bytes
            f.write(zeros)
    assert path.stat().st_size < 2_000_000
    with pytest.raises(DataError, match="longer than its header says"):
        read_idx(path)


def test_hostile_network_specs_give_short_messages(tmp_path, digits):
    deep = tmp_path / "deep.yaml"
    deep.write_text("hidden: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(SpecError, match="nested too deeply|must be"):
        load_spec(deep)
    laughs = tmp_path / "laughs.yaml"
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{cur}: &{cur} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]")
    lines.append("hidden: *i")
    laughs.write_text("\n".join(lines) + "\n")
    assert laughs.stat().st_size < 800
    with pytest.raises(SpecError) as err:
        load_spec(laughs)
    assert len(str(err.value)) < 1000
    wide = tmp_path / "wide.yaml"
    wide.write_text("hidden:\n  - {width: 2000000, activation: leaky_relu}\n")
    with pytest.raises(SpecError, match="GiB"):
        train(TrainConfig(model=str(wide), epochs=1), data=digits, **QUIET)


@pytest.mark.parametrize("damage", ["missing keys", "wrong shapes", "empty history", "config {}",
                                    "a list for a name"])
def test_damaged_run_files_on_resume_are_one_line(tmp_path, digits, damage):
    out = tmp_path / "run"
    train(TrainConfig(epochs=1), out, data=digits, **QUIET)
    arrays = rundir.read_npz(out / "checkpoint.npz")
    state = json.loads(str(arrays["meta/state"]))
    if damage == "missing keys":
        arrays.pop("net/layer0.W")
    elif damage == "wrong shapes":
        arrays["net/layer1.W"] = np.zeros((3, 3), np.float32)
    elif damage == "empty history":
        arrays["meta/state"] = np.array(json.dumps({**state, "history": []}))
    if damage == "config {}":
        (out / "config.json").write_text("{}")
    elif damage == "a list for a name":
        stored = json.loads((out / "config.json").read_text())
        stored["train"]["rule"] = ["bp"]
        (out / "config.json").write_text(json.dumps(stored))
    else:
        rundir.write_npz(out / "checkpoint.npz", arrays)
    _one_line_error(_cli("train", "--out", out, "--resume", "--epochs", "2"))


def test_weights_that_do_not_fit_the_run_are_one_line_for_evaluate_and_deploy(tmp_path, digits):
    out = tmp_path / "run"
    train(TrainConfig(epochs=1), out, data=digits, **QUIET)
    arrays = rundir.read_npz(out / "weights.npz")
    arrays["net/layer1.W"] = np.zeros((3, 3), np.float32)
    rundir.write_npz(out / "weights.npz", arrays)
    _one_line_error(_cli("evaluate", out, "--profile", "ideal"), "weights.npz", "layer1.W")
    _one_line_error(_cli("deploy", out, "--backend", "emulator"), "weights.npz")


def test_spiking_decor_refuses_a_bad_duration():
    _one_line_error(_cli("spiking-decor", "--duration", "nan"), "--duration")
