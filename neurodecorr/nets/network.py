"""A network's synapses and running statistics, and its forward pass.

Per dense layer l (column convention; the code works on row-major batches, one sample a row):

    a        layer input (n_in)                  — the data, or the previous layer's output
    x̃ = R (a − μ)                                — decorrelated input; R (n_in, n_in) starts as I,
                                                   μ is a running mean (momentum 0.1), frozen at
                                                   evaluation; in training the input is centred
                                                   with μ after it took in the batch ("running")
                                                   or with the batch's own mean ("batch", as the
                                                   reference code). Layers without
                                                   decorrelation: x̃ = a.
    h = W x̃ + b                                  — W (n_out, n_in), b (n_out)
    f(h)                                          — the layer's nonlinearity (identity at the output)

A conv layer (`nets.conv`) is the same layer on the rows of its input's patch matrix: a is a
patch (n_in = k·k·C), μ the per-channel mean at every kernel offset, h one output position's
channels; its output image is then pooled. Each sample gives P rows (`LayerShape.rows`).

Weights are initialised as torch.nn.Linear and Conv2d do (U(−1/√n_in, 1/√n_in) for W and b, n_in
the fan-in), as in the paper's reference code.

Every synaptic product, activation and neuron state goes through the network's device
(`neurodecorr.devices`): the ideal device makes each of them the plain float32 operation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurodecorr import kernels, keys
from neurodecorr.devices import Device, IdealDevice
from neurodecorr.keys import ArrayKey, Role
from neurodecorr.nets.activations import ACTIVATIONS, LEAKY_SLOPE
from neurodecorr.nets.conv import to_image
from neurodecorr.nets.losses import LOSSES
from neurodecorr.nets.spec import LayerShape, NetSpec
from neurodecorr.numerics import DTYPE

MEAN_MOMENTUM = 0.1  # running-mean momentum of the reference code


@dataclass
class Layer:
    """Mutable state of one dense layer. Synapses (W, b, R) change only through
    the device's `write`; μ only through `forward(..., track_mean=True)`."""

    shape: LayerShape
    W: np.ndarray
    b: np.ndarray
    R: np.ndarray | None = None
    mu: np.ndarray | None = None


CENTRES = ("running", "batch")


