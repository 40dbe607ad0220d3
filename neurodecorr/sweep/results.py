"""Sweep results: one row per run, mean ± std per configuration, the Pareto front, plots.

Rebuilt from the run directories alone (`neurodecorr report DIR`), so a partial or resumed
sweep reports what it has. A configuration is every grid key but the seed (`sweep.json`, written
by the sweep, names them), plus rule, decorrelation, profile and model: two runs that differ in
any of them are never averaged together, and each is its own series in the plots. A run folder
that cannot be read is reported as damaged and the others are reported as usual.

results.md answers "which chip and rule gives the best accuracy per joule?": a header (dataset,
model, epochs, seeds), then the configurations sorted by whether they are on the Pareto front
of inference energy against accuracy, then by accuracy per µJ of inference, with accuracy per
µJ of training and inference and both Pareto flags; then every run.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from neurodecorr.errors import NeurodecorrError, RunError
from neurodecorr.sweep.runner import SWEEP_FILE

BASE_KEYS = ("rule", "decor", "profile", "model")
METRICS = ("test_accuracy", "training_per_sample_j", "inference_per_sample_j", "wall_s")
UJ = 1e-6


def sweep_config_keys(out_dir: Path, written) -> list[str]:
    """The configuration keys of the sweep in `out_dir` (`written`: what its sweep.json holds,
    `_written_sweep`): its grid keys but the seed, then the base keys not among them. A
    directory that is not a sweep's is a RunError."""
    if written is not None:
        keys = written[0].config_keys
    elif (out_dir / "config.json").exists():
        raise RunError(f"{out_dir} is a single training run, not a sweep; its results are in its "
                       f"metrics.json (and `neurodecorr energy {out_dir}`)")
    elif any((d / "point.json").exists() for d in out_dir.iterdir() if d.is_dir()):
        keys = []  # a sweep written before sweep.json existed (its runs have point.json)
    else:
        raise RunError(f"{out_dir} is not a sweep's output directory (no {SWEEP_FILE} and no sweep run "
                       f"directories); `neurodecorr sweep FILE --out {out_dir}` writes one")
    return keys + [k for k in BASE_KEYS if k not in keys]


def _read(path: Path):
    return json.loads(path.read_text())


