"""`neurodecorr deploy RUN --backend emulator`: the deployed fixed-point network on neurodecorr's
own vectorised emulator of Lava's Dense, Conv and SigmaDelta models (`sigma_delta.emulate`),
without Lava. It computes what the Lava backend computes, bit for bit (the Lava backend checks
this on every run), hundreds of times faster: every sample is its own stream from rest, all run
at once.
"""

from __future__ import annotations

import time

import numpy as np

from neurodecorr.backends.base import BackendRun, inference_counts
from neurodecorr.backends.sigma_delta import IntNet, emulate, parallel_streams, quantise
from neurodecorr.devices.loader import load_profile
from neurodecorr.energy import Counts

CHUNK = 500  # samples emulated at once (memory: a few int32 arrays of n × CHUNK per layer)
PATCH_BUDGET = 2**23  # a conv stage's float64 patch entries emulated at once (64 MiB)


def deployed_net(layers, options) -> IntNet:
    """The folded ReLU layers quantised as Lava runs them, with loihi2's weight bits."""
    weight_bits = load_profile("loihi2").digital.weight_bits
    return quantise(layers, frac_bits=options.frac_bits, vth=options.vth, weight_bits=weight_bits)


def tally_counts(tally: dict, samples: int) -> Counts:
    """The emulator's per-stage tally (messages, accumulates, neuron updates) as Counts:
    accumulates into stage i's Dense or Conv are its effective synaptic operations (stages are
    the IntNet's: a conv layer's avg pooling is a stage of its own)."""
    counts = inference_counts(samples)
    for kind, name in (("acs", "effective_synops"), ("messages", "messages"),
                       ("neuron_updates", "neuron_updates")):
        for layer, n in enumerate(tally[kind]):
            counts.add(str(layer), name, n)
    return counts


def chunk_size(net: IntNet) -> int:
    """Samples emulated at once: CHUNK, fewer where a conv stage's patch matrix (P × k·k·C per
    sample) would pass PATCH_BUDGET."""
    per_sample = max((l.conv.positions * l.conv.patch_size for l in net.layers if l.conv is not None), default=0)
    return CHUNK if not per_sample else max(1, min(CHUNK, PATCH_BUDGET // per_sample))


def classify(net: IntNet, x: np.ndarray, steps: int, tally: dict | None = None) -> np.ndarray:
    """Predicted classes (N,) after `steps` steps, each sample from rest, `chunk_size` at a time."""
    chunk = chunk_size(net)
    out = [emulate(net, parallel_streams(net.encode(x[i:i + chunk]), steps), tally=tally)[-1].T.argmax(axis=1)
           for i in range(0, len(x), chunk)]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def per_sample(tally: dict, samples: int) -> dict:
    return {**{k: sum(v) / samples for k, v in tally.items()},
            "by_layer": {k: [n / samples for n in v] for k, v in tally.items()}}


def check_wraps(tally: dict, log) -> None:
    """Say so when conv sums wrapped around Lava Conv's 24-bit buffer: the deployed network then
    computes garbage there (bit-exactly on Lava and the emulator alike)."""
    wrapped = sum(tally.get("wrapped", ()))
    if wrapped:
        log(f"warning: {wrapped} conv sums wrapped around Lava Conv's 24-bit buffer; use fewer "
            f"--frac-bits, or retrain with smaller activations")


class EmulatorBackend:
    name = "emulator"
    requires = None
    default_steps = 32
    neurons = "Lava's SigmaDelta neurons (emulated)"

    def run(self, d, options, log):
        net = deployed_net(d.layers, options)
        tally: dict = {}
        t0 = time.perf_counter()
        pred = classify(net, d.x, options.steps, tally)
        seconds = time.perf_counter() - t0
        check_wraps(tally, log)
        details = {"vth": options.vth, "frac_bits": options.frac_bits,
                   "weight_bits": net.layers[0].weight_bits,
                   "per_sample": per_sample(tally, d.samples),
                   "layers": [l.describe() for l in net.layers],
                   "seconds": seconds, "samples_per_second": d.samples / seconds}
        return BackendRun(float(np.mean(pred == d.y)), tally_counts(tally, d.samples), details,
                          f"emulator: {d.samples / seconds:.0f} samples/s")
