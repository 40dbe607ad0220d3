"""The settings of one training run, validated when made."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from neurodecorr.engine.optim import OPTIMIZERS
from neurodecorr.errors import SpecError
from neurodecorr.rules import CREDIT_RULES, DECOR_NAMES


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run. Defaults follow the paper's reference
    experiment (Adam, lr 1e-4, β = (0.9, 0.9999), batch 256) where it gives one."""

    dataset: str = "digits"
    data_dir: str | None = None
    model: str = "small-mlp"
    profile: str = "ideal"         # a shipped device profile's name, or a .toml path
    rule: str = "bp"
    decor: str = "seed"
    optimizer: str = "adam"
    lr: float = 1e-4
    momentum: float = 0.9          # sgd only
    betas: tuple[float, float] = (0.9, 0.9999)  # adam only
    decor_lr: float = 1e-4
    decor_fraction: float = 0.1    # sub-sample of each batch used by the decorrelation rule
    decor_kappa: float = 0.5       # whiten only
    np_sigma: float = 1e-3         # node perturbation's noise
    batch_size: int = 256
    epochs: int = 5
    seed: int = 42

    def __post_init__(self):
        object.__setattr__(self, "betas", tuple(self.betas))
        checks = [
            (self.rule in CREDIT_RULES, "rule", f"one of {sorted(CREDIT_RULES)}", self.rule),
            (self.decor in DECOR_NAMES, "decor", f"one of {DECOR_NAMES}", self.decor),
            (self.optimizer in OPTIMIZERS, "optimizer", f"one of {sorted(OPTIMIZERS)}", self.optimizer),
            (self.lr > 0, "lr", "a positive number", self.lr),
            (0 <= self.momentum < 1, "momentum", "a number in [0, 1)", self.momentum),
            (len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas",
             "two numbers in [0, 1)", self.betas),
            (self.decor_lr >= 0, "decor_lr", "a number ≥ 0", self.decor_lr),
            (0 < self.decor_fraction <= 1, "decor_fraction", "a number in (0, 1]", self.decor_fraction),
            (0 <= self.decor_kappa <= 1, "decor_kappa", "a number in [0, 1]", self.decor_kappa),
            (self.np_sigma > 0, "np_sigma", "a positive number", self.np_sigma),
            (isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size",
             "a positive integer", self.batch_size),
            (isinstance(self.epochs, int) and self.epochs >= 1, "epochs", "a positive integer", self.epochs),
            (isinstance(self.seed, int) and self.seed >= 0, "seed", "an integer ≥ 0", self.seed),
        ]
        for ok, key, expected, found in checks:
            if not ok:
                raise SpecError(f"training setting '{key}': expected {expected}, found {found!r}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise SpecError(f"unknown training setting(s) {unknown}; known: {sorted(names)}")
        return cls(**d)
