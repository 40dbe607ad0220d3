"""The settings a run takes when the user does not give them.

A setting left out (None) is looked up, first match wins, in:

1. the named preset the run asks for (`--preset`, `PRESETS`);
2. the dataset's settings for the run's credit-assignment rule (`BY_DATASET_RULE`);
3. the dataset's settings (`BY_DATASET`);
4. `DEFAULTS`, the paper's reference experiment where it gives a value.

`TrainConfig` resolves every setting when it is made, so config.json always holds the values a
run used, and a resumed or re-run configuration never depends on these tables again. README's
"Defaults" section shows where each value came from.
"""

from __future__ import annotations

from typing import Any

# The paper's reference experiment (Ahmad 2024 and its code): Adam at 1e-4 with β = (0.9, 0.9999),
# batch 256, η_R 1e-4 (the code's range 1e-6..1e-4), the seed rule on 10 % + 1 of each batch.
# The rest are neurodecorr's own choices (README, "The science in the engine").
DEFAULTS: dict[str, Any] = {
    "model": "small-mlp",
    "optimizer": "adam",
    "lr": 1e-4,
    "momentum": 0.9,
    "betas": (0.9, 0.9999),
    "decor_lr": 1e-4,
    "decor_fraction": 0.1,
    "decor_kappa": 0.5,
    "decor_gain": "centred",
    "decor_centre": "running",
    "decor_side": "left",
    "np_sigma": 1e-3,
    "np_loss_precision": "float64",
    "feedback_init": "uniform",
    "input_scaling": "standardise",
    "batch_size": 256,
    "epochs": 5,
}

# digits (1,437 training images of 8×8) is small: the paper's batch of 256 gives 6 steps an
# epoch. Measured on small-mlp (README, "Defaults"): batches of 32 at lr 1e-3 reach 96-98 % with
# bp, fa and dfa in 20 epochs, with or without decorrelation (η_R 1e-4: 1e-3 let node
# perturbation's R diverge after ~140 epochs). Node perturbation needs more, smaller steps:
# lr 5e-4 for 100 epochs (at lr 1e-3 it reached 96 % and fell back to 82 %).
BY_DATASET: dict[str, dict[str, Any]] = {
    "digits": {"batch_size": 32, "lr": 1e-3, "decor_lr": 1e-4, "epochs": 20},
}

BY_DATASET_RULE: dict[tuple[str, str], dict[str, Any]] = {
    ("digits", "np"): {"lr": 5e-4, "epochs": 100},
}

# Named presets. "reference": the choices of the paper's reference code
# (nasiryahm/CorrelationsRuinGD at 00cf470, read for this project) where neurodecorr's
# defaults differ; each is a setting of its own, so any one can be switched back.
PRESETS: dict[str, dict[str, Any]] = {
    "reference": {
        "model": "paper-mlp-reference",  # DenseNet: the fourth hidden layer is linear
        "decor_lr": 1e-5,                # conf/config.yaml
        "decor_gain": "raw",             # g = mean ‖a‖/‖z‖ on the un-centred input
        "decor_centre": "batch",         # training centres with the batch mean
        "decor_side": "right",           # z = (x − μ)·R, updated with C·R: R ← g(R − η R C) here
        "input_scaling": "global",       # one mean and std for all pixels (see README)
        "np_sigma": 1e-6,                # run.py, hard-coded
        "np_loss_precision": "float32",  # everything in float32
        "feedback_init": "kaiming",      # FA's B: torch's kaiming_uniform_, U(±√(6/fan_in))
        "batch_size": 256,
        "lr": 1e-4,
        "betas": (0.9, 0.9999),
    },
}


def lookup(key: str, dataset: str, rule: str, preset: str | None) -> Any:
    """The value of setting `key` for a run that leaves it out."""
    for table in (PRESETS.get(preset, {}) if preset else {}, BY_DATASET_RULE.get((dataset, rule), {}),
                  BY_DATASET.get(dataset, {}), DEFAULTS):
        if key in table:
            return table[key]
    raise KeyError(key)  # pragma: no cover - every resolvable setting is in DEFAULTS


def origin(key: str, dataset: str, rule: str, preset: str | None) -> str:
    """Where the value of a left-out setting comes from (for README and `--help`)."""
    if preset and key in PRESETS.get(preset, {}):
        return f"preset {preset}"
    if key in BY_DATASET_RULE.get((dataset, rule), {}):
        return f"{dataset}, {rule}"
    if key in BY_DATASET.get(dataset, {}):
        return dataset
    return "default"
