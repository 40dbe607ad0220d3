"""Fold each decorrelation matrix and running mean into the dense layer that follows it.

For inference the decorrelation stage is linear and frozen, so
    W x̃ + b = W R (a − μ) + b = (W R) a + (b − W R μ)
and the deployed layer is W' = W R, b' = b − W R μ: decorrelation costs nothing at inference.
A conv layer folds the same way on its patches (μ the per-channel mean at every kernel offset,
`nets.conv`): the deployed layer is one zero-padded conv with kernel W R and a per-channel bias.

Shapes: W' (n_out, n_in), b' (n_out,), float64 (folding is done once, in double precision); a
conv layer's W' is its unrolled kernel (C_out, k·k·C), entries ordered (ky, kx, c).

The low-rank fold (`folded_network(net, rank=k)`, `evaluate --decorrelation-rank k`). A learned
R is mostly a gain (the seed rule's R on small-conv: median singular value 4–6.5) that nearly
nulls a few input directions, the inputs' shared, high-variance modes (smallest singular values
0.06–0.5). Folded, W R must cancel those modes by the precision of its weights, and an analogue
array's programming noise (1–4 % of full scale per PCM device) breaks the cancellation. The
low-rank fold keeps the centring and those k directions in the digital periphery and folds the
rest: with R = U S Vᵀ (singular values s descending) and V_k, s_k the k smallest,

    P = I − Ṽ Ṽᵀ,  Ṽ = V_k diag(√(1 − s_k/s̄))     (s̄ the median singular value)
    x̃ = P (a − μ),   h = W' x̃ + b,   W' = W R P⁻¹ = W (R + U_k diag(s̄ − s_k) V_kᵀ)

so W' x̃ = W R (a − μ) exactly, P shrinks each direction v_k by s_k/s̄ before the array, and W'
sees every input direction at about the gain s̄ (nothing left to cancel). The periphery does
2·k·n_in multiply-adds a row (x̃ = c − (c Ṽ) Ṽᵀ, one read of Ṽᵀ each way) instead of R's n_in².
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
    return [_fold_layer(layer) for layer in net.layers]


def _fold_layer(layer: Layer) -> FoldedLayer:
    W = layer.W.astype(np.float64)
    b = layer.b.astype(np.float64)
    if layer.R is not None:
        R = layer.R.astype(np.float64)
        if layer.shape.decorrelation_rank:  # a low-rank stage, R holding Ṽᵀ: P = I − Ṽ Ṽᵀ
            R = np.eye(layer.shape.n_in) - R.T @ R
        WR = W @ R
        mu = layer.mu.astype(np.float64)
        b = b - WR @ (mu if layer.shape.conv is None else layer.shape.conv.patch_mean(mu))
        W = WR
    return FoldedLayer(W, b, layer.shape.activation, layer.shape.conv)


def folded_forward(layers: list[FoldedLayer], x: np.ndarray) -> np.ndarray:
    """Outputs of the folded float network (for checking the fold): x (B, n_in) → (B, n_out)."""
    from neurodecorr.nets.activations import ACTIVATIONS

    a = input_image(layers, x.astype(np.float64))
    for layer in layers:
        a = layer.output(ACTIVATIONS[layer.activation].function(layer.rows(a) @ layer.W.T + layer.b), len(a))
    return a


def folded_network(net: Network, rank: int = 0) -> Network:
    """The network as it is deployed: every R and μ folded into its layer, float32, no
    decorrelation stage left (on the same device object; the caller reads it through whichever
    device view it likes). rank k > 0: the low-rank fold (above): each decorrelated layer keeps μ
    and a decorrelation stage of rank min(k, n_in // 2), its R holding Ṽᵀ."""
    if rank < 0:
        raise ValueError(f"rank: expected 0 (fold all of R) or a positive number, found {rank}")
    layers = [_low_rank_layer(layer, rank) if rank and layer.R is not None else _folded_layer(layer)
              for layer in net.layers]
    return Network(net.spec, layers, net.device, net.centre)


def _folded_layer(layer: Layer) -> Layer:
    f = _fold_layer(layer)
    return Layer(dataclasses.replace(layer.shape, decorrelated=False), f.W.astype(DTYPE), f.b.astype(DTYPE))


def low_rank_split(R: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """(Ṽᵀ (rank, n), R P⁻¹ (n, n)), float64, for the low-rank fold of R (module docstring)."""
    n = len(R)
    if not 0 < rank <= n // 2:
        raise ValueError(f"rank: expected 1 to {n // 2} (half of R's {n} inputs), found {rank}")
    U, s, Vt = np.linalg.svd(R.astype(np.float64))
    typical = float(np.median(s))
    s_k, U_k, Vt_k = s[-rank:], U[:, -rank:], Vt[-rank:]
    shrink = np.sqrt(np.clip(1 - s_k / typical, 0, None))  # s_k ≤ the median for k ≤ n/2
    return shrink[:, None] * Vt_k, R + (U_k * (typical - s_k)) @ Vt_k


def _low_rank_layer(layer: Layer, rank: int) -> Layer:
    rank = min(rank, len(layer.R) // 2)  # a narrow layer keeps at most half its inputs' directions
    if rank == 0:
        return _folded_layer(layer)
    Vt, R_unshrunk = low_rank_split(layer.R, rank)
    W = layer.W.astype(np.float64) @ R_unshrunk
    shape = dataclasses.replace(layer.shape, decorrelation_rank=rank)
    return Layer(shape, W.astype(DTYPE), layer.b.copy(), Vt.astype(DTYPE), layer.mu.copy())
