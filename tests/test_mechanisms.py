"""Learning mechanisms of the chips: the tag accumulator against Lava's rule, where R lives
(array, residual, periphery), mixed precision and the Tiki-Taka family, per-step read noise and
repeated reads, profiles that inherit from a base — and what each costs."""

from dataclasses import replace

import numpy as np
import pytest

from neurodecorr import TrainConfig, keys, train
from neurodecorr.devices import CrossbarDevice, DigitalDevice
from neurodecorr.devices.loader import load_profile
from neurodecorr.devices.mechanisms import MixedPrecision
from neurodecorr.energy import Counts, operations
from neurodecorr.errors import ProfileError

F32 = np.float32
MECHANISMS = ["direct", "mixed-precision", "tiki-taka", "ttv2", "chopped-ttv2", "agad"]


def _profile(base: str, **tables):
    """A shipped profile with some keys of its tables changed."""
    profile = load_profile(base)
    return replace(profile, **{t: replace(getattr(profile, t), **kv) for t, kv in tables.items()})


# ------------------------------------------------------------------ the tag (loihi2)
def test_the_tag_accumulates_below_the_weight_step_as_lavas_rule_does():
    """Lava's rule with θ = 64, run for a synapse that receives +10.5 tag units a step (the
    numbers of the Lava run in the research notes): the weight moves one step the step after
    the tag passes 64, and 64·w + t is conserved while |t| ≠ 64."""
    profile = _profile("loihi2", digital={"weight_update": "tag", "adapt_range": False})
    dev = DigitalDevice(profile, np.random.default_rng(0))
    W = np.full((1, 1), 10 / 64, F32)  # 10 steps of 2^-6 once installed (exponent below)
    dev.install(keys.W(0), W)
    step = 2.0 ** dev.exponents[keys.W(0)]
    W[...] = 10 * step
    weights, tags = [], []
    for _ in range(12):
        dev.write(W, np.full_like(W, -10.5 * step / 64), keys.W(0))
        weights.append(round(float(W[0, 0] / step)))
        tags.append(int(dev.tags[keys.W(0)][0, 0]))
    first_cross = next(i for i, t in enumerate(tags) if t > 64)
    assert weights[first_cross] == 10 and weights[first_cross + 1] == 11  # one step of lag
    assert all(abs(b - a) <= 1 for a, b in zip(weights, weights[1:]))   # at most a step each
    conserved = [64 * w + t for w, t in zip(weights, tags)]
    received = [64 * 10 + 10.5 * (i + 1) for i in range(12)]
    assert all(abs(c - r) <= 1 + 32 for c, r in zip(conserved, received))  # rounding, a half-step


def test_updates_far_below_the_weight_step_survive_in_the_tag_and_are_counted():
    W0 = np.full((50, 50), 0.3, F32)
    results = {}
    for update, rounding in (("direct", "nearest"), ("tag", "stochastic")):
        counts = Counts()
        profile = _profile("loihi2", digital={"weight_update": update, "rounding": rounding})
        dev = DigitalDevice(profile, np.random.default_rng(1), counts)
        W = W0.copy()
        dev.install(keys.W(0), W)
        step = 2.0 ** dev.exponents[keys.W(0)]
        start = W.copy()
        for _ in range(200):  # a tenth of a step each time, 20 steps in all
            dev.write(W, np.full_like(W, -0.1 * step), keys.W(0))
        held = dev.tags[keys.W(0)] / 64 if update == "tag" else 0  # what the tags still hold
        results[update] = (float(np.mean((W - start) / step + held)), counts.total(kind="synapse_writes"))
    assert results["direct"][0] == 0  # rounded to nearest, every update is lost
    assert results["tag"][0] == pytest.approx(20, abs=1.0)  # in the weights, or still in the tags
    assert results["tag"][1] > results["direct"][1]  # the tag's writes are paid for


# ------------------------------------------------------------------ where R lives
def _R(n=64, seed=0):
    rng = np.random.default_rng(seed)
    D = (0.03 * rng.standard_normal((n, n))).astype(F32)
    return np.eye(n, dtype=F32) + D


def test_a_residual_R_keeps_finer_steps_on_the_digital_grid():
    errors = {}
    for storage in ("array", "residual"):
        dev = DigitalDevice(_profile("loihi2", digital={"decorrelation": storage}), np.random.default_rng(0))
        R = _R()
        stored = R.copy()
        dev.install(keys.R(0), stored)
        errors[storage] = float(np.abs(stored - R).max())
    assert errors["residual"] < errors["array"] / 4


