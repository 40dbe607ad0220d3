"""A Loihi-style digital chip: fixed-point synapses, graded spikes, saturating neuron state.

- Synapses: signed `weight_bits` mantissas times 2^e, one exponent e per array, fixed when the
  array is installed (max|W| uses 1/weight_headroom of the range), as Lava's Dense
  (num_weight_bits, weight_exp). Biases live in the neuron at state precision.
- Writes: W − delta rounded back to the array's grid, stochastically by default (Loihi's learning
  engine), and saturated at the mantissa range.
- Activations: graded-spike payloads, signed fixed point (payload_bits, payload_frac_bits).
- Neuron state h: signed fixed point (state_bits, state_frac_bits), saturating.
- Learning signals (modulators, NP noise): block floating point, modulator_bits mantissas with one
  exponent per array, stochastically rounded.

The engine keeps float32 arrays whose values lie exactly on these grids.
"""

from __future__ import annotations

import numpy as np

from neurodecorr import kernels
from neurodecorr.devices.ideal import IdealDevice
from neurodecorr.devices.quantise import block_float, fixed_point, fixed_point_grid, shared_exponent, to_grid
from neurodecorr.keys import ArrayKey, Role
from neurodecorr.numerics import DTYPE

TAG_MIN, TAG_MAX = -256, 255  # Lava's tag_1: 9 bits, signed


