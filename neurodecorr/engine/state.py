"""Everything a training run holds between steps, and its (pickle-free) serialisation.

A `Learner` bundles the network, the credit-assignment rule with its fixed matrices, the
decorrelation rule with its state and the optimiser. `arrays()`/`load_arrays()` flatten all of
it to named arrays for `.npz` files read with `allow_pickle=False`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..devices import make_device
from ..devices.loader import load_profile
from ..nets.network import Network, build_network
from ..nets.spec import NetSpec
from ..rules import CREDIT_RULES, DECOR_RULES
from .config import TrainConfig
from .optim import OPTIMIZERS


@dataclass
class Learner:
    config: TrainConfig
    net: Network
    credit: object
    credit_state: dict[str, np.ndarray]
    decor: object | None
    decor_state: dict[str, np.ndarray]
    optimizer: object

    def arrays(self) -> dict[str, np.ndarray]:
        out = {f"net/{k}": v for k, v in self.net.arrays().items()}
        out.update({f"credit/{k}": v for k, v in self.credit_state.items()})
        out.update({f"decor/{k}": v for k, v in self.decor_state.items()})
        out.update({f"optim/{k}": v for k, v in self.optimizer.state.items()})
        out.update({f"device/{k}": v for k, v in self.net.device.state_arrays().items()})
        return out

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore from arrays saved by `arrays()` (e.g. `rundir.read_npz`)."""
        self.net.load_arrays({k[4:]: v for k, v in arrays.items() if k.startswith("net/")})
        for prefix, target in (("credit/", self.credit_state), ("decor/", self.decor_state),
                               ("optim/", self.optimizer.state)):
            for k, v in arrays.items():
                if k.startswith(prefix):
                    target[k[len(prefix):]] = np.array(v)
        self.net.device.load_state_arrays(
            {k[7:]: v for k, v in arrays.items() if k.startswith("device/")})


def make_learner(config: TrainConfig, spec: NetSpec, n_in: int, n_classes: int) -> Learner:
    """Build a fresh learner; all randomness comes from one SeedSequence of `config.seed`."""
    init_rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(0,)))
    net = build_network(spec, n_in, n_classes, config.decor != "none", init_rng)
    credit_cls = CREDIT_RULES[config.rule]
    credit = credit_cls(sigma=config.np_sigma) if config.rule == "np" else credit_cls()
    credit_state = credit.init_state(net, init_rng)
    profile = load_profile(config.profile)
    device_rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(2,)))
    net.install(make_device(profile, device_rng))
    for key, array in credit_state.items():
        net.device.install(f"credit.{key}", array)
    decor = None
    if config.decor != "none":
        decor = DECOR_RULES[config.decor](lr=config.decor_lr, sample_fraction=config.decor_fraction,
                                          kappa=config.decor_kappa)
    decor_state = decor.init_state(net) if decor else {}
    if config.optimizer == "adam":
        optimizer = OPTIMIZERS["adam"](config.lr, betas=config.betas)
    else:
        optimizer = OPTIMIZERS["sgd"](config.lr, momentum=config.momentum)
    return Learner(config, net, credit, credit_state, decor, decor_state, optimizer)


def epoch_rng(config: TrainConfig, epoch: int) -> np.random.Generator:
    """The generator of one epoch (shuffling, NP noise): derived, not carried, so that a resumed
    run draws exactly what an uninterrupted one would."""
    return np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(1, epoch)))


def device_rng(config: TrainConfig, epoch: int) -> np.random.Generator:
    """The generator of the device's noise and stochastic rounding in one epoch (derived, as above)."""
    return np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(3, epoch)))
