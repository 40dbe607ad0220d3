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

from neurodecorr.devices.ideal import IdealDevice
from neurodecorr.devices.quantise import block_float, fixed_point, shared_exponent, to_grid
from neurodecorr.keys import ArrayKey, Role


class DigitalDevice(IdealDevice):
    def __init__(self, profile, rng=None, counter=None):
        super().__init__(profile, rng, counter)
        self.spec = profile.digital
        self.exponents: dict[ArrayKey, int] = {}

    def install(self, key, array):
        if key.role is Role.b:
            array[...] = self.state(array)
            return
        max_abs = float(np.max(np.abs(array))) if array.size else 0.0
        self.exponents[key] = shared_exponent(max_abs, self.spec.weight_bits, self.spec.weight_headroom)
        array[...] = self._weight_grid(array, key, None)

    def _adapt_exponent(self, key, max_abs):
        """Raise the exponent before the mantissas saturate; lower it when the values use under
        a quarter of the range. Either re-establishes the profile's headroom."""
        current = self.exponents[key]
        top = 2 ** (self.spec.weight_bits - 1) - 1
        fitted = shared_exponent(max_abs, self.spec.weight_bits, self.spec.weight_headroom)
        if max_abs > top * 2.0 ** current or fitted <= current - 2:
            self.exponents[key] = fitted

    def _weight_grid(self, values, key, rng):
        step = 2.0 ** self.exponents[key]
        top = 2 ** (self.spec.weight_bits - 1)
        return to_grid(values, step, -top * step, (top - 1) * step, rng)

    def activation(self, a):
        return fixed_point(a, self.spec.payload_bits, self.spec.payload_frac_bits)

    def state(self, h):
        return fixed_point(h, self.spec.state_bits, self.spec.state_frac_bits)

    def signal(self, e):
        return block_float(e, self.spec.modulator_bits, self._rounding_rng())

    def _rounding_rng(self):
        return self.rng if self.spec.rounding == "stochastic" else None

    def write(self, array, delta, key):
        target = array - delta
        if key.role is Role.b:
            s = self.spec
            new = fixed_point(target, s.state_bits, s.state_frac_bits, self._rounding_rng())
        else:
            if self.spec.adapt_range:
                self._adapt_exponent(key, float(np.max(np.abs(target))) if target.size else 0.0)
            new = self._weight_grid(target, key, self._rounding_rng())
        self.counter.writes(key, new != array, array.size)
        array[...] = new

    def state_arrays(self):
        return {f"exp/{k.name}": np.array(v, dtype=np.int64) for k, v in self.exponents.items()}

    def load_state_arrays(self, arrays):
        for k, v in arrays.items():
            if k.startswith("exp/"):
                self.exponents[ArrayKey.parse(k[4:])] = int(v)

