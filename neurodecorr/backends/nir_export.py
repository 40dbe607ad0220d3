"""Export a deployed network as a NIR graph (https://neuroir.org, PyPI `nir`).

The graph holds the network as deployed: decorrelation folded in, weights and biases at the
fixed-point values Lava runs (W_int · 2^weight_exp, bias_int / 2^frac_bits). NIR has no graded
ReLU neuron, so hidden layers are exported as the standard rate-coded equivalent, integrate-and-
fire neurons with data-based threshold balancing (`prepare.balance_factors`, as the Brian2
backend does): θ_l is the 99.9th percentile of layer l's ReLU activations on training samples,
IF neurons get v_threshold = θ_l (and r = 1, reset to 0), and the next Affine's weights are
multiplied by θ_l, so a spike rate r_l ≈ ReLU(h_l)/θ_l carries the activation. The output layer
is an Affine read out directly.

    input → affine0 → if0 → affine1 → if1 → … → affineL → output
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurodecorr.backends.prepare import balance_factors, relu_variant
from neurodecorr.backends.sigma_delta import quantise
from neurodecorr.engine.saved import load_run
from neurodecorr.nets.fold import FoldedLayer, fold


def deployed_float_layers(net_int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(W, b) in float units of each deployed layer."""
    return [(l.weights.astype(np.float64) * 2.0 ** l.weight_exp,
             l.bias.astype(np.float64) / 2.0 ** net_int.frac_bits) for l in net_int.layers]


def export_nir(run_dir, path, frac_bits: int = 6):
    import nir

    _, learner, data = load_run(run_dir)
    net_int = quantise(relu_variant(fold(learner.net)), frac_bits=frac_bits)
    layers = deployed_float_layers(net_int)
    relu = ["relu"] * (len(layers) - 1) + ["identity"]
    thresholds = balance_factors([FoldedLayer(W, b, a) for (W, b), a in zip(layers, relu)], data.x_train)
    nodes = {"input": nir.Input(input_type={"input": np.array([data.n_features])})}
    edges, previous, scale = [], "input", 1.0
    for i, (W, b) in enumerate(layers):
        nodes[f"affine{i}"] = nir.Affine(weight=(W * scale).astype(np.float32), bias=b.astype(np.float32))
        edges.append((previous, f"affine{i}"))
        previous = f"affine{i}"
        if i < len(layers) - 1:
            theta = thresholds[i]
            n = W.shape[0]
            nodes[f"if{i}"] = nir.IF(r=np.ones(n, np.float32), v_threshold=np.full(n, theta, np.float32),
                                     v_reset=np.zeros(n, np.float32))
            edges.append((previous, f"if{i}"))
            previous, scale = f"if{i}", theta
    nodes["output"] = nir.Output(output_type={"output": np.array([layers[-1][0].shape[0]])})
    edges.append((previous, "output"))
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={
        "source": "neurodecorr", "run": str(run_dir), "frac_bits": frac_bits,
        "hidden_neurons": "graded ReLU on Lava (SigmaDelta); exported as rate-coded IF with "
                          "threshold balancing (99.9th percentile of training activations)"})
    path = Path(path)
    nir.write(path, graph)
    return graph, net_int

