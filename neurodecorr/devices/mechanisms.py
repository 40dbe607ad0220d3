"""Learning mechanisms: how a requested change of an analogue array becomes pulses on its cells.

Every mechanism's `write(key, values, delta, scale)` takes the array as the crossbar holds it,
`scale` × the device weights (changed in place), and the change asked of it in those units,
values ← values − delta: in device units the change is −delta / scale. Direct pulses and mixed
precision convert only the devices they pulse; the Tiki-Taka family (`devices.transfer`) works
on device units. Each keeps its own state per array in `device.extra` (checkpointed with the
device). The cells (`devices.cells`) turn pulses into conductance
changes. Per step and array, each mechanism reports what it did to the device's counter:

| mechanism       | what happens                                                    | counted                     |
|-----------------|-----------------------------------------------------------------|-----------------------------|
| direct          | n = stochastic_round(change / step) pulses per device (≤ max)   | pulsed devices              |
| mixed-precision | χ += change in a digital accumulator; n = trunc(χ / step)      | pulsed devices; χ's         |
|                 | pulses; χ −= n·step (Nandakumar et al. 2020)                    | read-add-write (periphery)  |
| tiki-taka, ttv2,| a fast array A takes the direct pulses; every `every` steps     | A's and C's pulses; the     |
| chopped-ttv2,   | `columns` columns of A are read and moved into the weight C     | column reads (array reads); |
| agad            | (`devices.transfer`)                                            | the buffer H (periphery)    |

`rescale(key, factor)` is called when the device's scale for an array changes (its devices
reprogrammed to the same weights): state held in device units scales with them.
"""

from __future__ import annotations

import numpy as np

from neurodecorr import kernels
from neurodecorr.keys import ArrayKey
from neurodecorr.numerics import DTYPE

F32_BYTES = 4


def direct_pulses(cells, change: np.ndarray, params: dict, rng, divisor=1.0) -> np.ndarray:
    """n = stochastic_round((change / divisor) / step), at most the cells' pulse limit either way
    (one pass, one draw of `rng`)."""
    return kernels.pulses(change, cells.step(params), cells.limit(), kernels.draw_key(rng), divisor)


class Direct:
    """Each update straight to the devices: stochastic pulses of one step each."""

    def __init__(self, device):
        self.device = device

    def install(self, key: ArrayKey, w: np.ndarray) -> None:
        self.device.cells.install(self.device, key, w.shape)

    def write(self, key: ArrayKey, values: np.ndarray, delta: np.ndarray, scale) -> np.ndarray:
        """values ← values − delta as the devices can (values: scale × the device weights, in
        place); returns an array whose nonzero entries are the devices that moved (here each
        device's pulses)."""
        dev, cells = self.device, self.device.cells
        params = cells.params(dev, key)
        n = direct_pulses(cells, delta, params, dev.rng, divisor=-scale)
        cells.pulse(values, n, params, dev.rng, scale)
        return n

    def effective(self, key: ArrayKey, w: np.ndarray) -> np.ndarray:
        return w

    def rescale(self, key: ArrayKey, factor: float) -> None:
        pass


class MixedPrecision(Direct):
    """A digital accumulator χ per synapse, programmed to the devices one step at a time."""

    def install(self, key, w):
        super().install(key, w)
        self.device.extra["acc", key] = np.zeros_like(w)

    def write(self, key, values, delta, scale):
        dev, cells = self.device, self.device.cells
        params = cells.params(dev, key)
        acc = dev.extra["acc", key]
        # χ += −delta / scale (device units); n = trunc(χ / one nominal step), at most the pulses
        # per update the cell takes (what is over stays in χ); χ −= n·step
        n = kernels.accumulate_pulses_(acc, delta, cells.nominal_step(), cells.limit(), divisor=-scale)
        cells.pulse(values, n, params, dev.rng, scale)
        dev.counter.periphery(key, ops=acc.size, bytes=2 * F32_BYTES * acc.size)
        return n

    def rescale(self, key, factor):
        self.device.extra["acc", key] *= DTYPE(factor)


def make_mechanism(name: str, device):
    from neurodecorr.devices.transfer import Transfer

    if name == "direct":
        return Direct(device)
    if name == "mixed-precision":
        return MixedPrecision(device)
    return Transfer(device, name)
