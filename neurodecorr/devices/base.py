"""The device interface and the operation-counter interface it reports to.

A device is what the engine reads and writes synapses through. A new kind of chip is one class
implementing `Device`, registered in `devices.DEVICE_KINDS`; no learning rule changes. The
shared conformance test (`tests/test_conformance.py`) runs over that registry.

    install(key, W)       put a synapse array on the device (quantise or program it, in place)
    mvm(x, W, key)        x Wᵀ as the device computes it            x (B, n_in)  → (B, n_out)
    mvm_t(e, W, key)      e W, the same array read transposed        e (B, n_out) → (B, n_in)
    activation(a)         a value sent between neurons (graded spike, payload precision)
    state(h)              a neuron's state (the pre-activation h), at state precision
    signal(e)             a per-neuron learning signal (modulator, NP noise), at its precision
    write(W, delta, key)  W ← W − delta as the device can change it, in place
    inference()           the device as seen when the trained network is used (e.g. after drift);
                          a view with folds_for_inference programs a fresh chip, and is given the
                          deployed network (decorrelation folded into the weights)
    reseed(rng)           the generator for this device's noise and stochastic rounding
    begin_step()          a training step begins (state that lives for one step is dropped)
    state_arrays(), load_state_arrays(arrays)   per-array device state for checkpoints
    counter               where the device reports its products and writes; the engine reports
                          the rest (neuron updates, forming updates) to the same counter

Optional, for the engine's shortcuts (each is False where a device does not have it):
exact_neurons (state and activation are the identity: fused neuron kernels), plain_writes
(write is W − delta: fused into the optimiser), repeatable_products (mvm and activation give
the same bits for the same operands: a repeated product is taken from the earlier pass and
reported with count_product(x, W, key), which counts it as mvm does).

`key` is an `ArrayKey` (layer and role). Every device is given its `counter` when it is made;
the default `NullCounter` counts nothing, so no code checks whether counting is on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

import numpy as np

from neurodecorr.keys import ArrayKey


@runtime_checkable
class Counter(Protocol):
    """Receives what a device did. `neurodecorr.energy.Counts` is the real one."""

    def during(self, phase: str):
        """A context in which everything counted is attributed to `phase`."""

    def product(self, key: ArrayKey, x: np.ndarray, n_out: int, periphery: bool = False) -> None:
        """A product of the batch x (B, n_in) with the array `key` of n_out outputs; periphery:
        computed by a crossbar chip's digital periphery, not by an array."""

    def periphery(self, key: ArrayKey, ops: int = 0, bytes: int = 0) -> None:
        """Other work of a crossbar chip's digital periphery: `ops` multiply-adds, `bytes` of
        its memory moved (accumulators, buffers, weights kept digitally)."""

    def neurons(self, key: ArrayKey, h: np.ndarray, out) -> None:
        """Neuron updates for every state in h, messages for every nonzero of out (an array,
        or the count of its nonzero entries)."""

    def update(self, key: ArrayKey, modulator: np.ndarray, pre: np.ndarray) -> None:
        """Forming an update e·preᵀ (B·n_out·n_in multiply-accumulates)."""

    def writes(self, key: ArrayKey, changed, size: int) -> None:
        """An array of `size` entries was written; `changed` of them (an int, or an array whose
        nonzero entries are the changed ones) now hold another value."""


class NullCounter:
    """Counts nothing (a device made without a counter)."""

    @contextmanager
    def during(self, phase: str) -> Iterator[NullCounter]:
        yield self

    def product(self, key, x, n_out, periphery=False) -> None:
        pass

    def periphery(self, key, ops=0, bytes=0) -> None:
        pass

    def neurons(self, key, h, out) -> None:
        pass

    def update(self, key, modulator, pre) -> None:
        pass

    def writes(self, key, changed, size) -> None:
        pass


@runtime_checkable
class Device(Protocol):
    counter: Counter
    rng: np.random.Generator
    folds_for_inference: bool

    def reseed(self, rng: np.random.Generator) -> None: ...
    def begin_step(self) -> None: ...
    def install(self, key: ArrayKey, array: np.ndarray) -> None: ...
    def mvm(self, x: np.ndarray, W: np.ndarray, key: ArrayKey) -> np.ndarray: ...
    def mvm_t(self, e: np.ndarray, W: np.ndarray, key: ArrayKey) -> np.ndarray: ...
    def activation(self, a: np.ndarray) -> np.ndarray: ...
    def state(self, h: np.ndarray) -> np.ndarray: ...
    def signal(self, e: np.ndarray) -> np.ndarray: ...
    def write(self, array: np.ndarray, delta: np.ndarray, key: ArrayKey) -> None: ...
    def inference(self) -> Device: ...
    def state_arrays(self) -> dict[str, np.ndarray]: ...
    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None: ...
