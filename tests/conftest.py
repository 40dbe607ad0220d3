import numpy as np
import pytest

from neurodecorr.data import load_dataset


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
