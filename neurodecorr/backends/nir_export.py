"""Export a deployed network as a NIR graph (https://neuroir.org, PyPI `nir`).

The graph holds the network as deployed: decorrelation folded in, weights and biases at the
fixed-point values Lava runs (W_int · 2^weight_exp, bias_int / 2^frac_bits). NIR has no graded
ReLU neuron, so hidden layers are exported as the standard rate-coded equivalent, integrate-and-
fire neurons with data-based threshold balancing (`prepare.balance_factors`, as the Brian2
backend does): θ_l is the 99.9th percentile of layer l's ReLU activations on training samples,
IF neurons get v_threshold = θ_l (and r = 1, reset to 0), and the next Affine's or Conv2d's
weights are multiplied by θ_l, so a spike rate r_l ≈ ReLU(h_l)/θ_l carries the activation. The
output layer is an Affine read out directly.

    input → affine0 → if0 → affine1 → if1 → … → affineL → output
    input → conv0 → if0 [→ pool0] → conv1 → … → flatten → affineK → … → output    (conv nets)

A conv net's graph is in NIR's (torch's) layout: the input is an image (C, H, W) (the dataset's
own row order), Conv2d weights (C_out, C_in, kh, kw) cross-correlate as our patches do, an IF
population has the conv output's shape (C_out, H', W'), an avg pooling is an `AvgPool2d`
(kernel = stride = s: the 1/s² deployment folds into the next layer's weights is multiplied
back out), and `Flatten` (start_dim 0: NIR types carry no batch axis) hands the first dense
layer a (c, y, x)-ordered vector, its Affine's columns permuted from our (y, x, c) order.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from neurodecorr.backends.prepare import balance_factors, relu_variant
from neurodecorr.backends.sigma_delta import IntNet, quantise
from neurodecorr.engine.saved import load_run
from neurodecorr.nets.conv import image_order
from neurodecorr.nets.fold import FoldedLayer, fold


def deployed_float_layers(net_int: IntNet) -> list[tuple[np.ndarray, np.ndarray]]:
    """(W, b) in float units of each deployed stage (a conv's W its unrolled kernel)."""
    return [(l.weights.astype(np.float64) * 2.0 ** l.weight_exp,
             l.bias.astype(np.float64) / 2.0 ** net_int.frac_bits) for l in net_int.layers]


def deployed_layers(net_int: IntNet) -> list[FoldedLayer]:
    """The deployed network in float units as folded layers (`nets.fold`): each weighted stage's
    (W, b) as `deployed_float_layers` gives it; a sum-pooling stage becomes its conv's avg
    pooling again, and the next layer's W is multiplied by the s² folded into it."""
    out: list[FoldedLayer] = []
    scale = 1.0
    for layer, (W, b) in zip(net_int.layers, deployed_float_layers(net_int)):
        if layer.sum_pool:
            s = layer.conv.kernel
            out[-1] = dataclasses.replace(out[-1], conv=dataclasses.replace(out[-1].conv, pool="avg", pool_size=s))
            scale = float(s * s)
            continue
        out.append(FoldedLayer(W * scale, b, "relu" if layer.relu else "identity", layer.conv))
        scale = 1.0
    return out


def _weighted_node(nir, layer: FoldedLayer, scale: float, image: tuple[int, int, int] | None):
    """The Conv2d or Affine of one layer, its weights times the previous IF's θ; `image` (C, H,
    W) the image a dense layer reads flattened, None when it reads a vector."""
    g = layer.conv
    if g is None:
        W = layer.W * scale
        if image is not None:  # column j reads (y, x, c) feature j, (c, y, x) index order[j]
            W_chw = np.empty_like(W)
            W_chw[:, image_order(image)] = W
            W = W_chw
        return nir.Affine(weight=W.astype(np.float32), bias=layer.b.astype(np.float32))
    kernel = layer.W.reshape(g.out_channels, g.kernel, g.kernel, g.in_channels).transpose(0, 3, 1, 2)
    return nir.Conv2d(input_shape=(g.in_height, g.in_width), weight=(kernel * scale).astype(np.float32),
                      stride=g.stride, padding=g.padding, dilation=1, groups=1,
                      bias=layer.b.astype(np.float32))


def export_nir(run_dir, path, frac_bits: int = 6):
    import nir

    _, learner, data = load_run(run_dir)
    net_int = quantise(relu_variant(fold(learner.net)), frac_bits=frac_bits)
    layers = deployed_layers(net_int)
    thresholds = balance_factors(layers, data.x_train)
    first = layers[0].conv
    input_shape = ([data.n_features] if first is None
                   else [first.in_channels, first.in_height, first.in_width])
    nodes = {"input": nir.Input(input_type={"input": np.array(input_shape)})}
    edges, previous, scale, image = [], "input", 1.0, None

    def add(name, node):
        nonlocal previous
        nodes[name] = node
        edges.append((previous, name))
        previous = name

    for i, layer in enumerate(layers):
        g = layer.conv
        if g is None and image is not None:
            add("flatten", nir.Flatten(input_type={"input": np.array(image)}, start_dim=0, end_dim=-1))
        add(f"affine{i}" if g is None else f"conv{i}", _weighted_node(nir, layer, scale, image))
        if i < len(layers) - 1:
            shape = (layer.W.shape[0],) if g is None else (g.out_channels, g.out_height, g.out_width)
            theta = thresholds[i]
            add(f"if{i}", nir.IF(r=np.ones(shape, np.float32), v_threshold=np.full(shape, theta, np.float32),
                                 v_reset=np.zeros(shape, np.float32)))
            scale = theta
        if g is not None and g.pool is not None:
            s = g.pool_size
            add(f"pool{i}", nir.AvgPool2d(kernel_size=np.array([s, s]), stride=np.array([s, s]),
                                          padding=np.array([0, 0])))
        image = None if g is None else (g.out_channels, *g.pooled_shape[:2])
    nodes["output"] = nir.Output(output_type={"output": np.array([layers[-1].W.shape[0]])})
    edges.append((previous, "output"))
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={
        "source": "neurodecorr", "run": str(run_dir), "frac_bits": frac_bits,
        "hidden_neurons": "graded ReLU on Lava (SigmaDelta); exported as rate-coded IF with "
                          "threshold balancing (99.9th percentile of training activations)"})
    path = Path(path)
    nir.write(path, graph)
    return graph, net_int
