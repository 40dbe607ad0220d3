"""The learner: a network, its credit-assignment and decorrelation rules and its optimiser — what
one training run changes between steps — and its (pickle-free) serialisation.

`arrays()`/`load_arrays()` flatten all of it to named arrays for `.npz` files read with
`allow_pickle=False`: "net/layer0.W", "credit/B1", "decor/…", "optim/layer0.W.m", "device/…".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodecorr.devices import Counter, Profile, make_device
from neurodecorr.devices.loader import load_profile
from neurodecorr.engine.config import TrainConfig
from neurodecorr.engine.optim import OPTIMIZERS, Optimizer
from neurodecorr.keys import ArrayKey
from neurodecorr.nets.network import Network, build_network
from neurodecorr.nets.spec import NetSpec
from neurodecorr.rules import CREDIT_RULES, DECOR_RULES, CreditRule, DecorRule

_CREDIT_PREFIX = "credit."  # ArrayKey names of feedback arrays: "credit.B1" → "credit/B1"


@dataclass
class Learner:
    config: TrainConfig
    net: Network
    credit: CreditRule
    credit_state: dict[ArrayKey, np.ndarray]
    decor: DecorRule | None
    decor_state: dict[str, np.ndarray]
    optimizer: Optimizer

    def arrays(self) -> dict[str, np.ndarray]:
        out = {f"net/{k}": v for k, v in self.net.arrays().items()}
        out.update({f"credit/{k.name.removeprefix(_CREDIT_PREFIX)}": v
                    for k, v in self.credit_state.items()})
        out.update({f"decor/{k}": v for k, v in self.decor_state.items()})
        out.update({f"optim/{k}": v for k, v in self.optimizer.state.items()})
        out.update({f"device/{k}": v for k, v in self.net.device.state_arrays().items()})
        return out

    def load_arrays(self, arrays: dict[str, np.ndarray], strict: bool = False) -> None:
        """Restore from arrays saved by `arrays()` (e.g. `rundir.read_npz`). strict: the arrays
        must be exactly this learner's (the same names, shapes and dtypes), as a checkpoint of
        the same run is; a KeyError or ValueError names the first that is not."""
        if strict:
            check_same_arrays(self.arrays(), arrays)
        self.net.load_arrays({k[4:]: v for k, v in arrays.items() if k.startswith("net/")})
        for k, v in arrays.items():
            if k.startswith("credit/"):
                self.credit_state[ArrayKey.parse(_CREDIT_PREFIX + k[7:])] = np.array(v)
        for prefix, target in (("decor/", self.decor_state), ("optim/", self.optimizer.state)):
            for k, v in arrays.items():
                if k.startswith(prefix):
                    target[k[len(prefix):]] = np.array(v)
        self.net.device.load_state_arrays(
            {k[7:]: v for k, v in arrays.items() if k.startswith("device/")})


def check_same_arrays(mine: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> None:
    """`theirs` holds exactly the arrays of `mine`, plus the optimiser's per-synapse slots
    ("optim/layer0.W.m", …) that a fresh optimiser creates only at its first step."""
    def slot_of(name):  # "optim/layer0.W.m" → "net/layer0.W"
        return "net/" + name[len("optim/"):].rpartition(".")[0]

    expected = dict(mine)
    for name in theirs:
        if name.startswith("optim/") and name not in mine and slot_of(name) in mine:
            expected[name] = mine[slot_of(name)]
    missing, extra = sorted(set(expected) - set(theirs)), sorted(set(theirs) - set(expected))
    if missing or extra:
        raise KeyError(f"arrays missing {missing[:4]}, unexpected {extra[:4]}")
    for name, array in expected.items():
        other = theirs[name]
        if other.shape != array.shape or other.dtype != array.dtype:
            raise ValueError(f"{name} is {other.dtype}{other.shape}, expected {array.dtype}{array.shape}")


def make_learner(config: TrainConfig, spec: NetSpec, n_in: int | tuple[int, int, int], n_classes: int,
                 counter: Counter | None = None, profile: Profile | None = None) -> Learner:
    """Build a fresh learner on `profile` (default: the one config.profile names) whose device
    reports to `counter` (none: nothing is counted); all randomness comes from one SeedSequence
    of `config.seed`."""
    init_rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(0,)))
    net = build_network(spec, n_in, n_classes, config.decor != "none", init_rng, config.decor_centre)
    credit = CREDIT_RULES[config.rule].from_config(config)
    credit_state = credit.init_state(net, init_rng)
    profile = profile if profile is not None else load_profile(config.profile)
    device_rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(2,)))
    net.install(make_device(profile, device_rng, counter))
    for key, array in credit_state.items():
        net.device.install(key, array)
    decor = DECOR_RULES[config.decor].from_config(config) if config.decor != "none" else None
    decor_state = decor.init_state(net) if decor else {}
    optimizer = OPTIMIZERS[config.optimizer].from_config(config)
    return Learner(config, net, credit, credit_state, decor, decor_state, optimizer)


def epoch_rng(config: TrainConfig, epoch: int) -> np.random.Generator:
    """The generator of one epoch (shuffling, NP noise): derived, not carried, so that a resumed
    run draws exactly what an uninterrupted one would."""
    return np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(1, epoch)))


def device_rng(config: TrainConfig, epoch: int) -> np.random.Generator:
    """The generator of the device's noise and stochastic rounding in one epoch (derived, as above)."""
    return np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(3, epoch)))
