"""A run directory on disk: config.json, metrics.json/.csv, checkpoint.npz, weights.npz and
learning_curve.png. Every file is written atomically (to a temporary name, then renamed), so an
interrupted run never leaves a half-written checkpoint.
"""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from neurodecorr.errors import RunError

METRIC_KEYS = ("epoch", "train_loss", "test_accuracy", "seconds")


def _atomic_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file; on failure (a full disk, a read-only
    directory) the temporary file is removed, `path` keeps its previous content and the error
    is one line."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RunError(f"cannot write {path}: {exc.strerror or exc}"
                       + ("; the previous file is kept" if path.exists() else "")) from None


def make_run_dir(run_dir: Path) -> None:
    """Create the run directory (and its parents), or say in one line why it cannot be."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise RunError(f"cannot create the run directory {run_dir}: a file is in the way") from None
    except OSError as exc:
        raise RunError(f"cannot create the run directory {run_dir}: {exc.strerror or exc}") from None
    if not run_dir.is_dir():
        raise RunError(f"cannot use {run_dir} as a run directory: it is not a directory")
    if not os.access(run_dir, os.W_OK | os.X_OK):
        raise RunError(f"cannot write into the run directory {run_dir}: permission denied")


def write_json(path: Path, obj) -> None:
    _atomic_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RunError(f"{path} is missing: is this a neurodecorr run directory?") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise RunError(f"{path} cannot be read: {exc}") from None


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    _atomic_bytes(path, buf.getvalue())


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz file (read now, so that a damaged file fails here)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise RunError(f"{path} is missing: the run has no completed epoch to resume from") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise RunError(f"{path} cannot be read ({type(exc).__name__}: {exc}); it is damaged — "
                       f"delete the run directory to start afresh") from None


def write_metrics(run_dir: Path, epochs: list[dict], samples_per_second: float) -> None:
    write_json(run_dir / "metrics.json", {"epochs": epochs, "samples_per_second": samples_per_second})
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=METRIC_KEYS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: r[k] for k in METRIC_KEYS} for r in epochs)
    _atomic_bytes(run_dir / "metrics.csv", text.getvalue().encode())


def plot_learning_curve(run_dir: Path, epochs: list[dict], title: str) -> Path:
    """Train loss and test accuracy per epoch, side by side, as learning_curve.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["epoch"] for r in epochs]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(x, [r["train_loss"] for r in epochs], "o-")
    ax_loss.set(xlabel="epoch", ylabel="train loss", title="training loss")
    ax_acc.plot(x, [100 * r["test_accuracy"] for r in epochs], "o-", color="C1")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.set_xticks(x)
    fig.suptitle(title)
    fig.tight_layout()
    path = run_dir / "learning_curve.png"
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    _atomic_bytes(path, buffer.getvalue())
    return path
