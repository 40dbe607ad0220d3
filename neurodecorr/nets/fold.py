"""Fold each decorrelation matrix and running mean into the dense layer that follows it.

For inference the decorrelation stage is linear and frozen, so
    W x̃ + b = W R (a − μ) + b = (W R) a + (b − W R μ)
and the deployed layer is W' = W R, b' = b − W R μ: decorrelation costs nothing at inference.

Shapes: W' (n_out, n_in), b' (n_out,), float64 (folding is done once, in double precision).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from neurodecorr.nets.network import Layer, Network
from neurodecorr.numerics import DTYPE


@dataclass(frozen=True)
class FoldedLayer:
    W: np.ndarray
    b: np.ndarray
    activation: str


def fold(net: Network) -> list[FoldedLayer]:
    """The network's layers with R and μ folded into W and b."""
    layers = []
    for layer in net.layers:
        W = layer.W.astype(np.float64)
        b = layer.b.astype(np.float64)
        if layer.R is not None:
            WR = W @ layer.R.astype(np.float64)
            b = b - WR @ layer.mu.astype(np.float64)
            W = WR
        layers.append(FoldedLayer(W, b, layer.shape.activation))
    return layers


def folded_forward(layers: list[FoldedLayer], x: np.ndarray) -> np.ndarray:
    """Outputs of the folded float network (for checking the fold): x (B, n_in) → (B, n_out)."""
    from neurodecorr.nets.activations import ACTIVATIONS

    a = x.astype(np.float64)
    for layer in layers:
        a = ACTIVATIONS[layer.activation].function(a @ layer.W.T + layer.b)
    return a


def folded_network(net: Network) -> Network:
    """The network as it is deployed: every R and μ folded into its layer, float32, no
    decorrelation stage left (on the same device object; the caller reads it through whichever
    device view it likes)."""
    layers = [Layer(dataclasses.replace(layer.shape, decorrelated=False), f.W.astype(DTYPE), f.b.astype(DTYPE))
              for layer, f in zip(net.layers, fold(net))]
    return Network(net.spec, layers, net.device, net.centre)
