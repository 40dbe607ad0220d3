"""Run a sweep's training runs as tasks on Dask (`dask.distributed`).

A LocalCluster sized to the machine (one single-threaded worker per core, BLAS limited to one
thread per worker) unless `scheduler` names an existing one (`tcp://host:8786`; its workers
must have neurodecorr installed and see the same data and output paths). Finished runs are
skipped; started ones resume; a failing run writes `error.txt` in its directory, is reported,
and does not stop the others.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from neurodecorr.sweep.spec import Sweep


def is_finished(run_dir: Path, epochs: int) -> bool:
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return False
    return len(metrics["epochs"]) >= epochs and (run_dir / "energy.json").exists()


def run_point(config: dict, run_dir: str, blas_threads: int = 1) -> dict:
    """Train one grid point (resuming it if it started). Runs on a Dask worker."""
    from threadpoolctl import threadpool_limits

    from neurodecorr.engine.config import TrainConfig
    from neurodecorr.engine.trainer import train

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "error.txt").unlink(missing_ok=True)
    (run_dir / "point.json").write_text(json.dumps(config, indent=2) + "\n")  # even if it fails at once
    start = time.perf_counter()
    try:
        cfg = TrainConfig.from_dict(config)
        with open(run_dir / "train.log", "a") as log, threadpool_limits(limits=blas_threads):
            result = train(cfg, run_dir, resume=(run_dir / "config.json").exists(), progress=False,
                           log=lambda line: print(line, file=log, flush=True))
        last = result.epochs[-1]
        return {"run": run_dir.name, "status": "finished", "test_accuracy": last["test_accuracy"],
                "seconds": time.perf_counter() - start}
    except Exception as exc:  # reported per run; the sweep goes on
        (run_dir / "error.txt").write_text(traceback.format_exc() + f"{type(exc).__name__}: {exc}\n")
        return {"run": run_dir.name, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                "seconds": time.perf_counter() - start}


def run_sweep(sweep: Sweep, out: str | Path, scheduler: str | None = None,
              workers: int | None = None, log: Callable[[str], None] = print) -> list[dict]:
    """Run every unfinished point of `sweep` into `out`; returns one summary per point run."""
    from distributed import Client, LocalCluster, as_completed

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    points = sweep.points()
    todo = [p for p in points if not is_finished(out / p.name, p.config.epochs)]
    log(f"sweep '{sweep.name}': {len(points)} runs, {len(points) - len(todo)} already finished, "
        f"{len(todo)} to run")
    if not todo:
        return []
    if scheduler:
        client, cluster = Client(scheduler), None
    else:
        n = workers or os.cpu_count() or 1
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
        client = Client(cluster)
    try:
        futures = {client.submit(run_point, p.config.to_dict(), str(out / p.name), pure=False,
                                 key=f"train-{sweep.name}-{p.name}"): p for p in todo}
        summaries = []
        for i, future in enumerate(as_completed(futures), start=1):
            s = future.result()
            summaries.append(s)
            detail = (f"test accuracy {100 * s['test_accuracy']:.2f}%" if s["status"] == "finished"
                      else f"FAILED: {s['error']}")
            log(f"[{i}/{len(todo)}] {s['run']}: {detail} ({s['seconds']:.0f} s)")
        return summaries
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
