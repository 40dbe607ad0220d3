"""A finished run read back from its directory, as it was trained: the settings, the network
spec and the input scaling stored in its config.json (not looked up again: a spec file edited
since, or a relative path from another directory, must not change the network), and its
weights.npz. What `evaluate`, every deploy backend and the NIR export start from."""

from __future__ import annotations

import os
from pathlib import Path

from neurodecorr.data import Dataset, load_dataset
from neurodecorr.engine import rundir
from neurodecorr.engine.config import TrainConfig
from neurodecorr.engine.learner import Learner, check_same_arrays, make_learner
from neurodecorr.errors import NeurodecorrError, RunError
from neurodecorr.nets.spec import spec_from_dict


def load_run(run_dir: str | Path) -> tuple[TrainConfig, Learner, Dataset]:
    """(config, learner on the ideal device, dataset) of a finished run."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    stored = rundir.read_json(config_path)
    try:
        config = TrainConfig.from_dict(stored["train"])
        spec = spec_from_dict(stored["model_spec"], f"{config_path} (model_spec)")
    except (KeyError, TypeError, NeurodecorrError) as exc:
        raise RunError(f"{config_path} is not the config of a neurodecorr run "
                       f"({type(exc).__name__}: {exc})") from None
    data = load_dataset(config.dataset, config.data_dir, config.input_scaling)
    learner = make_learner(TrainConfig.from_dict({**stored["train"], "profile": "ideal"}),
                           spec, data.input_shape, data.n_classes)
    weights = run_dir / "weights.npz"
    arrays = rundir.read_npz(weights)
    try:
        check_same_arrays({k: v for k, v in learner.arrays().items() if k.startswith(("net/", "credit/"))},
                          arrays)
    except (KeyError, ValueError) as exc:
        raise RunError(f"{weights} does not fit the network of {config_path} ({exc})") from None
    learner.load_arrays(arrays)
    return config, learner, data


def check_writable(directory: Path) -> None:
    """Fail before any work if a report cannot be written into the run `directory`."""
    if not directory.is_dir():
        raise RunError(f"{directory} is not a run directory (no such directory)")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise RunError(f"cannot write the report into {directory}: permission denied")
