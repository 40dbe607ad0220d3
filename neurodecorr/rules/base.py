"""What a learning rule is: the two protocols every registered rule implements.

A credit-assignment rule's only job is the per-neuron modulator e_l of every layer; a
decorrelation rule's is the change of every R. Both touch synapses only through the network's
device. A new rule is one class in `CREDIT_RULES` or `DECOR_RULES`; the conformance tests
(`tests/test_rules.py`, `tests/test_conformance.py`) run over those registries.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from neurodecorr.keys import ArrayKey
from neurodecorr.nets.network import LayerTrace, Network


@runtime_checkable
class CreditRule(Protocol):
    name: str
    uses_backward: bool      # False: the rule needs no backward pass (node perturbation)
    repeats_forward: bool    # True: a second forward pass on the same batch (node perturbation's)
    modulator_phase: str     # the energy phase its modulators' work is counted under

    @classmethod
    def from_config(cls, config) -> CreditRule:
        """The rule with its settings from a TrainConfig."""

    def init_state(self, net: Network, rng: np.random.Generator) -> dict[ArrayKey, np.ndarray]:
        """The rule's fixed arrays (FA's B, DFA's D), each a synapse array on the device."""

    def modulators(self, net: Network, traces: list[LayerTrace], labels: np.ndarray,
                   state: dict[ArrayKey, np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
        """e_l for every layer, (B, n_out_l) float32 each."""


@runtime_checkable
class DecorRule(Protocol):
    name: str

    @classmethod
    def from_config(cls, config) -> DecorRule:
        """The rule with its settings from a TrainConfig."""

    def init_state(self, net: Network) -> dict[str, np.ndarray]:
        """The rule's own running state (checkpointed), if any."""

    def update(self, net: Network, traces: list[LayerTrace], state: dict[str, np.ndarray]) -> None:
        """Change every layer's R from this batch's traces, through `net.device.write`."""
