"""The ideal device: float32, exact, no limits — the `Device` interface (`devices.base`) as the
identity. The other devices derive from it and override what their chip does differently."""

from __future__ import annotations

import numpy as np

from neurodecorr.devices.base import Counter, NullCounter
from neurodecorr.keys import ArrayKey


class IdealDevice:
    """float32 with no noise and no limits: every method is the plain operation."""

    folds_for_inference = False  # True: inference programs a fresh chip with the folded network

    def __init__(self, profile=None, rng: np.random.Generator | None = None,
                 counter: Counter | None = None):
        self.profile = profile
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.counter: Counter = counter if counter is not None else NullCounter()

    def reseed(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def begin_step(self) -> None:
        pass

    def install(self, key: ArrayKey, array: np.ndarray) -> None:
        pass

    def mvm(self, x: np.ndarray, W: np.ndarray, key: ArrayKey) -> np.ndarray:
        self.counter.product(key, x, W.shape[0])
        return x @ W.T

    def mvm_t(self, e: np.ndarray, W: np.ndarray, key: ArrayKey) -> np.ndarray:
        self.counter.product(key, e, W.shape[1])
        return e @ W

    def activation(self, a: np.ndarray) -> np.ndarray:
        return a

    def state(self, h: np.ndarray) -> np.ndarray:
        return h

    def signal(self, e: np.ndarray) -> np.ndarray:
        return e

    def write(self, array: np.ndarray, delta: np.ndarray, key: ArrayKey) -> None:
        """array ← array − delta, in place. Every change of a synapse in neurodecorr is a call of
        some device's `write`; devices that quantise or add noise override it. Counted: every
        entry with a nonzero change."""
        self.written(array, delta, key)
        np.subtract(array, delta, out=array)

    @property
    def plain_writes(self) -> bool:
        """Whether `write` is exactly array − delta (this class's own write): the training step
        may then have the optimiser subtract its step in the pass that forms it, and report it
        with `written`."""
        return type(self).write is IdealDevice.write

    @property
    def exact_neurons(self) -> bool:
        """Whether `state` and `activation` are the identity (this class's own): the forward
        pass may then form a layer's bias, nonlinearity, pooling and message count in one pass
        (`kernels.leaky_layer_`)."""
        return type(self).state is IdealDevice.state and type(self).activation is IdealDevice.activation

    @property
    def neuron_grids(self):
        """Where `state` and `activation` are both the identity, (None, None); where both are
        nearest rounding onto fixed-point grids, those grids (the state's, the activation's),
        each (step, lo, hi) with lo and hi in steps. The forward pass then forms a layer's bias, rounding,
        nonlinearity, pooling and message count in one pass (`kernels.leaky_layer_`). None
        where state or activation is anything else."""
        return (None, None) if self.exact_neurons else None

    @property
    def repeatable_products(self) -> bool:
        """Whether `mvm` and `activation` give the same bits for the same operands every time
        (this class's own: no noise): then a product need not be computed twice (node
        perturbation's noisy pass takes its first layer's from the clean pass,
        `nets.network.forward`, and counts it with `count_product`)."""
        return type(self).mvm is IdealDevice.mvm and type(self).activation is IdealDevice.activation

    def count_product(self, x: np.ndarray, W: np.ndarray, key: ArrayKey) -> None:
        """Count the product x·Wᵀ as `mvm` counts it, without computing it (taken from an
        earlier pass on the same operands: a chip computes it again)."""
        self.counter.product(key, x, W.shape[0])

    def written(self, array: np.ndarray, delta: np.ndarray | int, key: ArrayKey) -> None:
        """Count the change delta (or the number of its nonzero entries), subtracted from array
        (by `write`, or fused with the step that formed it)."""
        self.counter.writes(key, delta, array.size)

    def inference(self) -> IdealDevice:
        return self

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Per-array device state to checkpoint (none here)."""
        return {}

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        pass
