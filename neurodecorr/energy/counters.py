"""Operation counters: what the simulated network did, per phase, per layer and per kind.

The engine sets the phase; the device records each product, write and neuron update from shapes
and nonzero counts per batch (never per element in Python). The counts say what happened, not
what it costs on one chip: `energy.cost` turns them into the operations a given kind of chip
performs (MACs, event-driven ACs, conversions, memory traffic) and prices those, so the same
counts can be re-priced for another profile.

Layers are labels: "3" for dense layer 3 (its weights, biases and feedback matrices) and "3R"
for the decorrelation stage before it.

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
and, per product shape, the rows (samples) and calls: `products[(phase, layer, n_in, n_out)]`,
from which weight reads and crossbar conversions follow for any tile size.
"""

from __future__ import annotations

import re
from collections import defaultdict
from contextlib import contextmanager

import numpy as np

PHASES = ("inference", "learning_forward", "feedback", "decorrelation", "weight_update")
TRAINING_PHASES = PHASES[1:]
KINDS = ("dense_synops", "effective_synops", "update_macs", "neuron_updates", "messages",
         "synapse_writes", "written_synapses")
_LAYER = re.compile(r"(\d+)")


def nonzero(x) -> int:
    """How many entries of x are nonzero. `np.count_nonzero(x != 0)`: on float32 arrays about
    twenty times faster here than `np.count_nonzero(x)`, and −0.0 counts as zero."""
    return int(np.count_nonzero(x != 0))


def layer_of(key: str) -> str:
    """The layer (stage) an array's work is counted under: "layer3.W", "layer3.b", "credit.B3"
    and "credit.D3" → "3"; a decorrelation matrix "layer3.R" → "3R", its own stage, so a
    report shows what decorrelation costs and what inference costs with it folded away."""
    match = _LAYER.search(key)
    label = match.group(1) if match else "?"
    return label + "R" if key.endswith(".R") else label


def layer_sort_key(label: str):
    """"0R", "0", "1R", "1", …: each decorrelation stage before its dense layer."""
    digits = label.rstrip("R")
    return (int(digits) if digits.isdigit() else -1, not label.endswith("R"))


class Counts:
    """Totals by (phase, layer, kind). Cheap to update: a few dict additions per product."""

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

    def add(self, layer: str, kind: str, n) -> None:
        if n:
            self.table[(self.phase, layer, kind)] += int(n)

    def add_product(self, layer: str, rows: int, n_in: int, n_out: int) -> None:
        entry = self.products[(self.phase, layer, n_in, n_out)]
        entry[0] += int(rows)
        entry[1] += 1

    def clear_phase(self, phase: str) -> None:
        for key in [k for k in self.table if k[0] == phase]:
            del self.table[key]
        for key in [k for k in self.products if k[0] == phase]:
            del self.products[key]

    def total(self, phase: str | None = None, kind: str | None = None, layer: str | None = None) -> int:
        return sum(n for (p, l, k), n in self.table.items()
                   if (phase is None or p == phase) and (kind is None or k == kind)
                   and (layer is None or l == layer))

    def select_products(self, phase=None, layer=None):
        """(n_in, n_out, rows, calls) of the products in the selected phase/layer."""
        return [(n_in, n_out, rows, calls) for (p, l, n_in, n_out), (rows, calls) in self.products.items()
                if (phase is None or p == phase) and (layer is None or l == layer)]

    def to_dict(self) -> dict:
        return {"samples": dict(self.samples),
                "table": [[p, l, k, n] for (p, l, k), n in sorted(self.table.items())],
                "products": [[*k, *v] for k, v in sorted(self.products.items())]}

    @classmethod
    def from_dict(cls, data: dict) -> "Counts":
        counts = cls()
        counts.samples.update(data.get("samples", {}))
        for p, l, k, n in data.get("table", []):
            counts.table[(p, str(l), k)] = int(n)
        for p, l, n_in, n_out, rows, calls in data.get("products", []):
            counts.products[(p, str(l), int(n_in), int(n_out))] = [int(rows), int(calls)]
        return counts
