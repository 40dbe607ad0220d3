"""Run an `IntNet` as real Lava processes on Lava's CPU simulator of Loihi (fixed point).

    RingBuffer (the input payload stream) → [Dense or Conv → SigmaDelta] per stage; Monitors on
    the output stage's `act` (and, when asked, every stage's `s_out` and `act`).

A conv stage is a `Conv` on images in Lava's (X, Y, C) order with our H as X (`sigma_delta`),
its kernel flipped in both spatial axes (Lava's Conv convolves, scipy's convolve2d; our patches
correlate); a sum-pooling stage is a depthwise `Conv` (groups = C) of ones; a Dense reads an
image stage through its port flattened in row-major (y, x, c) order, the order our dense layers
read a flattened image in. Uses only Lava's own processes, executed by Lava's own runtime with
`Loihi2SimCfg(select_tag="fixed_pt")`.
"""

from __future__ import annotations

import numpy as np

from neurodecorr.backends.lava_compat import import_lava
from neurodecorr.backends.sigma_delta import IntLayer, IntNet, Trace


def lava_kernel(layer: IntLayer) -> np.ndarray:
    """A conv stage's weights as Lava's Conv takes them, (C_out, kx, ky, C_in / groups) int32:
    the unrolled kernel (C_out, k·k·C) reshaped to (C_out, ky, kx, C) and flipped spatially;
    for the sum pooling, ones (C, s, s, 1)."""
    g = layer.conv
    if layer.sum_pool:
        return np.ones((g.out_channels, g.kernel, g.kernel, 1), dtype=np.int32)
    W = layer.weights.reshape(g.out_channels, g.kernel, g.kernel, g.in_channels)
    return np.ascontiguousarray(W[:, ::-1, ::-1, :], dtype=np.int32)


def _synapses(layer: IntLayer):
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import Dense

    if layer.conv is None:
        return Dense(weights=layer.weights, weight_exp=layer.weight_exp, num_message_bits=24,
                     num_weight_bits=layer.weight_bits)
    g = layer.conv
    # weight_exp 0: Lava's Conv ignores it; the exponent is the neurons' state_exp
    return Conv(weight=lava_kernel(layer), input_shape=layer.in_shape, padding=g.padding,
                stride=g.stride, groups=g.in_channels if layer.sum_pool else 1, weight_exp=0,
                num_weight_bits=layer.weight_bits, num_message_bits=24)


def run_lava(net: IntNet, stream: np.ndarray, record: bool = False, reset_every: int | None = None):
    """Run one input stream (n_in, T) through Lava (a conv net's images flattened (y, x, c)).
    Returns the output stage's act after every step (T, n_out), and, with record, the Trace of
    every stage (T, n, 1) as `emulate` gives.

    reset_every: set every neuron's state (sigma, act, residue) and every synapse buffer
    (Dense's a_buff, Conv's a_buf) back to zero every so many steps, between `run` calls, so
    that each sample starts from rest (see `deploy`).
    """
    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer
    from lava.proc.monitor.process import Monitor
    from lava.proc.sdn.process import ActivationMode, SigmaDelta

    n_steps = stream.shape[1]
    first = net.layers[0]
    source = RingBuffer(data=stream.astype(np.int32).reshape(*first.in_shape, n_steps))
    port, neurons, buffers = source.s_out, [], []
    for layer in net.layers:
        synapses = _synapses(layer)
        sd = SigmaDelta(shape=layer.neuron_shape, vth=net.vth, state_exp=layer.state_exp,
                        bias=layer.per_neuron_bias().reshape(layer.neuron_shape),
                        act_mode=ActivationMode.RELU if layer.relu else ActivationMode.UNIT)
        if tuple(port.shape) != layer.in_shape:  # a dense layer after an image: (y, x, c) order
            port = port.reshape(layer.in_shape)
        port.connect(synapses.s_in)
        synapses.a_out.connect(sd.a_in)
        port = sd.s_out
        neurons.append(sd)
        buffers.append(synapses.a_buf if layer.conv is not None else synapses.a_buff)
    watched = neurons if record else neurons[-1:]
    monitors = []
    for sd in watched:
        m_act, m_out = Monitor(), Monitor()
        m_act.probe(sd.act, n_steps)
        m_out.probe(sd.s_out, n_steps)
        monitors.append((sd, m_act, m_out))
    run_cfg = Loihi2SimCfg(select_tag="fixed_pt")
    chunk = reset_every or n_steps
    try:
        for start in range(0, n_steps, chunk):
            if start:
                for sd, buffer in zip(neurons, buffers):
                    for var in (sd.sigma, sd.act, sd.residue, buffer):
                        var.set(np.zeros(var.shape, dtype=np.int32))
            source.run(condition=RunSteps(num_steps=min(chunk, n_steps - start)), run_cfg=run_cfg)
        acts, outs = [], []
        for sd, m_act, m_out in monitors:
            acts.append(np.asarray(m_act.get_data()[sd.name]["act"]).astype(np.int64).reshape(n_steps, -1))
            outs.append(np.asarray(m_out.get_data()[sd.name]["s_out"]).astype(np.int64).reshape(n_steps, -1))
    finally:
        source.stop()
    output = acts[-1]
    if not record:
        return output
    return output, Trace([o[:, :, None] for o in outs], [a[:, :, None] for a in acts])
