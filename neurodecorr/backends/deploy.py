"""`neurodecorr deploy RUN --backend lava`: a trained run on Lava's Loihi simulator, checked
against neurodecorr's own bit-exact emulator and against the rate model.

Steps: load the run; fold decorrelation into the dense layers; quantise to Lava's fixed point
(graded spikes, `sigma_delta`); run `samples` test samples through Lava, each in a window of
`steps` time steps with the neurons' state zeroed between windows; run the same computation
through the emulator; compare every output at every step.
The emulator then also classifies the whole test set (independent streams in parallel).
Messages and accumulates are counted by the emulator (bit-identical to Lava's run, which the
comparison checks on the outputs and `tests/test_lava_deploy.py` checks at every step) and
priced with the `loihi2` profile.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..data import load_dataset
from ..devices.loader import load_profile
from ..energy.cost import PJ, PRICE_KEYS
from ..engine import rundir
from ..engine.config import TrainConfig
from ..engine.state import make_learner
from ..errors import RunError
from ..nets.network import predict
from ..nets.spec import load_spec
from .fold import fold, folded_forward
from .sigma_delta import emulate, parallel_streams, quantise, sample_stream


def load_run(run_dir: str | Path):
    """(config, learner, dataset) of a finished run, its network loaded from weights.npz."""
    run_dir = Path(run_dir)
    stored = rundir.read_json(run_dir / "config.json")
    config = TrainConfig.from_dict(stored["train"])
    data = load_dataset(config.dataset, config.data_dir)
    learner = make_learner(TrainConfig.from_dict({**stored["train"], "profile": "ideal"}),
                           load_spec(config.model), data.n_features, data.n_classes)
    learner.load_arrays(rundir.read_npz(run_dir / "weights.npz"))
    return config, learner, data


def _relu_variant(layers):
    """The folded network with hidden LeakyReLU replaced by ReLU (what Lava's SigmaDelta runs)."""
    from .fold import FoldedLayer

    return [FoldedLayer(l.W, l.b, "relu" if l.activation == "leaky_relu" else l.activation)
            for l in layers]


@dataclass
class Deployment:
    """What every backend starts from: the run, the samples, the folded ReLU network, and the
    rate model's and the folded ReLU network's accuracy on those samples."""

    learner: object
    data: object
    x: np.ndarray
    y: np.ndarray
    layers: list  # FoldedLayer, hidden LeakyReLU as ReLU
    rate_accuracy: float
    relu_float_accuracy: float

    @property
    def samples(self) -> int:
        return len(self.y)


def prepare(run_dir, samples: int, steps: int, neurons: str,
            log: Callable[[str], None] = print) -> Deployment:
    """Load a run for deployment on `samples` test samples; `neurons` names the backend's neuron
    model in the error for networks it cannot run (its hidden units must be ReLU-like)."""
    if samples < 1 or steps < 1:
        raise RunError(f"--samples and --steps must be positive, found {samples} and {steps}")
    _, learner, data = load_run(run_dir)
    if samples > len(data.y_test):
        log(f"note: the test set has {len(data.y_test)} samples; running all of them")
        samples = len(data.y_test)
    unsupported = {l.shape.activation for l in learner.net.layers[:-1]} - {"relu", "leaky_relu"}
    if unsupported:
        raise RunError(f"{neurons} compute ReLU; this network's hidden activations "
                       f"{sorted(unsupported)} cannot be deployed")
    x, y = data.x_test[:samples], data.y_test[:samples]
    layers = _relu_variant(fold(learner.net))
    return Deployment(learner, data, x, y, layers,
                      rate_accuracy=float(np.mean(predict(learner.net, x).argmax(1) == y)),
                      relu_float_accuracy=float(np.mean(folded_forward(layers, x).argmax(1) == y)))


def deploy_lava(run_dir, samples: int = 200, steps: int = 32, vth: int = 0, frac_bits: int = 6,
                log: Callable[[str], None] = print) -> dict:
    run_dir = Path(run_dir)
    d = prepare(run_dir, samples, steps, "Lava's SigmaDelta neurons", log)
    data, x, y, samples = d.data, d.x, d.y, d.samples
    rate_accuracy, relu_accuracy = d.rate_accuracy, d.relu_float_accuracy
    profile = load_profile("loihi2")
    net = quantise(d.layers, frac_bits=frac_bits, vth=vth, weight_bits=profile.digital.weight_bits)
    n_layers = len(net.layers)
    if steps <= n_layers:
        log(f"note: {steps} steps per sample is not enough for an input to cross {n_layers} "
            f"layers (each Dense delays one step); predictions will lag")

    x_int = net.encode(x)

    tally: dict = {}
    t0 = time.perf_counter()
    emu_out = emulate(net, parallel_streams(x_int, steps), tally=tally)  # (steps, n_out, samples)
    emu_seconds = time.perf_counter() - t0
    emu_pred = emu_out[-1].T.argmax(axis=1)

    from .lava_run import run_lava

    log(f"running {samples} samples × {steps} steps on Lava (fixed_pt) …")
    t0 = time.perf_counter()
    lava_out = run_lava(net, sample_stream(x_int, steps), reset_every=steps)
    lava_seconds = time.perf_counter() - t0
    lava_out = lava_out.reshape(samples, steps, -1)  # per sample, per step
    lava_pred = lava_out[:, -1].argmax(axis=1)

    t0 = time.perf_counter()
    full = []
    for i in range(0, len(data.y_test), 500):
        out = emulate(net, parallel_streams(net.encode(data.x_test[i:i + 500]), steps))
        full.append(out[-1].T.argmax(axis=1))
    full_seconds = time.perf_counter() - t0
    emulator_full_accuracy = float(np.mean(np.concatenate(full) == data.y_test))

    price = {k: float(profile.energy[PRICE_KEYS[k]]) * PJ for k in ("acs", "messages", "neuron_updates")}
    per_sample = {k: sum(v) / samples for k, v in tally.items()}
    energy = sum(per_sample[k] * price[k] for k in price)
    report = {
        "backend": "lava",
        "run": str(run_dir),
        "samples": samples,
        "steps": steps,
        "vth": vth,
        "frac_bits": frac_bits,
        "weight_bits": profile.digital.weight_bits,
        "accuracy": float(np.mean(lava_pred == y)),
        "rate_accuracy": rate_accuracy,
        "relu_float_accuracy": relu_accuracy,
        "emulator_accuracy": float(np.mean(emu_pred == y)),
        "agreement": float(np.mean(lava_pred == emu_pred)),
        "outputs_identical": bool(np.array_equal(lava_out, emu_out.transpose(2, 0, 1))),
        "emulator_full_test_accuracy": emulator_full_accuracy,
        "energy_per_sample_j": energy,
        "per_sample": {**per_sample, "by_layer": {k: [n / samples for n in v] for k, v in tally.items()}},
        "prices_pj": {PRICE_KEYS[k]: profile.energy[PRICE_KEYS[k]] for k in price},
        "seconds": {"lava": lava_seconds, "emulator_same_stream": emu_seconds,
                    "emulator_full_test_set": full_seconds},
        "samples_per_second": {"lava": samples / lava_seconds,
                               "emulator_same_stream": samples / emu_seconds,
                               "emulator_parallel": len(data.y_test) / full_seconds},
        "layers": [{"n_in": int(l.weights.shape[1]), "n_out": int(l.weights.shape[0]),
                    "weight_exp": l.weight_exp, "relu": l.relu} for l in net.layers],
    }
    rundir.write_json(run_dir / "deploy-lava.json", report)
    log(f"Lava accuracy {100 * report['accuracy']:.2f}%  rate model {100 * rate_accuracy:.2f}%  "
        f"agreement with the emulator {100 * report['agreement']:.1f}% "
        f"(outputs {'identical' if report['outputs_identical'] else 'DIFFERENT'})  "
        f"on {samples} samples × {steps} steps")
    log(f"emulator on the whole test set: {100 * emulator_full_accuracy:.2f}%; float net with ReLU "
        f"for LeakyReLU: {100 * relu_accuracy:.2f}% on the same {samples} samples")
    log(f"per sample: {per_sample['messages']:.0f} messages, {per_sample['acs']:.0f} accumulates, "
        f"{energy:.3e} J on loihi2; Lava {lava_seconds:.1f} s ({samples / lava_seconds:.1f} samples/s), "
        f"emulator {emu_seconds:.2f} s on the same stream")
    return report

