"""The name of every array the engine owns: which layer, which role.

Devices keep per-array state (exponents, conductance scales, accumulators), optimisers keep
per-array moments and the energy counters file each array's work under its layer's stage. All
of them name arrays with an `ArrayKey`, so a role is a value the type checker and the tests can
see, never a string to be parsed back:

    role  meaning                                        stage (energy)   name
    W     forward weights of dense layer l (n_out, n_in)  "l"              "layer{l}.W"
    b     biases of dense layer l (n_out,)                "l"              "layer{l}.b"
    R     decorrelation matrix before layer l (n_in, n_in) "lR"            "layer{l}.R"
    mu    running mean of layer l's input (n_in,)         "lR"             "layer{l}.mu"
    B     FA feedback matrix of layer l (n_out, n_in)     "l"              "credit.B{l}"
    D     DFA projection to layer l (n_out_l, n_classes)  "l"              "credit.D{l}"

`name` is the stable text form used in files (checkpoints, energy.json); `ArrayKey.parse`
reads it back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    W = "W"
    b = "b"
    R = "R"
    mu = "mu"
    B = "B"
    D = "D"


_CREDIT_ROLES = (Role.B, Role.D)
_NAME = re.compile(r"^(?:layer(\d+)\.(W|b|R|mu)|credit\.([BD])(\d+))$")


@dataclass(frozen=True, order=True)
class ArrayKey:
    """One array: dense layer `layer` (0 = the input layer) and its `role`."""

    layer: int
    role: Role

    @property
    def name(self) -> str:
        if self.role in _CREDIT_ROLES:
            return f"credit.{self.role.value}{self.layer}"
        return f"layer{self.layer}.{self.role.value}"

    @property
    def stage(self) -> str:
        """Where the energy report files this array's work: "3R" for the decorrelation stage
        before dense layer 3 (R and μ), "3" for the layer itself (W, b and its feedback)."""
        return f"{self.layer}R" if self.role in (Role.R, Role.mu) else str(self.layer)

    @property
    def is_synapse(self) -> bool:
        """W, R, B and D are synapse arrays; a bias is a neuron's parameter and μ a statistic."""
        return self.role not in (Role.b, Role.mu)

    @classmethod
    def parse(cls, name: str) -> ArrayKey:
        match = _NAME.match(name)
        if match is None:
            raise ValueError(f"{name!r} is not an array name (e.g. 'layer0.W', 'credit.B1')")
        layer, role, credit_role, credit_layer = match.groups()
        if role is not None:
            return cls(int(layer), Role(role))
        return cls(int(credit_layer), Role(credit_role))

    def __str__(self) -> str:
        return self.name


def W(layer: int) -> ArrayKey:
    return ArrayKey(layer, Role.W)


def b(layer: int) -> ArrayKey:
    return ArrayKey(layer, Role.b)


def R(layer: int) -> ArrayKey:
    return ArrayKey(layer, Role.R)


def mu(layer: int) -> ArrayKey:
    return ArrayKey(layer, Role.mu)


def B(layer: int) -> ArrayKey:
    return ArrayKey(layer, Role.B)


def D(layer: int) -> ArrayKey:
    return ArrayKey(layer, Role.D)
