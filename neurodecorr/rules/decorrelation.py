"""Decorrelation rules: how each layer's matrix R learns to decorrelate its input.

Each rule updates R from a sub-sample of every batch: the first ⌊0.1·B⌋ + 1 samples (batches are
shuffled), as the paper's reference code does. With z = x̃ = R(a − μ) a decorrelated sample and
C = mean(z zᵀ) over the sub-sample:

| rule    | update                                                        | fixed point            |
|---------|---------------------------------------------------------------|------------------------|
| seed    | g = mean(‖a − μ‖/‖z‖);  R ← g·R;  R ← R − η C R               | C ∝ I (one global gain) |
| cpi     | R ← R − η · offdiag(C) R                                       | uncorrelated units     |
| whiten  | R ← R − η[(1−κ)·offdiag(C) R + κ·diag(E[z²] − 1) R]            | C = I                  |
| zca     | R = (Σ + εI)^(−1/2) from a running covariance Σ (not local)    | exact whitening        |
| none    | no decorrelation matrix at all                                 |                        |

Every local rule is the anti-Hebbian outer product of `plasticity.local_outer`: C R per synapse
is z_i · (Rᵀz)_j, the post-synaptic output times the same array read transposed. On a batch
that is C R = Zᵀ(Z R)/n, costing 2·n·d² multiply-adds rather than the d³ of forming C first.
The diagonal terms of cpi and whiten are per-neuron gains times the neuron's own row of R.

On a conv layer the rows are patches: the sub-sample is every patch of the first ⌊0.1·B⌋ + 1
samples, and C is the mean over those patches (the reference code's `Decorrelator2D`).

The seed rule's gain: we measure ‖a − μ‖ on the centred input (the vector R acts on); the
reference code measures the raw input. `seed` C is taken before the gain is applied, as there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodecorr import kernels, keys
from neurodecorr.nets.network import LayerTrace, Network
from neurodecorr.numerics import DTYPE
from neurodecorr.rules.plasticity import local_outer


def subsample_size(batch: int, fraction: float) -> int:
    return min(batch, int(fraction * batch) + 1)


@dataclass(frozen=True)
class _LocalRule:
    """A rule that updates R by the local anti-Hebbian step R ← R − delta, with the learning
    rate η_R (`lr`) applied here: plain SGD without momentum, as in the reference code."""

    lr: float = 1e-4
    sample_fraction: float = 0.1
    name: str = ""

    @classmethod
    def from_config(cls, config):
        return cls(lr=config.decor_lr, sample_fraction=config.decor_fraction)

    def init_state(self, net: Network) -> dict[str, np.ndarray]:
        return {}

    def update(self, net: Network, traces: list[LayerTrace], state: dict) -> None:
        """Update every decorrelation matrix from this batch's traces, through the device."""
        dev = net.device
        for i, (layer, trace) in enumerate(zip(net.layers, traces)):
            if layer.R is None:
                continue
            key = keys.R(i)
            n = subsample_size(trace.batch, self.sample_fraction) * layer.shape.rows
            z_R = self.read(dev, trace.x[:n], layer.R, key)
            dev.counter.update(key, trace.x[:n], z_R)
            self.apply(dev, layer.R, trace, n, z_R, key)

    def apply(self, dev, R, trace: LayerTrace, n: int, z_R, key) -> None:
        """Write the change into R through the device."""
        dev.write(R, self.delta(R, trace, n, z_R), key)

    def read(self, dev, z, R, key):
        """Rᵀz for each sampled z (as rows): the same array read transposed."""
        return dev.mvm_t(z, R, key)

    def delta(self, R, trace: LayerTrace, n: int, z_R):  # pragma: no cover - abstract
        """The change R − R_new, from the sub-sample of the layer's trace (its first n rows: z,
        the input a and the centred input) and the second read of z through R (`read`)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Seed(_LocalRule):
    """The paper's rule: full C, one global gain g. Returns the change R − R_new. `gain`:
    - "centred": g = mean ‖a − μ‖/‖z‖, the norm of the centred input the output keeps;
    - "raw": g = mean ‖a‖/‖z‖ on the un-centred input (the reference code's);
    - "unit": g = √(d / mean ‖z‖²), which drives the mean variance of z's units to 1, whatever
      the scale of the input (two layer-wide sums and one broadcast scalar, like the others).
    `side`: "left", R ← g(R − η C R) (the paper, and its code when it was submitted); "right",
    R ← g(R − η R C), the form the reference code's HEAD applies (it multiplies z = (x − μ)·R
    from the right and updates with C·R). Per synapse the right form needs (R z)_i z_j: z read
    through R a second time, forward, and z_j at the input side, which is the output of another
    unit — less local than the left form's z_i (Rᵀz)_j."""

    gain: str = "centred"
    side: str = "left"
    name: str = "seed"

    @classmethod
    def from_config(cls, config) -> Seed:
        return cls(lr=config.decor_lr, sample_fraction=config.decor_fraction, gain=config.decor_gain,
                   side=config.decor_side)

    def read(self, dev, z, R, key):
        return dev.mvm_t(z, R, key) if self.side == "left" else dev.mvm(z, R, key)

    def _gain_and_grad(self, trace, n, z_R):
        z = trace.x[:n]
        eps = DTYPE(1e-8)
        if self.gain == "unit":
            gain = np.sqrt(z.shape[1] / (np.mean(np.einsum("ij,ij->i", z, z)) + eps))
        else:
            numerator = (trace.centred if self.gain == "centred" else trace.a)[:n]
            gain = np.mean(np.linalg.norm(numerator, axis=1) / (np.linalg.norm(z, axis=1) + eps))
        grad = local_outer(z, z_R) if self.side == "left" else local_outer(z_R, z)  # C R or R C
        return gain, grad

    def delta(self, R, trace, n, z_R):
        gain, grad = self._gain_and_grad(trace, n, z_R)
        # R_new = g R − η C (g R) = g (R − η C R)  (or with R C); the change R − R_new, in place
        return kernels.seed_delta_(R, grad, gain, self.lr)

    def apply(self, dev, R, trace, n, z_R, key):
        if not getattr(dev, "plain_writes", False):
            return super().apply(dev, R, trace, n, z_R, key)
        # the device's write is R − delta: form the change and subtract it in one pass, the
        # same bits as `delta` then `write`
        gain, grad = self._gain_and_grad(trace, n, z_R)
        dev.written(R, kernels.seed_step_(R, grad, gain, self.lr), key)


