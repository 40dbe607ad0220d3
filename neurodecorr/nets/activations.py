"""Element-wise nonlinearities `f` and their derivatives `f'`, by name.

Shapes: any; the output has the input's shape and dtype (float32).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

LEAKY_SLOPE = 0.01  # torch.nn.LeakyReLU's default, as in the paper's reference code


@dataclass(frozen=True)
class Activation:
    """`f(h)` and `f'(h)` of one nonlinearity; `derivative` takes the pre-activation `h`."""

    name: str
    function: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray], np.ndarray]


def _leaky_relu(h):
    return np.where(h > 0, h, h * np.float32(LEAKY_SLOPE))


def _leaky_relu_grad(h):
    return np.where(h > 0, np.float32(1.0), np.float32(LEAKY_SLOPE))


def _relu(h):
    return np.maximum(h, np.float32(0.0))


def _relu_grad(h):
    return (h > 0).astype(h.dtype)


def _tanh_grad(h):
    t = np.tanh(h)
    return np.float32(1.0) - t * t


ACTIVATIONS: dict[str, Activation] = {
    "leaky_relu": Activation("leaky_relu", _leaky_relu, _leaky_relu_grad),
    "relu": Activation("relu", _relu, _relu_grad),
    "tanh": Activation("tanh", np.tanh, _tanh_grad),
    "identity": Activation("identity", lambda h: h, lambda h: np.ones_like(h)),
}
