"""`neurodecorr deploy RUN --backend emulator`: the deployed fixed-point network on neurodecorr's
own vectorised emulator of Lava's Dense and SigmaDelta models (`sigma_delta.emulate`), without
Lava. It computes what the Lava backend computes, bit for bit (the Lava backend checks this on
every run), hundreds of times faster: every sample is its own stream from rest, all run at once.
"""

from __future__ import annotations

import time

import numpy as np

from neurodecorr.backends.base import BackendRun, inference_counts
from neurodecorr.backends.sigma_delta import IntNet, emulate, parallel_streams, quantise
from neurodecorr.devices.loader import load_profile
from neurodecorr.energy import Counts

CHUNK = 500  # samples emulated at once (memory: a few int32 arrays of n × CHUNK per layer)


def deployed_net(layers, options) -> IntNet:
    """The folded ReLU layers quantised as Lava runs them, with loihi2's weight bits."""
    weight_bits = load_profile("loihi2").digital.weight_bits
    return quantise(layers, frac_bits=options.frac_bits, vth=options.vth, weight_bits=weight_bits)


def tally_counts(tally: dict, samples: int) -> Counts:
    """The emulator's per-layer tally (messages, accumulates, neuron updates) as Counts:
    accumulates into layer i's Dense are its effective synaptic operations."""
    counts = inference_counts(samples)
    for kind, name in (("acs", "effective_synops"), ("messages", "messages"),
                       ("neuron_updates", "neuron_updates")):
        for layer, n in enumerate(tally[kind]):
            counts.add(str(layer), name, n)
    return counts


def classify(net: IntNet, x: np.ndarray, steps: int, tally: dict | None = None) -> np.ndarray:
    """Predicted classes (N,) after `steps` steps, each sample from rest, CHUNK at a time."""
    out = [emulate(net, parallel_streams(net.encode(x[i:i + CHUNK]), steps), tally=tally)[-1].T.argmax(axis=1)
           for i in range(0, len(x), CHUNK)]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def per_sample(tally: dict, samples: int) -> dict:
    return {**{k: sum(v) / samples for k, v in tally.items()},
            "by_layer": {k: [n / samples for n in v] for k, v in tally.items()}}


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
        details = {"vth": options.vth, "frac_bits": options.frac_bits,
                   "weight_bits": net.layers[0].weight_bits,
                   "per_sample": per_sample(tally, d.samples),
                   "seconds": seconds, "samples_per_second": d.samples / seconds}
        return BackendRun(float(np.mean(pred == d.y)), tally_counts(tally, d.samples), details,
                          f"emulator: {d.samples / seconds:.0f} samples/s")
