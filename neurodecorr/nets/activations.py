"""Element-wise nonlinearities `f` and the multiplication by their derivative `f'`, by name.

`function(h)` returns f(h); `times_derivative(h, signal)` returns signal ⊙ f'(h), written into
`signal` (the backward passes own that array). Shapes: any; float32 in, float32 out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from neurodecorr import kernels

LEAKY_SLOPE = 0.01  # torch.nn.LeakyReLU's default, as in the paper's reference code
_SLOPE = np.float32(LEAKY_SLOPE)


@dataclass(frozen=True)
class Activation:
    """f(h), and signal ⊙ f'(h) computed in place in `signal`."""

    name: str
    function: Callable[[np.ndarray], np.ndarray]
    times_derivative: Callable[[np.ndarray, np.ndarray], np.ndarray]


def _leaky_relu(h):
    return kernels.leaky_relu(h, _SLOPE)  # f(h) = max(h, 0.01 h) since the slope is below 1


def _leaky_relu_back(h, signal):
    return kernels.times_leaky_derivative_(h, signal, _SLOPE)  # f'(h) = 1 for h > 0, else the slope


def _relu_back(h, signal):
    signal[h <= 0] = 0
    return signal


def _tanh_back(h, signal):
    t = np.tanh(h)
    signal *= 1 - t * t
    return signal


ACTIVATIONS: dict[str, Activation] = {
    "leaky_relu": Activation("leaky_relu", _leaky_relu, _leaky_relu_back),
    "relu": Activation("relu", lambda h: np.maximum(h, np.float32(0)), _relu_back),
    "tanh": Activation("tanh", np.tanh, _tanh_back),
    "identity": Activation("identity", lambda h: h, lambda h, signal: signal),
}
