"""Analogue crossbars (PCM or RRAM): tiled matrix-vector products through DACs and ADCs, read
noise, and the technology's own way of changing a weight.

Units. An array W (engine units) is stored as device weights w = W / scale, with `scale` fixed
at install so that max|W| sits at 1/weight_headroom of the device range: [−1, 1] for PCM (a
differential pair, g/g_max each side), [w_min, w_max] for RRAM.

A product x Wᵀ (forward) or e W (the transposed read) runs, per sample:
  1. DAC: the input is divided by its max |value| (noise management) and quantised to dac_bits
     over [−input_bound, input_bound];
  2. per tile of tile_size inputs: the partial sums, plus read noise (each weight read with
     independent Gaussian noise: added exactly as output noise of variance Σ_j x_j² σ_ij²),
     plus output_noise, clipped to ±output_bound and quantised by the ADC (adc_bits);
  3. the tiles' digitised partial sums are added and scaled back.
Biases stay in the digital periphery (float32).

PCM (aihwkit's PCM model): read noise σ = |g|·Q(g)·sqrt(ln((t + t_read)/(2 t_read))),
Q = min(0.2, 0.0088/max(g^0.65, 1e−3)), with t = t0 during training and t = inference_time_s
for inference. Training writes accumulate digitally and are applied in increments of
update_granularity, each with relative noise update_noise. `inference()` programs the trained
weights once (programming noise σ = (c0 + c1 g + c2 g²)/25 of full scale), lets them drift to
inference_time_s (ν per device, drawn from the conductance-dependent law) and, if enabled,
rescales each array by Σ|w_programmed| / Σ|w_drifted| (global drift compensation).

RRAM (aihwkit pulsed devices): an update becomes n = round(−Δw/dw) pulses (stochastic rounding,
at most max_pulses), each moving w by dw·(1 ± up_down) — with soft bounds ×(1 − w/w_max) up,
×(1 − w/w_min) down — with cycle-to-cycle noise dw_min_ctoc·dw per pulse; dw and up_down vary
per device (dw_min_dtod, up_down_dtod). Reads add Gaussian noise read_noise·w_max.
"""

from __future__ import annotations

import numpy as np

from neurodecorr.devices.ideal import IdealDevice
from neurodecorr.devices.quantise import stochastic_round
from neurodecorr.keys import ArrayKey, Role
from neurodecorr.numerics import DTYPE


def pcm_read_sigma(g: np.ndarray, t_s: float, t_read_s: float) -> np.ndarray:
    """Relative 1/f read-noise std of PCM conductances g = |w| ∈ [0, 1] at time t_s."""
    q = np.minimum(0.2, 0.0088 / np.maximum(g ** 0.65, 1e-3))
    return (q * np.sqrt(np.log((t_s + t_read_s) / (2 * t_read_s)))).astype(DTYPE)


def pcm_program_sigma(g: np.ndarray, coeffs) -> np.ndarray:
    """Programming-noise std, in units of g_max, for target conductances g = |w| ∈ [0, 1]."""
    c0, c1, c2 = coeffs
    return ((c0 + c1 * g + c2 * g * g) / 25.0).astype(DTYPE)


def pcm_drift(g: np.ndarray, t_s: float, t0_s: float, rng: np.random.Generator) -> np.ndarray:
    """g(t) = g·((t + t0)/t0)^(−ν), ν = |μν + σν ξ| drawn per device from its conductance."""
    log_g = np.log(np.maximum(g, 1e-6))
    mu = np.clip(-0.0155 * log_g + 0.0244, 0.049, 0.1)
    sd = np.clip(-0.0125 * log_g - 0.0059, 0.008, 0.045)
    nu = np.abs(mu + sd * rng.standard_normal(g.shape, dtype=DTYPE))
    return (g * ((t_s + t0_s) / t0_s) ** (-nu)).astype(DTYPE)


