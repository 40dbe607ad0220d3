"""Every registered backend against the rate model, on the same trained run: the shared shape of
`deploy` (options checked, report written, energy priced through `energy.cost`) and agreement
with the rate engine's accuracy. A new backend in `BACKENDS` is checked here without a new test."""

import json

import pytest

from neurodecorr.backends import BACKENDS, Backend, DeployOptions, deploy
from neurodecorr.backends.base import require
from neurodecorr.errors import NeurodecorrError, RunError

SAMPLES = 60
STEPS = {"lava": 8, "emulator": 8, "brian2": 100}  # fixed point: exact after L + 1 steps
TOLERANCE = {"lava": 0.05, "emulator": 0.05, "brian2": 0.05}  # |backend − rate model| accuracy


def _available(name):
    try:
        if BACKENDS[name].requires:
            require(BACKENDS[name].requires)
    except NeurodecorrError:
        return False
    return True


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_backend_agrees_with_the_rate_model(name, deploy_run):
    if not _available(name):
        pytest.skip(f"{BACKENDS[name].requires} is not installed")
    backend = BACKENDS[name]()
    assert isinstance(backend, Backend) and backend.name == name
    report = deploy(backend, deploy_run, DeployOptions(samples=SAMPLES, steps=STEPS[name]),
                    log=lambda _: None)
    on_disk = json.loads((deploy_run / f"deploy-{name}.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    assert report["backend"] == name and report["samples"] == SAMPLES and report["steps"] == STEPS[name]
    assert report["rate_accuracy"] > 0.9  # a trained network, so that agreement means something
    assert abs(report["accuracy"] - report["rate_accuracy"]) <= TOLERANCE[name]
    assert report["energy_per_sample_j"] > 0 and report["energy_profile"] == "loihi2"


def test_fixed_point_backends_compute_the_same_network(deploy_run):
    if not _available("lava"):
        pytest.skip("lava-nc is not installed")
    options = DeployOptions(samples=30, steps=6)
    lava = deploy(BACKENDS["lava"](), deploy_run, options, log=lambda _: None)
    emulator = deploy(BACKENDS["emulator"](), deploy_run, options, log=lambda _: None)
    assert lava["agreement"] == 1.0 and lava["outputs_identical"]
    assert lava["accuracy"] == emulator["accuracy"]
    assert lava["energy_per_sample_j"] == pytest.approx(emulator["energy_per_sample_j"], rel=1e-12)
    assert lava["per_sample"] == emulator["per_sample"]


@pytest.mark.parametrize("options,message", [
    (dict(samples=0), "--samples"), (dict(steps=0), "--steps"), (dict(vth=-10), "--vth"),
    (dict(frac_bits=-3), "--frac-bits"), (dict(frac_bits=64), "--frac-bits"),
    (dict(input_mode="spikes"), "--input"),
])
def test_bad_deploy_options_are_named(options, message):
    with pytest.raises(RunError, match=message):
        DeployOptions(**options)


def test_deploy_refuses_a_profile_that_cannot_price_spiking_operations(deploy_run):
    with pytest.raises(RunError, match="event-driven"):
        deploy(BACKENDS["emulator"](), deploy_run, profile="analog-pcm", log=lambda _: None)
