"""Sweep results: one row per run, mean ± std per configuration, the Pareto front, plots.

Rebuilt from the run directories alone (`neurodecorr report DIR`), so a partial or resumed
sweep reports what it has.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

CONFIG_KEYS = ("rule", "decor", "profile", "model")
ROW_KEYS = CONFIG_KEYS + ("seed", "test_accuracy", "training_per_sample_j",
                          "inference_per_sample_j", "wall_s", "status")


def run_row(run_dir: Path) -> dict | None:
    """The results row of one run directory (None if it is not one)."""
    run_dir = Path(run_dir)
    if (run_dir / "config.json").exists():
        train = json.loads((run_dir / "config.json").read_text())["train"]
    elif (run_dir / "point.json").exists():  # a sweep run that failed before it started training
        train = json.loads((run_dir / "point.json").read_text())
    else:
        return None
    row = {k: train.get(k, "ideal" if k == "profile" else None) for k in CONFIG_KEYS}
    row.update(seed=train["seed"], test_accuracy=math.nan, training_per_sample_j=math.nan,
               inference_per_sample_j=math.nan, wall_s=math.nan, run=run_dir.name, curve=[])
    if (run_dir / "metrics.json").exists():
        epochs = json.loads((run_dir / "metrics.json").read_text())["epochs"]
        if epochs:
            row["test_accuracy"] = epochs[-1]["test_accuracy"]
            row["wall_s"] = sum(e["seconds"] for e in epochs)
            row["curve"] = [e["test_accuracy"] for e in epochs]
    finished = (run_dir / "energy.json").exists() and len(row["curve"]) == train["epochs"]
    if finished:
        energy = json.loads((run_dir / "energy.json").read_text())
        nan = math.nan  # a profile without prices leaves the energy figures empty
        row["training_per_sample_j"] = energy.get("training_per_sample_j") or nan
        # deployed, decorrelation folds into the weights: that is the inference a chip runs
        row["inference_per_sample_j"] = (energy.get("inference_folded_per_sample_j")
                                         or energy.get("inference_per_sample_j") or nan)
    row["status"] = ("failed" if (run_dir / "error.txt").exists() else
                     "finished" if finished else "unfinished")
    if row["status"] == "failed":
        row["error"] = (run_dir / "error.txt").read_text().strip().splitlines()[-1]
    return row


def collect(out_dir: Path) -> list[dict]:
    rows = [r for d in sorted(Path(out_dir).iterdir()) if d.is_dir() and (r := run_row(d))]
    return rows


def aggregate(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds per configuration (finished runs only)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["status"] == "finished":
            groups.setdefault(tuple(r[k] for k in CONFIG_KEYS), []).append(r)
    out = []
    for key, members in groups.items():
        entry = dict(zip(CONFIG_KEYS, key), runs=len(members))
        for metric in ("test_accuracy", "training_per_sample_j", "inference_per_sample_j", "wall_s"):
            values = np.array([m[metric] for m in members], dtype=float)
            entry[metric] = float(values.mean())
            entry[metric + "_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        curves = [m["curve"] for m in members]
        length = min(len(c) for c in curves)
        entry["curve"] = list(np.mean([c[:length] for c in curves], axis=0))
        out.append(entry)
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
    if pct:
        text = f"{100 * value:.2f}"
        return text + (f" ± {100 * std:.2f}" if std else "")
    text = f"{value:.3g}" if isinstance(value, float) else str(value)
    return text + (f" ± {std:.2g}" if std else "")


def write_results(out_dir: Path, rows: list[dict]) -> tuple[Path, Path]:
    """results.csv (every run) and results.md (every run, then per configuration)."""
    out_dir = Path(out_dir)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=("run",) + ROW_KEYS, lineterminator="\n",
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    (out_dir / "results.csv").write_text(text.getvalue())
    lines = ["Inference energy is the deployed network's: decorrelation folded into the weights.", "",
             "| run | rule | decor | profile | model | seed | test accuracy (%) | training J/sample "
             "| inference J/sample | wall s | status |", "|" + "---|" * 11]
    for r in rows:
        lines.append(f"| {r['run']} | {r['rule']} | {r['decor']} | {r['profile']} | {r['model']} | "
                     f"{r['seed']} | {_fmt(r['test_accuracy'], pct=True)} | "
                     f"{_fmt(r['training_per_sample_j'])} | {_fmt(r['inference_per_sample_j'])} | "
                     f"{_fmt(r['wall_s'])} | {r['status']}{': ' + r['error'] if r.get('error') else ''} |")
    agg = aggregate(rows)
    if agg:
        lines += ["", "Per configuration (mean ± std over seeds):", "",
                  "| rule | decor | profile | model | runs | test accuracy (%) | training J/sample "
                  "| inference J/sample |", "|" + "---|" * 8]
        for a in sorted(agg, key=lambda a: (a["profile"], a["rule"], a["decor"])):
            lines.append(f"| {a['rule']} | {a['decor']} | {a['profile']} | {a['model']} | {a['runs']} | "
                         f"{_fmt(a['test_accuracy'], a['test_accuracy_std'], pct=True)} | "
                         f"{_fmt(a['training_per_sample_j'], a['training_per_sample_j_std'])} | "
                         f"{_fmt(a['inference_per_sample_j'], a['inference_per_sample_j_std'])} |")
    (out_dir / "results.md").write_text("\n".join(lines) + "\n")
    return out_dir / "results.csv", out_dir / "results.md"


_MARKERS = {"ideal": "o", "loihi2": "s", "analog-pcm": "^", "analog-rram": "D"}


def _label(a):
    return f"{a['rule']} {'+ decor' if a['decor'] != 'none' else ''} · {a['profile']}".replace("  ", " ")


def plot_pareto(out_dir: Path, agg: list[dict]) -> Path:
    """Inference and training energy per sample against test accuracy; the Pareto front."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rules = sorted({a["rule"] for a in agg})
    colours = {r: f"C{i}" for i, r in enumerate(rules)}
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
    for ax, metric, title in ((axes[0], "inference_per_sample_j", "inference"),
                              (axes[1], "training_per_sample_j", "training")):
        points = [a for a in agg if a[metric] > 0]  # (NaN, unpriced, is not > 0)
        for a in points:
            filled = a["decor"] != "none"
            ax.errorbar(a[metric], 100 * a["test_accuracy"], yerr=100 * a["test_accuracy_std"],
                        marker=_MARKERS.get(a["profile"], "P"), markersize=9, linestyle="none",
                        color=colours[a["rule"]], markerfacecolor=colours[a["rule"]] if filled else "white",
                        label=_label(a))
        front = pareto_front([a[metric] for a in points], [a["test_accuracy"] for a in points])
        if front:
            xs = [points[i][metric] for i in front]
            ys = [100 * points[i]["test_accuracy"] for i in front]
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
               title="rule (filled: decorrelated) · profile")
    fig.tight_layout()
    path = Path(out_dir) / "pareto.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_curves(out_dir: Path, agg: list[dict]) -> Path:
    """Test accuracy per epoch for each configuration, one panel per profile."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    profiles = sorted({a["profile"] for a in agg})
    rules = sorted({a["rule"] for a in agg})
    fig, axes = plt.subplots(1, len(profiles), figsize=(4.5 * len(profiles), 4), sharey=True,
                             squeeze=False)
    for ax, profile in zip(axes[0], profiles):
        for a in (a for a in agg if a["profile"] == profile):
            epochs = range(1, len(a["curve"]) + 1)
            ax.plot(epochs, [100 * v for v in a["curve"]], marker="o",
                    color=f"C{rules.index(a['rule'])}",
                    linestyle="-" if a["decor"] != "none" else "--",
                    label=f"{a['rule']} {'decor' if a['decor'] != 'none' else 'no decor'}")
        ax.set_title(profile)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("test accuracy (%)")
    fig.tight_layout()
    path = Path(out_dir) / "curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(out_dir: Path) -> tuple[list[dict], list[dict]]:
    """Rebuild results.csv, results.md, pareto.png and curves.png from the run directories."""
    rows = collect(out_dir)
    write_results(out_dir, rows)
    agg = aggregate(rows)
    if agg:
        plot_pareto(out_dir, agg)
        plot_curves(out_dir, agg)
    return rows, agg