class CrossbarDevice(IdealDevice):
    def __init__(self, profile, rng=None, counter=None, read_time_s: float | None = None):
        super().__init__(profile, rng, counter)
        self.xb = profile.crossbar
        self.pcm, self.rram = profile.pcm, profile.rram
        self.scales: dict[ArrayKey, float] = {}
        # per-array device state: (what, key) → array; what is "acc" (PCM accumulators), "dw"
        # and "ud" (RRAM step sizes and up/down asymmetries)
        self.extra: dict[tuple[str, ArrayKey], np.ndarray] = {}
        self._noise_sq: dict[ArrayKey, tuple[np.ndarray, np.ndarray]] = {}
        if read_time_s is None and self.pcm is not None:
            read_time_s = self.pcm.t0_s
        self.read_time_s = read_time_s

    # ----------------------------------------------------------------- install and write
    def _range(self) -> float:
        return 1.0 if self.pcm is not None else min(-self.rram.w_min, self.rram.w_max)

    def install(self, key, array):
        if key.role is Role.b:
            return
        max_abs = float(np.max(np.abs(array))) if array.size else 0.0
        self.scales[key] = max(max_abs, 1e-12) * self.xb.weight_headroom / self._range()
        if self.pcm is not None:
            self.extra["acc", key] = np.zeros_like(array)
        else:
            r = self.rram
            self.extra["dw", key] = np.maximum(
                r.dw_min * (1 + r.dw_min_dtod * self.rng.standard_normal(array.shape)), 0).astype(DTYPE)
            self.extra["ud", key] = (r.up_down + r.up_down_dtod
                                       * self.rng.standard_normal(array.shape)).astype(DTYPE)

    def write(self, array, delta, key):
        if key.role is Role.b:
            super().write(array, delta, key)
            return
        self._noise_sq.pop(key, None)
        rescaled = self.xb.adapt_range and self._adapt_scale(array, delta, key)
        scale = DTYPE(self.scales[key])
        w = array / scale
        change = -delta / scale
        update = self._pcm_update if self.pcm is not None else self._rram_update
        w, moved = update(w, change, key)
        # a rescale reprograms every (nonzero) device; else the moved ones
        self.counter.writes(key, array if rescaled else moved, array.size)
        np.multiply(w, scale, out=array)

    def _adapt_scale(self, array, delta, key) -> bool:
        """Reset the array's digital scale when the written values would leave the device range
        or use under a quarter of it; the devices are reprogrammed to the same weights.
        Returns whether it did."""
        target_max = float(np.max(np.abs(array - delta))) if array.size else 0.0
        limit = self._range() * self.scales[key]
        fitted = max(target_max, 1e-12) * self.xb.weight_headroom / self._range()
        if target_max > limit or 4 * fitted < self.scales[key]:
            acc = self.extra.get(("acc", key))
            if acc is not None:
                acc *= DTYPE(self.scales[key] / fitted)  # accumulators are in device units
            self.scales[key] = fitted
            return True
        return False

    def _pcm_update(self, w, change, key):
        acc = self.extra["acc", key]
        acc += change
        eps = DTYPE(self.pcm.update_granularity)
        n = np.trunc(acc / eps)
        moved = n != 0
        if moved.any():
            inc = n[moved] * eps
            acc[moved] -= inc
            noise = self.pcm.update_noise * np.sqrt(np.abs(n[moved])) * eps
            w[moved] += inc + noise * self.rng.standard_normal(inc.shape, dtype=DTYPE)
        return np.clip(w, -1, 1, out=w), int(np.count_nonzero(moved))

    def _rram_update(self, w, change, key):
        r = self.rram
        dw, ud = self.extra["dw", key], self.extra["ud", key]
        n = np.clip(stochastic_round(change / np.maximum(dw, DTYPE(1e-12)), self.rng),
                    -r.max_pulses, r.max_pulses)
        moved = n != 0
        if moved.any():
            n_m, w_m, dw_m, ud_m = n[moved], w[moved], dw[moved], ud[moved]
            up = n_m > 0
            step = dw_m * np.where(up, 1 + ud_m, 1 - ud_m)
            if r.soft_bounds:
                step = step * np.where(up, 1 - w_m / r.w_max, 1 - w_m / r.w_min)
            step = np.maximum(step, 0)
            noise = r.dw_min_ctoc * step * np.sqrt(np.abs(n_m))
            w[moved] = w_m + n_m * step + noise * self.rng.standard_normal(n_m.shape, dtype=DTYPE)
        return np.clip(w, r.w_min, r.w_max, out=w), int(np.count_nonzero(moved))

    # ----------------------------------------------------------------- reads
    def _read_noise_sq(self, W, key):
        """σ_ij² of each device weight's read noise, in device units (cached until a write)."""
        cached = self._noise_sq.get(key)
        if cached is not None and cached[0] is W:
            return cached[1]
        if self.pcm is not None and self.pcm.read_noise:
            g = np.abs(W) / DTYPE(self.scales[key])
            s = g * pcm_read_sigma(g, self.read_time_s, self.pcm.t_read_s)
            sq = (s * s).astype(DTYPE)
        else:
            sq = None
        self._noise_sq[key] = (W, sq)
        return sq

    def mvm(self, x, W, key):
        self.counter.product(key, x, W.shape[0])
        return self._product(x, W, key, transposed=False)

    def mvm_t(self, e, W, key):
        self.counter.product(key, e, W.shape[1])
        return self._product(e, W, key, transposed=True)

    def _product(self, x, W, key, transposed):
        xb = self.xb
        scale = DTYPE(self.scales[key])
        w = W / scale                       # (n_out, n_in) device units
        noise_sq = self._read_noise_sq(W, key)
        if transposed:
            w = w.T
            noise_sq = None if noise_sq is None else noise_sq.T
        x_max = np.max(np.abs(x), axis=1, keepdims=True)
        x_max[x_max == 0] = 1
        levels = 2 ** (xb.dac_bits - 1) - 1
        xq = np.rint(np.clip(x / x_max, -1, 1) * levels) * DTYPE(xb.input_bound / levels)
        adc_step = DTYPE(2 * xb.output_bound / (2 ** xb.adc_bits - 2))
        rram_sd = (self.rram.read_noise * self.rram.w_max) if self.rram is not None else 0.0
        y = np.zeros((len(x), w.shape[0]), dtype=DTYPE)
        for k in range(0, w.shape[1], xb.tile_size):
            xt = xq[:, k:k + xb.tile_size]
            part = xt @ w[:, k:k + xb.tile_size].T
            var = np.zeros_like(part) if noise_sq is None else (xt * xt) @ noise_sq[:, k:k + xb.tile_size].T
            if rram_sd:
                var += DTYPE(rram_sd ** 2) * np.sum(xt * xt, axis=1, keepdims=True)
            sd = np.sqrt(var + DTYPE(xb.output_noise ** 2))
            part += sd * self.rng.standard_normal(part.shape, dtype=DTYPE)
            np.clip(part, -xb.output_bound, xb.output_bound, out=part)
            y += np.rint(part / adc_step) * adc_step
        return y * (x_max * (scale / DTYPE(xb.input_bound)))

    # ----------------------------------------------------------------- inference
    def inference(self):
        """PCM: the trained weights programmed once, drifted to inference_time_s and compensated;
        RRAM: unchanged (no drift model)."""
        if self.pcm is None:
            return self
        return _ProgrammedPCM(self)

    def state_arrays(self):
        out = {f"scale/{k.name}": np.array(v) for k, v in self.scales.items()}
        out.update({f"{what}/{key.name}": v for (what, key), v in self.extra.items()})
        return out

    def load_state_arrays(self, arrays):
        for name, v in arrays.items():
            what, _, key = name.partition("/")
            if what == "scale":
                self.scales[ArrayKey.parse(key)] = float(v)
            else:
                self.extra[what, ArrayKey.parse(key)] = np.array(v)


