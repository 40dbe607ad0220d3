"""NeuroBench's static and workload metrics of a run (Yik et al., Nat. Commun. 2025;
definitions in reference/hardware.md §6), by their NeuroBench names.

Workload metrics (per inference sample, from the run's operation counts, `cost.build_report`):
synaptic operations dense and effective, activation sparsity. Static metrics (from the run's
arrays): footprint — bytes of parameters and buffers, as trained (W, b, R, μ in float32) and as
deployed (R and μ folded into W and b, `nets/fold.py`); connection sparsity — the fraction
of zero weights among all synaptic weights (W and R), as trained.
"""

from __future__ import annotations

import numpy as np

from neurodecorr.keys import ArrayKey, Role


def static_metrics(net_arrays: dict[str, np.ndarray]) -> dict:
    """Footprint and connection sparsity of a network's arrays ("layer0.W" → array)."""
    keyed = {ArrayKey.parse(name): np.asarray(a) for name, a in net_arrays.items()}
    synapses = [a for k, a in keyed.items() if k.role in (Role.W, Role.R)]
    n_weights = sum(a.size for a in synapses)
    zeros = sum(int(np.count_nonzero(a == 0)) for a in synapses)
    deployed = sum(a.size + a.shape[0] for k, a in keyed.items() if k.role is Role.W)  # W' and b'
    return {
        "footprint_bytes": int(sum(a.nbytes for a in keyed.values())),
        "footprint_deployed_bytes": int(deployed * np.dtype(np.float32).itemsize),
        "parameters": int(sum(a.size for k, a in keyed.items() if k.role is not Role.mu)),
        "connection_sparsity": zeros / n_weights if n_weights else 0.0,
    }


def format_neurobench(report: dict, static: dict | None) -> str:
    """NeuroBench-named metrics, one per line."""
    nb = report.get("neurobench") or {}
    lines = ["NeuroBench metrics (per inference sample):"]
    for key, label in (("dense_synops", "synaptic operations, dense"),
                       ("effective_synops", "synaptic operations, effective"),
                       ("activation_sparsity", "activation sparsity")):
        value = nb.get(key)
        lines.append(f"  {label:32s} {'—' if value is None else f'{value:.4g}'}")
    if static:
        lines.append(f"  {'footprint (as trained)':32s} {static['footprint_bytes']:,} bytes")
        lines.append(f"  {'footprint (deployed, R folded)':32s} {static['footprint_deployed_bytes']:,} bytes")
        lines.append(f"  {'connection sparsity':32s} {static['connection_sparsity']:.4g}")
    return "\n".join(lines)