@dataclass
class Network:
    spec: NetSpec
    layers: list[Layer]
    device: Device = field(default_factory=IdealDevice)
    centre: str = "running"  # how training centres a decorrelated layer's input (see above)
    n_classes: int = field(init=False)

    def __post_init__(self):
        self.n_classes = self.layers[-1].shape.n_out

    @property
    def loss(self):
        return LOSSES[self.spec.loss]

    def keyed_arrays(self) -> dict[ArrayKey, np.ndarray]:
        """Every array of the network by its key, layer by layer: W, b, then R and μ if any."""
        out = {}
        for i, layer in enumerate(self.layers):
            out[keys.W(i)] = layer.W
            out[keys.b(i)] = layer.b
            if layer.R is not None:
                out[keys.R(i)] = layer.R
                out[keys.mu(i)] = layer.mu
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the network by a flat, stable name (for .npz files)."""
        return {key.name: array for key, array in self.keyed_arrays().items()}

    def install(self, device: Device) -> None:
        """Put every synapse and bias on `device` (quantised or programmed in place)."""
        self.device = device
        for key, array in self.keyed_arrays().items():
            if key.role is not Role.mu:
                device.install(key, array)

    def load_arrays(self, arrays) -> None:
        """Copy arrays saved by `arrays()` back into this network (shapes must match)."""
        for name, target in self.arrays().items():
            target[...] = arrays[name]


def build_network(spec: NetSpec, n_in: int | tuple[int, int, int], n_classes: int, decorrelate: bool,
                  rng: np.random.Generator, centre: str = "running") -> Network:
    """Initialise a network for `n_in` features, or images (C, H, W), and `n_classes` outputs.

    `decorrelate=False` (decorrelation rule "none") gives no layer an R, whatever the spec says.
    """
    layers = []
    for shape in spec.layers(n_in, n_classes):
        bound = 1.0 / np.sqrt(shape.n_in)
        W = rng.uniform(-bound, bound, (shape.n_out, shape.n_in)).astype(DTYPE)
        b = rng.uniform(-bound, bound, shape.n_out).astype(DTYPE)
        layer = Layer(shape, W, b)
        if decorrelate and shape.decorrelated:
            layer.R = np.eye(shape.n_in, dtype=DTYPE)
            layer.mu = np.zeros(shape.mean_size, dtype=DTYPE)
        layers.append(layer)
    return Network(spec, layers, centre=centre)


@dataclass
class LayerTrace:
    """What one layer computed for a batch of `batch` samples, as rows (B, or B·P for a conv
    layer): inputs a, centred a − mean, x̃, h; the mean it centred with (μ, or the batch's
    own); the layer's input as it arrived (`input`: the batch or image it patched, else a) and
    what it sent on (`sent`: f(h) as rows, or a conv layer's pooled image of f(h)) with what
    the pooling's backward pass needs (`pool_index`)."""

    a: np.ndarray
    centred: np.ndarray | None
    x: np.ndarray
    h: np.ndarray
    mean: np.ndarray | None = None
    input: np.ndarray | None = None
    sent: np.ndarray | None = None
    pool_index: np.ndarray | None = None
    product: np.ndarray | None = None  # W x̃ before the bias, where `forward` was asked to keep it

    @property
    def batch(self) -> int:
        return len(self.input if self.input is not None else self.a)


def forward(net: Network, x: np.ndarray, *, track_mean: bool = False,
            noise: list[np.ndarray] | None = None, means: list | None = None,
            device=None, first: LayerTrace | None = None, keep_product: bool = False) -> list[LayerTrace]:
    """Run a batch x (B, n_in) through the network; returns one trace per layer. A conv net also
    takes its images as they are stored in a trace, (B, H, W, C) (`LayerTrace.input`).

    track_mean: training: update each running mean μ ← (1 − 0.1) μ + 0.1 · mean(a) from this
    batch (in place), and centre with it (net.centre "running") or with mean(a) ("batch").
    noise: per layer, an array (rows, n_out) added to h (node perturbation's noisy pass).
    means: per layer, the mean to centre with (node perturbation's noisy pass centres as its
    clean pass did: `[t.mean for t in clean_traces]`).
    device: the device to compute on (default: the network's own).
    first: the first layer's trace of a pass on this same x (node perturbation's noisy pass
    has its clean pass's): the first layer reads its input rows a (the same patch matrix), and
    on a device whose products repeat bit for bit (`repeatable_products`: ideal, digital) also
    its x̃ and its W x̃ (from `first.h`, W x̃ + b, on exact neurons; else from `first.product`,
    when kept), to which it adds its bias and noise: the values computing them again gives. The
    products are counted as done (`count_product`), since a chip computes them.
    keep_product: keep the first layer's W x̃ in its trace (`LayerTrace.product`) for such a pass.
    """
    dev = net.device if device is None else device
    fused = getattr(dev, "exact_neurons", False)
    grids = getattr(dev, "neuron_grids", None)  # None: the neurons through `state`, `activation`
    reuse = (first is not None and getattr(dev, "repeatable_products", False)
             and not net.layers[0].shape.decorrelation_rank)
    traces = []
    a_in = dev.activation(x)
    image0 = net.layers[0].shape.conv
    if image0 is not None and a_in.ndim == 2:
        a_in = to_image(a_in, (image0.in_channels, image0.in_height, image0.in_width))
    for i, layer in enumerate(net.layers):
        geometry = layer.shape.conv
        if i == 0 and first is not None:
            a = first.a
        else:
            a = a_in.reshape(len(a_in), -1) if geometry is None else geometry.patches(a_in)
        if i == 0 and reuse:  # the first layer's x̃ as the earlier pass formed it
            mean, centred, xt = first.mean, first.centred, first.x
            if layer.R is not None:
                dev.count_product(centred, layer.R, keys.R(i))
                dev.counter.neurons(keys.R(i), xt, xt)
        elif layer.R is not None:
            mean = layer.mu if means is None else means[i]
            if track_mean:
                batch_mean = _input_mean(a_in if geometry is not None else a)
                layer.mu *= DTYPE(1 - MEAN_MOMENTUM)
                layer.mu += DTYPE(MEAN_MOMENTUM) * batch_mean
                if net.centre == "batch":
                    mean = batch_mean
            centred = dev.activation(kernels.minus_rows(a, mean if geometry is None else geometry.patch_mean(mean)))
            if layer.shape.decorrelation_rank:  # deployed low-rank form: x̃ = c − (c Ṽ) Ṽᵀ
                xt = centred - dev.mvm_t(dev.mvm(centred, layer.R, keys.R(i)), layer.R, keys.R(i))
                xt = dev.activation(xt)
            else:
                xt = dev.activation(dev.mvm(centred, layer.R, keys.R(i)))
            dev.counter.neurons(keys.R(i), xt, xt)
        else:
            centred, xt = None, a
        bias, product = layer.b, None
        if i == 0 and reuse and (fused or first.product is not None):  # and its W x̃
            dev.count_product(xt, layer.W, keys.W(i))
            if fused:  # W x̃ + b, to which the kernel adds 0 and the noise
                h, bias = first.h.copy(), np.zeros_like(layer.b)
            else:
                h = first.product.copy()
        else:
            h = dev.mvm(xt, layer.W, keys.W(i))
            if i == 0 and keep_product and not fused:  # exact neurons reuse W x̃ + b instead
                product = h.copy()
        pool = None if geometry is None else geometry.pool
        if grids is not None and layer.shape.activation == "leaky_relu":
            # exact or fixed-point neurons: bias, (noise,) state, f, activation, pooling and
            # the message count in one pass
            image = None if geometry is None else (len(a_in), *geometry.output_shape)
            sent, index, messages = kernels.leaky_layer_(
                h, bias, LEAKY_SLOPE, None if noise is None else noise[i], image, pool,
                geometry.pool_size if pool else 2, grids)
            if pool == "avg" and grids[1] is not None:
                sent = dev.activation(sent)  # the window mean is a new value sent on
            if geometry is not None and pool is None:
                sent = sent.reshape(image)
            dev.counter.neurons(keys.W(i), h, messages)
        else:
            kernels.add_rows_(h, bias)
            if noise is not None:
                h += noise[i]
            h = dev.state(h)
            out = dev.activation(ACTIVATIONS[layer.shape.activation].function(h))
            dev.counter.neurons(keys.W(i), h, out)
            sent, index = out, None
            if geometry is not None:
                sent, index = geometry.pool_forward(out.reshape(len(a_in), *geometry.output_shape))
                if pool == "avg":
                    sent = dev.activation(sent)  # the window mean is a new value sent on
        traces.append(LayerTrace(a, centred, xt, h, mean if layer.R is not None else None,
                                 a_in, sent, index, product))
        a_in = sent
    return traces


def _input_mean(a: np.ndarray) -> np.ndarray:
    """The batch mean of a layer's input: per feature (B, n), or per channel of images (B, H, W, C)."""
    rows = a.reshape(-1, a.shape[-1])
    return kernels.column_sum(rows) / DTYPE(len(rows))


def predict(net: Network, x: np.ndarray, batch_size: int = 1024, fold: bool | None = None,
            rank: int = 0) -> np.ndarray:
    """Output pre-activations h_L (N, n_classes) in evaluation mode (μ frozen), in batches, on
    the device as it is used after training (`device.inference()`: e.g. PCM after drift).
    fold: run the deployed network, decorrelation folded into the weights (`nets.fold`); None:
    as the device does after training (a chip programmed afresh for inference,
    `folds_for_inference`, is given the deployed network). rank: where it folds, keep R's
    `rank` most-suppressed directions as a stage of their own (`folded_network`)."""
    device = net.device.inference()
    if device.folds_for_inference if fold is None else fold:
        from neurodecorr.nets.fold import folded_network

        net = folded_network(net, rank=rank)
    return np.concatenate([forward(net, x[i:i + batch_size], device=device)[-1].h
                           for i in range(0, len(x), batch_size)])