class _ProgrammedPCM(CrossbarDevice):
    """A read-only view of a PCM crossbar after one-shot programming and drift."""

    def __init__(self, trained: CrossbarDevice):
        super().__init__(trained.profile, trained.rng, trained.counter,
                         read_time_s=trained.pcm.inference_time_s)
        self.scales = trained.scales
        self._programmed: dict[ArrayKey, tuple[np.ndarray, np.ndarray, float]] = {}

    def _drifted(self, W, key):
        cached = self._programmed.get(key)
        if cached is not None and cached[0] is W:
            return cached[1]
        p = self.pcm
        scale = DTYPE(self.scales[key])
        w = W / scale
        g = np.abs(w)
        g_prog = np.clip(g + pcm_program_sigma(g, p.prog_noise_us)
                         * self.rng.standard_normal(g.shape, dtype=DTYPE), 0, 1)
        g_t = pcm_drift(g_prog, p.inference_time_s, p.t0_s, self.rng) if p.drift else g_prog
        gain = 1.0
        if p.drift_compensation and p.drift:
            gain = float(g_prog.sum() / max(float(g_t.sum()), 1e-12))
        result = (np.sign(w) * g_t * DTYPE(gain * scale)).astype(DTYPE)
        self._programmed[key] = (W, result, gain)
        return result

    def _read_noise_sq(self, W, key):
        """Read noise belongs to the drifted conductance g_t; the digital compensation gain then
        amplifies it with the signal."""
        cached = self._noise_sq.get(key)
        if cached is not None and cached[0] is W:
            return cached[1]
        gain = self._programmed[key][2]
        g = np.abs(W) / DTYPE(self.scales[key] * gain)
        s = g * pcm_read_sigma(g, self.read_time_s, self.pcm.t_read_s) * DTYPE(gain)
        self._noise_sq[key] = (W, (s * s).astype(DTYPE) if self.pcm.read_noise else None)
        return self._noise_sq[key][1]

    def _product(self, x, W, key, transposed):
        return super()._product(x, self._drifted(W, key), key, transposed)

    def write(self, array, delta, key):
        raise RuntimeError("the inference view of a PCM crossbar is read-only")
