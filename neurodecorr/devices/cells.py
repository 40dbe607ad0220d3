"""How a crossbar's memory cells respond to programming: one pulse at a time.

A technology gives each array's devices their per-device parameters when the array is
installed, says how large one step is, and applies n pulses (an integer per device, 0 for
none). Weights are in device units: [−1, 1] for PCM (a differential pair), [w_min, w_max] for
RRAM. The learning mechanisms (`devices.mechanisms`) decide how many pulses an update becomes.

- PCM (aihwkit PCMPresetDevice's step, Nandakumar et al. 2020): a pulse moves g by
  update_granularity, n pulses by n·ε with relative noise update_noise·√|n|.
- RRAM (aihwkit pulsed devices): a pulse moves w by dw·(1 ± up_down) — with soft bounds
  ×(1 − w/w_max) up, ×(1 − w/w_min) down — with cycle-to-cycle noise dw_min_ctoc·dw·√|n|;
  dw and up_down vary per device (dw_min_dtod, up_down_dtod); at most max_pulses per update.
  With soft bounds a device's steps up and down are equal only at its symmetry point (w = 0
  for the shipped bounds), so random updates pull a weight toward it.

Shapes: w and n of the same shape; per-device parameters of that shape too (sliced with them).
"""

from __future__ import annotations

import numpy as np

from neurodecorr import kernels
from neurodecorr.keys import ArrayKey
from neurodecorr.numerics import DTYPE


class PCMCells:
    """Symmetric increments of one granularity, with programming noise."""

    def __init__(self, spec):
        self.spec = spec
        self.range = 1.0
        self.bounds = (-1.0, 1.0)

    def install(self, device, key: ArrayKey, shape: tuple[int, ...], array: str = "") -> None:
        pass  # no per-device spread is modelled for PCM training steps

    def params(self, device, key: ArrayKey, array: str = "", cols=None) -> dict:
        return {}

    def step(self, params: dict) -> float:
        return DTYPE(self.spec.update_granularity)

    def nominal_step(self) -> float:
        return DTYPE(self.spec.update_granularity)

    def limit(self) -> int:
        return np.iinfo(np.int32).max

    def pulse(self, w: np.ndarray, n: np.ndarray, params: dict, rng, scale=1.0) -> int:
        """w += n·ε (+ noise), in place, where n ≠ 0 (w: scale × the device weights); returns how
        many devices moved."""
        return kernels.pulse_(w, n, self.spec.update_granularity, self.spec.update_noise, rng,
                              self.bounds, scale)


class RRAMCells:
    """Pulsed devices with per-device step sizes and asymmetries, optional soft bounds."""

    def __init__(self, spec):
        self.spec = spec
        self.range = min(-spec.w_min, spec.w_max)
        self.bounds = (spec.w_min, spec.w_max)

    def install(self, device, key: ArrayKey, shape: tuple[int, ...], array: str = "") -> None:
        r = self.spec
        device.extra[f"dw{array}", key] = np.maximum(
            r.dw_min * (1 + r.dw_min_dtod * device.rng.standard_normal(shape)), 0).astype(DTYPE)
        device.extra[f"ud{array}", key] = (r.up_down + r.up_down_dtod
                                           * device.rng.standard_normal(shape)).astype(DTYPE)

    def params(self, device, key: ArrayKey, array: str = "", cols=None) -> dict:
        dw, ud = device.extra[f"dw{array}", key], device.extra[f"ud{array}", key]
        if cols is not None:
            dw, ud = dw[:, cols], ud[:, cols]
        return {"dw": dw, "ud": ud}

    def step(self, params: dict) -> np.ndarray:
        """Each device's own step (the direct mechanism's pulse count uses it); 0 for a device
        whose spread left it none (divide by it floored at `kernels.MIN_STEP`, as `kernels.pulses` does)."""
        return params["dw"]

    def nominal_step(self) -> float:
        """The step the periphery knows: dw_min (aihwkit's weight granularity)."""
        return DTYPE(self.spec.dw_min)

    def limit(self) -> int:
        return self.spec.max_pulses

    def pulse(self, w: np.ndarray, n: np.ndarray, params: dict, rng, scale=1.0) -> int:
        r = self.spec
        return kernels.rram_pulse_(w, n, params["dw"], params["ud"], r.soft_bounds, self.bounds,
                                   r.dw_min_ctoc, rng, scale)


CELLS = {"pcm": PCMCells, "rram": RRAMCells}
