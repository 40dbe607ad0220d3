"""The training loop: epochs of local updates, evaluation, checkpoints, resume.

`train()` is what `neurodecorr train` runs. A run directory holds (see `rundir`):
config.json (fully resolved), metrics.json and metrics.csv (one record per epoch: epoch,
train_loss, test_accuracy in [0, 1], seconds of wall time for the epoch including evaluation;
and samples_per_second over the training steps alone), checkpoint.npz (everything needed to
resume), weights.npz (the network and any feedback matrices) and learning_curve.png.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurodecorr import __version__
from neurodecorr.data import Dataset, batches, load_dataset
from neurodecorr.devices import Profile
from neurodecorr.devices.loader import load_profile, profile_from_dict
from neurodecorr.energy import Counts, build_report, format_report, missing_prices
from neurodecorr.engine import rundir
from neurodecorr.engine.config import TrainConfig
from neurodecorr.engine.learner import Learner, device_rng, epoch_rng, make_learner
from neurodecorr.engine.step import train_step
from neurodecorr.errors import DivergenceError, NeurodecorrError, RunError
from neurodecorr.nets.network import predict
from neurodecorr.nets.spec import NetSpec, load_spec, spec_from_dict


@dataclass
class TrainResult:
    learner: Learner
    epochs: list[dict]
    samples_per_second: float
    run_dir: Path | None
    energy: dict | None = None  # the energy report (energy.json), when the profile is priced


def accuracy(learner: Learner, x: np.ndarray, y: np.ndarray) -> float:
    """Test accuracy as the chip runs the network after training (`predict`); a PCM run with
    decorrelation_rank k deploys R's k most-suppressed directions beside the fold."""
    rank = learner.config.decorrelation_rank
    return float(np.mean(np.argmax(predict(learner.net, x, rank=rank), axis=1) == y))


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info

        info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        return ", ".join(f"{i['internal_api']} {i.get('version')} ({i.get('architecture')}, "
                         f"{i['num_threads']} threads)" for i in info)
    except Exception:  # only informational
        return "unknown"


def resolved_config(config: TrainConfig, data: Dataset, spec: NetSpec, profile: Profile) -> dict:
    return {
        "train": config.to_dict(),
        "settings_hash": config.settings_hash(),
        "profile": profile.to_dict(),
        "model_spec": spec.to_dict(),
        "layers": [s.describe() for s in spec.layers(data.input_shape, data.n_classes)],
        "data": {"name": data.name, "source": data.source, "scaling": data.scaling,
                 "n_train": len(data.y_train), "n_test": len(data.y_test),
                 "n_features": data.n_features, "n_classes": data.n_classes,
                 "image_shape": None if data.image_shape is None else list(data.image_shape)},
        "environment": {"neurodecorr": __version__, "numpy": np.__version__,
                        "python": platform.python_version(), "blas": blas_info()},
    }


STATE_KEY = "meta/state"  # the run's bookkeeping, stored inside checkpoint.npz with the arrays
# files a sweep writes into a run directory before the run starts (sweep/runner.py)
SWEEP_FILES = {"point.json", "train.log", "error.txt"}


@dataclass
class _Resumed:
    """What a run directory says about the run in it."""

    spec: NetSpec
    profile: Profile
    arrays: dict | None = None   # the checkpoint's arrays (None: no epoch completed)
    history: list | None = None
    train_seconds: float = 0.0
    counts: Counts | None = None


def _read_stored(run_dir: Path, config: TrainConfig, log) -> _Resumed:
    """The run in `run_dir`, checked against `config`: the same settings (epochs aside), and the
    network spec and profile it started with (not looked up again: a spec file edited since, or
    a relative path from another directory, must not change the network)."""
    stored = rundir.read_json(run_dir / "config.json")
    try:
        theirs = TrainConfig.from_dict(stored["train"])
        spec = spec_from_dict(stored["model_spec"], f"{run_dir / 'config.json'} (model_spec)")
        profile = profile_from_dict(stored["profile"])
    except (KeyError, TypeError, NeurodecorrError) as exc:
        raise RunError(f"cannot resume {run_dir}: its config.json is not a neurodecorr run's "
                       f"({type(exc).__name__}: {exc})") from None
    mine, their_dict = config.to_dict(), theirs.to_dict()
    diffs = [k for k in mine if k != "epochs" and mine[k] != their_dict[k]]
    if diffs:
        raise RunError(f"cannot resume {run_dir}: setting(s) {diffs} differ from the run's "
                       f"config.json ({', '.join(f'{k}={their_dict[k]!r}' for k in diffs)})")
    for what, name, now, then in (("network spec", config.model, _current(load_spec, config.model), spec),
                                  ("profile", config.profile, _current(load_profile, config.profile), profile)):
        if now is not None and _content(now) != _content(then):
            log(f"note: the {what} {name!r} has changed since this run started; the run resumes "
                f"with the one it started with (config.json)")
    return _Resumed(spec, profile)


