"""The device interface, and the ideal device (float32, exact, no limits) that implements it as
the identity.

The engine touches synapses and signals only through these methods, so a new kind of chip is a
new class here and no change to any learning rule:

    install(key, W)       put a synapse array on the device (quantise or program it, in place)
    mvm(x, W, key)        x Wᵀ as the device computes it            x (B, n_in)  → (B, n_out)
    mvm_t(e, W, key)      e W, the same array read transposed        e (B, n_out) → (B, n_in)
    activation(a)         a value sent between neurons (graded spike, payload precision)
    state(h)              a neuron's state (the pre-activation h), at state precision
    signal(e)             a per-neuron learning signal (modulator, NP noise), at its precision
    write(W, delta, key)  W ← W − delta as the device can change it, in place
    inference()           the device as seen when the trained network is used (e.g. after drift)
    reseed(rng)           the generator for this device's noise and stochastic rounding
    count_neurons(key, h, out), count_update(e, pre, key)
                          operation counting (`neurodecorr.energy`) for work outside products
                          and writes; `counts` is None when nothing is being counted

`key` names the array ("layer2.W", "layer0.R", "credit.B3", …) so a device can keep per-array
state (exponents, conductance scales, accumulators).
"""

from __future__ import annotations

import numpy as np

from ..energy.counters import Counts, layer_of, nonzero



class IdealDevice:
    """float32 with no noise and no limits: every method is the plain operation."""

    def __init__(self, profile=None, rng: np.random.Generator | None = None):
        self.profile = profile
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.counts: Counts | None = None

    def reseed(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def install(self, key: str, array: np.ndarray) -> None:
        pass

    def mvm(self, x: np.ndarray, W: np.ndarray, key: str) -> np.ndarray:
        if self.counts is not None:
            self.count_product(x, W.shape[0], key)
        return x @ W.T

    def mvm_t(self, e: np.ndarray, W: np.ndarray, key: str) -> np.ndarray:
        if self.counts is not None:
            self.count_product(e, W.shape[1], key)
        return e @ W

    # ----------------------------------------------------------------- counting
    def count_product(self, x: np.ndarray, n_out: int, key: str) -> None:
        """A product of the batch x (B, n_in) with an array of n_out outputs."""
        c, layer = self.counts, layer_of(key)
        c.add(layer, "dense_synops", x.size * n_out)
        c.add(layer, "effective_synops", nonzero(x) * n_out)
        c.add_product(layer, len(x), x.shape[-1], n_out)

    def count_neurons(self, key: str, h: np.ndarray, out: np.ndarray) -> None:
        """Neuron updates for every state in h, messages for every nonzero output."""
        if self.counts is not None:
            layer = layer_of(key)
            self.counts.add(layer, "neuron_updates", h.size)
            self.counts.add(layer, "messages", nonzero(out))

    def count_update(self, modulator: np.ndarray, pre: np.ndarray, key: str) -> None:
        """Forming an update e·preᵀ: B·n_out·n_in multiply-accumulates where a processor does it."""
        if self.counts is not None:
            self.counts.add(layer_of(key), "update_macs", modulator.size * pre.shape[-1])

    def count_writes(self, key: str, changed: int, size: int) -> None:
        """`changed` synapses of an array of `size` were written. A bias ("….b") is a neuron's
        parameter, not a synapse: it moves memory on a processor but is no synapse write."""
        if self.counts is not None:
            layer = layer_of(key)
            if not key.endswith(".b"):
                self.counts.add(layer, "synapse_writes", changed)
            self.counts.add(layer, "written_synapses", size)

    def activation(self, a: np.ndarray) -> np.ndarray:
        return a

    def state(self, h: np.ndarray) -> np.ndarray:
        return h

    def signal(self, e: np.ndarray) -> np.ndarray:
        return e

    def write(self, array: np.ndarray, delta: np.ndarray, key: str) -> None:
        """array ← array − delta, in place. Every change of a synapse in neurodecorr is a call of
        some device's `write`; devices that quantise or add noise override it. Counted: every
        synapse with a nonzero change."""
        if self.counts is not None:
            self.count_writes(key, nonzero(delta), array.size)
        np.subtract(array, delta, out=array)

    def inference(self) -> "IdealDevice":
        return self

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Per-array device state to checkpoint (none here)."""
        return {}

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        pass
