"""Run a sweep's training runs as tasks on Dask (`dask.distributed`).

A LocalCluster sized to the machine (one single-threaded worker per core, BLAS limited to one
thread per worker, Dask's scratch space inside the sweep's output) unless `scheduler` names an
existing one (`tcp://host:8786`; its workers must have neurodecorr installed and see the same
data and output paths). Finished runs are skipped, started ones resume; a run directory that
holds a run with other settings (the sweep file was edited) is refused unless `rerun` is given,
which starts it afresh. A failing run writes `error.txt` in its directory, is reported, and
does not stop the others. The longest runs are submitted first, so that two workers finish
together.

BLAS threads: a sweep's runs use one BLAS thread each (one run per core), `neurodecorr train`
uses every core; float32 sums then round differently, so a sweep point and the same `train` run
agree to about 1e-7 relative, not bit for bit (config.json records the threads each used).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from neurodecorr.engine.config import TrainConfig
from neurodecorr.errors import NeurodecorrError, RunError
from neurodecorr.sweep.spec import RunPoint, Sweep

SWEEP_FILE = "sweep.json"  # marks a sweep's output directory; holds the sweep that wrote it
CONNECT_TIMEOUT_S = 10


def stored_hash(run_dir: Path) -> str | None:
    """What the run in `run_dir` is (`identity`: its settings, its profile's and its network
    spec's content, as its config.json stored them); None if it holds none that can be read."""
    try:
        stored = json.loads((run_dir / "config.json").read_text())
        settings = stored.get("settings_hash") or TrainConfig.from_dict(stored["train"]).settings_hash()
        return identity(settings, stored["profile"], stored["model_spec"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, NeurodecorrError):
        return None


def point_hash(config: TrainConfig, cache: dict) -> str | None:
    """What a run of `config` would be now (`identity`), its profile and spec as they load
    today (each loaded once into `cache`); None if either does not load (the run itself then
    reports why)."""
    from neurodecorr.devices.loader import load_profile
    from neurodecorr.nets.spec import load_spec

    try:
        for what, name, load in (("profile", config.profile, load_profile), ("spec", config.model, load_spec)):
            if (what, name) not in cache:
                cache[what, name] = load(name).to_dict()
    except NeurodecorrError:
        return None
    return identity(config.settings_hash(), cache["profile", config.profile], cache["spec", config.model])


def identity(settings_hash: str, profile: dict, spec: dict) -> str:
    """One hash of a run's settings and of its profile's and spec's content (an edited profile
    or spec file makes another run; where the file lives does not)."""
    content = [settings_hash] + [{k: v for k, v in d.items() if k not in ("source", "description")}
                                 for d in (profile, spec)]
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


def is_finished(run_dir: Path, config: TrainConfig, now: str | None) -> bool:
    """Has `run_dir` completed the run that `config` is now (`now`: its `point_hash`)?"""
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
        done = len(metrics["epochs"]) >= config.epochs
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return done and (run_dir / "energy.json").exists() and now is not None and stored_hash(run_dir) == now


def run_point(config: dict, run_dir: str, blas_threads: int = 1) -> dict:
    """Train one grid point (resuming it if it started). Runs on a Dask worker."""
    from threadpoolctl import threadpool_limits

    from neurodecorr.engine.trainer import train

    run_dir = Path(run_dir)
    start = time.perf_counter()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.txt").unlink(missing_ok=True)
        (run_dir / "point.json").write_text(json.dumps(config, indent=2) + "\n")  # even if it fails at once
        cfg = TrainConfig.from_dict(config)
        with open(run_dir / "train.log", "a") as log, threadpool_limits(limits=blas_threads):
            result = train(cfg, run_dir, resume=(run_dir / "config.json").exists(), progress=False,
                           log=lambda line: print(line, file=log, flush=True))
        last = result.epochs[-1]
        return {"run": run_dir.name, "status": "finished", "test_accuracy": last["test_accuracy"],
                "seconds": time.perf_counter() - start}
    except Exception as exc:  # reported per run; the sweep goes on
        message = f"{type(exc).__name__}: {exc}"
        try:
            (run_dir / "error.txt").write_text(traceback.format_exc() + message + "\n")
        except OSError:
            pass
        return {"run": run_dir.name, "status": "failed", "error": message,
                "seconds": time.perf_counter() - start}


def expected_cost(point: RunPoint) -> float:
    """A rough relative run time, to submit the longest runs first: epochs, times the device's
    cost, decorrelation's and node perturbation's (`make bench` on small-mlp: a crossbar run
    takes 2–5× the ideal one, a digital one ~1.2×, the seed rule ~2.5× no decorrelation, NP's
    second pass ~1.4× BP)."""
    c = point.config
    device = {"crossbar": 3.0, "digital": 1.2}.get(_kind(c.profile), 1.0)
    return c.epochs * device * (2.5 if c.decor != "none" else 1.0) * (1.4 if c.rule == "np" else 1.0)


def _kind(profile: str) -> str:
    try:
        from neurodecorr.devices.loader import load_profile

        return load_profile(profile).kind
    except NeurodecorrError:
        return "ideal"


def _check_changed(points: list[RunPoint], now: dict[str, str | None], out: Path, rerun: bool, log) -> None:
    """Refuse (or, with rerun, clear) run directories holding a run with other settings (`now`:
    each point's `point_hash`)."""
    changed = [p for p in points if (out / p.name / "config.json").exists()
               and now[p.name] is not None and stored_hash(out / p.name) != now[p.name]]
    if changed and not rerun:
        names = ", ".join(p.name for p in changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        raise RunError(f"{out}: {len(changed)} run director{'y holds a run' if len(changed) == 1 else 'ies hold runs'} "
                       f"with other settings (or profile or network file content) than the sweep now gives "
                       f"({names}); pass --rerun to train them afresh, or choose another --out")
    for p in changed:
        log(f"{p.name}: its settings changed; training it afresh (--rerun)")
        shutil.rmtree(out / p.name)


def _client(scheduler: str | None, workers: int | None, scratch: Path):
    from distributed import Client, LocalCluster

    if scheduler:
        if not scheduler.startswith(("tcp://", "tls://", "inproc://", "ws://", "wss://", "ucx://")):
            raise RunError(f"--scheduler {scheduler!r}: expected an address such as tcp://host:8786")
        try:
            return Client(scheduler, timeout=CONNECT_TIMEOUT_S), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise RunError(f"cannot reach the Dask scheduler at {scheduler} within "
                           f"{CONNECT_TIMEOUT_S} s ({type(exc).__name__}); is it running?") from None
    n = workers or os.cpu_count() or 1
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=40, local_directory=str(scratch))
    return Client(cluster), cluster


def run_sweep(sweep: Sweep, out: str | Path, scheduler: str | None = None,
              workers: int | None = None, rerun: bool = False,
              log: Callable[[str], None] = print) -> list[dict]:
    """Run every unfinished point of `sweep` into `out`; returns one summary per point run."""
    if workers is not None and workers < 1:
        raise RunError(f"--workers: expected a positive number of workers, found {workers}")
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file, not a directory")
    points = sweep.points()
    cache: dict = {}
    now = {p.name: point_hash(p.config, cache) for p in points}
    _check_changed(points, now, out, rerun, log)
    todo = [p for p in points if not is_finished(out / p.name, p.config, now[p.name])]
    log(f"sweep '{sweep.name}': {len(points)} runs, {len(points) - len(todo)} already finished, "
        f"{len(todo)} to run")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / SWEEP_FILE).write_text(json.dumps(sweep.to_dict(), indent=2, default=str) + "\n")
    except OSError as exc:
        raise RunError(f"cannot write the sweep into {out}: {exc.strerror or exc}") from None
    if not todo:
        return []
    scratch = out / ".dask-scratch"
    import dask

    with dask.config.set({"temporary-directory": str(scratch)}):  # the scheduler's scratch too
        return _run(sweep, out, todo, scheduler, workers, scratch, log)


def _run(sweep: Sweep, out: Path, todo: list[RunPoint], scheduler, workers, scratch: Path, log) -> list[dict]:
    client, cluster = _client(scheduler, workers, scratch)
    try:
        todo.sort(key=expected_cost, reverse=True)  # longest first: the workers finish together
        futures = {client.submit(run_point, p.config.to_dict(), str(out / p.name), pure=False,
                                 key=f"train-{sweep.name}-{p.name}", priority=len(todo) - i): p
                   for i, p in enumerate(todo)}
        from distributed import as_completed

        summaries = []
        for i, future in enumerate(as_completed(futures), start=1):
            try:
                s = future.result()
            except Exception as exc:  # the worker died (out of memory, a crash): the others go on
                s = {"run": futures[future].name, "status": "failed", "seconds": 0.0,
                     "error": f"its worker process was lost ({type(exc).__name__}: {exc})"}
            summaries.append(s)
            detail = (f"test accuracy {100 * s['test_accuracy']:.2f}%" if s["status"] == "finished"
                      else f"FAILED: {s['error']}")
            log(f"[{i}/{len(todo)}] {s['run']}: {detail} ({s['seconds']:.0f} s)")
        return summaries
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
            shutil.rmtree(scratch, ignore_errors=True)