def _current(load, name):
    """What `name` loads as now (None if it no longer loads)."""
    try:
        return load(name)
    except NeurodecorrError:
        return None


def _content(item) -> dict:
    return {k: v for k, v in item.to_dict().items() if k != "source"}


def _read_checkpoint(run_dir: Path, config: TrainConfig, resumed: _Resumed) -> None:
    """checkpoint.npz alone (written atomically) says where the run is: its arrays and its
    bookkeeping are always of the same epoch. It must be this run's."""
    path = run_dir / "checkpoint.npz"
    arrays = rundir.read_npz(path)
    try:
        saved = json.loads(str(arrays.pop(STATE_KEY)))
        history, train_seconds = list(saved["history"]), float(saved["train_seconds"])
        counts = Counts.from_dict(saved["counts"])
        epochs = [int(r["epoch"]) for r in history]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RunError(f"{path} is damaged ({type(exc).__name__}: {exc}); delete the run "
                       f"directory to start afresh") from None
    if not history or epochs != list(range(1, len(epochs) + 1)):
        raise RunError(f"{path} is damaged: its history holds epochs {epochs}; delete the run "
                       f"directory to start afresh")
    if saved.get("settings_hash", config.settings_hash()) != config.settings_hash():
        raise RunError(f"{path} was written by a run with other settings than this run's "
                       f"config.json; it does not belong here")
    if len(history) > config.epochs:
        raise RunError(f"{run_dir} has completed {len(history)} epochs; --epochs {config.epochs} "
                       f"would undo them (give --epochs {len(history)} or more)")
    resumed.arrays, resumed.history, resumed.train_seconds, resumed.counts = (
        arrays, history, train_seconds, counts)


def _check_new_run_dir(run_dir: Path) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(f"--out {run_dir} is a file, not a directory; choose another --out")
    if (run_dir / "config.json").exists():
        raise RunError(f"{run_dir} already holds a run; pass --resume to continue it or "
                       f"choose another --out")
    if run_dir.is_dir():
        foreign = sorted(p.name for p in run_dir.iterdir() if p.name not in SWEEP_FILES)
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise RunError(f"--out {run_dir} is not empty and holds no run ({shown}); a new run "
                           f"needs a new or empty directory, so nothing of yours is overwritten")


def _check_finite(learner: Learner, where: str, kept: str) -> None:
    """Refuse to save a state with a non-finite synapse (the last good checkpoint is kept)."""
    for name, array in learner.net.arrays().items():
        if not np.all(np.isfinite(array)):
            raise DivergenceError(
                f"training diverged {where}: {name} became non-finite. Likely fix: lower --lr "
                f"(now {learner.config.lr:g}) or --decor-lr (now {learner.config.decor_lr:g}). {kept}")


