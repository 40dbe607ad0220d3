"""Device profiles: what a chip can represent, how it errs, what it costs — as typed, frozen data.

A profile is a TOML file in `hw_profiles/` (or anywhere, given by path), validated when loaded
into the dataclasses below. Behaviour lives elsewhere (`devices.ideal`, `devices.digital`,
`devices.crossbar`): functions and small classes that take a profile.

The dataclasses have no defaults: a profile file that leaves a key out takes the value of the
shipped profile of its kind, where every value cites its source (`loader.BASE_PROFILES`).

TOML layout (tables present according to `kind`)::

    name = "loihi2"
    description = "one line"
    kind = "digital"            # ideal | digital | crossbar
    [digital]                   # kind = "digital"
    [crossbar]                  # kind = "crossbar"
    [pcm] or [rram]             # kind = "crossbar", chosen by crossbar.technology
    [energy]                    # optional here: cost per operation kind, picojoules
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# The [energy] table: the price, in picojoules, of each kind of operation a chip performs
# (operation kind → TOML key). `energy.cost` says which kinds each profile kind performs.
PRICE_KEYS = {
    "macs": "mac_pj",
    "acs": "ac_pj",
    "neuron_updates": "neuron_update_pj",
    "messages": "message_pj",
    "synapse_writes": "synapse_write_pj",
    "memory_bytes": "memory_byte_pj",
    "adc_conversions": "adc_conversion_pj",
    "dac_conversions": "dac_conversion_pj",
    "periphery_macs": "periphery_mac_pj",
}


@dataclass(frozen=True)
class DigitalSpec:
    """Loihi-style fixed point. Weights: signed `weight_bits` mantissas with one shared exponent
    per synapse array (Lava Dense's num_weight_bits / weight_exp), chosen when the array is
    installed so that max|W| uses 1/weight_headroom of the range. Activations travel as graded
    spikes: signed `payload_bits` fixed point with `payload_frac_bits` fractional bits. Neuron
    state (the pre-activation h): signed `state_bits` with `state_frac_bits` fractional bits,
    saturating. Modulators (the third factor) and node-perturbation noise: signed
    `modulator_bits` mantissas with a shared exponent per batch. Weight updates are rounded to the
    weight grid, stochastically by default (the Loihi learning engine's behaviour).

    Learning (`devices.digital`): `weight_update` "direct" rounds each update onto the weight
    grid; "tag" accumulates it first in a per-synapse tag (Lava's tag_1, 9-bit signed) in units
    of 1/tag_threshold of a weight step, and moves the weight one step when |tag| ≥ tag_threshold
    (a rule Lava's learning engine runs); `decorrelation_update` chooses the same for R — the tag
    moves a weight at most one step an update, too slow for R's gain on a fine (residual) grid.
    `decorrelation` "array" stores R on the weight grid;
    "residual" stores R − I there (the identity as a second, fixed connection).
    `decorrelation_slices` 2 holds that grid's values on two connections into the same neurons,
    a coarse one at the array's exponent e and a fine one at e − (weight_bits − 1) (the finer
    bits of a 2·weight_bits − 1 bit R): R's updates go to the fine connection, and every
    `consolidate_every` updates the whole coarse steps it holds move to the coarse one (the
    carry, a read and rewrite of both arrays; Lava's learning engine updates each synapse on its
    own, so the carry is the host's or a management core's job)."""

    weight_bits: int
    weight_headroom: float
    payload_bits: int
    payload_frac_bits: int
    state_bits: int
    state_frac_bits: int
    modulator_bits: int
    rounding: str  # stochastic | nearest
    adapt_range: bool
    weight_update: str  # direct | tag: forward weights and feedback matrices
    decorrelation_update: str  # direct | tag: decorrelation matrices
    tag_threshold: int
    decorrelation: str  # array | residual
    decorrelation_slices: int  # 1 | 2: R on one connection, or on a coarse and a fine one
    consolidate_every: int  # updates between carries from the fine slice to the coarse one


@dataclass(frozen=True)
class CrossbarSpec:
    """An analogue crossbar's periphery: tiles of at most tile_size × tile_size synapses, a DAC of
    `dac_bits` on each input (inputs scaled per sample by their max |value| into
    [−input_bound, input_bound]) and an ADC of `adc_bits` on each tile's partial sums, clipped to
    [−output_bound, output_bound] (in units of a full-scale weight times a full-scale input),
    with Gaussian `output_noise` (same units) added before conversion. The weight scale of each
    array maps max|W| at install time to 1/weight_headroom of the device range.

    Learning (`devices.crossbar`, `devices.transfer`): `mechanism` is how an update reaches the
    devices — "direct" (stochastic pulses, each one device step), "mixed-precision" (a digital
    accumulator per synapse, programmed a step at a time when it crosses one step; Nandakumar et
    al. 2020), or a Tiki-Taka transfer ("tiki-taka", "ttv2", "chopped-ttv2", "agad"; [transfer]).
    `decorrelation`: R on an array ("array"), R − I on an array with the identity as a digital
    wire ("residual"), or R in the digital periphery ("periphery"). `read_noise_scope`: weight read
    noise drawn for every read ("read", aihwkit's) or once per training step and shared by all
    reads in it ("step": a conductance that fluctuates slowly against one step's reads).
    `training_reads`: reads averaged per product during training (noise ÷ √reads, energy × reads)."""

    technology: str  # pcm | rram
    tile_size: int
    dac_bits: int
    adc_bits: int
    input_bound: float
    output_bound: float
    output_noise: float
    weight_headroom: float
    adapt_range: bool
    mechanism: str  # direct | mixed-precision | tiki-taka | ttv2 | chopped-ttv2 | agad
    decorrelation: str  # array | residual | periphery
    read_noise_scope: str  # read | step
    training_reads: int


@dataclass(frozen=True)
class TransferSpec:
    """The Tiki-Taka family (Gokmen & Haensch 2020; TTv2, Gokmen 2021; chopped TTv2 and AGAD,
    Rasch et al. 2024), as aihwkit's TransferCompound, BufferedTransferCompound,
    ChoppedTransferCompound and DynamicTransferCompound run them. Each weight is a fast array A
    (its updates) and a slow array C (the weight, W = gamma·A + C); every `every` steps, `columns`
    columns of A are read and transferred to C: directly (tiki-taka: C += transfer_lr·A[:, i]) or
    through a digital buffer H that moves C one device step when |H| ≥ buffer_threshold steps
    (ttv2; H then forgets to momentum·H). chopped-ttv2 flips a sign c_j per input with probability
    chop_probability at each read of its column, applied to A's updates and undone at readout;
    agad subtracts a reference (the mean readout of the previous chopper period, weighted by
    tail_weight) instead of relying on A's symmetry point. fast_lr scales the updates onto A."""

    every: int
    columns: int
    gamma: float
    fast_lr: float
    transfer_lr: float
    buffer_threshold: float
    momentum: float
    chop_probability: float
    tail_weight: float


@dataclass(frozen=True)
class PCMSpec:
    """Phase-change memory (aihwkit PCMLikeNoiseModel, Nandakumar et al. 2019). Each weight is a
    differential pair of conductances in [0, g_max_us]. Programming noise σ = c0 + c1·(g/gmax) +
    c2·(g/gmax)² µS (at gmax = 25 µS; scaled by g_max_us/25); 1/f read noise with t_read_s;
    drift g(t) = g_prog·((t + t0)/t0)^(−ν) evaluated at inference_time_s after programming, with
    optional global drift compensation. Training writes are accumulated digitally and applied in
    increments of update_granularity·g_max, each with relative Gaussian noise update_noise
    (mixed-precision in-memory training); the one-shot programming noise applies when the trained
    weights are programmed for inference."""

    g_max_us: float
    prog_noise_us: tuple[float, float, float]
    read_noise: bool
    t_read_s: float
    drift: bool
    t0_s: float
    inference_time_s: float
    drift_compensation: bool
    update_granularity: float
    update_noise: float


@dataclass(frozen=True)
class RRAMSpec:
    """Resistive RAM with pulsed updates (aihwkit PulsedDevice / SoftBoundsDevice presets): each
    pulse moves a weight by dw_min (device-to-device spread dw_min_dtod, cycle-to-cycle noise
    dw_min_ctoc, both relative), scaled by (1 ± up_down) for up/down pulses and, with soft bounds,
    by (1 − w/w_max) going up and (1 − w/w_min) going down; at most max_pulses per update.
    Weights are in device units within [w_min, w_max]; reads add Gaussian noise of std read_noise
    (relative to w_max)."""

    dw_min: float
    dw_min_dtod: float
    dw_min_ctoc: float
    up_down: float
    up_down_dtod: float
    w_min: float
    w_max: float
    soft_bounds: bool
    max_pulses: int
    read_noise: float


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    kind: str  # ideal | digital | crossbar
    digital: DigitalSpec | None = None
    crossbar: CrossbarSpec | None = None
    transfer: TransferSpec | None = None
    pcm: PCMSpec | None = None
    rram: RRAMSpec | None = None
    energy: dict[str, float] = field(default_factory=dict)
    source: str = ""  # the file it was read from

    def to_dict(self) -> dict[str, Any]:
        """The resolved profile as JSON-ready data (for config.json): every default filled in,
        tables the kind does not use left out, tuples as lists. `loader.profile_from_dict`
        reads it back to an equal Profile."""
        out: dict[str, Any] = {"name": self.name, "description": self.description, "kind": self.kind}
        for table in ("digital", "crossbar", "transfer", "pcm", "rram"):
            spec = getattr(self, table)
            if spec is not None:
                out[table] = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(spec).items()}
        out["energy"] = dict(self.energy)
        out["source"] = self.source
        return out
