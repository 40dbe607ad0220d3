"""The one local learning step every synapse update is built from.

Every update in neurodecorr — forward weights under BP, FA, DFA and NP, and the decorrelation
matrices — starts from an outer product of two signals that exist at the synapse: a per-neuron
*modulator* on the post-synaptic side and the *pre-synaptic* activity,

    G = mean over the batch of  e · preᵀ          (per synapse: G_ij ∝ e_i · pre_j)

Credit-assignment rules differ only in how they compute `e` (see `rules.credit`); decorrelation
is the anti-Hebbian case `e = z`, `pre = Rᵀ z` (see `rules.decorrelation`). Because no other code
computes a synaptic change from activity, locality holds by construction.

What turns G into a change differs, and is stated where it happens:
- forward weights and biases: an optimiser (`engine.optim`: Adam, or SGD with momentum), whose
  per-synapse state (moments) sits beside each weight and whose bias correction needs the
  global step count t; ΔW = −step(G);
- decorrelation matrices: ΔR = −η_R · G (plus each rule's own terms), with η_R applied by the
  rule itself, as plain SGD — the reference code's form.
The change is then applied by the device's `write` (`neurodecorr.devices`), the only code that
changes a synapse.

On a conv layer the rows are output positions, P per sample, and the gradient of the batch's
mean loss sums over positions: G = (1/B) Σ over the batch and positions of e · preᵀ (`samples`
= B), the weight gradient of a shared kernel.

Shapes: modulator (rows, n_out), pre (rows, n_in) → (n_out, n_in).
"""

from __future__ import annotations

import numpy as np

from neurodecorr.numerics import DTYPE


def local_outer(modulator: np.ndarray, pre: np.ndarray, out: np.ndarray | None = None,
                samples: int | None = None) -> np.ndarray:
    """(modulatorᵀ pre) / samples: the mean over rows of eᵢ preⱼ (samples None), or the sum over
    each sample's rows averaged over `samples`; written into `out` when given."""
    n = len(modulator) if samples is None else samples
    if n & (n - 1) == 0:  # a power of two: scaling the (small) product instead is exact
        out = np.matmul(modulator.T, pre, out=out)
        out *= DTYPE(1.0 / n)
        return out
    return np.matmul((modulator * DTYPE(1.0 / n)).T, pre, out=out)
