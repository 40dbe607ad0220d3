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

`key` names the array ("layer2.W", "layer0.R", "credit.B3", …) so a device can keep per-array
state (exponents, conductance scales, accumulators).
"""

from __future__ import annotations

import numpy as np


class IdealDevice:
    """float32 with no noise and no limits: every method is the plain operation."""

    def __init__(self, profile=None, rng: np.random.Generator | None = None):
        self.profile = profile
        self.rng = rng if rng is not None else np.random.default_rng(0)

    def reseed(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def install(self, key: str, array: np.ndarray) -> None:
        pass

    def mvm(self, x: np.ndarray, W: np.ndarray, key: str) -> np.ndarray:
        return x @ W.T

    def mvm_t(self, e: np.ndarray, W: np.ndarray, key: str) -> np.ndarray:
        return e @ W

    def activation(self, a: np.ndarray) -> np.ndarray:
        return a

    def state(self, h: np.ndarray) -> np.ndarray:
        return h

    def signal(self, e: np.ndarray) -> np.ndarray:
        return e

    def write(self, array: np.ndarray, delta: np.ndarray, key: str) -> None:
        """array ← array − delta, in place. Every change of a synapse in neurodecorr is a call of
        some device's `write`; devices that quantise or add noise override it."""
        np.subtract(array, delta, out=array)

    def inference(self) -> "IdealDevice":
        return self

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Per-array device state to checkpoint (none here)."""
        return {}

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        pass
