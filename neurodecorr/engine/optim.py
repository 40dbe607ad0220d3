"""Optimisers for the forward synapses: they turn a local gradient estimate into a step.

Each optimiser keeps per-synapse state (which a chip would keep beside the weight) and writes
the step into the gradient buffer it was given, to avoid allocating 3.8 M-element temporaries
every step. The step is then applied by `plasticity.write`.

- sgd : v ← m·v + g;  step = lr·v          (m = momentum; m = 0 is plain SGD)
- adam: m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;
        step = lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m / (√v + ε·√(1−β₂ᵗ))    (Kingma & Ba 2015, bias-corrected)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..numerics import DTYPE


@dataclass
class SGD:
    lr: float
    momentum: float = 0.9
    state: dict[str, np.ndarray] = field(default_factory=dict)

    def step(self, name: str, grad: np.ndarray) -> np.ndarray:
        """Turn `grad` into the step for the synapses called `name`, in place; returns it."""
        if self.momentum:
            v = self.state.setdefault(f"{name}.v", np.zeros_like(grad))
            v *= DTYPE(self.momentum)
            v += grad
            np.multiply(v, DTYPE(self.lr), out=grad)
        else:
            grad *= DTYPE(self.lr)
        return grad

    def next_step(self) -> None:
        pass


@dataclass
class Adam:
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    state: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        self.state.setdefault("t", np.zeros((), dtype=np.int64))
        self._scratch: dict[tuple, np.ndarray] = {}

    def next_step(self) -> None:
        """Advance the time step t once per batch, before the per-synapse `step` calls."""
        self.state["t"] += 1

    def step(self, name: str, grad: np.ndarray) -> np.ndarray:
        b1, b2 = self.betas
        t = int(self.state["t"])
        m = self.state.setdefault(f"{name}.m", np.zeros_like(grad))
        v = self.state.setdefault(f"{name}.v", np.zeros_like(grad))
        tmp = self._scratch.get(grad.shape)
        if tmp is None:
            tmp = self._scratch[grad.shape] = np.empty_like(grad)
        m *= DTYPE(b1)
        np.multiply(grad, DTYPE(1 - b1), out=tmp)
        m += tmp
        v *= DTYPE(b2)
        np.multiply(grad, grad, out=tmp)
        tmp *= DTYPE(1 - b2)
        v += tmp
        correction = np.sqrt(1 - b2**t)
        np.sqrt(v, out=tmp)
        tmp += DTYPE(self.eps * correction)
        np.divide(m, tmp, out=grad)
        grad *= DTYPE(self.lr * correction / (1 - b1**t))
        return grad


OPTIMIZERS = {"sgd": SGD, "adam": Adam}
