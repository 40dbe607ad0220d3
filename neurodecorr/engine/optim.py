"""Optimisers for the forward synapses: they turn a local gradient estimate into a step.

Each optimiser keeps per-synapse state (which a chip would keep beside the weight) and writes
the step into the gradient buffer it was given, to avoid allocating 3.8 M-element temporaries
every step. The step is then applied by the device's `write`.

- sgd : v ← m·v + g;  step = lr·v          (m = momentum; m = 0 is plain SGD)
- adam: m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;
        step = lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m / (√v + ε·√(1−β₂ᵗ))    (Kingma & Ba 2015, bias-corrected)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from neurodecorr import kernels
from neurodecorr.keys import ArrayKey
from neurodecorr.numerics import DTYPE


@runtime_checkable
class Optimizer(Protocol):
    """Per-synapse state (`state`, checkpointed by name) and the step it turns a gradient into."""

    state: dict[str, np.ndarray]

    @classmethod
    def from_config(cls, config) -> Optimizer: ...
    def next_step(self) -> None: ...
    def step(self, key: ArrayKey, grad: np.ndarray, apply_to: np.ndarray | None = None) -> np.ndarray: ...
    def apply(self, key: ArrayKey, grad: np.ndarray, W: np.ndarray) -> int: ...


def _slot(state: dict[str, np.ndarray], name: str, like: np.ndarray) -> np.ndarray:
    if name not in state:
        state[name] = np.zeros_like(like)
    return state[name]


@dataclass
class SGD:
    lr: float
    momentum: float = 0.9
    state: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config) -> SGD:
        return cls(config.lr, momentum=config.momentum)

    def next_step(self) -> None:
        pass

    def step(self, key: ArrayKey, grad: np.ndarray, apply_to: np.ndarray | None = None) -> np.ndarray:
        """Turn `grad` into the step for the array `key`, in place; returns it. apply_to: also
        subtract the step from this array (a device whose write is the plain subtraction)."""
        if self.momentum:
            v = _slot(self.state, f"{key.name}.v", grad)
            v *= DTYPE(self.momentum)
            v += grad
            np.multiply(v, DTYPE(self.lr), out=grad)
        else:
            grad *= DTYPE(self.lr)
        if apply_to is not None:
            np.subtract(apply_to, grad, out=apply_to)
        return grad

    def apply(self, key: ArrayKey, grad: np.ndarray, W: np.ndarray) -> int:
        """`step` with the step subtracted from W (a device whose write is the plain
        subtraction); returns how many of W's entries it changed, for `written`."""
        return kernels.count_nonzero(self.step(key, grad, apply_to=W))


@dataclass
class Adam:
    """Adam as one fused pass over each array's gradient and moments (`kernels.adam_`; numpy's
    version made ten passes, about a fifth of a training step on the paper's net)."""

    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    state: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        _slot(self.state, "t", np.zeros((), dtype=np.int64))

    @classmethod
    def from_config(cls, config) -> Adam:
        return cls(config.lr, betas=config.betas)

    def next_step(self) -> None:
        """Advance the time step t once per batch, before the per-synapse `step` calls."""
        self.state["t"] += 1

    def step(self, key: ArrayKey, grad: np.ndarray, apply_to: np.ndarray | None = None) -> np.ndarray:
        """The step for the array `key` from `grad`, in grad's buffer; apply_to: also subtracted
        from this array in the same pass."""
        return kernels.adam_(grad, *self._moments(key, grad), apply_to)

    def apply(self, key: ArrayKey, grad: np.ndarray, W: np.ndarray) -> int:
        """`step` subtracted from W in the same pass, which also counts the entries it changed
        (returned, for `written`: no second pass over the step)."""
        return kernels.adam_apply_(grad, *self._moments(key, grad), W)

    def _moments(self, key: ArrayKey, grad: np.ndarray):
        """(m, v, b1, b2, lr_t, eps_t) of the array `key` at this time step."""
        b1, b2 = (DTYPE(b) for b in self.betas)
        t = int(self.state["t"])
        m = _slot(self.state, f"{key.name}.m", grad)
        v = _slot(self.state, f"{key.name}.v", grad)
        correction = np.sqrt(1 - float(b2) ** t)
        lr_t = self.lr * correction / (1 - float(b1) ** t)
        return m, v, b1, b2, lr_t, self.eps * correction


OPTIMIZERS = {"sgd": SGD, "adam": Adam}
