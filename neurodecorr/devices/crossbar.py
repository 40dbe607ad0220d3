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
Biases stay in the digital periphery (float32). Where R lives (`storage`): on an array like any
weight; as R − I on an array, the identity a wire added in the periphery ("residual"); or in the
periphery, digitally ("periphery"): a float32 master copy in SRAM that updates read-modify-write
(the seed rule's steps, ~1e-4 of R's unit diagonal, are below float16's spacing of 1e-3 there),
read for products through float16 multipliers with float32 accumulation (both operands rounded
to float16 after a power-of-two scaling, as mixed-precision digital training does).

With read_noise_scope "step" every read of a training step sees one draw of the weights' read
noise (`begin_step` draws anew), only the output noise is per read; with training_reads k each
training product is the mean of k reads.

How a write reaches the devices is the profile's learning mechanism (`devices.mechanisms`,
`devices.transfer`) on the technology's cells (`devices.cells`).

PCM (aihwkit's PCM model): read noise σ = |g|·Q(g)·sqrt(ln((t + t_read)/(2 t_read))),
Q = min(0.2, 0.0088/max(g^0.65, 1e−3)), with t = t0 during training and t = inference_time_s
for inference. `inference()` is a fresh chip programmed once with the deployed network (see
`_ProgrammedPCM`: differential pairs, programming noise σ = (c0 + c1 g + c2 g²)/25 of full scale,
drift to inference_time_s with ν per device from the conductance-dependent law, and, if
enabled, global drift compensation).

RRAM (aihwkit pulsed devices): reads add Gaussian noise read_noise·w_max; its inference view is
the same devices, read once per product.
"""

from __future__ import annotations

import copy

import numpy as np

from neurodecorr import kernels
from neurodecorr.devices.cells import CELLS
from neurodecorr.devices.ideal import IdealDevice
from neurodecorr.devices.mechanisms import make_mechanism
from neurodecorr.keys import ArrayKey, Role
from neurodecorr.numerics import DTYPE

MASTER_BYTES = 4  # R kept in the digital periphery: a float32 master copy in SRAM


def _half(a: np.ndarray) -> np.ndarray:
    """a as a float16 multiplier's operand, held in float32: scaled by a power of two so that
    its largest entry is near float16's largest (the scaling of mixed-precision training; small
    errors would otherwise fall below float16's normal range), rounded to nearest, scaled back."""
    peak = kernels.max_abs(a)
    if not np.isfinite(peak) or peak == 0.0:
        return a
    shift = DTYPE(2.0 ** (15 - np.ceil(np.log2(peak))))  # peak·shift in (2^14, 2^15]
    return kernels.half(a, shift)


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


def _tile_bounds(n: int, tile: int) -> list[tuple[int, int]]:
    return [(k, min(k + tile, n)) for k in range(0, n, tile)]


def _tiled(x: np.ndarray, M: np.ndarray, tile: int) -> np.ndarray:
    """Per tile of `tile` rows of M (n_in, n_out), the partial products x[:, tile] M[tile]:
    (T, B, n_out). Full tiles are one stacked product over views; a last, shorter tile its own."""
    n_in = M.shape[0]
    full = n_in // tile
    out = np.empty((full + (n_in % tile > 0), len(x), M.shape[1]), dtype=DTYPE)
    if full:
        xs = x[:, :full * tile].reshape(len(x), full, tile).transpose(1, 0, 2)
        np.matmul(xs, M[:full * tile].reshape(full, tile, M.shape[1]), out=out[:full])
    if n_in % tile:
        np.matmul(x[:, full * tile:], M[full * tile:], out=out[full])
    return out


def _tiled_sums(x: np.ndarray, tile: int) -> np.ndarray:
    """Per tile of `tile` columns of x (B, n_in), each row's sum: (T, B, 1)."""
    return np.stack([x[:, a:b].sum(axis=1, keepdims=True) for a, b in _tile_bounds(x.shape[1], tile)])


class CrossbarDevice(IdealDevice):
    def __init__(self, profile, rng=None, counter=None, read_time_s: float | None = None):
        super().__init__(profile, rng, counter)
        self.xb = profile.crossbar
        self.pcm, self.rram = profile.pcm, profile.rram
        self.cells = CELLS[self.xb.technology](self.pcm if self.pcm is not None else self.rram)
        self.mechanism = make_mechanism(self.xb.mechanism, self)
        self.training = True  # the inference views read with one read per product, noise per read
        self.scales: dict[ArrayKey, float] = {}
        # per-array device state: (what, key) → array (mechanisms' accumulators, buffers and fast
        # arrays; the cells' per-device step sizes and asymmetries)
        self.extra: dict[tuple[str, ArrayKey], np.ndarray] = {}
        # per array: (the values they were computed for, σ of each device's read noise in device
        # units, σ² or None until read); a write updates the devices it moved (`_refresh_sigma`)
        self._sigma: dict[ArrayKey, list] = {}
        self._step_noise: dict[ArrayKey, np.ndarray] = {}  # read_noise_scope "step": this step's
        self._residual: dict[ArrayKey, np.ndarray] = {}     # R − I of residual arrays (cached)
        self._half_R: dict[ArrayKey, np.ndarray] = {}       # R in the periphery as float16 operands
        if read_time_s is None and self.pcm is not None:
            read_time_s = self.pcm.t0_s
        self.read_time_s = read_time_s

    # ----------------------------------------------------------------- where an array lives
    def storage(self, key: ArrayKey) -> str:
        """"bias" (digital periphery, float32), "periphery" (R kept digitally), "residual" (R − I
        on an array, the identity a wire) or "array"."""
        if key.role is Role.b:
            return "bias"
        if key.role is Role.R:
            return self.xb.decorrelation
        return "array"

    def _values(self, array: np.ndarray, key: ArrayKey) -> np.ndarray:
        """What the array's devices hold, in engine units: the array, or R − I."""
        if self.storage(key) != "residual":
            return array
        cached = self._residual.get(key)
        if cached is None or cached.shape != array.shape:
            cached = self._residual[key] = array - np.eye(len(array), dtype=DTYPE)
        return cached

    def begin_step(self) -> None:
        self._step_noise.clear()
        self._half_R.clear()

    # ----------------------------------------------------------------- install and write
    def install(self, key, array):
        if self.storage(key) in ("bias", "periphery"):
            return
        values = self._values(array, key)
        self._sigma.pop(key, None)
        max_abs = kernels.max_abs(values)
        self.scales[key] = max(max_abs, 1e-12) * self.xb.weight_headroom / self.cells.range
        self.mechanism.install(key, values / DTYPE(self.scales[key]))

    def write(self, array, delta, key):
        storage = self.storage(key)
        if storage == "bias":
            super().write(array, delta, key)
            return
        if storage == "periphery":  # a digital read-modify-write of the float32 master
            self._half_R.pop(key, None)
            np.subtract(array, delta, out=array)
            self.counter.periphery(key, ops=array.size, bytes=2 * MASTER_BYTES * array.size)
            return
        values = self._values(array, key)
        self._step_noise.pop(key, None)
        rescaled = self.xb.adapt_range and self._adapt_scale(values, delta, key)
        moved = self.mechanism.write(key, values, delta, DTYPE(self.scales[key]))
        # a rescale reprograms every (nonzero) device; else the moved ones
        self.counter.writes(key, values if rescaled else moved, values.size)
        if rescaled:
            self._sigma.pop(key, None)
        else:
            self._refresh_sigma(values, key, moved)
        if storage == "residual":
            np.add(values, np.eye(len(values), dtype=DTYPE), out=array)

    def _adapt_scale(self, values, delta, key) -> bool:
        """Reset the array's digital scale when the written values would leave the device range
        or use under a quarter of it; the devices are reprogrammed to the same weights.
        Returns whether it did."""
        target_max = kernels.max_abs_diff(values, delta)
        limit = self.cells.range * self.scales[key]
        fitted = max(target_max, 1e-12) * self.xb.weight_headroom / self.cells.range
        if target_max > limit or 4 * fitted < self.scales[key]:
            self.mechanism.rescale(key, self.scales[key] / fitted)  # state held in device units
            self.scales[key] = fitted
            return True
        return False

    # ----------------------------------------------------------------- reads
    def _read_sigma(self, w: np.ndarray) -> np.ndarray | float | None:
        """Std of each device weight's read noise, in device units (None: no read noise)."""
        if self.pcm is not None:
            if not self.pcm.read_noise:
                return None
            g = np.abs(w)
            return g * pcm_read_sigma(g, self.read_time_s, self.pcm.t_read_s)
        return DTYPE(self.rram.read_noise * self.rram.w_max) if self.rram.read_noise else None

    def _device_sigma(self, W, key) -> list | None:
        """[W, σ, σ² or None] of the array whose values are W, PCM's per-device read noise in
        device units (None without it)."""
        if self.pcm is None or not self.pcm.read_noise:
            return None
        cached = self._sigma.get(key)
        if cached is None or cached[0] is not W:
            cached = self._sigma[key] = [W, self._read_sigma(np.abs(W) / DTYPE(self.scales[key])), None]
        return cached

    def _refresh_sigma(self, values, key, moved) -> None:
        """After a write: σ (and σ²) anew for the devices it moved, the rest as they were (a
        step of mixed precision pulses a small part of an array; the σ law costs a power and
        a logarithm per device)."""
        cached = self._sigma.get(key)
        if cached is None or cached[0] is not values:
            return
        index = kernels.nonzero_indices(moved)
        sigma = self._read_sigma(np.abs(values.reshape(-1)[index]) / DTYPE(self.scales[key]))
        cached[1].reshape(-1)[index] = sigma
        if cached[2] is not None:
            cached[2].reshape(-1)[index] = sigma * sigma

    def _read_noise_sq(self, W, key):
        """σ_ij² of each device weight's read noise, in device units (kept up to date by the
        writes); None for RRAM, whose read noise is the same for every device (added in
        `_product`)."""
        cached = self._device_sigma(W, key)
        if cached is None:
            return None
        if cached[2] is None:
            cached[2] = (cached[1] * cached[1]).astype(DTYPE)
        return cached[2]

    def _per_step(self) -> bool:
        return self.training and self.xb.read_noise_scope == "step"

    def _reads(self) -> int:
        return self.xb.training_reads if self.training else 1

    def _step_read(self, W, key) -> np.ndarray:
        """The weights as every read of this training step sees them (scope "step"): the stored
        weights plus one draw of each device's read noise, in engine units."""
        noisy = self._step_noise.get(key)
        if noisy is None:
            scale = DTYPE(self.scales[key])
            cached = self._device_sigma(W, key)
            sigma = cached[1] if cached is not None else self._read_sigma(np.abs(W) / scale)
            noisy = W if sigma is None else kernels.add_noise(W, sigma, scale, self.rng)
            self._step_noise[key] = noisy
        return noisy

    def mvm(self, x, W, key):
        return self._read(x, W, key, transposed=False)

    def mvm_t(self, e, W, key):
        return self._read(e, W, key, transposed=True)

    def _read(self, x, W, key, transposed):
        n_out = W.shape[1] if transposed else W.shape[0]
        storage = self.storage(key)
        if storage == "periphery":  # the master read from SRAM once per batch, float16 MACs
            self.counter.product(key, x, n_out, periphery=True)
            self.counter.periphery(key, bytes=MASTER_BYTES * W.size)
            W16 = self._half_R.get(key)
            if W16 is None:  # operands of this step's reads (dropped at a write and each step)
                W16 = self._half_R[key] = _half(W)
            x16 = _half(x)
            return x16 @ W16 if transposed else x16 @ W16.T
        reads = self._reads()
        for _ in range(reads):
            self.counter.product(key, x, n_out)
        values = self._values(W, key)
        y = self._product(x, values, key, transposed)
        if storage == "residual":  # the identity: a wire, added in the digital periphery
            self.counter.periphery(key, ops=x.size)
            y += x
        return y

    def read_columns(self, A: np.ndarray, cols: np.ndarray, key: ArrayKey) -> np.ndarray:
        """Columns `cols` of a fast array A (device units, (n_out, n_in)) read with one-hot
        inputs: v = A[:, cols] + read noise + output noise, clipped and digitised by the ADC.
        Returns (n_out, len(cols)) in device units."""
        xb = self.xb
        self.counter.product(key, np.ones((len(cols), 1), DTYPE), A.shape[0])
        v = A[:, cols].copy()
        sigma = self._read_sigma(v)
        var = DTYPE(xb.output_noise ** 2) + (0 if sigma is None else sigma * sigma)
        v += np.sqrt(var) * kernels.normals(v.shape, self.rng)
        adc_step = DTYPE(2 * xb.output_bound / (2 ** xb.adc_bits - 2))
        np.clip(v, -xb.output_bound, xb.output_bound, out=v)
        return np.rint(v / adc_step) * adc_step

    def _product(self, x, W, key, transposed):
        """x through the array's tiles (all tiles at once: one batched product, one noise draw,
        one fused pass for the ADCs), in engine units."""
        xb = self.xb
        scale = DTYPE(self.scales[key])
        per_step = self._per_step()
        if per_step:  # this step's read of the weights; only the output noise is per read
            W = self._step_read(W, key)
            noise_sq, rram_sd = None, 0.0
        else:
            noise_sq = self._read_noise_sq(W, key)
            rram_sd = (self.rram.read_noise * self.rram.w_max) if self.rram is not None else 0.0
        # y = xq M with M (n_in, n_out): Wᵀ forward, W transposed; tiles split M's first axis
        M = W if transposed else W.T
        noisy_reads = noise_sq is not None or bool(rram_sd)
        xq, x_max, *squares = kernels.dac(x, 2 ** (xb.dac_bits - 1) - 1, xb.input_bound, squares=noisy_reads)
        parts = _tiled(xq, M, xb.tile_size)                   # engine units; ÷ scale: device units
        var = None  # the read noise's variance per tile and output (PCM) or per tile (RRAM)
        if noise_sq is not None:
            var = _tiled(squares[0], noise_sq if transposed else noise_sq.T, xb.tile_size)
        elif rram_sd:
            var = DTYPE(rram_sd ** 2) * _tiled_sums(squares[0], xb.tile_size)  # (T, B, 1)
        return kernels.adc_sum(parts, self.rng, inv_scale=1 / scale, bound=xb.output_bound,
                               step=2 * xb.output_bound / (2 ** xb.adc_bits - 2), noise_sd=xb.output_noise,
                               var=var, sd_factor=1 / np.sqrt(self._reads()),  # the mean of the reads
                               row_scale=x_max * (scale / DTYPE(xb.input_bound)))

    # ----------------------------------------------------------------- inference
    def inference(self):
        """PCM: the trained weights programmed once, drifted to inference_time_s and compensated;
        RRAM: the same devices (no drift model). Both read once per product, noise per read."""
        if self.pcm is None:
            view = copy.copy(self)
            view.training = False
            return view
        return _ProgrammedPCM(self)

    def state_arrays(self):
        out = {f"scale/{k.name}": np.array(v) for k, v in self.scales.items()}
        out.update({f"{what}/{key.name}": v for (what, key), v in self.extra.items()})
        # R − I as the devices hold it: R = I + (R − I) in float32 drops the low bits of small
        # entries, so a resumed run reads back exactly this, not R − I recomputed
        out.update({f"residual/{k.name}": v for k, v in self._residual.items()})
        return out

    def load_state_arrays(self, arrays):
        self._residual.clear()
        self._sigma.clear()  # the scales (and the arrays) are the checkpoint's
        for name, v in arrays.items():
            what, _, key = name.partition("/")
            if what == "scale":
                self.scales[ArrayKey.parse(key)] = float(v)
            elif what == "residual":
                self._residual[ArrayKey.parse(key)] = np.array(v, dtype=DTYPE)
            else:
                self.extra[what, ArrayKey.parse(key)] = np.array(v)


class _ProgrammedPCM(CrossbarDevice):
    """A fresh PCM chip programmed once with the trained network, read after drift.

    It is given the deployed network (`folds_for_inference`: decorrelation folded into the
    weights, so no R array is programmed) unless R is kept (`evaluate --keep-decorrelation`):
    then R is programmed where the profile keeps it (an array, R − I on an array, or the
    digital periphery). Each weight is a differential pair (aihwkit's PCM
    converter): w > 0 programs g⁺ = w, g⁻ = 0, w < 0 the reverse, on a scale set afresh from the
    array's largest weight. Both devices of a pair take programming noise (σ from their own
    target conductance: an idle device at 0 is programmed to |noise|, not exactly 0), drift with
    their own ν, and are read with their own 1/f noise; global drift compensation rescales the
    array by Σ g_programmed / Σ g_drifted."""

    folds_for_inference = True

    def __init__(self, trained: CrossbarDevice):
        super().__init__(trained.profile, trained.rng, trained.counter,
                         read_time_s=trained.pcm.inference_time_s)
        self.training = False
        # per array: (the array, its programmed-and-drifted weights, read-noise variances)
        self._programmed: dict[ArrayKey, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}


    def _program(self, W, key):
        cached = self._programmed.get(key)
        if cached is not None and cached[0] is W:
            return cached
        p = self.pcm
        max_abs = kernels.max_abs(W)
        scale = max(max_abs, 1e-12) * self.xb.weight_headroom  # a fresh chip: range from its weights
        self.scales[key] = scale
        w = (W / DTYPE(scale)).astype(DTYPE)
        pair = [np.maximum(w, 0), np.maximum(-w, 0)]  # g⁺, g⁻ in units of g_max
        programmed = [np.clip(g + pcm_program_sigma(g, p.prog_noise_us)
                              * self.rng.standard_normal(g.shape, dtype=DTYPE), 0, 1) for g in pair]
        drifted = [pcm_drift(g, p.inference_time_s, p.t0_s, self.rng) if p.drift else g for g in programmed]
        gain = 1.0
        if p.drift_compensation and p.drift:
            gain = float(sum(g.sum() for g in programmed) / max(float(sum(g.sum() for g in drifted)), 1e-12))
        weights = ((drifted[0] - drifted[1]) * DTYPE(gain * scale)).astype(DTYPE)
        noise_sq = None
        if p.read_noise:  # each device's 1/f noise, amplified with the signal by the compensation
            noise_sq = sum((g * pcm_read_sigma(g, self.read_time_s, p.t_read_s)) ** 2 for g in drifted)
            noise_sq = (noise_sq * DTYPE(gain * gain)).astype(DTYPE)
        self._programmed[key] = (W, weights, noise_sq)
        return self._programmed[key]

    def _read_noise_sq(self, W, key):
        """σ_ij² of each pair's read noise, in device units (W: the programmed weights)."""
        for _, weights, noise_sq in self._programmed.values():
            if weights is W:
                return noise_sq
        raise KeyError(key)  # pragma: no cover - always programmed before it is read

    def _product(self, x, W, key, transposed):
        return super()._product(x, self._program(W, key)[1], key, transposed)

    def write(self, array, delta, key):
        raise RuntimeError("the inference view of a PCM crossbar is read-only")
