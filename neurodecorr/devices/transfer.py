"""The Tiki-Taka family of analogue training algorithms, as aihwkit runs them (research notes:
its TransferCompound, BufferedTransferCompound, ChoppedTransferCompound and
DynamicTransferCompound), on neurodecorr's batched updates.

Each weight array is two arrays of the same cells: a fast array A, which takes the updates, and
the slow array C, the weight (W = γ·A + C; γ = 0: A is hidden). Per training step:

1. A ← A + fast_lr·change (direct stochastic pulses). chopped-ttv2 and agad multiply each
   input column's change by its chopper c_j ∈ {+1, −1}.
2. Every `every` steps, the next `columns` columns i of A (in order, wrapping) are read through
   the periphery — v = A[:, i] + read and output noise, digitised by the ADC — and moved to C:
   - tiki-taka (Gokmen & Haensch 2020): C[:, i] += transfer_lr·v as direct pulses;
   - ttv2 (Gokmen 2021): a digital buffer H[:, i] += transfer_lr·v / step; where |H| ≥
     buffer_threshold, C gets one step of sign(H) and H forgets to momentum·H;
   - chopped-ttv2 (Rasch et al. 2024): as ttv2 with v de-chopped (× c_i) before it enters H,
     then c_i flips with probability chop_probability: A's bias (its cells' pull toward their
     symmetry point) alternates sign and averages out of H;
   - agad (Rasch et al. 2024): as chopped-ttv2, but H takes v − ref_i, where ref is the running
     mean of the column's readouts over the previous chopper period (rate tail_weight/period):
     a dynamic reference for A's offset instead of its symmetry point.
   In aihwkit the transfer is counted in single-sample updates; here one step is one batch, so
   `columns` plays the role of aihwkit's columns per mini-batch (one per sample: the batch size).

Cost, per transfer: a read of `columns` one-hot inputs (an array product: conversions and MACs),
H's read-add-write in the digital periphery, and the pulses on A and C.

State per array in device.extra: "A", "C", "H", "chop" (n_in), "ref", "mean" (agad), "next"
(the next column) — all in device units where they are weights.
"""

from __future__ import annotations

import numpy as np

from neurodecorr import kernels
from neurodecorr.devices.mechanisms import F32_BYTES, direct_pulses
from neurodecorr.keys import ArrayKey
from neurodecorr.numerics import DTYPE

VARIANTS = ("tiki-taka", "ttv2", "chopped-ttv2", "agad")


