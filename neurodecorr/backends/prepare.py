"""What every backend starts from: a finished run loaded, its decorrelation folded into the dense
layers, hidden LeakyReLU replaced by the ReLU that neuromorphic neurons compute, the deployment
options checked, and the rate model's accuracy on the same samples — plus threshold balancing,
shared by the spiking backend and the NIR export.

Threshold balancing (data-based normalisation, Rueckauer et al. 2017): λ_l is the 99.9th
percentile of hidden layer l's ReLU activations on up to 2,000 training samples (1 for a layer
that never fires). A rate-coded neuron with threshold λ_l then fires at ≈ ReLU(h_l)/λ_l spikes
per step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurodecorr.data import Dataset
from neurodecorr.engine.learner import Learner
from neurodecorr.engine.saved import check_writable, load_run
from neurodecorr.errors import RunError
from neurodecorr.nets.fold import FoldedLayer, fold, folded_forward, input_image
from neurodecorr.nets.network import predict

BALANCE_SAMPLES = 2000
BALANCE_PERCENTILE = 99.9
INPUT_MODES = ("current", "poisson")
MAX_FRAC_BITS = 16  # activations travel as 24-bit graded payloads: keep 8 integer bits


@dataclass(frozen=True)
class DeployOptions:
    """Settings of one deployment, checked when made. `steps` None: the backend's default.
    vth and frac_bits: the fixed-point (Lava, emulator) backends; input_mode and plot: Brian2."""

    samples: int = 200
    steps: int | None = None
    vth: int = 0
    frac_bits: int = 6
    input_mode: str = "current"
    plot: bool = False

    def __post_init__(self):
        checks = [
            (_is_int(self.samples) and self.samples >= 1, "--samples", "a positive integer", self.samples),
            (self.steps is None or (_is_int(self.steps) and self.steps >= 1), "--steps",
             "a positive integer", self.steps),
            (_is_int(self.vth) and self.vth >= 0, "--vth",
             "an integer ≥ 0 (fixed-point units; 0 sends every change)", self.vth),
            (_is_int(self.frac_bits) and 0 <= self.frac_bits <= MAX_FRAC_BITS, "--frac-bits",
             f"an integer in 0..{MAX_FRAC_BITS}", self.frac_bits),
            (self.input_mode in INPUT_MODES, "--input", f"one of {', '.join(INPUT_MODES)}", self.input_mode),
        ]
        for ok, name, expected, found in checks:
            if not ok:
                raise RunError(f"{name}: expected {expected}, found {found!r}")


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def relu_variant(layers: list[FoldedLayer]) -> list[FoldedLayer]:
    """The folded network with hidden LeakyReLU replaced by ReLU (what SigmaDelta and
    integrate-and-fire neurons compute; the 1 % negative slope is dropped)."""
    return [dataclasses.replace(l, activation="relu" if l.activation == "leaky_relu" else l.activation)
            for l in layers]


def relu_activations(layers: list[FoldedLayer], x: np.ndarray, s: np.ndarray | None = None
                     ) -> list[np.ndarray]:
    """Hidden ReLU activations (N, n_l) of the net with input x·s and biases b·s (per sample
    scale s, 1 when None); a conv layer's are its output image before pooling, flattened
    (y, x, c), n_l = P·C_out."""
    s = np.ones(len(x)) if s is None else s
    a = input_image(layers, x.astype(np.float64) * s[:, None])
    out = []
    for layer in layers[:-1]:
        rows = layer.rows(a)
        y = np.maximum(rows @ layer.W.T + np.repeat(s, len(rows) // len(a))[:, None] * layer.b, 0.0)
        out.append(y.reshape(len(a), -1))
        a = layer.output(y, len(a))
    return out


def balance_factors(layers: list[FoldedLayer], x_train: np.ndarray, s: np.ndarray | None = None
                    ) -> list[float]:
    """λ_l of every hidden layer (see the module docstring), from up to BALANCE_SAMPLES rows."""
    n = min(len(x_train), BALANCE_SAMPLES)
    acts = relu_activations(layers, x_train[:n], None if s is None else s[:n])
    lams = [float(np.percentile(a, BALANCE_PERCENTILE)) for a in acts]
    return [lam if lam > 0 else 1.0 for lam in lams]


@dataclass
class Deployment:
    """A run ready for a backend: its samples, the folded ReLU network, and the rate model's and
    the folded ReLU network's accuracy on those samples."""

    run_dir: Path
    learner: Learner
    data: Dataset
    x: np.ndarray
    y: np.ndarray
    layers: list[FoldedLayer]  # hidden LeakyReLU as ReLU
    rate_accuracy: float
    relu_float_accuracy: float

    @property
    def samples(self) -> int:
        return len(self.y)


def prepare(run_dir, samples: int, neurons: str, log: Callable[[str], None] = print) -> Deployment:
    """Load a run for deployment on its first `samples` test samples; `neurons` names the
    backend's neuron model in the error for networks it cannot run (hidden units must be
    ReLU-like)."""
    run_dir = Path(run_dir)
    check_writable(run_dir)
    _, learner, data = load_run(run_dir)
    if samples > len(data.y_test):
        log(f"note: the test set has {len(data.y_test)} samples; running all of them")
        samples = len(data.y_test)
    unsupported = {l.shape.activation for l in learner.net.layers[:-1]} - {"relu", "leaky_relu"}
    if unsupported:
        raise RunError(f"{neurons} compute ReLU; this network's hidden activations "
                       f"{sorted(unsupported)} cannot be deployed")
    x, y = data.x_test[:samples], data.y_test[:samples]
    layers = relu_variant(fold(learner.net))
    return Deployment(run_dir, learner, data, x, y, layers,
                      rate_accuracy=float(np.mean(predict(learner.net, x).argmax(1) == y)),
                      relu_float_accuracy=float(np.mean(folded_forward(layers, x).argmax(1) == y)))
