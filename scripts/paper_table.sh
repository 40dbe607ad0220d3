#!/usr/bin/env bash
# The Core issue's evidence table: the paper's dense net on Fashion-MNIST, 5 epochs, seed 42,
# bp/fa/dfa/np each with --decor none and --decor seed (other settings at their defaults).
# Usage: scripts/paper_table.sh [OUT_DIR]   (about 15 minutes on 2 cores)
set -euo pipefail
out=${1:-runs/paper-table}
py=${PYTHON:-.venv/bin/python}
for rule in bp fa dfa np; do
  for decor in none seed; do
    dir="$out/$rule-$decor"
    resume=$([ -f "$dir/config.json" ] && echo --resume || true)
    "$py" -m neurodecorr train --dataset fashion-mnist --model paper-mlp --rule "$rule" \
      --decor "$decor" --epochs 5 --seed 42 --out "$dir" --quiet $resume
  done
done
"$py" - "$out" <<'PY'
import json, sys, pathlib
root = pathlib.Path(sys.argv[1])
print("| rule | decor | " + " | ".join(f"epoch {i}" for i in range(1, 6)) + " | samples/s |")
print("|---|---|" + "---|" * 6)
for d in sorted(root.iterdir()):
    m = json.loads((d / "metrics.json").read_text())
    rule, decor = d.name.split("-")
    accs = " | ".join(f"{100 * r['test_accuracy']:.2f}" for r in m["epochs"])
    print(f"| {rule} | {decor} | {accs} | {m['samples_per_second']:.0f} |")
PY