class Transfer:
    def __init__(self, device, variant: str):
        if variant not in VARIANTS:
            raise ValueError(f"unknown transfer variant {variant!r}; expected one of {VARIANTS}")
        self.device, self.variant, self.spec = device, variant, device.profile.transfer
        self.chopped = variant in ("chopped-ttv2", "agad")

    def install(self, key: ArrayKey, w: np.ndarray) -> None:
        dev, cells = self.device, self.device.cells
        cells.install(dev, key, w.shape)            # the cells of C (the weight)
        cells.install(dev, key, w.shape, "A")       # and of A
        dev.extra["C", key] = w.copy()
        dev.extra["A", key] = np.zeros_like(w)
        dev.extra["H", key] = np.zeros_like(w)
        dev.extra["chop", key] = np.ones(w.shape[1], dtype=DTYPE)
        dev.extra["next", key] = np.zeros((), dtype=np.int64)
        dev.extra["steps", key] = np.zeros((), dtype=np.int64)
        if self.variant == "agad":
            dev.extra["ref", key] = np.zeros_like(w)
            dev.extra["mean", key] = np.zeros_like(w)

    def effective(self, key: ArrayKey, w: np.ndarray) -> np.ndarray:
        """W = γ·A + C, written into w."""
        dev, gamma = self.device, self.spec.gamma
        C = dev.extra["C", key]
        if gamma:
            np.add(C, DTYPE(gamma) * dev.extra["A", key], out=w)
        else:
            w[...] = C
        return w

    def rescale(self, key: ArrayKey, factor: float) -> None:
        for what in ("A", "C", "H", "ref", "mean"):
            if (what, key) in self.device.extra:
                self.device.extra[what, key] *= DTYPE(factor)

    def write(self, key: ArrayKey, values: np.ndarray, delta: np.ndarray, scale) -> np.ndarray:
        """values ← values − delta through A and C (values: scale × the device weights, in place;
        the family works on device units, converted here); returns the mask of devices moved."""
        w = values / scale
        moved = self._write_devices(key, w, np.divide(delta, -scale))
        np.multiply(w, scale, out=values)
        return moved

    def _write_devices(self, key: ArrayKey, w: np.ndarray, change: np.ndarray) -> np.ndarray:
        dev, cells, spec = self.device, self.device.cells, self.spec
        A, C = dev.extra["A", key], dev.extra["C", key]
        chop = dev.extra["chop", key]
        update = DTYPE(spec.fast_lr) * change
        if self.chopped:
            update *= chop[None, :]
        params_A = cells.params(dev, key, "A")
        n = direct_pulses(cells, update, params_A, dev.rng)
        cells.pulse(A, n, params_A, dev.rng)
        moved = n != 0
        steps = dev.extra["steps", key]
        steps += 1
        if int(steps) % spec.every == 0:
            moved |= self._transfer(key, A, C, chop)
        self.effective(key, w)
        return moved

    def _transfer(self, key: ArrayKey, A: np.ndarray, C: np.ndarray, chop: np.ndarray) -> np.ndarray:
        """Move the next `columns` columns of A into C; returns the mask of C's devices that moved."""
        dev, cells, spec = self.device, self.device.cells, self.spec
        n_in = A.shape[1]
        start = int(dev.extra["next", key])
        cols = (start + np.arange(min(spec.columns, n_in))) % n_in
        dev.extra["next", key][...] = (start + len(cols)) % n_in
        v = dev.read_columns(A, cols, key)                     # (n_out, len(cols)) device units
        params_C = cells.params(dev, key, "", cols)
        C_cols = C[:, cols]
        if self.variant == "tiki-taka":
            n = direct_pulses(cells, DTYPE(spec.transfer_lr) * v, params_C, dev.rng)
        else:
            n = self._buffered(key, cols, v, chop, np.maximum(cells.step(params_C), kernels.MIN_STEP))
        cells.pulse(C_cols, n, params_C, dev.rng)
        C[:, cols] = C_cols
        moved = np.zeros(C.shape, dtype=bool)
        moved[:, cols] = n != 0
        if self.chopped:
            flips = dev.rng.random(len(cols)) < spec.chop_probability
            chop[cols[flips]] *= DTYPE(-1)
            if self.variant == "agad":  # a column whose chopper flips starts a new period
                ref, mean = dev.extra["ref", key], dev.extra["mean", key]
                ref[:, cols[flips]] = mean[:, cols[flips]]
        return moved

    def _buffered(self, key, cols, v, chop, step) -> np.ndarray:
        """H += transfer_lr·v / step (de-chopped, minus agad's reference); ±1 step where
        |H| ≥ threshold, after which H forgets to momentum·H."""
        dev, spec = self.device, self.spec
        H = dev.extra["H", key]
        signal = v * chop[cols][None, :] if self.chopped else v
        if self.variant == "agad":
            ref, mean = dev.extra["ref", key], dev.extra["mean", key]
            period = max(2.0, 1.0 / max(spec.chop_probability, 1e-12))
            beta = DTYPE(min(spec.tail_weight / period, 1.0))
            mean[:, cols] = (1 - beta) * mean[:, cols] + beta * v
            signal = (v - ref[:, cols]) * chop[cols][None, :]
        h = H[:, cols] + DTYPE(spec.transfer_lr) * signal / step
        n = np.where(np.abs(h) >= spec.buffer_threshold, np.sign(h), 0).astype(DTYPE)
        h = np.where(n != 0, DTYPE(spec.momentum) * h, h)
        H[:, cols] = h
        dev.counter.periphery(key, ops=h.size, bytes=2 * F32_BYTES * h.size)
        return n