def _sliced_R_after(profile, writes: int, delta_in_fine_steps: float, counts=None):
    """An R − I of mixed magnitudes on `profile`, after `writes` equal small updates; returns the
    device, R, what float arithmetic would hold and the coarse step."""
    dev = DigitalDevice(profile, np.random.default_rng(4), counts)
    R = _R(32)
    R[0, 1] = 0.9  # a large entry sets the exponent; the rest are ~0.03
    dev.install(keys.R(0), R)
    step = 2.0 ** dev.exponents[keys.R(0)]
    exact = R.astype(np.float64)
    delta = np.full_like(R, delta_in_fine_steps * step / 128)
    for _ in range(writes):
        dev.write(R, delta, keys.R(0))
        exact -= delta
    return dev, R, exact, step


def test_a_sliced_R_has_fifteen_bits_and_carries_into_its_coarse_connection():
    """Two 8-bit connections, exponents 7 apart: 200 updates of 0.3 fine steps (0.0023 coarse
    steps) each. R stays the sum of its slices, each on its own grid and range; after every
    carry the fine slice holds under half a coarse step; and R follows the exact sum of the
    updates as a random walk of fine steps (rms √(200·0.3·0.7) ≈ 6.5 of them), where one
    8-bit connection (loihi2-residual) walks in coarse steps (rms ≈ 0.68 of one, 87 fine)."""
    dev, R, exact, step = _sliced_R_after(load_profile("loihi2-sliced"), 200, 0.3)
    coarse, fine = dev.coarse[keys.R(0)], dev.fine[keys.R(0)]
    np.testing.assert_array_equal(R, coarse + fine + np.eye(len(R), dtype=F32))
    np.testing.assert_array_equal(coarse / step, np.rint(coarse / step))
    np.testing.assert_array_equal(fine / (step / 128), np.rint(fine / (step / 128)))
    assert np.abs(coarse).max() <= 128 * step and np.abs(fine).max() <= step / 2
    before = R.copy()
    dev.write(R, np.full_like(R, -3.7 * step), keys.R(0))  # beyond the fine range: carried at once
    np.testing.assert_allclose(R - before, 3.7 * step, atol=step / 128)
    exact += 3.7 * step
    rms = lambda a, b: float(np.sqrt(np.mean((a - b) ** 2)))  # noqa: E731
    _, R8, exact8, step8 = _sliced_R_after(load_profile("loihi2-residual"), 200, 0.3)
    assert step8 == step
    assert rms(R, exact) < 9 * step / 128 and rms(R8, exact8) > 6 * rms(R, exact)


def test_a_sliced_R_carries_every_k_updates_and_pays_for_its_second_connection():
    profile = _profile("loihi2-sliced", digital={"consolidate_every": 50})
    dev, R, exact, step = _sliced_R_after(profile, 49, 2.0)  # 98 fine steps: no carry yet
    assert np.abs(dev.fine[keys.R(0)]).max() > step / 2 and dev.since_carry[keys.R(0)] == 49
    dev.write(R, np.full_like(R, 2.0 * step / 128), keys.R(0))  # the 50th: carried
    assert np.abs(dev.fine[keys.R(0)]).max() <= step / 2 and dev.since_carry[keys.R(0)] == 0
    x = np.ones((3, 32), F32)
    synops = {}
    for name in ("loihi2-residual", "loihi2-sliced"):
        counts = Counts()
        chip = DigitalDevice(load_profile(name), np.random.default_rng(0), counts)
        chip.install(keys.R(0), _R(32))
        chip.mvm(x, _R(32), keys.R(0))
        synops[name] = counts.total(kind="dense_synops")
    assert synops["loihi2-sliced"] == synops["loihi2-residual"] + 3 * 32 * 32  # the fine connection


