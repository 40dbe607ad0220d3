"""Output losses: per-sample value and its gradient with respect to the output pre-activation.

The output layer's activation is part of the loss here: `cross_entropy` applies softmax to the
logits `h_L`, `mse` compares `h_L` with the one-hot target directly.

Shapes: logits (B, n_classes) float32, labels (B,) int; per-sample loss (B,); gradient (B, n_classes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from neurodecorr.numerics import DTYPE


def _log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def cross_entropy(logits, labels):
    """L = −log softmax(h)_y per sample."""
    logp = _log_softmax(logits)
    return -logp[np.arange(len(labels)), labels]


def cross_entropy_grad(logits, labels):
    """∂L/∂h = softmax(h) − onehot(y), per sample (not divided by the batch size)."""
    grad = np.exp(_log_softmax(logits))
    grad[np.arange(len(labels)), labels] -= 1
    return grad.astype(DTYPE, copy=False)


def _onehot(labels, n):
    out = np.zeros((len(labels), n), dtype=DTYPE)
    out[np.arange(len(labels)), labels] = 1
    return out


def mse(outputs, labels):
    """L = ½‖h − onehot(y)‖² per sample."""
    diff = outputs - _onehot(labels, outputs.shape[1])
    return 0.5 * np.einsum("ij,ij->i", diff, diff)


def mse_grad(outputs, labels):
    """∂L/∂h = h − onehot(y), per sample."""
    return (outputs - _onehot(labels, outputs.shape[1])).astype(DTYPE, copy=False)


@dataclass(frozen=True)
class Loss:
    name: str
    per_sample: Callable[[np.ndarray, np.ndarray], np.ndarray]
    grad: Callable[[np.ndarray, np.ndarray], np.ndarray]


LOSSES: dict[str, Loss] = {
    "cross_entropy": Loss("cross_entropy", cross_entropy, cross_entropy_grad),
    "mse": Loss("mse", mse, mse_grad),
}
