"""Write the notebooks in notebooks/ (without outputs) from the cells below.

    .venv/bin/python scripts/make_notebooks.py
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

SETUP = '''import tempfile
from pathlib import Path

from neurodecorr.data import load_dataset
from neurodecorr.errors import DataError

workdir = Path(tempfile.mkdtemp(prefix="neurodecorr-"))  # runs go here, not into the repository
try:
    data = load_dataset("fashion-mnist")  # Debian's dataset-fashion-mnist
except DataError as exc:
    print(exc, "-> using scikit-learn's digits instead")
    data = load_dataset("digits")
print(data.name, data.x_train.shape, data.x_test.shape)'''

NOTEBOOKS = {
    "01-quickstart.ipynb": [
        new_markdown_cell("# Quickstart: train with a local rule, look at decorrelation, read the energy\n\n"
                          "Feedback alignment (FA) with the paper's decorrelation rule on a small "
                          "network, trained as the Loihi-style `loihi2` chip would train it."),
        new_code_cell(SETUP),
        new_code_cell('''from neurodecorr import TrainConfig, train

config = TrainConfig(dataset=data.name, model="small-mlp", profile="loihi2", rule="fa",
                     decor="seed", epochs=2, lr=1e-3, decor_lr=1e-4)
result = train(config, workdir / "fa-decor", data=data)
result.epochs'''),
        new_markdown_cell("## What decorrelation did to the first layer's input\n\n"
                          "Correlations between input units before (`a − μ`) and after (`x̃ = R (a − μ)`) "
                          "the learned decorrelation matrix `R`, on 2,000 test samples."),
        new_code_cell('''import matplotlib.pyplot as plt
import numpy as np

from neurodecorr.nets.network import forward

trace = forward(result.learner.net, data.x_test[:2000])[0]
before = np.corrcoef(trace.centred[:, :100], rowvar=False)
after = np.corrcoef(trace.x[:, :100], rowvar=False)
off = ~np.eye(100, dtype=bool)
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
for ax, c, title in ((axes[0], before, "before R"), (axes[1], after, "after R")):
    image = ax.imshow(np.nan_to_num(c), vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_title(f"{title}: mean |corr| {np.nanmean(np.abs(c[off])):.3f}")
fig.colorbar(image, ax=axes, shrink=0.8)
plt.show()'''),
        new_markdown_cell("## What training and inference cost on the chip"),
        new_code_cell('''from neurodecorr.energy import format_report

print(format_report(result.energy))
phases = {p: e["joules"] for p, e in result.energy["phases"].items()}
plt.bar(list(phases), list(phases.values()))
plt.ylabel("joules"); plt.xticks(rotation=30); plt.title("energy by phase on loihi2")
plt.show()'''),
    ],
    "02-energy-vs-accuracy.ipynb": [
        new_markdown_cell("# Energy against accuracy: a small sweep\n\n"
                          "Backprop, feedback alignment and node perturbation, with and without the "
                          "seed decorrelation, on an ideal processor and on the `loihi2` chip. Runs on a "
                          "Dask LocalCluster; `neurodecorr sweep` does the same from a YAML file."),
        new_code_cell(SETUP),
        new_code_cell('''from neurodecorr.sweep import Sweep, report, run_sweep

# 4,000 of the training samples keep this notebook to about half a minute on two cores
sweep = Sweep("notebook", "", base={"dataset": data.name, "model": "small-mlp", "epochs": 2,
                                    "train_samples": 4_000, "lr": 1e-3, "decor_lr": 1e-4},
              grid={"profile": ["ideal", "loihi2"], "rule": ["bp", "fa", "np"],
                    "decor": ["none", "seed"]})
summaries = run_sweep(sweep, workdir / "sweep", workers=2)
rows, configurations = report(workdir / "sweep")
print((workdir / "sweep" / "results.md").read_text())'''),
        new_code_cell('''from IPython.display import Image, display

display(Image(str(workdir / "sweep" / "pareto.png")))
display(Image(str(workdir / "sweep" / "curves.png")))'''),
    ],
    "03-deploy-to-lava.ipynb": [
        new_markdown_cell("# Deploy to Lava\n\nTrain a network, fold its decorrelation into the weights, "
                          "quantise it to Loihi's fixed point and run it on Lava's own runtime, "
                          "checked against neurodecorr's bit-exact emulator."),
        new_code_cell(SETUP),
        new_code_cell('''from neurodecorr import TrainConfig, train

run = workdir / "bp-decor"
train(TrainConfig(dataset=data.name, model="small-mlp", rule="bp", decor="seed", epochs=2,
                  lr=1e-3, decor_lr=1e-4), run, data=data)'''),
        new_code_cell('''from neurodecorr.backends import BACKENDS, DeployOptions, deploy

report = deploy(BACKENDS["lava"](), run, DeployOptions(samples=40, steps=6))
{k: report[k] for k in ("accuracy", "rate_accuracy", "agreement", "outputs_identical",
                        "energy_per_sample_j")}'''),
        new_markdown_cell("The emulator runs the same fixed-point network much faster, so it can "
                          "classify the whole test set:"),
        new_code_cell('''import matplotlib.pyplot as plt

speed = report["samples_per_second"]
plt.bar(["Lava", "emulator (same samples)", "emulator (whole test set)"],
        [speed["lava"], speed["emulator_same_stream"], speed["emulator_parallel"]])
plt.yscale("log"); plt.ylabel("samples per second")
plt.title(f"whole test set on the emulator: {100 * report['emulator_full_test_accuracy']:.2f} %")
plt.show()'''),
        new_code_cell('''from neurodecorr.backends.nir_export import export_nir

graph, _ = export_nir(run, workdir / "net.nir")
list(graph.nodes)'''),
    ],
}

if __name__ == "__main__":
    folder = Path(__file__).resolve().parent.parent / "notebooks"
    for name, cells in NOTEBOOKS.items():
        notebook = new_notebook(cells=cells, metadata={"kernelspec": {
            "name": "python3", "display_name": "Python 3", "language": "python"}})
        nbformat.write(notebook, folder / name)
        print("wrote", folder / name)