def run_row(run_dir: Path, config_keys: list[str]) -> dict | None:
    """The results row of one run directory (None if it is not one; status "damaged" when its
    files cannot be read)."""
    run_dir = Path(run_dir)
    if not ((run_dir / "config.json").exists() or (run_dir / "point.json").exists()):
        return None
    row = {"run": run_dir.name, **{k: None for k in config_keys}, "seed": None, "curve": [],
           **{m: math.nan for m in METRICS}}
    try:
        if (run_dir / "config.json").exists():
            train = _read(run_dir / "config.json")["train"]
        else:  # a sweep run that failed before it started training
            train = _read(run_dir / "point.json")
        row.update({k: _cell(train.get(k, "ideal" if k == "profile" else None)) for k in config_keys})
        row["seed"] = train.get("seed")
        epochs_wanted = int(train.get("epochs") or 0)
        row["about"] = {"dataset": train.get("dataset"), "epochs": epochs_wanted}
        if (run_dir / "metrics.json").exists():
            epochs = _read(run_dir / "metrics.json")["epochs"]
            if epochs:
                row["test_accuracy"] = float(epochs[-1]["test_accuracy"])
                row["wall_s"] = float(sum(e["seconds"] for e in epochs))
                row["curve"] = [float(e["test_accuracy"]) for e in epochs]
        finished = (run_dir / "energy.json").exists() and len(row["curve"]) >= epochs_wanted > 0
        if finished:
            energy = _read(run_dir / "energy.json")
            row["training_per_sample_j"] = _number(energy.get("training_per_sample_j"))
            # deployed, decorrelation folds into the weights: that is the inference a chip runs
            row["inference_per_sample_j"] = _number(energy.get("inference_folded_per_sample_j")
                                                    or energy.get("inference_per_sample_j"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        row.update(status="damaged", error=f"{type(exc).__name__}: {exc}"[:200])
        return row
    if (run_dir / "error.txt").exists():
        lines = (run_dir / "error.txt").read_text(errors="replace").strip().splitlines()
        row.update(status="failed", error=lines[-1] if lines else "failed")
    else:
        row["status"] = "finished" if finished else "unfinished"
    return row


def _cell(value):
    """A configuration value as a table cell and grouping key (lists become tuples)."""
    return tuple(value) if isinstance(value, list) else value


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def collect(out_dir: Path) -> tuple[list[dict], list[str]]:
    """Every run's row, and the configuration keys. Only the points of the sweep that wrote
    sweep.json count: a directory left by an earlier grid is not this sweep's."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise RunError(f"{out_dir} is not a directory of sweep runs")
    written = _written_sweep(out_dir)
    keys = sweep_config_keys(out_dir, written)
    points = None if written is None else written[1]
    rows = [r for d in sorted(out_dir.iterdir())
            if d.is_dir() and (points is None or d.name in points) and (r := run_row(d, keys))]
    return rows, keys


def _written_sweep(out_dir: Path):
    """(the Sweep that wrote out_dir/sweep.json, the names of its run directories); None if
    there is no sweep.json."""
    from neurodecorr.sweep.spec import Sweep

    marker = out_dir / SWEEP_FILE
    if not marker.exists():
        return None
    try:
        written = json.loads(marker.read_text())
        sweep = Sweep(written["name"], written.get("description", ""), written["base"], written["grid"])
        return sweep, {name for name, _ in sweep.named_values()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, NeurodecorrError) as exc:
        raise RunError(f"{marker} cannot be read ({type(exc).__name__}); run the sweep again to "
                       f"rewrite it") from None


def aggregate(rows: list[dict], config_keys: list[str]) -> list[dict]:
    """Mean and standard deviation over seeds per configuration (finished runs only)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["status"] == "finished":
            groups.setdefault(tuple(r[k] for k in config_keys), []).append(r)
    out = []
    for key, members in groups.items():
        entry = dict(zip(config_keys, key), runs=len(members), seeds=sorted(m["seed"] for m in members))
        for metric in METRICS:
            values = np.array([m[metric] for m in members], dtype=float)
            entry[metric] = float(values.mean())
            entry[metric + "_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        curves = [m["curve"] for m in members]
        length = min(len(c) for c in curves)
        entry["curve"] = list(np.mean([c[:length] for c in curves], axis=0))
        for phase in ("training", "inference"):
            energy = entry[f"{phase}_per_sample_j"]
            entry[f"{phase}_accuracy_per_uj"] = (100 * entry["test_accuracy"] / (energy / UJ)
                                                 if energy > 0 else math.nan)
        out.append(entry)
    for phase in ("training", "inference"):
        metric = f"{phase}_per_sample_j"
        priced = [a for a in out if a[metric] > 0]
        front = {id(priced[i]) for i in pareto_front([a[metric] for a in priced],
                                                      [a["test_accuracy"] for a in priced])}
        for a in out:
            a[f"pareto_{phase}"] = id(a) in front
    return out


def pareto_front(energy: list[float], accuracy: list[float]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower energy, higher
    accuracy), ordered by energy. Ties on both axes keep the first."""
    order = sorted(range(len(energy)), key=lambda i: (energy[i], -accuracy[i]))
    front, best = [], -math.inf
    for i in order:
        if accuracy[i] > best:
            front.append(i)
            best = accuracy[i]
    return front


def _fmt(value, std=None, pct=False):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if pct:
        text = f"{100 * value:.2f}"
        return text + (f" ± {100 * std:.2f}" if std else "")
    text = f"{value:.3g}" if isinstance(value, float) else str(value)
    shown = std and std >= 5e-4 * abs(value)  # below the 3 digits shown (float sums): not a spread
    return text + (f" ± {std:.2g}" if shown else "")


def _values(rows: list[dict], get) -> str:
    found = {str(v) for r in rows if (v := get(r)) is not None}
    return ", ".join(sorted(found)) or "—"


def _header(rows: list[dict], out_dir: Path) -> list[str]:
    """What the sweep trained: dataset, model, epochs and seeds."""
    about = lambda key: _values(rows, lambda r: r.get("about", {}).get(key))  # noqa: E731
    return [f"Sweep {Path(out_dir).name}: dataset {about('dataset')}; model "
            f"{_values(rows, lambda r: r.get('model'))}; epochs {about('epochs')}; seeds "
            f"{_values(rows, lambda r: r.get('seed'))}; {len(rows)} runs.", "",
            "Energy per sample is the chip's estimate for one training sample (training) and one "
            "test sample (inference, the deployed network: decorrelation folded into the weights, but for a run's "
            "low-rank stage, `decorrelation_rank`). "
            "Accuracy per µJ: test accuracy (%) divided by µJ per sample. Pareto: no other "
            "configuration is both more accurate and cheaper.", ""]


def write_results(out_dir: Path, rows: list[dict], config_keys: list[str]) -> tuple[Path, Path]:
    """results.csv (every run) and results.md (per configuration, then every run)."""
    out_dir = Path(out_dir)
    fields = ("run", *config_keys, "seed", *METRICS, "status", "error")
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows({**r, **{k: _fmt(r.get(k)) if isinstance(r.get(k), tuple) else r.get(k)
                              for k in config_keys}} for r in rows)
    (out_dir / "results.csv").write_text(text.getvalue())
    lines = _header(rows, out_dir)
    agg = aggregate(rows, config_keys)
    if agg:
        agg.sort(key=lambda a: (not a["pareto_inference"], -_sortable(a["inference_accuracy_per_uj"]),
                                -a["test_accuracy"]))
        lines += ["Per configuration (mean ± std over seeds), Pareto front of inference first, then by "
                  "accuracy per µJ of inference:", "",
                  "| " + " | ".join(config_keys) + " | runs | test accuracy (%) | training µJ/sample | "
                  "inference µJ/sample | accuracy/µJ training | accuracy/µJ inference | Pareto inference "
                  "| Pareto training |", "|" + "---|" * (len(config_keys) + 8)]
        for a in agg:
            lines.append("| " + " | ".join(_fmt(a[k]) for k in config_keys) + f" | {a['runs']} | "
                         f"{_fmt(a['test_accuracy'], a['test_accuracy_std'], pct=True)} | "
                         f"{_fmt(a['training_per_sample_j'] / UJ, a['training_per_sample_j_std'] / UJ)} | "
                         f"{_fmt(a['inference_per_sample_j'] / UJ, a['inference_per_sample_j_std'] / UJ)} | "
                         f"{_fmt(a['training_accuracy_per_uj'])} | {_fmt(a['inference_accuracy_per_uj'])} | "
                         f"{'yes' if a['pareto_inference'] else ''} | {'yes' if a['pareto_training'] else ''} |")
        lines.append("")
    lines += ["Every run:", "",
              "| run | " + " | ".join(config_keys) + " | seed | test accuracy (%) | training µJ/sample "
              "| inference µJ/sample | wall s | status |", "|" + "---|" * (len(config_keys) + 8)]
    for r in rows:
        lines.append(f"| {r['run']} | " + " | ".join(_fmt(r[k]) for k in config_keys) + f" | {r['seed']} | "
                     f"{_fmt(r['test_accuracy'], pct=True)} | {_fmt(r['training_per_sample_j'] / UJ)} | "
                     f"{_fmt(r['inference_per_sample_j'] / UJ)} | {_fmt(r['wall_s'])} | "
                     f"{r['status']}{': ' + r['error'] if r.get('error') else ''} |")
    (out_dir / "results.md").write_text("\n".join(lines) + "\n")
    return out_dir / "results.csv", out_dir / "results.md"


def _sortable(value: float) -> float:
    return -math.inf if math.isnan(value) else value


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">")


def _label(a: dict, keys: list[str], varying: list[str]) -> str:
    """A series' legend label: the configuration keys whose values differ across the sweep."""
    shown = varying or keys
    return " · ".join(f"{_fmt(a[k])}" if k in BASE_KEYS else f"{k} {_fmt(a[k])}" for k in shown)


def _varying(agg: list[dict], keys: list[str]) -> list[str]:
    return [k for k in keys if len({_fmt(a[k]) for a in agg}) > 1]


def plot_pareto(out_dir: Path, agg: list[dict], config_keys: list[str]) -> Path:
    """Inference and training energy per sample against test accuracy; the Pareto front. Colour:
    the rule; marker: the profile; filled: decorrelated; every configuration its own point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rules = sorted({str(a["rule"]) for a in agg})
    profiles = sorted({str(a["profile"]) for a in agg})
    varying = _varying(agg, config_keys)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
    for ax, metric, title in ((axes[0], "inference_per_sample_j", "inference"),
                              (axes[1], "training_per_sample_j", "training")):
        points = [a for a in agg if a[metric] > 0]  # (NaN, unpriced, is not > 0)
        for a in points:
            colour = f"C{rules.index(str(a['rule'])) % 10}"
            ax.errorbar(a[metric], 100 * a["test_accuracy"], yerr=100 * a["test_accuracy_std"],
                        marker=_MARKERS[profiles.index(str(a["profile"])) % len(_MARKERS)],
                        markersize=9, linestyle="none", color=colour,
                        markerfacecolor=colour if a["decor"] != "none" else "white",
                        label=_label(a, config_keys, varying))
        front = [a for a in points if a[f"pareto_{title}"]]
        front.sort(key=lambda a: a[metric])
        if front:
            xs, ys = [a[metric] for a in front], [100 * a["test_accuracy"] for a in front]
            ax.step(xs, ys, where="post", color="k", linewidth=1, alpha=0.6)
            ax.scatter(xs, ys, s=260, facecolors="none", edgecolors="k", linewidths=1.2,
                       label="Pareto front (circled)")
        ax.set_xscale("log")
        ax.set_xlabel(f"{title} energy per sample (J, log scale)")
        ax.set_title(f"{title}: energy against accuracy")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("test accuracy (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8,
               title="colour: rule · marker: profile · filled: decorrelated")
    fig.tight_layout()
    path = Path(out_dir) / "pareto.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_curves(out_dir: Path, agg: list[dict], config_keys: list[str]) -> Path:
    """Test accuracy per epoch for each configuration, one panel per profile."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    profiles = sorted({str(a["profile"]) for a in agg})
    varying = [k for k in _varying(agg, config_keys) if k != "profile"]
    fig, axes = plt.subplots(1, len(profiles), figsize=(4.5 * len(profiles), 4), sharey=True,
                             squeeze=False)
    for ax, profile in zip(axes[0], profiles):
        series = [a for a in agg if str(a["profile"]) == profile]
        for i, a in enumerate(series):
            epochs = range(1, len(a["curve"]) + 1)
            ax.plot(epochs, [100 * v for v in a["curve"]], marker="o", color=f"C{i % 10}",
                    linestyle="-" if a["decor"] != "none" else "--",
                    label=_label(a, [k for k in config_keys if k != "profile"], varying))
        ax.set_title(profile)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("test accuracy (%)")
    fig.tight_layout()
    path = Path(out_dir) / "curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(out_dir: Path) -> tuple[list[dict], list[dict]]:
    """Rebuild results.csv, results.md, pareto.png and curves.png from the run directories."""
    rows, keys = collect(out_dir)
    try:
        write_results(out_dir, rows, keys)
        agg = aggregate(rows, keys)
        if agg:
            plot_pareto(out_dir, agg, keys)
            plot_curves(out_dir, agg, keys)
    except OSError as exc:
        raise RunError(f"cannot write the results into {out_dir}: {exc.strerror or exc}") from None
    return rows, agg
