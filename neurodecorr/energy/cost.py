"""Pricing: what the network did (counters) → what a chip performs → joules.

Each kind of profile has an operation model that turns the counts into the operations that
chip performs, and its `[energy]` table prices them, in picojoules per operation:

| profile kind | operations performed                                                       |
|--------------|----------------------------------------------------------------------------|
| ideal        | a conventional float32 processor: MACs for every product (dense) and for    |
|              | forming updates; memory traffic: each product reads its weights once per    |
|              | batch and its inputs and outputs (4 bytes each), each written array is read  |
|              | and written back (8 bytes a synapse); neuron updates; messages; writes       |
| digital      | event-driven: one accumulate (AC) per nonzero input and fan-out synapse     |
|              | (NeuroBench's effective ACs); weights stay on chip; neuron updates, messages |
|              | and the learning engine's per-synapse updates                               |
| crossbar     | MACs in the array for every product; one DAC conversion per input and       |
|              | column tile, one ADC conversion per output and row tile; neuron updates and |
|              | messages in the digital periphery; programming/pulsing of changed synapses; |
|              | the periphery's own multiply-adds (R kept digitally, the residual's wire,   |
|              | mixed precision's accumulator and its outer products, transfer buffers) and |
|              | its memory traffic                                                          |

Prices: mac_pj, ac_pj, neuron_update_pj, message_pj, synapse_write_pj, memory_byte_pj,
adc_conversion_pj, dac_conversion_pj, periphery_mac_pj. A profile must price every operation its
chip performs (`missing_prices` names those it leaves out).
"""

from __future__ import annotations

from neurodecorr.devices.profile import PRICE_KEYS
from neurodecorr.energy.counters import PHASES, TRAINING_PHASES, Counts, is_decorrelation_stage, stage_sort_key
from neurodecorr.errors import NeurodecorrError

PJ = 1e-12
FLOAT_BYTES = 4


class PricingError(NeurodecorrError):
    """A profile lacks the cost of an operation its kind performs."""


def _common(counts, phase, layer):
    return {k: counts.total(phase, k, layer) for k in ("neuron_updates", "messages", "synapse_writes")}


def processor_operations(counts: Counts, profile, phase=None, layer=None) -> dict[str, int]:
    products = counts.select_products(phase, layer)
    weights = sum(n_in * n_out * calls for n_in, n_out, _, calls in products)
    activations = sum(rows * (n_in + n_out) for n_in, n_out, rows, _ in products)
    written = counts.total(phase, "written_synapses", layer)
    return {"macs": counts.total(phase, "dense_synops", layer) + counts.total(phase, "update_macs", layer),
            "memory_bytes": FLOAT_BYTES * (weights + activations) + 2 * FLOAT_BYTES * written,
            **_common(counts, phase, layer)}


def event_driven_operations(counts: Counts, profile, phase=None, layer=None) -> dict[str, int]:
    return {"acs": counts.total(phase, "effective_synops", layer), **_common(counts, phase, layer)}


def _digital_updates(counts: Counts, profile, phase, layer) -> int:
    """The update_macs a crossbar chip forms digitally: every update under mixed precision (its
    accumulator adds the outer product), R's when R lives in the periphery; the other mechanisms
    form updates in the array, as coincidences of pulse trains."""
    xb = profile.crossbar
    if xb.mechanism == "mixed-precision":
        return counts.total(phase, "update_macs", layer)
    if xb.decorrelation != "periphery":
        return 0
    stages = {s for (_, s, _) in counts.table if is_decorrelation_stage(s) and (layer is None or s == layer)}
    return sum(counts.total(phase, "update_macs", s) for s in stages)


