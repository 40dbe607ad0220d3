"""Credit assignment: each rule's only job is the per-neuron modulator e_l of every layer.

With x̃_l the layer's (decorrelated) input, h_l its pre-activation and L the loss, the forward
weights then change by ΔW_l = −η e_l x̃_lᵀ, Δb_l = −η e_l (`plasticity.local_outer`):

- bp  : e_L = ∂L/∂h_L;  e_l = f'(h_l) ⊙ (R_{l+1}ᵀ W_{l+1}ᵀ e_{l+1})
- fa  : as bp, with W_{l+1}ᵀ replaced by a fixed random B_{l+1}ᵀ (Lillicrap et al. 2016)
- dfa : e_l = f'(h_l) ⊙ (D_l e_L), D_l fixed random (Nøkland 2016)
- np  : a clean and a noisy forward pass (ξ_l ~ N(0, σ²) added to every h_l);
        δL = L_noisy − L_clean per sample;  e_l = δL · ξ_l / σ².  No backward pass.

Node perturbation and float32: δL is a difference of two nearly equal losses. We take the losses
of the float32 logits in float64 and use σ = 1e-3 (the paper's reference code: σ = 1e-6, all in
float32). Measured by `benchmarks/np_precision.py` on the paper's net: the median relative error of
δL is 1.5e-1 all in float32 at σ = 1e-6, 8.8e-3 with the float64 loss at σ = 1e-6, and 9.8e-6
with the float64 loss at σ = 1e-3.

Every read of a synapse array (W, R, B, D) goes through the network's device (`mvm`, `mvm_t`),
and every error signal and NP noise through its signal precision (`device.signal`).

Conv layers (`nets.conv`): a layer's rows are its output positions, so every modulator is one
row per position and channel, (B·P_l, C_out); the signal that leaves a conv layer downwards is
summed back onto the image it patched (col2im) and routed through the pooling of the layer
below. FA's B_l is a fixed random kernel of W_l's shape; DFA's D_l projects e_L onto every
position of layer l (P_l·C_out rows); NP perturbs every position and channel of h_l.

Shapes: every modulator is (rows_l, n_out_l) float32: (B, n_out_l) dense, (B·P_l, C_out) conv.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodecorr import kernels, keys
from neurodecorr.keys import ArrayKey
from neurodecorr.nets.activations import ACTIVATIONS, LEAKY_SLOPE
from neurodecorr.nets.network import LayerTrace, Network, forward
from neurodecorr.numerics import DTYPE

FEEDBACK_BOUNDS = {
    "uniform": lambda fan_in: 1.0 / np.sqrt(fan_in),     # as W's own initialisation
    "kaiming": lambda fan_in: np.sqrt(6.0 / fan_in),     # torch's kaiming_uniform_ (gain √2)
}


def _feedback_init(shape, fan_in, rng, init="uniform"):
    """A fixed random feedback matrix, U(−b, b) with b from FEEDBACK_BOUNDS[init]."""
    bound = FEEDBACK_BOUNDS[init](fan_in)
    return rng.uniform(-bound, bound, shape).astype(DTYPE)


def _times_fprime(net: Network, traces: list[LayerTrace], layer: int, signal: np.ndarray):
    """signal ⊙ f'(h_layer), in place."""
    act = ACTIVATIONS[net.layers[layer].shape.activation]
    return act.times_derivative(traces[layer].h, signal)


def propagate_back(net: Network, traces: list[LayerTrace], e_out: np.ndarray,
                   matrices: list[tuple[np.ndarray, ArrayKey] | None]) -> list[np.ndarray]:
    """e_l = f'(h_l) ⊙ (R_{l+1}ᵀ M_{l+1}ᵀ e_{l+1}) from the top down; M = W (bp) or B (fa),
    given as (array, key) per layer (layer 0's is never read).

    Centring with the batch mean (net.centre "batch") is part of the forward map in training,
    so the signal that leaves a decorrelated layer downwards loses its batch mean too:
    ∂/∂a of R(a − mean_batch a) applied to g is Rᵀg − mean_batch(Rᵀg). A running mean μ
    (net.centre "running", which took in this batch with weight 0.1) is treated as a constant
    of the step: that dependence on the batch is not propagated, so bp is then exact only up
    to it."""
    dev = net.device
    batch_centred = net.centre == "batch"
    mods = [None] * len(net.layers)
    mods[-1] = dev.signal(e_out)
    for l in range(len(net.layers) - 2, -1, -1):
        M, key = matrices[l + 1]
        signal = dev.mvm_t(mods[l + 1], M, key)
        R = net.layers[l + 1].R
        if R is not None:
            signal = dev.mvm_t(signal, R, keys.R(l + 1))
        mods[l] = dev.signal(lower_modulator(net, traces, l, signal, centred=R is not None and batch_centred))
        dev.counter.neurons(keys.W(l), mods[l], mods[l])
    return mods