def test_a_sliced_R_takes_direct_updates_only(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('base = "loihi2-sliced"\n[digital]\ndecorrelation_update = "tag"\n')
    with pytest.raises(ProfileError, match='decorrelation_slices: expected decorrelation_update = "direct"'):
        load_profile(path)


def test_a_sliced_R_resumes_mid_carry_cycle(tmp_path, digits):
    profile = tmp_path / "chip.toml"
    profile.write_text('base = "loihi2-sliced"\n[digital]\nconsolidate_every = 7\n')
    cfg = TrainConfig(profile=str(profile), rule="fa", decor="seed", epochs=2, batch_size=64)
    whole = train(cfg, tmp_path / "whole", data=digits, progress=False, log=lambda s: None)
    train(replace(cfg, epochs=1), tmp_path / "split", data=digits, progress=False, log=lambda s: None)
    resumed = train(cfg, tmp_path / "split", resume=True, data=digits, progress=False, log=lambda s: None)
    assert [e["train_loss"] for e in resumed.epochs] == [e["train_loss"] for e in whole.epochs]
    assert whole.epochs[-1]["test_accuracy"] > 0.5  # chance is 0.1


@pytest.mark.parametrize("base", ["analog-pcm", "analog-rram"])
def test_a_residual_or_peripheral_R_reads_with_less_error_on_a_crossbar(base):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((200, 64)).astype(F32)
    errors = {}
    for storage in ("array", "residual", "periphery"):
        counts = Counts()
        dev = CrossbarDevice(_profile(base, crossbar={"decorrelation": storage}), np.random.default_rng(0), counts)
        R = _R()
        dev.install(keys.R(0), R)
        exact = x @ R.T
        with counts.during("inference"):
            y = dev.mvm(x, R, keys.R(0))
        errors[storage] = float(np.linalg.norm(y - exact) / np.linalg.norm(exact))
        ops = operations(counts, dev.profile, "inference")
        if storage == "periphery":
            assert ops["adc_conversions"] == 0 and ops["macs"] == 0 and ops["periphery_macs"] == 200 * 64 * 64
        else:
            assert ops["adc_conversions"] > 0
        if storage == "residual":
            assert ops["periphery_macs"] == x.size  # the identity's adds
    assert errors["periphery"] < 1e-3  # float16 multipliers: rounding only, no noise
    assert errors["residual"] < errors["array"] / 3


@pytest.mark.parametrize("storage", ["residual", "periphery"])
def test_writes_to_R_land_where_it_lives(storage):
    dev = CrossbarDevice(_profile("analog-pcm", crossbar={"decorrelation": storage}), np.random.default_rng(0))
    R = np.eye(16, dtype=F32)
    dev.install(keys.R(0), R)
    target = _R(16, seed=5)
    for _ in range(300):
        dev.write(R, 0.05 * (R - target), keys.R(0))
    assert np.abs(R - target).max() < 0.05
    if storage == "residual":
        state = dev.state_arrays()
        fresh = CrossbarDevice(dev.profile, np.random.default_rng(9))
        fresh.load_state_arrays(state)
        assert fresh.scales == dev.scales


# ------------------------------------------------------------------ mechanisms on crossbars
@pytest.mark.parametrize("base", ["analog-pcm", "analog-rram"])
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_every_mechanism_follows_a_steady_update(base, mechanism):
    """The same small update, step after step, moves the weights its way under every mechanism
    (the Tiki-Taka family through their transfers), and the state round-trips."""
    profile = _profile(base, crossbar={"mechanism": mechanism}, transfer={"columns": 8})
    counts = Counts()
    dev = CrossbarDevice(profile, np.random.default_rng(0), counts)
    rng = np.random.default_rng(1)
    W = (0.2 * rng.standard_normal((12, 8))).astype(F32)
    dev.install(keys.W(0), W)
    start = W.copy()
    direction = np.sign(rng.standard_normal(W.shape)).astype(F32)
    scale = dev.scales[keys.W(0)]
    with counts.during("weight_update"):
        for _ in range(200):
            dev.write(W, -0.002 * scale * direction, keys.W(0))  # ~one device step a step
    moved = (W - start) / scale
    assert np.mean(moved * direction) > 0.05, np.mean(moved * direction)
    assert np.corrcoef(moved.ravel(), direction.ravel())[0, 1] > 0.5
    assert counts.total("weight_update", "synapse_writes") > 0
    state = dev.state_arrays()
    fresh = CrossbarDevice(profile, np.random.default_rng(2))
    fresh.load_state_arrays(state)
    assert sorted(fresh.state_arrays()) == sorted(state)
    ops = operations(counts, profile, "weight_update")
    if mechanism in ("mixed-precision", "ttv2", "chopped-ttv2", "agad"):
        assert ops["periphery_macs"] > 0 and ops["memory_bytes"] > 0  # accumulator or buffer
    if mechanism in ("tiki-taka", "ttv2", "chopped-ttv2", "agad"):
        assert ops["adc_conversions"] > 0  # the transfers read A's columns
    if mechanism == "direct":
        assert ops.get("periphery_macs", 0) == 0


def test_mixed_precision_keeps_the_remainder_below_one_step():
    dev = CrossbarDevice(_profile("analog-rram", crossbar={"mechanism": "mixed-precision"}),
                         np.random.default_rng(0))
    assert isinstance(dev.mechanism, MixedPrecision)
    W = np.zeros((4, 4), F32) + 0.1
    dev.install(keys.W(0), W)
    scale = dev.scales[keys.W(0)]
    dev.write(W, np.full_like(W, -0.0007 * scale), keys.W(0))  # a third of a step: nothing moves
    np.testing.assert_allclose(W, 0.1, rtol=1e-6)
    acc = dev.extra["acc", keys.W(0)]
    np.testing.assert_allclose(acc, 0.0007, rtol=1e-3)



def test_mixed_precision_keeps_what_is_over_the_pulse_limit():
    dev = CrossbarDevice(_profile("analog-rram", crossbar={"mechanism": "mixed-precision"}),
                         np.random.default_rng(0))
    W = np.zeros((4, 4), F32)
    dev.install(keys.W(0), W + 0.5)
    step, limit = dev.cells.nominal_step(), dev.cells.limit()
    acc = dev.extra["acc", keys.W(0)]
    w = np.zeros((4, 4), F32)
    dev.mechanism.write(keys.W(0), w, -np.full((4, 4), (limit + 10.5) * step, F32), 1.0)  # device units
    np.testing.assert_allclose(acc, 10.5 * step, rtol=1e-4)  # only `limit` pulses went out

# ------------------------------------------------------------------ reads for node perturbation
def test_per_step_read_noise_is_shared_by_every_read_of_a_step():
    profile = _profile("analog-pcm", crossbar={"read_noise_scope": "step", "output_noise": 0.0,
                                                 "adc_bits": 24, "dac_bits": 24})
    dev = CrossbarDevice(profile, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    W = (0.3 * rng.standard_normal((20, 30))).astype(F32)
    dev.install(keys.W(0), W)
    x = rng.standard_normal((5, 30)).astype(F32)
    dev.begin_step()
    a, b = dev.mvm(x, W, keys.W(0)), dev.mvm(x, W, keys.W(0))
    np.testing.assert_array_equal(a, b)  # one realisation of the conductances per step
    dev.begin_step()
    c = dev.mvm(x, W, keys.W(0))
    assert not np.array_equal(a, c)
    assert np.abs(c - x @ W.T).max() < 0.3 * np.abs(x @ W.T).max()


def test_repeated_reads_average_the_noise_and_are_paid_for():
    spread, conversions = {}, {}
    for reads in (1, 4):
        counts = Counts()
        profile = _profile("analog-rram", crossbar={"training_reads": reads})
        dev = CrossbarDevice(profile, np.random.default_rng(0), counts)
        W = (0.3 * np.random.default_rng(1).standard_normal((16, 32))).astype(F32)
        dev.install(keys.W(0), W)
        x = np.repeat(np.random.default_rng(2).standard_normal((1, 32)).astype(F32), 4000, axis=0)
        with counts.during("learning_forward"):
            y = dev.mvm(x, W, keys.W(0))
        spread[reads] = float(y.std(axis=0).mean())
        conversions[reads] = operations(counts, profile, "learning_forward")["adc_conversions"]
        assert float(dev.inference().mvm(x[:10], W, keys.W(0)).std(axis=0).mean()) > 0  # one read there
    assert spread[4] == pytest.approx(spread[1] / 2, rel=0.15)
    assert conversions[4] == 4 * conversions[1]


# ------------------------------------------------------------------ profiles with a base
def test_a_profile_can_start_from_another_and_change_a_few_keys(tmp_path):
    child = tmp_path / "mine.toml"
    child.write_text('base = "analog-rram"\ndescription = "mine"\n[crossbar]\nmechanism = "ttv2"\n'
                     '[transfer]\ncolumns = 32\n')
    profile, base = load_profile(child), load_profile("analog-rram")
    assert profile.name == "mine" and profile.description == "mine"
    assert profile.crossbar == replace(base.crossbar, mechanism="ttv2")
    assert profile.transfer == replace(base.transfer, columns=32) and profile.rram == base.rram
    assert profile.energy == base.energy
    loop = tmp_path / "loop.toml"
    loop.write_text(f'base = "{loop}"\n')
    with pytest.raises(ProfileError, match="cycle"):
        load_profile(loop)
    missing = tmp_path / "missing.toml"
    missing.write_text('base = "no-such-chip"\n')
    with pytest.raises(ProfileError, match="base"):
        load_profile(missing)


@pytest.mark.parametrize("mechanism,storage,rule,floor", [
    ("mixed-precision", "residual", "fa", 0.8),  # measured 0.88
    ("chopped-ttv2", "array", "bp", 0.4),        # measured 0.68: the transfer learns slowly here
])
def test_a_mechanism_trains_digits_end_to_end_and_resumes(tmp_path, digits, mechanism, storage, rule, floor):
    profile = tmp_path / "chip.toml"
    profile.write_text(f'base = "analog-rram"\n[crossbar]\nmechanism = "{mechanism}"\n'
                       f'decorrelation = "{storage}"\n[transfer]\ncolumns = 16\n')
    cfg = TrainConfig(profile=str(profile), rule=rule, epochs=2)
    whole = train(cfg, tmp_path / "whole", data=digits, progress=False, log=lambda s: None)
    assert whole.epochs[-1]["test_accuracy"] > floor  # chance is 0.1
    train(replace(cfg, epochs=1), tmp_path / "split", data=digits, progress=False, log=lambda s: None)
    resumed = train(cfg, tmp_path / "split", resume=True, data=digits, progress=False, log=lambda s: None)
    assert [e["test_accuracy"] for e in resumed.epochs] == [e["test_accuracy"] for e in whole.epochs]