def crossbar_operations(counts: Counts, profile, phase=None, layer=None) -> dict[str, int]:
    tile = profile.crossbar.tile_size
    products = counts.select_products(phase, layer)
    periphery_synops = counts.total(phase, "periphery_synops", layer)
    return {"macs": counts.total(phase, "dense_synops", layer) - periphery_synops,
            "adc_conversions": sum(rows * n_out * -(-n_in // tile) for n_in, n_out, rows, _ in products),
            "dac_conversions": sum(rows * n_in * -(-n_out // tile) for n_in, n_out, rows, _ in products),
            "periphery_macs": (periphery_synops + counts.total(phase, "periphery_ops", layer)
                               + _digital_updates(counts, profile, phase, layer)),
            "memory_bytes": counts.total(phase, "periphery_bytes", layer),
            **_common(counts, phase, layer)}


OPERATION_MODELS = {"ideal": processor_operations, "digital": event_driven_operations,
                    "crossbar": crossbar_operations}


def required_prices(profile) -> set[str]:
    """The [energy] keys a profile of this kind may need (every operation its kind can perform)."""
    return {PRICE_KEYS[k] for k in OPERATION_MODELS[profile.kind](Counts(), profile)}


def missing_prices(counts: Counts, profile) -> list[str]:
    """The [energy] keys of operations that were performed and that the profile does not price."""
    return sorted(PRICE_KEYS[k] for k, n in operations(counts, profile).items()
                  if n and PRICE_KEYS[k] not in profile.energy)


def operations(counts: Counts, profile, phase=None, layer=None) -> dict[str, int]:
    """The operations the profile's chip performs for the selected phase/layer (all if None)."""
    return OPERATION_MODELS[profile.kind](counts, profile, phase, layer)


def joules(ops: dict[str, int], profile) -> dict[str, float]:
    """Joules by operation kind."""
    missing = sorted(PRICE_KEYS[k] for k, n in ops.items() if n and PRICE_KEYS[k] not in profile.energy)
    if missing:
        raise PricingError(
            f"profile '{profile.name}' ({profile.source or 'built in'}) gives no cost for "
            f"{', '.join(missing)}, which a '{profile.kind}' chip performs; add them to its "
            f"[energy] table (picojoules per operation)")
    return {k: n * float(profile.energy[PRICE_KEYS[k]]) * PJ for k, n in ops.items() if n}


def _entry(counts, profile, phase=None, layer=None) -> dict:
    ops = operations(counts, profile, phase, layer)
    by_kind = joules(ops, profile)
    return {"operations": {k: n for k, n in ops.items() if n},
            "counts": _raw(counts, phase, layer),
            "joules": sum(by_kind.values()), "joules_by_kind": by_kind}


def _raw(counts, phase, layer) -> dict[str, int]:
    out: dict[str, int] = {}
    for (p, l, k), n in counts.table.items():
        if (phase is None or p == phase) and (layer is None or l == layer):
            out[k] = out.get(k, 0) + n
    return out


def build_report(counts: Counts, profile, stages_deployed: bool = False) -> dict:
    """The energy report of a run (what energy.json holds). stages_deployed: the decorrelation
    stages the inference counts hold are part of the deployed network (a low-rank stage,
    `decorrelation_rank`), so the deployed figure keeps them rather than folding them away."""
    phases = {phase: _entry(counts, profile, phase=phase) for phase in PHASES}
    layers = {}
    for layer in sorted({l for (_, l, _) in counts.table}, key=stage_sort_key):
        layers[layer] = {phase: _entry(counts, profile, phase, layer) for phase in PHASES
                         if any(p == phase and l == layer for (p, l, _) in counts.table)}
    folded = sum(entry["inference"]["joules"] for label, entry in layers.items()
                 if (stages_deployed or not is_decorrelation_stage(label)) and "inference" in entry)
    training_j = sum(phases[p]["joules"] for p in TRAINING_PHASES)
    n_train, n_test = counts.samples["training"], counts.samples["inference"]
    inference = phases["inference"]["counts"]
    return {
        "profile": profile.name,
        "training_j": training_j,
        "training_per_sample_j": training_j / n_train if n_train else None,
        "inference_per_sample_j": phases["inference"]["joules"] / n_test if n_test else None,
        # deployed, each R and μ is folded into the next layer's weights (nets/fold.py), but for
        # a low-rank stage (stages_deployed):
        "inference_folded_per_sample_j": folded / n_test if n_test else None,
        "samples": {"training": n_train, "inference": n_test},
        "phases": phases,
        "layers": layers,
        "neurobench": {  # per inference sample, NeuroBench's definitions
            "dense_synops": inference.get("dense_synops", 0) / n_test if n_test else None,
            "effective_synops": inference.get("effective_synops", 0) / n_test if n_test else None,
            "activation_sparsity": (1 - inference.get("messages", 0) / inference["neuron_updates"])
            if inference.get("neuron_updates") else None,
        },
        "prices_pj": dict(profile.energy),
    }


def format_report(report: dict) -> str:
    """A short table: joules and the main counts per phase, then the per-sample figures."""
    lines = [f"energy on '{report['profile']}':",
             f"  {'phase':17s} {'joules':>10s} {'synops':>10s} {'writes':>10s} {'neurons':>10s}"]
    for phase, entry in report["phases"].items():
        c = entry["counts"]
        lines.append(f"  {phase:17s} {entry['joules']:10.3e} {c.get('dense_synops', 0):10.3e} "
                     f"{c.get('synapse_writes', 0):10.3e} {c.get('neuron_updates', 0):10.3e}")
    tps, ips = report["training_per_sample_j"], report["inference_per_sample_j"]
    if tps is not None:
        lines.append(f"  training: {report['training_j']:.3e} J, {tps:.3e} J per training sample")
    if ips is not None:
        folded = report.get("inference_folded_per_sample_j")
        lines.append(f"  inference: {ips:.3e} J per sample"
                     + (f" ({folded:.3e} with decorrelation folded into the weights)"
                        if folded is not None and folded < ips else ""))
    return "\n".join(lines)
