"""A folded network as Lava's fixed-point graded-spike processes, and a vectorised emulator of
exactly those processes.

Mapping (one dense layer → one Lava `Dense` + one `SigmaDelta`):
- activations are integers with `frac_bits` fractional bits: a_int = round(a · 2^frac_bits);
- Dense: weights are 8-bit mantissas W_int ≈ W' · 2^m (for mixed-sign weights Lava keeps 7 bits
  and a sign: even values in [−256, 254]) and weight_exp = −m, so (W_int · s) >> m ≈ W' · a in
  the same fixed point; graded messages (num_message_bits = 24);
- SigmaDelta (vth, bias = round(b' · 2^frac_bits), act_mode RELU for hidden layers, UNIT for the
  output): the sigma stage accumulates what the Dense sends, the delta stage sends the change
  of its activation. With vth = 0 every change is sent and the network computes the integer
  ANN  a_l = relu((W_l a_{l−1}) >> m_l + b_l)  exactly, L steps after an input arrives.

Why each sample starts from rest: Dense's right shift floors every message separately, and
floor(a) + floor(b) ≠ floor(a + b). Within one sample a neuron sends a few messages, so the
error is a few least significant bits; across a stream of samples the floors all round down
and the neurons' sigma drifts (measured on digits: 70 % accuracy after 100 samples against
97 % from rest). Deployment therefore zeroes the neurons' state between samples, and the
emulator runs each sample as its own stream from a zero state, the same computation.

Lava's ReLU is not LeakyReLU: hidden LeakyReLU layers deploy as ReLU (the 1 % negative slope is
dropped); `deploy` reports the accuracy this costs.

Lava's fixed-point models, reproduced here bit for bit (lava-nc 0.10.0, proc/dense/models.py
and proc/sdn/models.py), per time step, for every layer in order:
    Dense:       a_out = a_buff;  a_buff = (W · s_in) << weight_exp  (>> −weight_exp; int32)
    SigmaDelta:  sigma += a_in;  act_new = f(sigma + bias);  delta = act_new − act + residue;
                 s_out = delta where |delta| ≥ vth else 0;  residue = delta − s_out;  act = act_new
Arithmetic is int32 with two's-complement wrap-around, as numpy's int32 is in Lava's models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodecorr.nets.fold import FoldedLayer

INT32 = np.int32


@dataclass(frozen=True)
class IntLayer:
    weights: np.ndarray  # int32 (n_out, n_in), on the grid Lava's Dense keeps (clip + truncate)
    weight_exp: int
    bias: np.ndarray     # int32 (n_out,)
    relu: bool
    weight_bits: int = 8  # Lava Dense's num_weight_bits


@dataclass(frozen=True)
class IntNet:
    layers: tuple[IntLayer, ...]
    frac_bits: int
    vth: int = 0

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Float inputs (B, n_in) → int32 payloads."""
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


def quantise(layers: list[FoldedLayer], frac_bits: int = 6, vth: int = 0,
             weight_bits: int = 8) -> IntNet:
    """Fixed-point network for Lava from a folded float network: per layer, the largest m with
    max|W'|·2^m ≤ 255, weights on Lava's `weight_bits` grid, weight_exp = −m."""
    out = []
    for i, layer in enumerate(layers):
        max_abs = float(np.max(np.abs(layer.W))) or 1.0
        m = int(np.floor(np.log2(255.0 / max_abs)))
        mixed = bool((layer.W < 0).any() and (layer.W > 0).any())
        step = 2 ** (8 - weight_bits + mixed)  # the grid Lava's truncation leaves
        # round to that grid here, so Lava's floor-truncation changes nothing (flooring would
        # bias every weight down by half a step)
        W_int = lava_weight_grid(step * np.rint(layer.W * 2.0 ** m / step).astype(np.int64), weight_bits)
        bias = np.rint(layer.b * 2.0 ** frac_bits).astype(INT32)
        out.append(IntLayer(W_int, -m, bias, relu=i < len(layers) - 1, weight_bits=weight_bits))
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


@dataclass
class Trace:
    """Per step and layer: the payloads sent (s_out) and the neurons' act, (T, n, B) each."""

    s_out: list[np.ndarray]
    act: list[np.ndarray]


def emulate(net: IntNet, stream: np.ndarray, record: bool = False, tally: dict | None = None):
    """Run input payload streams through the network, as Lava's fixed-point models would.

    stream: int32 (n_in, T) or (n_in, B, T) — B independent streams, T steps each.
    Returns the output layer's act after every step, (T, n_out[, B]), and the trace if asked.
    tally: a dict to add per-layer operation counts to: "messages" (nonzero payloads sent by
    the layer's neurons), "acs" (accumulates: nonzero payloads into its Dense × fan-out) and
    "neuron_updates" (every neuron, every step), each a list indexed by layer.
    """
    squeeze = stream.ndim == 2
    if squeeze:
        stream = stream[:, None, :]
    n_steps, batch = stream.shape[-1], stream.shape[1]
    a_buff = [np.zeros((l.weights.shape[0], batch), INT32) for l in net.layers]
    sigma = [np.zeros_like(b) for b in a_buff]
    act = [np.zeros_like(b) for b in a_buff]
    residue = [np.zeros_like(b) for b in a_buff]
    vth = INT32(net.vth)
    weights = [l.weights.astype(np.float64) for l in net.layers]
    outputs = np.zeros((n_steps, net.layers[-1].weights.shape[0], batch), INT32)
    trace = Trace([[] for _ in net.layers], [[] for _ in net.layers]) if record else None
    if tally is not None:
        for kind in ("messages", "acs", "neuron_updates"):
            tally.setdefault(kind, [0] * len(net.layers))
    for t in range(n_steps):
        s = stream[:, :, t].astype(INT32)
        for i, layer in enumerate(net.layers):
            if tally is not None:
                tally["acs"][i] += int(np.count_nonzero(s != 0)) * layer.weights.shape[0]
            a_in, a_buff[i] = a_buff[i], _dense(weights[i], s, layer.weight_exp)
            sigma[i] = sigma[i] + a_in
            pre = sigma[i] + layer.bias[:, None]
            new = np.maximum(pre, INT32(0)) if layer.relu else pre
            delta = new - act[i] + residue[i]
            s = np.where(np.abs(delta) >= vth, delta, INT32(0)).astype(INT32)
            residue[i] = delta - s
            act[i] = new
            if tally is not None:
                tally["messages"][i] += int(np.count_nonzero(s != 0))
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
    """The closed form the vth = 0 network converges to: relu((W a) >> m + b) layer by layer."""
    a = x_int.T.astype(INT32)
    for layer in net.layers:
        pre = _dense(layer.weights.astype(np.float64), a, layer.weight_exp) + layer.bias[:, None]
        a = np.maximum(pre, INT32(0)) if layer.relu else pre
    return a.T
