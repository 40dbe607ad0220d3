import os

import numpy as np
import pytest

# Brian2's Cython target compiles every code object once per machine (about two minutes of a
# cold test run); the tests simulate on its numpy target, except those that check the target
# deploy picks (test_brian2.py, "best").
os.environ.setdefault("NEURODECORR_BRIAN2_CODEGEN", "numpy")

from neurodecorr.data import load_dataset


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def deploy_run(tmp_path_factory, digits):
    """A trained, decorrelated digits run that the backend tests deploy (≈ 97 % rate accuracy)."""
    from neurodecorr import TrainConfig, train

    run_dir = tmp_path_factory.mktemp("deploy") / "bp-seed"
    config = TrainConfig(dataset="digits", model="small-mlp", rule="bp", decor="seed", epochs=3,
                         batch_size=32, lr=1e-3, decor_lr=1e-3)
    train(config, run_dir, data=digits, progress=False, log=lambda _: None)
    return run_dir
