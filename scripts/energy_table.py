"""Energy against accuracy for the paper's dense net on Fashion-MNIST: every rule with and
without the seed decorrelation, trained on every shipped profile; training and inference energy
per sample beside final test accuracy.

    .venv/bin/python scripts/energy_table.py [--out runs/energy-table] [--epochs 1] [--model paper-mlp]

Runs that finished are not run again (rerun to resume an interrupted table).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

PROFILES = ("ideal", "loihi2", "analog-pcm", "analog-rram")
RULES = ("bp", "fa", "dfa", "np")
DECORS = ("none", "seed")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/energy-table")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--model", default="paper-mlp")
    p.add_argument("--profiles", nargs="+", default=list(PROFILES))
    args = p.parse_args(argv)
    root = Path(args.out)
    for profile in args.profiles:
        for rule in RULES:
            for decor in DECORS:
                run = root / profile / f"{rule}-{decor}"
                if (run / "energy.json").exists():
                    continue
                cmd = [sys.executable, "-m", "neurodecorr", "train", "--dataset", "fashion-mnist",
                       "--model", args.model, "--profile", profile, "--rule", rule, "--decor", decor,
                       "--epochs", str(args.epochs), "--out", str(run), "--quiet"]
                if (run / "config.json").exists():
                    cmd.append("--resume")
                done = subprocess.run(cmd, capture_output=True, text=True)
                status = "ok" if done.returncode == 0 else done.stderr.strip().splitlines()[-1]
                print(f"{profile:12s} {rule:4s} {decor:5s} {status}", file=sys.stderr, flush=True)
    print(f"{args.model} on Fashion-MNIST, {args.epochs} epoch(s); energy per sample in joules\n")
    print("| profile | rule | decor | test accuracy | training J/sample | inference J/sample "
          "| deployed inference J/sample (R folded) |")
    print("|---|---|---|---|---|---|---|")
    for profile in args.profiles:
        for rule in RULES:
            for decor in DECORS:
                run = root / profile / f"{rule}-{decor}"
                metrics = run / "metrics.json"
                if not (run / "energy.json").exists():
                    acc = (f"{100 * json.loads(metrics.read_text())['epochs'][-1]['test_accuracy']:.2f} "
                           "(diverged)" if metrics.exists() else "failed")
                    print(f"| {profile} | {rule} | {decor} | {acc} | | | |")
                    continue
                energy = json.loads((run / "energy.json").read_text())
                acc = json.loads(metrics.read_text())["epochs"][-1]["test_accuracy"]
                folded = energy.get("inference_folded_per_sample_j")
                print(f"| {profile} | {rule} | {decor} | {100 * acc:.2f} | "
                      f"{energy['training_per_sample_j']:.3e} | {energy['inference_per_sample_j']:.3e} | "
                      f"{'—' if folded is None else f'{folded:.3e}'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