def lower_modulator(net: Network, traces: list[LayerTrace], l: int, signal: np.ndarray,
                    centred: bool = False) -> np.ndarray:
    """A signal on the input rows of layer l + 1 → on the output rows of layer l: summed back
    onto the image it was patched from (conv above), through layer l's pooling (conv below),
    times f'(h_l). `centred`: layer l + 1 centred its input with the batch mean, whose
    derivative removes the mean of the signal from every input (per channel for a conv layer,
    where each channel's mean was taken over the batch and positions)."""
    upper, lower = net.layers[l + 1].shape.conv, net.layers[l].shape.conv
    batch = traces[l + 1].batch
    if upper is None:
        g = signal - signal.mean(axis=0, dtype=DTYPE) if centred else signal
    else:
        g = upper.patches_back(signal, batch)
        if centred:
            per_channel = signal.reshape(-1, upper.in_channels).sum(axis=0, dtype=DTYPE)
            g = g - per_channel / DTYPE(batch * upper.in_height * upper.in_width)
    if lower is None:
        return _times_fprime(net, traces, l, g)
    g = g.reshape(batch, *lower.pooled_shape)
    if lower.pool is not None and net.layers[l].shape.activation == "leaky_relu":  # one pass
        h = traces[l].h.reshape(batch, *lower.output_shape)
        return kernels.pool_back_leaky(g, traces[l].pool_index, h, lower.pool_size,
                                       LEAKY_SLOPE).reshape(-1, lower.out_channels)
    g = lower.pool_backward(g, traces[l].pool_index)
    return _times_fprime(net, traces, l, np.ascontiguousarray(g).reshape(-1, lower.out_channels))


@dataclass(frozen=True)
class BP:
    """Backpropagation: exact gradients."""

    name: str = "bp"
    uses_backward: bool = True
    repeats_forward: bool = False
    modulator_phase: str = "feedback"  # where the energy counters put the modulators' work

    @classmethod
    def from_config(cls, config) -> BP:
        return cls()

    def init_state(self, net: Network, rng: np.random.Generator) -> dict[ArrayKey, np.ndarray]:
        return {}

    def modulators(self, net, traces, labels, state, rng):
        e_out = net.loss.grad(traces[-1].h, labels)
        return propagate_back(net, traces, e_out,
                              [(layer.W, keys.W(l)) for l, layer in enumerate(net.layers)])


@dataclass(frozen=True)
class FA:
    """Feedback alignment: errors travel back through fixed random matrices B_l (n_out, n_in)."""

    init: str = "uniform"  # FEEDBACK_BOUNDS
    name: str = "fa"
    uses_backward: bool = True
    repeats_forward: bool = False
    modulator_phase: str = "feedback"

    @classmethod
    def from_config(cls, config) -> FA:
        return cls(init=config.feedback_init)

    def init_state(self, net, rng):
        return {keys.B(l): _feedback_init(layer.W.shape, layer.shape.n_in, rng, self.init)
                for l, layer in enumerate(net.layers) if l > 0}

    def modulators(self, net, traces, labels, state, rng):
        e_out = net.loss.grad(traces[-1].h, labels)
        matrices = [None] + [(state[keys.B(l)], keys.B(l)) for l in range(1, len(net.layers))]
        return propagate_back(net, traces, e_out, matrices)


@dataclass(frozen=True)
class DFA:
    """Direct feedback alignment: each hidden layer receives e_L through a fixed random D_l."""

    init: str = "uniform"  # FEEDBACK_BOUNDS
    name: str = "dfa"
    uses_backward: bool = True
    repeats_forward: bool = False
    modulator_phase: str = "feedback"

    @classmethod
    def from_config(cls, config) -> DFA:
        return cls(init=config.feedback_init)

    def init_state(self, net, rng):
        return {keys.D(l): _feedback_init((layer.shape.n_out_total, net.n_classes), net.n_classes, rng,
                                          self.init)
                for l, layer in enumerate(net.layers[:-1])}

    def modulators(self, net, traces, labels, state, rng):
        dev = net.device
        e_out = dev.signal(net.loss.grad(traces[-1].h, labels))
        mods = [dev.signal(_times_fprime(net, traces, l, dev.mvm(e_out, state[keys.D(l)], keys.D(l))
                                         .reshape(-1, net.layers[l].shape.n_out)))
                for l in range(len(net.layers) - 1)]
        for l, e in enumerate(mods):
            dev.counter.neurons(keys.W(l), e, e)
        return mods + [e_out]


@dataclass(frozen=True)
class NP:
    """Node perturbation: a second, noisy forward pass and a scalar loss difference per sample."""

    sigma: float = 1e-3
    loss_precision: str = "float64"  # the dtype the two losses are taken and subtracted in
    name: str = "np"
    uses_backward: bool = False
    repeats_forward: bool = True  # its noisy pass, on the clean pass's batch
    modulator_phase: str = "learning_forward"  # its noisy pass is a forward pass

    @classmethod
    def from_config(cls, config) -> NP:
        return cls(sigma=config.np_sigma, loss_precision=config.np_loss_precision)

    def init_state(self, net, rng):
        return {}

    def modulators(self, net, traces, labels, state, rng):
        x = traces[0].input  # the batch as the first layer read it (its image, for a conv net)
        noise = [net.device.signal(
                     kernels.normals((len(trace.h), layer.shape.n_out), rng, self.sigma))
                 for layer, trace in zip(net.layers, traces)]
        noisy = forward(net, x, noise=noise, means=[t.mean for t in traces], first=traces[0])
        per_sample, dtype = net.loss.per_sample, np.dtype(self.loss_precision)
        delta_loss = (per_sample(noisy[-1].h.astype(dtype), labels)
                      - per_sample(traces[-1].h.astype(dtype), labels))
        scale = (delta_loss / self.sigma**2).astype(DTYPE)
        # e_l = δL ξ_l / σ², each sample's δL on its P_l rows; ξ_l is not needed after this
        return [net.device.signal(kernels.scale_rows_(xi, scale, layer.shape.rows))
                for layer, xi in zip(net.layers, noise)]


CREDIT_RULES = {"bp": BP, "fa": FA, "dfa": DFA, "np": NP}
