"""Decorrelation on chips: every learning mechanism of every shipped chip, measured.

Writes a profile per mechanism (each a shipped chip with a few keys changed, `base = ...`), runs
them as one sweep (Fashion-MNIST, small-mlp, 3 epochs, seed 42 unless --seeds), and prints per
chip and mechanism the final test accuracy of bp, fa and np without and with the seed
decorrelation ("diverged": the run stopped on non-finite weights; "—": not run), with training
and inference energy per sample.

    .venv/bin/python scripts/chip_table.py [--out runs/chip-table] [--seeds 42] [--workers 2]
        [--only loihi2,analog-rram]   (about 75 minutes on two cores for every chip, one seed)

A mechanism that only moves R (where R lives) changes nothing without decorrelation: its
"none" runs are the chip's naive ones, not run twice.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

RULES = ("bp", "fa", "np")


def _where_R_lives(shipped: str) -> dict[str, tuple[dict | str, bool]]:
    """A crossbar's choices of where R lives, the best of them shipped as profile `shipped`."""
    return {
        "residual R": ({"crossbar": {"decorrelation": "residual"}}, False),
        "R in the periphery": ({"crossbar": {"decorrelation": "periphery"}}, False),
        f"R in the periphery, noise per step ({shipped})": (shipped, True),
        "... and 4 reads": ({"crossbar": {"decorrelation": "periphery", "read_noise_scope": "step",
                                          "training_reads": 4}}, True),
    }


# chip → mechanism → (the keys it changes, or the shipped profile that is it; does it change runs
# without decorrelation)
MECHANISMS: dict[str, dict[str, tuple[dict | str, bool]]] = {
    "ideal": {"float32": ({}, True)},
    "loihi2": {
        "naive (direct, R on the grid)": ({}, True),
        "tag": ({"digital": {"weight_update": "tag", "decorrelation_update": "tag"}}, True),
        "residual R (loihi2-residual)": ("loihi2-residual", False),
        "sliced R (loihi2-sliced)": ("loihi2-sliced", False),
        "tag on W, residual R": ({"digital": {"weight_update": "tag", "decorrelation": "residual"}}, True),
    },
    "analog-pcm": {
        "naive (mixed precision, R on an array)": ({}, True),
        **_where_R_lives("analog-pcm-periphery"),
    },
    "analog-rram": {
        "naive (direct pulses, R on an array)": ({}, True),
        "mixed precision": ({"crossbar": {"mechanism": "mixed-precision"}}, True),
        "tiki-taka": ({"crossbar": {"mechanism": "tiki-taka"}}, True),
        "ttv2": ({"crossbar": {"mechanism": "ttv2"}}, True),
        "chopped-ttv2": ({"crossbar": {"mechanism": "chopped-ttv2"}}, True),
        "agad": ({"crossbar": {"mechanism": "agad"}}, True),
        **_where_R_lives("analog-rram-periphery"),
    },
    "analog-symmetric": {
        "naive (direct pulses, R on an array)": ({}, True),
        "R in the periphery": ({"crossbar": {"decorrelation": "periphery"}}, False),
    },
}


def _toml(base: str, tables: dict) -> str:
    lines = [f'base = "{base}"']
    for table, keys in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def write_profiles(out: Path, chips: list[str]) -> list[dict]:
    """One profile file per mechanism; returns what each run is."""
    folder = out / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    plan = []
    for chip in chips:
        for i, (mechanism, (tables, changes_none)) in enumerate(MECHANISMS[chip].items()):
            if isinstance(tables, str):  # a shipped profile
                path = tables
            else:
                path = chip if not tables else str(folder / f"{chip}-m{i}.toml")
                if tables:
                    Path(path).write_text(_toml(chip, tables))
            plan.append({"chip": chip, "mechanism": mechanism, "profile": path,
                         "decors": ["none", "seed"] if changes_none else ["seed"]})
    return plan


def run(out: Path, plan: list[dict], seeds: list[int], workers: int) -> None:
    import yaml

    # one sweep per decor set, so that every run is a grid point of its own
    for decors in (["none", "seed"], ["seed"]):
        profiles = [p["profile"] for p in plan if p["decors"] == decors]
        if not profiles:
            continue
        sweep = {"name": f"chips-{'-'.join(decors)}",
                 "base": {"dataset": "fashion-mnist", "model": "small-mlp", "epochs": 3},
                 "grid": {"profile": profiles, "rule": list(RULES), "decor": decors, "seed": seeds}}
        path = out / f"{sweep['name']}.yaml"
        path.write_text(yaml.safe_dump(sweep, sort_keys=False))
        subprocess.run([sys.executable, "-m", "neurodecorr", "sweep", str(path), "--out",
                        str(out / sweep["name"]), "--workers", str(workers)], check=False)


def table(out: Path, plan: list[dict]) -> str:
    from neurodecorr.sweep.results import aggregate, collect

    rows, failed = [], set()
    for sweep in sorted(out.glob("chips-*/")):
        found, keys = collect(sweep)
        rows += aggregate(found, keys)
        failed |= {(r["profile"], r["rule"], r["decor"]) for r in found if r["status"] != "finished"}
    by = {(a["profile"], a["rule"], a["decor"]): a for a in rows}
    naive = {p["chip"]: p["profile"] for p in plan if p["decors"] == ["none", "seed"] and p["profile"] == p["chip"]}
    head = ("| chip | mechanism | " + " | ".join(f"{r} none → seed" for r in RULES)
            + " | training µJ/sample (fa seed) | inference µJ/sample (fa seed) |")
    lines = [head, "|" + "---|" * (4 + len(RULES))]

    def fmt(k):
        return f"{100 * by[k]['test_accuracy']:.1f}" if k in by else "diverged" if k in failed else "—"

    for p in plan:
        cells = []
        for rule in RULES:
            none_profile = p["profile"] if "none" in p["decors"] else naive.get(p["chip"], p["profile"])
            cells.append(f"{fmt((none_profile, rule, 'none'))} → {fmt((p['profile'], rule, 'seed'))}")
        fa = by.get((p["profile"], "fa", "seed"))
        energy = [("—" if fa is None or not fa[k] > 0 else f"{fa[k] * 1e6:.3g}")
                  for k in ("training_per_sample_j", "inference_per_sample_j")]
        lines.append(f"| {p['chip']} | {p['mechanism']} | " + " | ".join(cells) + f" | {energy[0]} | {energy[1]} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/chip-table")
    parser.add_argument("--seeds", default="42", help="comma-separated seeds [42]")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", help="comma-separated chips [all]")
    parser.add_argument("--report", action="store_true", help="print the table of what has run, run nothing")
    args = parser.parse_args(argv)
    out = Path(args.out)
    chips = args.only.split(",") if args.only else list(MECHANISMS)
    plan = write_profiles(out, chips)
    if not args.report:
        run(out, plan, [int(s) for s in args.seeds.split(",")], args.workers)
    print(table(out, plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
