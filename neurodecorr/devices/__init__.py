"""Device profiles (data, in hw_profiles/*.toml) and the devices that act on them.

    load_profile(name_or_path) -> Profile      validated, frozen
    make_device(profile, rng, counter) -> Device   what the engine reads and writes through

`DEVICE_KINDS` is the registry: one class per profile kind, each implementing
`devices.base.Device` (checked over the whole registry by `tests/test_conformance.py`).
"""

from __future__ import annotations

import numpy as np

from neurodecorr.devices.base import Counter, Device, NullCounter
from neurodecorr.devices.crossbar import CrossbarDevice
from neurodecorr.devices.digital import DigitalDevice
from neurodecorr.devices.ideal import IdealDevice
from neurodecorr.devices.profile import Profile

DEVICE_KINDS = {"ideal": IdealDevice, "digital": DigitalDevice, "crossbar": CrossbarDevice}


def make_device(profile: Profile | None, rng: np.random.Generator,
                counter: Counter | None = None) -> Device:
    """The device for `profile` (None: the ideal device), reporting to `counter`."""
    if profile is None:
        return IdealDevice(None, rng, counter)
    return DEVICE_KINDS[profile.kind](profile, rng, counter)


__all__ = ["DEVICE_KINDS", "Counter", "Device", "NullCounter", "Profile", "make_device",
           "IdealDevice", "DigitalDevice", "CrossbarDevice"]
