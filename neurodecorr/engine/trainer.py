"""The training loop: epochs of local updates, evaluation, checkpoints, resume.

`train()` is what `neurodecorr train` runs. A run directory holds (see `rundir`):
config.json (fully resolved), metrics.json and metrics.csv (one record per epoch: epoch,
train_loss, test_accuracy in [0, 1], seconds of wall time for the epoch including evaluation;
and samples_per_second over the training steps alone), checkpoint.npz (everything needed to
resume), weights.npz (the network and any feedback matrices) and learning_curve.png.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurodecorr import __version__
from neurodecorr.data import Dataset, batches, load_dataset
from neurodecorr.devices.loader import load_profile
from neurodecorr.energy import Counts, build_report, format_report, required_prices
from neurodecorr.engine import rundir
from neurodecorr.engine.config import TrainConfig
from neurodecorr.engine.learner import Learner, device_rng, epoch_rng, make_learner
from neurodecorr.engine.step import train_step
from neurodecorr.errors import DivergenceError, RunError
from neurodecorr.nets.network import predict
from neurodecorr.nets.spec import load_spec


@dataclass
class TrainResult:
    learner: Learner
    epochs: list[dict]
    samples_per_second: float
    run_dir: Path | None
    energy: dict | None = None  # the energy report (energy.json), when the profile is priced


def accuracy(learner: Learner, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(predict(learner.net, x), axis=1) == y))


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info

        info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        return ", ".join(f"{i['internal_api']} {i.get('version')} ({i.get('architecture')}, "
                         f"{i['num_threads']} threads)" for i in info)
    except Exception:  # only informational
        return "unknown"


def resolved_config(config: TrainConfig, data: Dataset, spec) -> dict:
    return {
        "train": config.to_dict(),
        "profile": load_profile(config.profile).to_dict(),
        "model_spec": spec.to_dict(),
        "layers": [vars(s) for s in spec.layers(data.n_features, data.n_classes)],
        "data": {"name": data.name, "source": data.source, "n_train": len(data.y_train),
                 "n_test": len(data.y_test), "n_features": data.n_features,
                 "n_classes": data.n_classes},
        "environment": {"neurodecorr": __version__, "numpy": np.__version__,
                        "python": platform.python_version(), "blas": blas_info()},
    }


def _check_resume(run_dir: Path, config: TrainConfig) -> None:
    stored = TrainConfig.from_dict(rundir.read_json(run_dir / "config.json")["train"])
    mine, theirs = config.to_dict(), stored.to_dict()
    diffs = [k for k in mine if k != "epochs" and mine[k] != theirs[k]]
    if diffs:
        raise RunError(f"cannot resume {run_dir}: setting(s) {diffs} differ from the run's "
                       f"config.json ({', '.join(f'{k}={theirs[k]!r}' for k in diffs)})")


STATE_KEY = "meta/state"  # the run's bookkeeping, stored inside checkpoint.npz with the arrays


def _check_finite(learner: Learner, where: str) -> None:
    """Refuse to save a state with a non-finite synapse (the last good checkpoint is kept)."""
    for name, array in learner.net.arrays().items():
        if not np.all(np.isfinite(array)):
            raise DivergenceError(
                f"training diverged {where}: {name} became non-finite. Likely fix: lower --lr "
                f"(now {learner.config.lr:g}) or --decor-lr (now {learner.config.decor_lr:g}). "
                f"The last good checkpoint is kept.")


def train(config: TrainConfig, out: str | Path | None = None, *, resume: bool = False,
          data: Dataset | None = None, progress: bool = True,
          log: Callable[[str], None] = print) -> TrainResult:
    """Train a network as `config` says; write the run to `out` (if given).

    resume: continue the run in `out` from its last completed epoch; the result equals an
    uninterrupted run with the same settings.
    """
    data = data if data is not None else load_dataset(config.dataset, config.data_dir)
    spec = load_spec(config.model)
    run_dir = Path(out) if out is not None else None
    history: list[dict] = []
    train_seconds = 0.0
    counts, arrays = Counts(), None
    if run_dir is not None:
        if resume:
            _check_resume(run_dir, config)
            if (run_dir / "checkpoint.npz").exists():
                # checkpoint.npz alone (written atomically) says where the run is: its arrays
                # and its bookkeeping are always of the same epoch
                arrays = rundir.read_npz(run_dir / "checkpoint.npz")
                saved = json.loads(str(arrays.pop(STATE_KEY)))
                history, train_seconds = saved["history"], float(saved["train_seconds"])
                counts = Counts.from_dict(saved["counts"])
        elif (run_dir / "config.json").exists():
            raise RunError(f"{run_dir} already holds a run; pass --resume to continue it or "
                           f"choose another --out")
    learner = make_learner(config, spec, data.n_features, data.n_classes, counter=counts)
    if arrays is not None:
        learner.load_arrays(arrays)
        log(f"resuming {run_dir} after epoch {history[-1]['epoch']}")
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        rundir.write_json(run_dir / "config.json", resolved_config(config, data, spec))

    n_train = len(data.y_train)
    steps_per_epoch = -(-n_train // config.batch_size)
    buffers: dict[str, np.ndarray] = {}
    for epoch in range(len(history) + 1, config.epochs + 1):
        start = time.perf_counter()
        rng = epoch_rng(config, epoch)
        learner.net.device.reseed(device_rng(config, epoch))
        loss_sum, step_seconds = 0.0, 0.0
        bar = _progress(steps_per_epoch, f"epoch {epoch}/{config.epochs}", progress)
        for step, idx in enumerate(batches(n_train, config.batch_size, rng), start=1):
            t0 = time.perf_counter()
            loss = train_step(learner, data.x_train[idx], data.y_train[idx], rng, buffers,
                              where=f"at epoch {epoch}, step {step}")
            step_seconds += time.perf_counter() - t0
            loss_sum += loss * len(idx)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        bar.close()
        _check_finite(learner, f"in epoch {epoch}")
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
    profile = load_profile(config.profile)
    missing = sorted(required_prices(profile) - set(profile.energy))
    if missing:  # counted all the same: `neurodecorr energy RUN --profile P` can price them
        report = {"profile": profile.name, "training_j": None, "training_per_sample_j": None,
                  "inference_per_sample_j": None, "missing_prices": missing}
        log(f"no energy estimate: profile '{profile.name}' gives no {', '.join(missing)}")
    else:
        report = build_report(counts, profile)
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
             "history": history, "counts": counts.to_dict()}
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
