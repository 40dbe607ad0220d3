"""The settings of one training run, resolved and validated when made.

Settings left as None are filled in from `engine.presets` (a named preset, the dataset and rule,
the dataset, the defaults), so a TrainConfig always holds every value its run uses.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from neurodecorr.engine import presets
from neurodecorr.engine.optim import OPTIMIZERS
from neurodecorr.errors import SpecError, short_repr
from neurodecorr.rules import CREDIT_RULES, DECOR_NAMES

DECOR_GAINS = ("centred", "raw", "unit")
DECOR_CENTRES = ("running", "batch")
DECOR_SIDES = ("left", "right")
PRECISIONS = ("float64", "float32")
FEEDBACK_INITS = ("uniform", "kaiming")
INPUT_SCALINGS = ("standardise", "global", "unit")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (README, "Train a network", lists each)."""

    dataset: str = "digits"
    data_dir: str | None = None
    preset: str | None = None          # a named settings bundle (presets.PRESETS), e.g. "reference"
    model: str | None = None
    profile: str = "ideal"             # a shipped device profile's name, or a .toml path
    rule: str = "bp"
    decor: str = "seed"
    optimizer: str | None = None
    lr: float | None = None
    momentum: float | None = None      # sgd only
    betas: tuple[float, float] | None = None  # adam only
    decor_lr: float | None = None
    decor_fraction: float | None = None  # sub-sample of each batch used by the decorrelation rule
    decor_kappa: float | None = None   # whiten only
    decor_gain: str | None = None      # seed only: the gain's numerator, ‖a − μ‖ or the raw ‖a‖
    decor_centre: str | None = None    # training centres with the running or the batch mean
    decor_side: str | None = None      # seed only: R − η C R ("left") or R − η R C ("right")
    np_sigma: float | None = None      # node perturbation's noise
    np_loss_precision: str | None = None  # node perturbation's loss difference
    feedback_init: str | None = None   # FA/DFA feedback matrices: U(±1/√n) or U(±√(6/n))
    input_scaling: str | None = None   # per-feature or global standardising, or [0, 1] as read
    batch_size: int | None = None
    epochs: int | None = None
    train_samples: int | None = None   # train on the first N training samples only (None: all)
    seed: int = 42
    decorrelation_rank: int = 0        # PCM: the test evaluation keeps R's k most-suppressed directions

    def __post_init__(self):
        for key in _NAMES:  # before any lookup by them (a list from a hand-edited file is unhashable)
            value = getattr(self, key)
            if value is not None and not isinstance(value, str):
                raise SpecError(f"training setting '{key}': expected a name, found {_text(value)}")
        if self.preset is not None and self.preset not in presets.PRESETS:
            raise SpecError(f"training setting 'preset': expected one of {sorted(presets.PRESETS)}, "
                            f"found {_text(self.preset)}")
        kind = None
        for key in presets.DEFAULTS:
            if getattr(self, key) is None:
                if kind is None:
                    kind = _device_kind(self.profile)
                object.__setattr__(self, key, presets.lookup(key, self.dataset, self.rule, self.preset, kind,
                                                             self.decor != "none", self.model))
        if isinstance(self.betas, list):
            object.__setattr__(self, "betas", tuple(self.betas))
        checks = [
            (self.rule in CREDIT_RULES, "rule", f"one of {sorted(CREDIT_RULES)}", self.rule),
            (self.decor in DECOR_NAMES, "decor", f"one of {DECOR_NAMES}", self.decor),
            (self.optimizer in OPTIMIZERS, "optimizer", f"one of {sorted(OPTIMIZERS)}", self.optimizer),
            (_is_text(self.model) and self.model != "", "model", "a model name or a .yaml path", self.model),
            (_is_text(self.profile) and self.profile != "", "profile", "a profile name or a .toml path",
             self.profile),
            (self.data_dir is None or _is_text(self.data_dir), "data_dir", "a directory", self.data_dir),
            (_number(self.lr) and self.lr > 0, "lr", "a positive number", self.lr),
            (_number(self.momentum) and 0 <= self.momentum < 1, "momentum", "a number in [0, 1)",
             self.momentum),
            (isinstance(self.betas, tuple) and len(self.betas) == 2
             and all(_number(b) and 0 <= b < 1 for b in self.betas), "betas", "two numbers in [0, 1)",
             self.betas),
            (_number(self.decor_lr) and self.decor_lr >= 0, "decor_lr", "a number ≥ 0", self.decor_lr),
            (_number(self.decor_fraction) and 0 < self.decor_fraction <= 1, "decor_fraction",
             "a number in (0, 1]", self.decor_fraction),
            (_number(self.decor_kappa) and 0 <= self.decor_kappa <= 1, "decor_kappa", "a number in [0, 1]",
             self.decor_kappa),
            (self.decor_gain in DECOR_GAINS, "decor_gain", f"one of {DECOR_GAINS}", self.decor_gain),
            (self.decor_centre in DECOR_CENTRES, "decor_centre", f"one of {DECOR_CENTRES}", self.decor_centre),
            (self.decor_side in DECOR_SIDES, "decor_side", f"one of {DECOR_SIDES}", self.decor_side),
            (_number(self.np_sigma) and self.np_sigma > 0, "np_sigma", "a positive number", self.np_sigma),
            (self.np_loss_precision in PRECISIONS, "np_loss_precision", f"one of {PRECISIONS}",
             self.np_loss_precision),
            (self.feedback_init in FEEDBACK_INITS, "feedback_init", f"one of {FEEDBACK_INITS}",
             self.feedback_init),
            (self.input_scaling in INPUT_SCALINGS, "input_scaling", f"one of {INPUT_SCALINGS}",
             self.input_scaling),
            (_integer(self.batch_size) and self.batch_size >= 1, "batch_size", "a positive integer",
             self.batch_size),
            (_integer(self.epochs) and self.epochs >= 1, "epochs", "a positive integer", self.epochs),
            (self.train_samples is None or (_integer(self.train_samples) and self.train_samples >= 1),
             "train_samples", "a positive integer (or none: every training sample)", self.train_samples),
            (_integer(self.seed) and self.seed >= 0, "seed", "an integer ≥ 0", self.seed),
            (_integer(self.decorrelation_rank) and self.decorrelation_rank >= 0, "decorrelation_rank",
             "an integer ≥ 0", self.decorrelation_rank),
        ]
        for ok, key, expected, found in checks:
            if not ok:
                raise SpecError(f"training setting '{key}': expected {expected}, found {_text(found)}")
        if self.decorrelation_rank:
            refusal = _rank_refusal(self)
            if refusal:
                raise SpecError(f"training setting 'decorrelation_rank': {refusal}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    def settings_hash(self) -> str:
        """A short hash of every setting but the number of epochs (which a resume may raise). A
        setting added after runs were made (`_ADDED`) counts only when it is not its default, so
        that those runs keep their hash: they resume, and a sweep finds them done."""
        d = {k: v for k, v in self.to_dict().items()
             if k != "epochs" and not (k in _ADDED and v == _ADDED[k])}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, d: Any) -> TrainConfig:
        if not isinstance(d, dict):
            raise SpecError(f"training settings must be a mapping of name: value, found {_text(d)}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in set(d) - names)
        if unknown:
            raise SpecError(f"unknown training setting(s) {_text(unknown)}; known: {sorted(names)}")
        return cls(**d)


_ADDED = {"decorrelation_rank": 0}  # setting: its default, which leaves the hash as it was

_NAMES = ("dataset", "data_dir", "preset", "model", "profile", "rule", "decor", "optimizer", "decor_gain",
          "decor_centre", "decor_side", "np_loss_precision", "feedback_init", "input_scaling")


def _rank_refusal(config: TrainConfig) -> str | None:
    """Why the test evaluation of this run cannot keep a rank of R (`nets.fold`), or None. Only
    PCM evaluates a fresh chip programmed with the folded network; the other chips evaluate the
    network as trained, R kept (`evaluate --decorrelation-rank` deploys a rank on any of them)."""
    from neurodecorr.devices.loader import load_profile
    from neurodecorr.engine.evaluate import _rank_refusal as profile_refusal

    if config.decor == "none":
        return "the run has no decorrelation to keep (decor none)"
    profile = load_profile(config.profile)
    if profile.pcm is None:
        return (f"on '{profile.name}' the test evaluation runs the network as trained, R kept; a rank "
                "applies where it programs a fresh PCM chip with the folded network (use `neurodecorr "
                "evaluate --decorrelation-rank` to deploy a rank on this chip)")
    return profile_refusal(profile)


def _device_kind(profile) -> str:
    """The kind of chip `profile` names ("ideal", "digital", "crossbar"); presets depend on it."""
    from neurodecorr.devices.loader import load_profile

    if not isinstance(profile, str) or not profile:
        return "ideal"  # the check below names the bad value
    return load_profile(profile).kind


def _is_text(value) -> bool:
    return isinstance(value, str)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_text = short_repr