class DigitalDevice(IdealDevice):
    def __init__(self, profile, rng=None, counter=None):
        super().__init__(profile, rng, counter)
        self.spec = profile.digital
        self.exponents: dict[ArrayKey, int] = {}
        self.tags: dict[ArrayKey, np.ndarray] = {}  # weight_update "tag": per synapse, int16
        # decorrelation_slices 2: R's grid values (R − offset) as a coarse and a fine part, and
        # the updates each R took since its last carry
        self.coarse: dict[ArrayKey, np.ndarray] = {}
        self.fine: dict[ArrayKey, np.ndarray] = {}
        self.since_carry: dict[ArrayKey, int] = {}

    def _residual(self, key: ArrayKey) -> bool:
        return key.role is Role.R and self.spec.decorrelation == "residual"

    def _sliced(self, key: ArrayKey) -> bool:
        return key.role is Role.R and self.spec.decorrelation_slices == 2

    def _offset(self, array: np.ndarray, key: ArrayKey):
        """What the grid holds is array − offset: the identity for residual R, else 0."""
        return np.eye(len(array), dtype=DTYPE) if self._residual(key) else DTYPE(0)

    def install(self, key, array):
        if key.role is Role.b:
            array[...] = self.state(array)
            return
        offset = self._offset(array, key)
        values = array - offset
        max_abs = kernels.max_abs(values)
        self.exponents[key] = shared_exponent(max_abs, self.spec.weight_bits, self.spec.weight_headroom)
        array[...] = self._weight_grid(values, key, None) + offset
        if self._sliced(key):  # the fine connection starts empty
            self.coarse[key], self.fine[key] = array - offset, np.zeros_like(array)
            self.since_carry[key] = 0
        update = self.spec.decorrelation_update if key.role is Role.R else self.spec.weight_update
        if update == "tag":
            self.tags[key] = np.zeros(array.shape, dtype=np.int16)

    def _adapt_exponent(self, key, max_abs) -> int:
        """Raise the exponent before the mantissas saturate; lower it when the values use under
        a quarter of the range. Either re-establishes the profile's headroom. Returns the change."""
        current = self.exponents[key]
        top = 2 ** (self.spec.weight_bits - 1) - 1
        fitted = shared_exponent(max_abs, self.spec.weight_bits, self.spec.weight_headroom)
        if max_abs > top * 2.0 ** current or fitted <= current - 2:
            self.exponents[key] = fitted
        return self.exponents[key] - current

    def _weight_grid(self, values, key, rng):
        step = 2.0 ** self.exponents[key]
        top = 2 ** (self.spec.weight_bits - 1)
        return to_grid(values, step, -top * step, (top - 1) * step, rng)

    def mvm(self, x, W, key):
        self._count_extra(x, W.shape[0], key)
        return super().mvm(x, W, key)

    def count_product(self, x, W, key):
        self._count_extra(x, W.shape[0], key)
        super().count_product(x, W, key)

    def _count_extra(self, x, n_out, key):
        """What R's wiring reads beside the array, either way: a residual R's identity (one
        fixed synapse per input) and a sliced R's second, fine connection."""
        if self._residual(key):
            self.counter.product(key, x, 1)
        if self._sliced(key):
            self.counter.product(key, x, n_out)

    @property
    def repeatable_products(self) -> bool:
        """Fixed-point products and payloads, no noise: the same bits every time."""
        return type(self).mvm is DigitalDevice.mvm and type(self).activation is DigitalDevice.activation

    def mvm_t(self, e, W, key):
        self._count_extra(e, W.shape[1], key)
        return super().mvm_t(e, W, key)

    @property
    def neuron_grids(self):
        """The state's and the payloads' fixed-point grids, as `state` and `activation` round
        onto them (to nearest): for the forward pass's fused neurons."""
        if type(self).state is not DigitalDevice.state or type(self).activation is not DigitalDevice.activation:
            return None
        s = self.spec
        return fixed_point_grid(s.state_bits, s.state_frac_bits), fixed_point_grid(s.payload_bits, s.payload_frac_bits)

    def activation(self, a):
        return fixed_point(a, self.spec.payload_bits, self.spec.payload_frac_bits)

    def state(self, h):
        return fixed_point(h, self.spec.state_bits, self.spec.state_frac_bits)

    def signal(self, e):
        return block_float(e, self.spec.modulator_bits, self._rounding_rng())

    def _rounding_rng(self):
        return self.rng if self.spec.rounding == "stochastic" else None

    def write(self, array, delta, key):
        if key.role is Role.b:
            s = self.spec
            new = fixed_point(array - delta, s.state_bits, s.state_frac_bits, self._rounding_rng())
            self.counter.writes(key, new != array, array.size)
            array[...] = new
            return
        residual = self._residual(key)
        changed = 0
        if self.spec.adapt_range:
            changed = self._adapt_exponent(key, kernels.max_abs_diff(array, delta, diag=residual))
        if self._sliced(key):
            self._sliced_write(array, delta, key, changed)
            return
        if key in self.tags:
            offset = self._offset(array, key)
            values = array - offset
            new, moved = self._tag_update(key, values, delta, changed)
            self.counter.writes(key, moved, array.size)
            array[...] = new + offset
            return
        # array − offset − delta on the grid, + offset: one fused pass (`kernels.grid_write_`)
        step = 2.0 ** self.exponents[key]
        top = 2 ** (self.spec.weight_bits - 1)
        rng = self._rounding_rng()
        moved = kernels.grid_write_(array, delta, step, -top, top - 1,
                                    None if rng is None else kernels.draw_key(rng), diag=residual)
        self.counter.writes(key, moved, array.size)

    def _sliced_write(self, array, delta, key, exponent_change):
        """R on two connections. An update goes to the fine slice; on every consolidate_every-th
        update the whole coarse steps the fine slice then holds (with this update) are carried
        into the coarse slice (saturating at its range), the rest is rounded onto the fine grid
        (stochastically, saturating at ± one coarse step). Carried every update, R lives on a
        15-bit grid; between carries the fine slice's range bounds what it can take in."""
        coarse, fine = self.coarse[key], self.fine[key]
        bits = self.spec.weight_bits
        top = 2 ** (bits - 1)
        step = 2.0 ** self.exponents[key]
        fine_step = step * 2.0 ** -(bits - 1)  # the fine slice spans ± one coarse step
        rng = self._rounding_rng()
        if exponent_change:  # re-grid at the new exponent: coarse the nearest, fine the rest
            total = coarse + fine
            coarse[...] = self._weight_grid(total, key, None)
            fine[...] = to_grid(total - coarse, fine_step, -top * fine_step, (top - 1) * fine_step)
        self.since_carry[key] += 1
        moved = 0
        if self.since_carry[key] >= self.spec.consolidate_every:
            self.since_carry[key] = 0
            step32 = DTYPE(step)
            carry = np.rint((fine - delta) / step32) * step32
            np.clip(carry, DTYPE(-top * step) - coarse, DTYPE((top - 1) * step) - coarse, out=carry)
            coarse += carry
            moved = int(np.count_nonzero(carry))  # each carry rewrites a coarse synapse
            delta = delta + carry
        moved += kernels.grid_write_(fine, delta, fine_step, -top, top - 1,
                                     None if rng is None else kernels.draw_key(rng))
        self.counter.writes(key, moved, array.size)
        np.add(coarse, fine, out=array)
        if self._residual(key):
            array[np.diag_indices(len(array))] += DTYPE(1)

    def _tag_update(self, key, values, delta, exponent_change):
        """Lava's tag as a sub-LSB accumulator (threshold θ, tag t in units of step/θ), the rule

            dt = inc − (θ/2)·[sgn(t − θ) + sgn(t + θ)],   dw = ½·[sgn(t − θ) + sgn(t + θ)]

        evaluated from the start-of-step tag t (a weight moves one step the step after its tag
        crosses ±θ, at most one step per update; at t = ±θ exactly, half a step), the sums
        stochastically rounded with one uniform draw shared by every synapse of the update (Lava's
        learning engine draws one per learning epoch). inc = −delta in tag units."""
        tags, theta = self.tags[key], self.spec.tag_threshold
        step = 2.0 ** self.exponents[key]
        if exponent_change:  # the devices re-gridded: weights rounded, tags rescaled to the new step
            values = self._weight_grid(values, key, self._rounding_rng())
            tags[...] = np.clip(np.rint(tags * 2.0 ** -exponent_change), TAG_MIN, TAG_MAX)
        t0 = tags.astype(DTYPE)
        s = np.sign(t0 - theta) + np.sign(t0 + theta)
        r = DTYPE(self.rng.random()) if self.spec.rounding == "stochastic" else DTYPE(0.5)
        q_t = t0 - delta * DTYPE(theta / step) - DTYPE(theta / 2) * s
        floor_t = np.floor(q_t)
        new_t = np.clip(floor_t + (r < q_t - floor_t), TAG_MIN, TAG_MAX).astype(np.int16)
        q_w = DTYPE(0.5) * s
        floor_w = np.floor(q_w)
        moves = floor_w + (r < q_w - floor_w)
        top = 2 ** (self.spec.weight_bits - 1)
        new = np.clip(values + moves * DTYPE(step), -top * step, (top - 1) * step).astype(DTYPE)
        moved = (new_t != tags) | (new != values)
        tags[...] = new_t
        return new, moved

    def state_arrays(self):
        out = {f"exp/{k.name}": np.array(v, dtype=np.int64) for k, v in self.exponents.items()}
        out.update({f"tag/{k.name}": v for k, v in self.tags.items()})
        out.update({f"coarse/{k.name}": v for k, v in self.coarse.items()})
        out.update({f"fine/{k.name}": v for k, v in self.fine.items()})
        out.update({f"carry/{k.name}": np.array(v, dtype=np.int64) for k, v in self.since_carry.items()})
        return out

    def load_state_arrays(self, arrays):
        for k, v in arrays.items():
            what, _, name = k.partition("/")
            if what == "exp":
                self.exponents[ArrayKey.parse(name)] = int(v)
            elif what == "tag":
                self.tags[ArrayKey.parse(name)] = np.array(v, dtype=np.int16)
            elif what in ("coarse", "fine"):
                getattr(self, what)[ArrayKey.parse(name)] = np.array(v, dtype=DTYPE)
            elif what == "carry":
                self.since_carry[ArrayKey.parse(name)] = int(v)
