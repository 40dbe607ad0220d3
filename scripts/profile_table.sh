#!/usr/bin/env bash
# The device-profile comparison: small-mlp on Fashion-MNIST, bp/fa/np with and without the seed
# decorrelation, on every shipped profile; final test accuracy.
# Usage: scripts/profile_table.sh [OUT_DIR] [EPOCHS]   (about 25 minutes on 2 cores at 3 epochs)
set -uo pipefail
out=${1:-runs/profile-table}
epochs=${2:-3}
py=${PYTHON:-.venv/bin/python}
for profile in ideal loihi2 analog-pcm analog-rram; do
  for rule in bp fa np; do
    for decor in none seed; do
      dir="$out/$profile/$rule-$decor"
      resume=$([ -f "$dir/config.json" ] && echo --resume || true)
      "$py" -m neurodecorr train --dataset fashion-mnist --model small-mlp --profile "$profile" \
        --rule "$rule" --decor "$decor" --epochs "$epochs" --seed 42 --out "$dir" --quiet $resume \
        || echo "run $dir failed (exit $?)"
    done
  done
done
"$py" - "$out" <<'PY'
import json, sys, pathlib
root = pathlib.Path(sys.argv[1])
cols = [(r, d) for r in ("bp", "fa", "np") for d in ("none", "seed")]
print("| profile | " + " | ".join(f"{r} {d}" for r, d in cols) + " |")
print("|---|" + "---|" * len(cols))
for prof in ("ideal", "loihi2", "analog-pcm", "analog-rram"):
    cells = []
    for r, d in cols:
        f = root / prof / f"{r}-{d}" / "metrics.json"
        if f.exists():
            m = json.loads(f.read_text())["epochs"]
            cells.append(f"{100 * m[-1]['test_accuracy']:.2f}" + ("" if len(m) else ""))
        else:
            cells.append("failed")
    print(f"| {prof} | " + " | ".join(cells) + " |")
PY
