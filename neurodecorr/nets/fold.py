"""Fold each decorrelation matrix and running mean into the dense layer that follows it.

For inference the decorrelation stage is linear and frozen, so
    W x̃ + b = W R (a − μ) + b = (W R) a + (b − W R μ)
and the deployed layer is W' = W R, b' = b − W R μ: decorrelation costs nothing at inference.
A conv layer folds the same way on its patches (μ the per-channel mean at every kernel offset,
`nets.conv`): the deployed layer is one zero-padded conv with kernel W R and a per-channel bias.

Shapes: W' (n_out, n_in), b' (n_out,), float64 (folding is done once, in double precision); a
conv layer's W' is its unrolled kernel (C_out, k·k·C), entries ordered (ky, kx, c).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from neurodecorr.nets.conv import ConvGeometry, to_image
from neurodecorr.nets.network import Layer, Network
from neurodecorr.numerics import DTYPE


@dataclass(frozen=True)
class FoldedLayer:
    W: np.ndarray
    b: np.ndarray
    activation: str
    conv: ConvGeometry | None = None  # a conv layer's geometry (and its pooling), else dense

    def rows(self, a: np.ndarray) -> np.ndarray:
        """The layer's input rows: patches of an image (B, H, W, C), or the flattened batch."""
        return a.reshape(len(a), -1) if self.conv is None else self.conv.patches(a)

    def output(self, y: np.ndarray, batch: int) -> np.ndarray:
        """Rows f(h) → what the layer sends on: its pooled image (conv), or the rows (dense)."""
        if self.conv is None:
            return y
        return self.conv.pool_forward(y.reshape(batch, *self.conv.output_shape))[0]


def input_image(layers: list[FoldedLayer], x: np.ndarray) -> np.ndarray:
    """Dataset rows x (B, n_features) as the first layer reads them (images for a conv net)."""
    g = layers[0].conv
    return x if g is None else to_image(x, (g.in_channels, g.in_height, g.in_width))


def fold(net: Network) -> list[FoldedLayer]:
    """The network's layers with R and μ folded into W and b."""
    layers = []
    for layer in net.layers:
        W = layer.W.astype(np.float64)
        b = layer.b.astype(np.float64)
        if layer.R is not None:
            WR = W @ layer.R.astype(np.float64)
            mu = layer.mu.astype(np.float64)
            b = b - WR @ (mu if layer.shape.conv is None else layer.shape.conv.patch_mean(mu))
            W = WR
        layers.append(FoldedLayer(W, b, layer.shape.activation, layer.shape.conv))
    return layers


def folded_forward(layers: list[FoldedLayer], x: np.ndarray) -> np.ndarray:
    """Outputs of the folded float network (for checking the fold): x (B, n_in) → (B, n_out)."""
    from neurodecorr.nets.activations import ACTIVATIONS

    a = input_image(layers, x.astype(np.float64))
    for layer in layers:
        a = layer.output(ACTIVATIONS[layer.activation].function(layer.rows(a) @ layer.W.T + layer.b), len(a))
    return a


def folded_network(net: Network) -> Network:
    """The network as it is deployed: every R and μ folded into its layer, float32, no
    decorrelation stage left (on the same device object; the caller reads it through whichever
    device view it likes)."""
    layers = [Layer(dataclasses.replace(layer.shape, decorrelated=False), f.W.astype(DTYPE), f.b.astype(DTYPE))
              for layer, f in zip(net.layers, fold(net))]
    return Network(net.spec, layers, net.device, net.centre)
