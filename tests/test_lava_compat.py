"""lava-nc 0.10.0 on Python 3.11 through neurodecorr's import hook (site-packages untouched)."""

import importlib.util

import numpy as np
import pytest

from neurodecorr.backends.lava_compat import patch_source

BROKEN = '''from __future__ import annotations
from dataclasses import dataclass
@dataclass
class ByteEncoder:  # a dataclass, so unhashable: 3.11 rejects it as a default
    pass
@dataclass
class Pair:
    x: ByteEncoder = ByteEncoder()
    y: ByteEncoder = ByteEncoder()
    n: int = 3
'''


def test_patch_gives_each_field_a_factory():
    fixed = patch_source(BROKEN)
    assert fixed.count("default_factory=ByteEncoder") == 2
    assert fixed.splitlines()[0] == "from __future__ import annotations"
    assert len(fixed.splitlines()) == len(BROKEN.splitlines())
    namespace: dict = {}
    exec(compile(fixed, "<fixed>", "exec"), namespace)  # would raise ValueError unpatched
    a, b = namespace["Pair"](), namespace["Pair"]()
    assert a.x is not b.x and a.n == 3
    with pytest.raises(ValueError, match="mutable default"):
        exec(compile(BROKEN, "<broken>", "exec"), {})


def _lif_spikes_by_hand(weights, spikes_in, du, dv, vth):
    """Lava's fixed-point Dense → LIF (reference/lava_brian2.md), for this small case."""
    rz = lambda x: np.sign(x) * (np.abs(x) >> 12)  # noqa: E731
    mixed = int((weights < 0).any() and (weights > 0).any())
    k = 8 - 8 + mixed  # 8 weight bits by default; mixed-sign weights lose one bit
    weights = (weights >> k) << k
    u = np.zeros(weights.shape[0], np.int64)
    v = np.zeros_like(u)
    buffered = np.zeros_like(u)
    out = []
    for s in spikes_in.T:
        a_in, buffered = buffered, weights @ s  # Dense delivers one step later
        u = rz(u * (4096 - (du + 1))) + (a_in << 6)
        v = rz(v * (4096 - dv)) + u
        fired = v > (vth << 6)
        v[fired] = 0
        out.append(fired)
    return np.array(out).T


@pytest.mark.lava
@pytest.mark.skipif(importlib.util.find_spec("lava") is None, reason="lava-nc not installed")
def test_real_lava_network_runs_and_matches_its_equations():
    from neurodecorr.backends.lava_compat import import_lava

    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    rng = np.random.default_rng(3)
    spikes = (rng.random((3, 25)) < 0.5).astype(np.int64)
    weights = np.array([[7, -3, 5], [2, 6, 4]])
    src = RingBuffer(data=spikes.astype(float))
    dense = Dense(weights=weights)
    lif = LIF(shape=(2,), du=1000, dv=300, vth=9, bias_mant=0)
    src.s_out.connect(dense.s_in)
    dense.a_out.connect(lif.a_in)
    monitor = Monitor()
    monitor.probe(lif.s_out, spikes.shape[1])
    lif.run(condition=RunSteps(num_steps=spikes.shape[1]), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    got = monitor.get_data()[lif.name]["s_out"].T.astype(bool)
    lif.stop()
    expected = _lif_spikes_by_hand(weights, spikes, du=1000, dv=300, vth=9)
    assert got.any()
    np.testing.assert_array_equal(got, expected)
