"""The backend interface, the registry, and `deploy`: load → prepare → run → report.

A backend runs a prepared, folded network (`prepare.Deployment`) its own way and returns what it
measured: its accuracy on the deployment's samples, the operations it performed (an
`energy.Counts` of the inference phase, by stage), and its own details. `deploy` does the rest
for every backend alike: it checks the options and that the backend's package is installed,
prepares the run, prices the operations through `energy.cost` with a profile (loihi2 by
default), writes `deploy-<backend>.json` into the run directory and prints a summary.

A new backend is one class with `name`, `requires`, `default_steps`, `neurons` and `run`, added
to `BACKENDS` (`backends/__init__.py`); `tests/test_backends.py` holds every registered backend
against the rate model on the same trained run.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from neurodecorr.backends.prepare import Deployment, DeployOptions, prepare
from neurodecorr.devices.loader import load_profile
from neurodecorr.energy import Counts, build_report
from neurodecorr.engine import rundir
from neurodecorr.errors import NeurodecorrError, RunError

INSTALL_HINTS = {
    "lava": "pip install --ignore-requires-python lava-nc==0.10.0",
    "brian2": "pip install brian2==2.9.0",
}


@dataclass
class BackendRun:
    """What a backend measured on a deployment's samples."""

    accuracy: float
    counts: Counts                                # inference-phase operations, by stage
    details: dict = field(default_factory=dict)   # backend-specific figures for the report
    summary: str = ""                             # one line for the log


@runtime_checkable
class Backend(Protocol):
    name: str
    requires: str | None   # the package it runs on ("lava", "brian2"), None for numpy only
    default_steps: int     # time steps per sample when --steps is not given
    neurons: str           # what its neurons are, for the error on networks it cannot run

    def run(self, deployment: Deployment, options: DeployOptions,
            log: Callable[[str], None]) -> BackendRun: ...


def require(package: str) -> None:
    """A clear error, with the command that installs it, when `package` is missing."""
    if importlib.util.find_spec(package) is None:
        hint = INSTALL_HINTS.get(package, f"pip install {package}")
        raise NeurodecorrError(f"{package} is not installed; install it with `{hint}` "
                               f"(`make setup` does this)")


def inference_counts(samples: int) -> Counts:
    """An empty Counts for a backend to fill, with its phase set to inference."""
    counts = Counts()
    counts.phase = "inference"
    counts.samples["inference"] = samples
    return counts


def deploy(backend: Backend, run_dir, options: DeployOptions | None = None,
           profile: str = "loihi2", log: Callable[[str], None] = print) -> dict:
    """Run the run in `run_dir` on `backend` (default options: `DeployOptions()`); write and
    return its report."""
    options = options or DeployOptions()
    if backend.requires:
        require(backend.requires)
    options = dataclasses.replace(options, steps=options.steps or backend.default_steps)
    pricing = load_profile(profile)
    if pricing.kind != "digital":
        raise RunError(f"profile '{pricing.name}' is a {pricing.kind} profile; a deployed spiking "
                       f"network's operations (accumulates, messages, neuron updates) are priced "
                       f"by an event-driven (kind = \"digital\") profile such as loihi2")
    run_dir = Path(run_dir)
    d = prepare(run_dir, options.samples, backend.neurons, log)
    result = backend.run(d, options, log)
    energy = build_report(result.counts, pricing)
    report = {
        "backend": backend.name,
        "run": str(run_dir),
        "samples": d.samples,
        "steps": options.steps,
        "accuracy": result.accuracy,
        "rate_accuracy": d.rate_accuracy,
        "relu_float_accuracy": d.relu_float_accuracy,
        "energy_per_sample_j": energy["inference_per_sample_j"],
        "energy_profile": pricing.name,
        "prices_pj": energy["prices_pj"],
        **result.details,
    }
    rundir.write_json(run_dir / f"deploy-{backend.name}.json", report)
    log(f"{backend.name}: accuracy {100 * result.accuracy:.2f}%  rate model "
        f"{100 * d.rate_accuracy:.2f}%  float net with ReLU {100 * d.relu_float_accuracy:.2f}%  "
        f"on {d.samples} samples × {options.steps} steps; "
        f"{report['energy_per_sample_j']:.3e} J per sample on {pricing.name}")
    if result.summary:
        log(result.summary)
    return report
