"""The one local learning step every synapse update is built from.

Every update in neurodecorr — forward weights under BP, FA, DFA and NP, and the decorrelation
matrices — is an outer product of two signals that exist at the synapse: a per-neuron
*modulator* on the post-synaptic side and the *pre-synaptic* activity,

    ΔM = −η · mean over the batch of  e · preᵀ          (per synapse: ΔM_ij ∝ e_i · pre_j)

Credit-assignment rules differ only in how they compute `e` (see `rules.credit`); decorrelation
is the anti-Hebbian case `e = z`, `pre = Rᵀ z` (see `rules.decorrelation`). Because no other code
computes a synaptic change from activity, locality holds by construction. The change is then
applied by the device's `write` (`neurodecorr.devices`), the only code that changes a synapse.

Shapes: modulator (B, n_out), pre (B, n_in) → (n_out, n_in).
"""

from __future__ import annotations

import numpy as np

from ..numerics import DTYPE


def local_outer(modulator: np.ndarray, pre: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """mean over rows of eᵢ preⱼ: (modulatorᵀ pre) / B, written into `out` when given."""
    scaled = modulator * DTYPE(1.0 / len(modulator))
    return np.matmul(scaled.T, pre, out=out)