@dataclass(frozen=True)
class CPI(_LocalRule):
    """Decorrelation only (Ahmad, Schrader & van Gerven 2023): offdiag(C) R."""

    name: str = "cpi"

    def delta(self, R, trace, n, z_R):
        z = trace.x[:n]
        var = np.mean(z * z, axis=0)
        grad = local_outer(z, z_R) - var[:, None] * R
        return DTYPE(self.lr) * grad


@dataclass(frozen=True)
class Whiten(_LocalRule):
    """Decorrelation + variance (Dalm et al. 2024): (1−κ)·offdiag(C) R + κ·diag(E[z²] − 1) R."""

    kappa: float = 0.5
    name: str = "whiten"

    @classmethod
    def from_config(cls, config):
        return cls(lr=config.decor_lr, sample_fraction=config.decor_fraction, kappa=config.decor_kappa)

    def delta(self, R, trace, n, z_R):
        z = trace.x[:n]
        var = np.mean(z * z, axis=0)
        k = DTYPE(self.kappa)
        grad = (1 - k) * (local_outer(z, z_R) - var[:, None] * R) + k * (var - 1)[:, None] * R
        return DTYPE(self.lr) * grad


@dataclass(frozen=True)
class ZCA:
    """Batch ZCA whitening (a reference, not a local rule): R = (Σ + εI)^(−1/2), recomputed every
    `every` steps from a running covariance Σ of the centred input (momentum 0.05); ε is 1e-5
    of Σ's mean eigenvalue. R stays I until the first recomputation."""

    every: int = 50
    momentum: float = 0.05
    name: str = "zca"

    @classmethod
    def from_config(cls, config) -> ZCA:
        return cls()

    def init_state(self, net):
        state = {"step": np.zeros((), dtype=np.int64)}
        for i, layer in enumerate(net.layers):
            if layer.R is not None:
                state[f"cov{i}"] = np.zeros_like(layer.R, dtype=np.float64)
        return state

    def update(self, net, traces, state):
        state["step"] += 1
        step = int(state["step"])
        for i, (layer, trace) in enumerate(zip(net.layers, traces)):
            if layer.R is None:
                continue
            c = trace.centred.astype(np.float64)
            cov = state[f"cov{i}"]
            cov *= 1 - self.momentum
            cov += self.momentum * (c.T @ c) / len(c)
            if step % self.every == 0:
                evals, evecs = np.linalg.eigh(cov)
                eps = 1e-5 * max(evals.mean(), 1e-12)
                target = (evecs / np.sqrt(np.maximum(evals, 0) + eps)) @ evecs.T
                net.device.write(layer.R, layer.R - target.astype(DTYPE), keys.R(i))


DECOR_RULES = {
    "seed": Seed,
    "cpi": CPI,
    "whiten": Whiten,
    "zca": ZCA,
}
DECOR_NAMES = sorted(DECOR_RULES) + ["none"]
