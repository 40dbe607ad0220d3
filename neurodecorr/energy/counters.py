"""Operation counters: what the simulated network did, per phase, per layer and per kind.

The engine sets the phase; the device records each product, write and neuron update from shapes
and nonzero counts per batch (never per element in Python). The counts say what happened, not
what it costs on one chip: `energy.cost` turns them into the operations a given kind of chip
performs (MACs, event-driven ACs, conversions, memory traffic) and prices those, so the same
counts can be re-priced for another profile.

Work is filed by stage, a label of the `ArrayKey` it used (`keys.ArrayKey.stage`): "3" for dense
layer 3 (its weights, biases and feedback matrices) and "3R" for the decorrelation stage before
it. `Counts` is the `devices.base.Counter` a training run gives its device.

Phases: inference (the forward pass of an evaluation), learning_forward (training forward
passes; node perturbation's noisy pass too), feedback (BP/FA backward passes, DFA's direct
projections), decorrelation (R's updates, including the transposed read Rᵀz), weight_update
(forming and writing the forward-weight updates).

Kinds counted (NeuroBench's definitions where they apply, reference/hardware.md §6):
  dense_synops      every synapse of every product, whatever its input (NeuroBench "Dense")
  effective_synops  synapses whose input is nonzero (NeuroBench "Effective")
  update_macs       multiply-accumulates of forming updates e·preᵀ (done by a processor)
  neuron_updates    neuron state updates (forward, and error units in feedback)
  messages          nonzero activations or errors sent (spikes or graded events)
  synapse_writes    synapses whose stored value changed (biases are not synapses)
  written_synapses  entries of every array written, biases included (a processor's traffic)
  periphery_synops  the part of dense_synops a crossbar chip computes in its digital periphery
  periphery_ops     other digital-periphery multiply-adds (accumulators, transfer buffers, wires)
  periphery_bytes   digital-periphery memory traffic (accumulators, buffers, digital weights)
and, per product shape, the rows (samples) and calls: `products[(phase, layer, n_in, n_out)]`,
from which weight reads and crossbar conversions follow for any tile size.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager

import numpy as np

from neurodecorr import kernels
from neurodecorr.keys import ArrayKey

PHASES = ("inference", "learning_forward", "feedback", "decorrelation", "weight_update")
TRAINING_PHASES = PHASES[1:]
KINDS = ("dense_synops", "effective_synops", "update_macs", "neuron_updates", "messages",
         "synapse_writes", "written_synapses", "periphery_synops", "periphery_ops", "periphery_bytes")
DECORRELATION_SUFFIX = "R"  # stage "3R": the decorrelation before dense layer 3


def nonzero(x) -> int:
    """How many entries of x are nonzero (−0.0 counts as zero): `kernels.count_nonzero`, one
    pass. (numpy's `np.count_nonzero(x)` on float32 measured twenty times slower than
    `np.count_nonzero(x != 0)`, its fallback.)"""
    return kernels.count_nonzero(x)


def is_decorrelation_stage(stage: str) -> bool:
    """A decorrelation stage folds into the next layer when the network is deployed."""
    return stage.endswith(DECORRELATION_SUFFIX)


def stage_sort_key(stage: str):
    """"0R", "0", "1R", "1", …: each decorrelation stage before its dense layer."""
    digits = stage.removesuffix(DECORRELATION_SUFFIX)
    return (int(digits) if digits.isdigit() else -1, not is_decorrelation_stage(stage))


class Counts:
    """Totals by (phase, stage, kind). Cheap to update: a few dict additions per product."""

    def __init__(self):
        self.table: dict[tuple[str, str, str], int] = defaultdict(int)
        self.products: dict[tuple[str, str, int, int], list[int]] = defaultdict(lambda: [0, 0])
        self.phase = "learning_forward"
        self.samples = {"training": 0, "inference": 0}

    @contextmanager
    def during(self, phase: str):
        """Attribute what happens inside the block to `phase`."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; expected one of {PHASES}")
        previous, self.phase = self.phase, phase
        try:
            yield self
        finally:
            self.phase = previous

    # ------------------------------------------------------------ the Counter interface
    def product(self, key: ArrayKey, x: np.ndarray, n_out: int, periphery: bool = False) -> None:
        """A product of the batch x (B, n_in) with the array `key` of n_out outputs. One computed
        in a crossbar chip's digital periphery is also counted as periphery_synops and records no
        array product (no conversions)."""
        stage = key.stage
        self.add(stage, "dense_synops", x.size * n_out)
        self.add(stage, "effective_synops", nonzero(x) * n_out)
        if periphery:
            self.add(stage, "periphery_synops", x.size * n_out)
        else:
            self.add_product(stage, len(x), x.shape[-1], n_out)

    def periphery(self, key: ArrayKey, ops: int = 0, bytes: int = 0) -> None:
        """Digital-periphery work besides products: multiply-adds and bytes of memory moved."""
        self.add(key.stage, "periphery_ops", ops)
        self.add(key.stage, "periphery_bytes", bytes)

    def neurons(self, key: ArrayKey, h: np.ndarray, out) -> None:
        """Neuron updates for every state in h, messages for every nonzero output (out: the
        outputs, or their nonzero count where the pass that formed them counted it)."""
        self.add(key.stage, "neuron_updates", h.size)
        self.add(key.stage, "messages", out if isinstance(out, int) else nonzero(out))

    def update(self, key: ArrayKey, modulator: np.ndarray, pre: np.ndarray) -> None:
        """Forming an update e·preᵀ: B·n_out·n_in multiply-accumulates where a processor does it."""
        self.add(key.stage, "update_macs", modulator.size * pre.shape[-1])

    def writes(self, key: ArrayKey, changed, size: int) -> None:
        """`changed` entries (an int, or the nonzeros of an array) of an array of `size` were
        written. A bias is a neuron's parameter, not a synapse: it moves memory on a processor
        but is no synapse write."""
        if key.is_synapse:
            self.add(key.stage, "synapse_writes", changed if isinstance(changed, int) else nonzero(changed))
        self.add(key.stage, "written_synapses", size)

    # ------------------------------------------------------------ totals
    def add(self, stage: str, kind: str, n) -> None:
        if n:
            self.table[(self.phase, stage, kind)] += int(n)

    def add_product(self, stage: str, rows: int, n_in: int, n_out: int) -> None:
        entry = self.products[(self.phase, stage, n_in, n_out)]
        entry[0] += int(rows)
        entry[1] += 1

    def clear_phase(self, phase: str) -> None:
        for key in [k for k in self.table if k[0] == phase]:
            del self.table[key]
        for key in [k for k in self.products if k[0] == phase]:
            del self.products[key]

    def total(self, phase: str | None = None, kind: str | None = None, stage: str | None = None) -> int:
        return sum(n for (p, s, k), n in self.table.items()
                   if (phase is None or p == phase) and (kind is None or k == kind)
                   and (stage is None or s == stage))

    def select_products(self, phase=None, stage=None):
        """(n_in, n_out, rows, calls) of the products in the selected phase/stage."""
        return [(n_in, n_out, rows, calls) for (p, s, n_in, n_out), (rows, calls) in self.products.items()
                if (phase is None or p == phase) and (stage is None or s == stage)]

    def to_dict(self) -> dict:
        return {"samples": dict(self.samples),
                "table": [[p, l, k, n] for (p, l, k), n in sorted(self.table.items())],
                "products": [[*k, *v] for k, v in sorted(self.products.items())]}

    @classmethod
    def from_dict(cls, data: dict) -> Counts:
        counts = cls()
        counts.samples.update(data.get("samples", {}))
        for p, l, k, n in data.get("table", []):
            counts.table[(p, str(l), k)] = int(n)
        for p, l, n_in, n_out, rows, calls in data.get("products", []):
            counts.products[(p, str(l), int(n_in), int(n_out))] = [int(rows), int(calls)]
        return counts