def train(config: TrainConfig, out: str | Path | None = None, *, resume: bool = False,
          data: Dataset | None = None, progress: bool = True,
          log: Callable[[str], None] = print) -> TrainResult:
    """Train a network as `config` says; write the run to `out` (if given).

    resume: continue the run in `out` from its last completed epoch, with the network spec and
    profile it started with; the result equals an uninterrupted run with the same settings.
    """
    if out is not None and str(out) == "":
        raise RunError("--out is empty; give the directory to write the run into")
    run_dir = Path(out) if out is not None else None
    if run_dir is not None and resume:
        resumed = _read_stored(run_dir, config, log)
        if (run_dir / "checkpoint.npz").exists():
            _read_checkpoint(run_dir, config, resumed)
    else:
        if run_dir is not None:
            _check_new_run_dir(run_dir)
        resumed = _Resumed(load_spec(config.model), load_profile(config.profile))
    spec, profile = resumed.spec, resumed.profile
    if data is None:
        data = load_dataset(config.dataset, config.data_dir, config.input_scaling)
    elif (data.name, data.scaling) != (config.dataset, config.input_scaling):
        raise RunError(f"the dataset given ({data.name}, {data.scaling}) is not the run's "
                       f"({config.dataset}, {config.input_scaling})")
    if config.train_samples is not None:
        data = dataclasses.replace(data, x_train=data.x_train[:config.train_samples],
                                   y_train=data.y_train[:config.train_samples])
    spec.check_size(data.input_shape, data.n_classes, config.decor != "none")
    history: list[dict] = resumed.history or []
    train_seconds = resumed.train_seconds
    counts = resumed.counts or Counts()
    learner = make_learner(config, spec, data.input_shape, data.n_classes, counter=counts,
                           profile=profile)
    if resumed.arrays is not None:
        try:
            learner.load_arrays(resumed.arrays, strict=True)
        except (KeyError, ValueError) as exc:
            raise RunError(f"{run_dir / 'checkpoint.npz'} does not fit this run's network: {exc}; "
                           f"delete the run directory to start afresh") from None
        log(f"resuming {run_dir} after epoch {history[-1]['epoch']}")
    if run_dir is not None:
        rundir.make_run_dir(run_dir)
        rundir.write_json(run_dir / "config.json", resolved_config(config, data, spec, profile))

    n_train = len(data.y_train)
    steps_per_epoch = -(-n_train // config.batch_size)
    buffers: dict = {}
    for epoch in range(len(history) + 1, config.epochs + 1):
        start = time.perf_counter()
        rng = epoch_rng(config, epoch)
        learner.net.device.reseed(device_rng(config, epoch))
        kept = ("" if run_dir is None else f"The checkpoint of epoch {history[-1]['epoch']} is kept."
                if history else "No epoch had completed, so there is no checkpoint to keep.")
        loss_sum, step_seconds = 0.0, 0.0
        bar = _progress(steps_per_epoch, f"epoch {epoch}/{config.epochs}", progress)
        for step, idx in enumerate(batches(n_train, config.batch_size, rng), start=1):
            t0 = time.perf_counter()
            loss = train_step(learner, data.x_train[idx], data.y_train[idx], rng, buffers,
                              where=f"at epoch {epoch}, step {step}", kept=kept)
            step_seconds += time.perf_counter() - t0
            loss_sum += loss * len(idx)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        bar.close()
        _check_finite(learner, f"in epoch {epoch}", kept)
        train_seconds += step_seconds
        counts.samples["training"] += n_train
        counts.clear_phase("inference")  # inference energy: the latest evaluation's
        with counts.during("inference"):
            test_accuracy = accuracy(learner, data.x_test, data.y_test)
        counts.samples["inference"] = len(data.y_test)
        record = {"epoch": epoch, "train_loss": loss_sum / n_train,
                  "test_accuracy": test_accuracy, "seconds": time.perf_counter() - start}
        history.append(record)
        log(f"epoch {epoch:3d}  train loss {record['train_loss']:.4f}  "
            f"test accuracy {100 * record['test_accuracy']:.2f}%  {record['seconds']:.1f} s")
        sps = n_train * len(history) / train_seconds
        if run_dir is not None:
            _save_epoch(run_dir, learner, history, train_seconds, sps, counts)
    sps = n_train * len(history) / train_seconds if train_seconds else float("nan")
    missing = missing_prices(counts, profile)
    if missing:  # counted all the same: `neurodecorr energy RUN --profile P` can price them
        report = {"profile": profile.name, "training_j": None, "training_per_sample_j": None,
                  "inference_per_sample_j": None, "missing_prices": missing}
        log(f"no energy estimate: profile '{profile.name}' gives no {', '.join(missing)}")
    else:
        report = build_report(counts, profile, stages_deployed=config.decorrelation_rank > 0)
        log(format_report(report))
    if run_dir is not None:
        rundir.plot_learning_curve(run_dir, history, _title(config))
        rundir.write_json(run_dir / "energy.json", {**report, "counts": counts.to_dict()})
    return TrainResult(learner, history, sps, run_dir, report)


def _save_epoch(run_dir: Path, learner: Learner, history: list[dict], train_seconds: float,
                sps: float, counts: Counts) -> None:
    """checkpoint.npz first (the one file resume reads: arrays and bookkeeping together), then
    the views of it: checkpoint.json, weights.npz, metrics."""
    arrays = learner.arrays()
    state = {"epoch": history[-1]["epoch"], "train_seconds": train_seconds,
             "history": history, "counts": counts.to_dict(),
             "settings_hash": learner.config.settings_hash()}
    rundir.write_npz(run_dir / "checkpoint.npz", {**arrays, STATE_KEY: np.array(json.dumps(state))})
    rundir.write_json(run_dir / "checkpoint.json",
                      {"epoch": state["epoch"], "train_seconds": train_seconds})
    rundir.write_npz(run_dir / "weights.npz",
                     {k: v for k, v in arrays.items() if k.startswith(("net/", "credit/"))})
    rundir.write_metrics(run_dir, history, sps)


def _title(config: TrainConfig) -> str:
    decor = "no decorrelation" if config.decor == "none" else f"decorrelation: {config.decor}"
    return f"{config.rule} on {config.dataset}, {config.model}, {decor}"


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False,
                disable=None if enabled else True, dynamic_ncols=True)
