"""A folded network as Lava's fixed-point graded-spike processes, and a vectorised emulator of
exactly those processes.

Mapping, one stage per synapse process, each driving its own SigmaDelta neurons:
- activations are integers with `frac_bits` fractional bits: a_int = round(a · 2^frac_bits);
- a dense layer → Lava `Dense` + `SigmaDelta` (n_out,): weights are 8-bit mantissas
  W_int ≈ W' · 2^m (for mixed-sign weights Lava keeps 7 bits and a sign: even values in
  [−256, 254]) and weight_exp = −m, so (W_int · s) >> m ≈ W' · a in the same fixed point;
  graded messages (num_message_bits = 24);
- a conv layer → Lava `Conv` + `SigmaDelta` (H', W', C_out): the same mantissas and m, but
  Lava's Conv applies neither weight_exp nor num_weight_bits (proc/conv/models.py,
  AbstractPyConvModel.run_spk passes only the weights), so the exponent moves to the neurons:
  state_exp = m, whose bias and vth Lava scales by 2^m and whose messages it shifts right by
  m (proc/sdn/process.py, SigmaDelta.__init__; models.py, PySigmaDeltaModelFixed.run_spk).
  The model declares state_exp 3 bits wide but its Python model shifts by any m: small conv
  weights (max|W'| < 2, m > 7) run on Lava's simulator as they are, and a chip would need
  them rescaled. Lava's Conv buffer is 24 bits: sums beyond ±2^23 wrap (the emulator counts
  them, `emulate`);
- avg pooling of size s → a sum-pooling stage: a depthwise `Conv` (groups = C, a weight of 1
  from channel c to c, kernel = stride = s) into UNIT SigmaDelta neurons (H'', W'', C), with
  the 1/s² folded into the next layer's weights before they are quantised. Max pooling is no
  weighted sum and cannot be deployed (`quantise` refuses it);
- SigmaDelta (vth, bias = round(b' · 2^frac_bits), act_mode RELU for hidden layers, UNIT for
  the output and the pooling stages): the sigma stage accumulates what its synapses send, the
  delta stage sends the change of its activation. With vth = 0 every change is sent and a dense
  network computes the integer ANN  a_l = relu((W_l a_{l−1}) >> m_l + b_l)  exactly, one step
  per stage after an input arrives.

Images travel in Lava's (X, Y, C) order with our H as Lava's X: an image port (H, W, C) carries
a channels-last image (`nets.conv`), and a flattened stage is (y, x, c)-ordered, which is how a
dense layer after a conv reads it. Dataset rows, stored (c, y, x), are reordered once when
encoded (`IntNet.encode`).

Why each sample starts from rest: Dense's right shift floors every message separately, and
floor(a) + floor(b) ≠ floor(a + b) (a conv stage's neurons floor their messages alike). Within
one sample a neuron sends a few messages, so the error is a few least significant bits; across
a stream of samples the floors all round down and the neurons' sigma drifts (measured on
digits: 70 % accuracy after 100 samples against 97 % from rest). Deployment therefore zeroes
the neurons' state between samples, and the emulator runs each sample as its own stream from a
zero state, the same computation.

Lava's ReLU is not LeakyReLU: hidden LeakyReLU layers deploy as ReLU (the 1 % negative slope is
dropped); `deploy` reports the accuracy this costs.

Lava's fixed-point models, reproduced here bit for bit (lava-nc 0.10.0, proc/dense/models.py,
proc/conv/models.py with proc/conv/utils.py, proc/sdn/models.py), per time step, for every
stage in order:
    Dense:       a_out = a_buff;  a_buff = (W · s_in) << weight_exp  (>> −weight_exp; int32)
    Conv:        a_out = a_buf;   a_buf = clamp24(int32(conv(s_in, W)))   (no exponent: the
                 convolution is a float64 sum of integer products, exact below 2^53, converted
                 with numpy's astype(int32) and wrapped to signed 24 bits,
                 clamp24(x) = (x + 2^23) mod 2^24 − 2^23)
    SigmaDelta:  sigma += a_in;  act_new = f(sigma + bias · 2^e);  delta = act_new − act + residue;
                 sent = delta where |delta| ≥ vth · 2^e else 0;  residue = delta − sent;
                 act = act_new;  s_out = sent >> e       (e = state_exp: m for a conv stage, else 0)
Arithmetic is int32 with two's-complement wrap-around, as numpy's int32 is in Lava's models.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from neurodecorr.errors import RunError
from neurodecorr.nets.conv import ConvGeometry, image_order
from neurodecorr.nets.fold import FoldedLayer

INT32 = np.int32
CONV_BUFFER_BITS = 24  # Lava Conv's a_buf: signed, wrapping (utils.signed_clamp(x, bits=24))


@dataclass(frozen=True)
class IntLayer:
    """One stage: a synapse process (Dense, or Conv when `conv` is set) and its SigmaDelta
    neurons. Shapes: weights int32 (n_out, n_in) dense, or the unrolled kernel (C_out, k·k·C),
    entries (ky, kx, c), for a conv; bias int32 (n_out,) dense, (C_out,) per channel for a conv."""

    weights: np.ndarray  # on the grid Lava's Dense keeps (clip + truncate)
    weight_exp: int      # −m: Dense's weight_exp; a conv stage's neurons get state_exp = m
    bias: np.ndarray     # at frac_bits
    relu: bool
    weight_bits: int = 8  # Lava Dense's num_weight_bits (the grid a conv's weights are put on)
    conv: ConvGeometry | None = None  # its pool is None: pooling is a stage of its own
    sum_pool: bool = False  # a sum-pooling stage: depthwise, channel c reads only channel c

    @property
    def kind(self) -> str:
        return "dense" if self.conv is None else "sum_pool" if self.sum_pool else "conv"

    @property
    def state_exp(self) -> int:
        """The neurons' state_exp: a conv stage's m (Lava's Conv applies no exponent), else 0."""
        return 0 if self.conv is None else -self.weight_exp

    @property
    def in_shape(self) -> tuple[int, ...]:
        """What the synapses read: (n_in,), or an image (H, W, C)."""
        g = self.conv
        return (self.weights.shape[1],) if g is None else (g.in_height, g.in_width, g.in_channels)

    @property
    def neuron_shape(self) -> tuple[int, ...]:
        """The SigmaDelta neurons: (n_out,), or the conv's output image (H', W', C_out)."""
        return (self.weights.shape[0],) if self.conv is None else self.conv.output_shape

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.neuron_shape))

    def per_neuron_bias(self) -> np.ndarray:
        """The bias of every neuron (n_out,), as given to Lava's SigmaDelta: the per-channel bias
        at every position (y, x, c order) of a conv stage."""
        return np.tile(self.bias.astype(INT32), self.n_out // len(self.bias))

    def neuron_bias(self) -> np.ndarray:
        """The neurons' bias (n_out,) as Lava's SigmaDelta holds it: `per_neuron_bias` times
        2^state_exp in int32 (SigmaDelta.__init__'s `bias * (1 << (spike_exp + state_exp))`)."""
        return self.per_neuron_bias() * (1 << self.state_exp)

    def fan_out(self) -> np.ndarray:
        """Synapses each input (n_in,) reaches: n_out for a dense stage; for a conv, the output
        positions whose patch holds it (fewer at borders and in cropped rows) times the output
        channels it feeds (C_out, 1 for the depthwise pooling)."""
        g = self.conv
        if g is None:
            return np.full(self.n_in, self.weights.shape[0], dtype=np.int64)
        cover = g.patches_back(np.ones((g.positions, g.patch_size)), 1).reshape(-1)
        return np.rint(cover).astype(np.int64) * (1 if self.sum_pool else g.out_channels)

    def describe(self) -> dict:
        out = {"kind": self.kind, "n_in": self.n_in, "n_out": self.n_out,
               "weight_exp": self.weight_exp, "relu": self.relu}
        if self.conv is not None:
            g = self.conv
            out.update(state_exp=self.state_exp, input=list(self.in_shape), output=list(self.neuron_shape),
                       kernel=g.kernel, stride=g.stride, padding=g.padding, synapses=int(self.fan_out().sum()))
        return out


@dataclass(frozen=True)
class IntNet:
    layers: tuple[IntLayer, ...]
    frac_bits: int
    vth: int = 0

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Float dataset rows (B, n_in) → int32 payloads (B, n_in); a conv net's rows, stored
        (c, y, x), are reordered to the (y, x, c) of its input image."""
        g = self.layers[0].conv
        if g is not None:
            x = x[:, image_order((g.in_channels, g.in_height, g.in_width))]
        return np.rint(x * 2.0 ** self.frac_bits).astype(INT32)


def lava_weight_grid(W_int: np.ndarray, num_weight_bits: int = 8) -> np.ndarray:
    """What Lava's Dense does to integer weights: clip to 8 bits by sign mode, then truncate to
    num_weight_bits (one bit fewer for mixed signs)."""
    W = np.asarray(W_int, dtype=np.int64)
    mixed = int(bool((W < 0).any() and (W > 0).any()))
    inhibitory = not mixed and bool((W < 0).any())
    if inhibitory:  # Lava clips and truncates the magnitudes of inhibitory weights
        W = -W
    W = np.clip(W, -256, 255) if mixed else np.clip(W, 0, 255)
    k = 8 - num_weight_bits + mixed
    W = (W >> k) << k  # an arithmetic shift: floor, for mixed-sign weights too
    return (-W if inhibitory else W).astype(INT32)


def _mantissas(W: np.ndarray, weight_bits: int) -> tuple[int, np.ndarray]:
    """The largest m with max|W|·2^m ≤ 255 and W · 2^m rounded onto Lava's weight grid."""
    max_abs = float(np.max(np.abs(W))) or 1.0
    m = int(np.floor(np.log2(255.0 / max_abs)))
    mixed = bool((W < 0).any() and (W > 0).any())
    step = 2 ** (8 - weight_bits + mixed)  # the grid Lava's truncation leaves
    # round to that grid here, so Lava's floor-truncation changes nothing (flooring would
    # bias every weight down by half a step)
    return m, lava_weight_grid(step * np.rint(W * 2.0 ** m / step).astype(np.int64), weight_bits)


def _sum_pool_stage(g: ConvGeometry) -> IntLayer:
    """The sum pooling after conv `g`: (H', W', C) → (H'', W'', C), each output the sum of its
    s×s window. Its unrolled kernel (C, s·s·C) is 1 where the input channel is the output's."""
    s, C = g.pool_size, g.out_channels
    geometry = ConvGeometry(g.out_height, g.out_width, C, C, kernel=s, stride=s, padding=0)
    return IntLayer(np.tile(np.eye(C, dtype=INT32), (1, s * s)), 0, np.zeros(C, INT32), relu=False,
                    weight_bits=8, conv=geometry, sum_pool=True)


def quantise(layers: list[FoldedLayer], frac_bits: int = 6, vth: int = 0,
             weight_bits: int = 8) -> IntNet:
    """Fixed-point network for Lava from a folded float network: per layer, the largest m with
    max|W'|·2^m ≤ 255, weights on Lava's `weight_bits` grid, weight_exp = −m; an avg pooling
    becomes a sum-pooling stage and its 1/s² is folded into the next layer's W' first."""
    out = []
    scale = 1.0
    for i, layer in enumerate(layers):
        g = layer.conv
        if g is not None and g.pool == "max":
            raise RunError(f"layer {i} (conv, {g.out_channels} channels) is followed by max pooling, "
                           f"which SigmaDelta neurons cannot compute (a maximum is not a weighted sum); "
                           f"use pool: avg for networks you deploy to Lava")
        m, W_int = _mantissas(layer.W * scale, weight_bits)
        if g is not None and m < 0:
            raise RunError(f"layer {i} (conv): its largest weight {float(np.max(np.abs(layer.W))):.4g} "
                           f"does not fit an 8-bit mantissa at 2^0, and Lava's Conv applies no weight "
                           f"exponent (its neurons' state_exp only shifts right); retrain with smaller "
                           f"weights (weight decay, a lower learning rate)")
        bias = np.rint(layer.b * 2.0 ** frac_bits).astype(INT32)
        out.append(IntLayer(W_int, -m, bias, relu=i < len(layers) - 1, weight_bits=weight_bits,
                            conv=None if g is None else dataclasses.replace(g, pool=None)))
        scale = 1.0
        if g is not None and g.pool == "avg":
            out.append(_sum_pool_stage(g))
            scale = 1.0 / g.pool_size ** 2
    return IntNet(tuple(out), frac_bits, vth)


def _wrap32(x: np.ndarray) -> np.ndarray:
    """Integral float64 values → int32 with two's-complement wrap-around."""
    return x.astype(np.int64).astype(INT32)  # int64 → int32 keeps the low 32 bits


def _dense(W: np.ndarray, s: np.ndarray, weight_exp: int) -> np.ndarray:
    """(W · s) shifted, int32 with wrap-around; W float64 holding the integer weights, s (n_in, B).
    Exact via a float64 GEMM while the sums stay below 2^53 (|W| ≤ 256, |s| < 2^31,
    n_in < 2^14 keeps them there)."""
    acc = _wrap32(W @ s.astype(np.float64))
    return np.left_shift(acc, weight_exp) if weight_exp > 0 else np.right_shift(acc, -weight_exp)


def _clamp24(x: np.ndarray) -> np.ndarray:
    """clamp24 of the module docstring, on int32 as Lava's signed_clamp computes it."""
    half = INT32(1 << (CONV_BUFFER_BITS - 1))
    return (x + half) % INT32(1 << CONV_BUFFER_BITS) - half


def _conv(layer: IntLayer, W: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, int]:
    """Lava Conv's new a_buf for payloads s (n_in, B), images flattened (y, x, c): im2col on the
    integer images and one float64 GEMM (the same exact sums as Lava's scipy convolution while
    |sums| < 2^53: |W| ≤ 256, |s| < 2^31, k·k·C < 2^14), then int32 and 24 bits. → (n_out, B),
    and how many sums wrapped around the 24 bits."""
    g, batch = layer.conv, s.shape[1]
    acc = g.patches(s.T.reshape(batch, *layer.in_shape).astype(np.float64)) @ W.T  # (B·P, C_out)
    half = 2.0 ** (CONV_BUFFER_BITS - 1)
    wrapped = int(np.count_nonzero((acc < -half) | (acc >= half)))
    return _clamp24(acc.reshape(batch, -1).astype(INT32).T), wrapped


def _synapses(layer: IntLayer, W: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, int]:
    """What a stage's synapse process buffers for payloads s (n_in, B), (n_out, B) int32, and
    the sums that wrapped around a Conv's 24-bit buffer (0 for Dense, whose sums wrap at 32)."""
    return (_dense(W, s, layer.weight_exp), 0) if layer.conv is None else _conv(layer, W, s)


@dataclass
class Trace:
    """Per step and stage: the payloads sent (s_out) and the neurons' act, (T, n, B) each
    (an image stage's neurons flattened (y, x, c))."""

    s_out: list[np.ndarray]
    act: list[np.ndarray]


def emulate(net: IntNet, stream: np.ndarray, record: bool = False, tally: dict | None = None):
    """Run input payload streams through the network, as Lava's fixed-point models would.

    stream: int32 (n_in, T) or (n_in, B, T) — B independent streams, T steps each (a conv net's
    input images flattened (y, x, c), as `IntNet.encode` gives them).
    Returns the output stage's act after every step, (T, n_out[, B]), and the trace if asked.
    tally: a dict to add per-stage operation counts to: "messages" (nonzero payloads sent by
    the stage's neurons), "acs" (accumulates: each nonzero payload into its synapses × the
    synapses it reaches, `IntLayer.fan_out`), "neuron_updates" (every neuron, every step) and
    "wrapped" (conv sums that wrapped around Lava Conv's 24-bit buffer), each a list indexed by
    stage.
    """
    squeeze = stream.ndim == 2
    if squeeze:
        stream = stream[:, None, :]
    n_steps, batch = stream.shape[-1], stream.shape[1]
    a_buff = [np.zeros((l.n_out, batch), INT32) for l in net.layers]
    sigma = [np.zeros_like(b) for b in a_buff]
    act = [np.zeros_like(b) for b in a_buff]
    residue = [np.zeros_like(b) for b in a_buff]
    vth = [INT32(net.vth * (1 << l.state_exp)) for l in net.layers]
    bias = [l.neuron_bias()[:, None] for l in net.layers]
    weights = [l.weights.astype(np.float64) for l in net.layers]
    outputs = np.zeros((n_steps, net.layers[-1].n_out, batch), INT32)
    trace = Trace([[] for _ in net.layers], [[] for _ in net.layers]) if record else None
    if tally is not None:
        fan_out = [l.fan_out() for l in net.layers]
        for kind in ("messages", "acs", "neuron_updates", "wrapped"):
            tally.setdefault(kind, [0] * len(net.layers))
    for t in range(n_steps):
        s = stream[:, :, t].astype(INT32)
        for i, layer in enumerate(net.layers):
            if tally is not None:
                tally["acs"][i] += int(fan_out[i] @ np.count_nonzero(s, axis=1))
            a_in = a_buff[i]
            a_buff[i], wrapped = _synapses(layer, weights[i], s)
            if tally is not None:
                tally["wrapped"][i] += wrapped
            sigma[i] = sigma[i] + a_in
            pre = sigma[i] + bias[i]
            new = np.maximum(pre, INT32(0)) if layer.relu else pre
            delta = new - act[i] + residue[i]
            sent = np.where(np.abs(delta) >= vth[i], delta, INT32(0)).astype(INT32)
            residue[i] = delta - sent
            act[i] = new
            s = np.right_shift(sent, layer.state_exp) if layer.state_exp else sent
            if tally is not None:
                tally["messages"][i] += int(np.count_nonzero(s))
                tally["neuron_updates"][i] += s.size
            if record:
                trace.s_out[i].append(s.copy())
                trace.act[i].append(new.copy())
        outputs[t] = act[-1]
    if record:
        trace = Trace([np.stack(x) for x in trace.s_out], [np.stack(x) for x in trace.act])
    if squeeze:
        outputs = outputs[:, :, 0]
    return (outputs, trace) if record else outputs


def sample_stream(x_int: np.ndarray, steps: int, resets: bool = True) -> np.ndarray:
    """One stream for Lava: each sample a window of `steps` steps, sent on the window's first
    step (zero after). With resets (the network's state is zeroed between windows) the sample
    itself is sent; without, its change from the previous sample (delta encoding).
    x_int (B, n_in) → (n_in, B·steps)."""
    first = x_int if resets else np.diff(np.vstack([np.zeros((1, x_int.shape[1]), INT32), x_int]), axis=0)
    stream = np.zeros((x_int.shape[1], len(x_int) * steps), INT32)
    stream[:, ::steps] = first.T
    return stream


def parallel_streams(x_int: np.ndarray, steps: int) -> np.ndarray:
    """Each sample its own stream from a zero state: (n_in, B, steps). With vth = 0 its output
    after `steps` steps equals the sequential stream's at the end of that sample's window."""
    streams = np.zeros((x_int.shape[1], len(x_int), steps), INT32)
    streams[:, :, 0] = x_int.T
    return streams


def integer_ann(net: IntNet, x_int: np.ndarray) -> np.ndarray:
    """The closed form the vth = 0 network approaches: stage by stage
    a = f(synapses(a) + bias · 2^e) >> e, the output stage's act unshifted. Exact for a single
    stage; deeper, each neuron's separately floored messages can leave a few LSBs off."""
    a = x_int.T.astype(INT32)
    for layer in net.layers:
        pre = _synapses(layer, layer.weights.astype(np.float64), a)[0] + layer.neuron_bias()[:, None]
        act = np.maximum(pre, INT32(0)) if layer.relu else pre
        a = np.right_shift(act, layer.state_exp) if layer is not net.layers[-1] else act
    return a.T
