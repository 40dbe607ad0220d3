"""Device profiles (data, in hw_profiles/*.toml) and the devices that act on them.

    load_profile(name_or_path) -> Profile      validated, frozen
    make_device(profile, rng) -> device        the object the engine reads and writes through
"""

from __future__ import annotations

import numpy as np

from .crossbar import CrossbarDevice
from .digital import DigitalDevice
from .ideal import IdealDevice
from .profile import Profile

DEVICE_KINDS = {"ideal": IdealDevice, "digital": DigitalDevice, "crossbar": CrossbarDevice}


def make_device(profile: Profile | None, rng: np.random.Generator):
    """The device for `profile` (None: the ideal device)."""
    if profile is None:
        return IdealDevice(None, rng)
    return DEVICE_KINDS[profile.kind](profile, rng)


__all__ = ["DEVICE_KINDS", "Profile", "make_device", "IdealDevice", "DigitalDevice", "CrossbarDevice"]
