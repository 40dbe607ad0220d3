"""Run an `IntNet` as real Lava processes on Lava's CPU simulator of Loihi (fixed point).

    RingBuffer (the input payload stream) → [Dense → SigmaDelta] per layer; Monitors on the
    output layer's `act` (and, when asked, every layer's `s_out` and `act`).

Uses only Lava's own processes, executed by Lava's own runtime with
`Loihi2SimCfg(select_tag="fixed_pt")`.
"""

from __future__ import annotations

import numpy as np

from neurodecorr.backends.lava_compat import import_lava
from neurodecorr.backends.sigma_delta import IntNet, Trace


def run_lava(net: IntNet, stream: np.ndarray, record: bool = False, reset_every: int | None = None):
    """Run one input stream (n_in, T) through Lava. Returns the output layer's act after every
    step (T, n_out), and, with record, the Trace of every layer (T, n, 1) as `emulate` gives.

    reset_every: set every neuron's state (sigma, act, residue) back to zero every so many
    steps, between `run` calls, so that each sample starts from rest (see `deploy`).
    """
    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.monitor.process import Monitor
    from lava.proc.sdn.process import ActivationMode, SigmaDelta

    n_steps = stream.shape[1]
    source = RingBuffer(data=stream.astype(np.int32))
    port, neurons, denses = source.s_out, [], []
    for layer in net.layers:
        dense = Dense(weights=layer.weights, weight_exp=layer.weight_exp, num_message_bits=24,
                      num_weight_bits=layer.weight_bits)
        sd = SigmaDelta(shape=(layer.weights.shape[0],), vth=net.vth, bias=layer.bias,
                        act_mode=ActivationMode.RELU if layer.relu else ActivationMode.UNIT)
        port.connect(dense.s_in)
        dense.a_out.connect(sd.a_in)
        port = sd.s_out
        neurons.append(sd)
        denses.append(dense)
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
                for sd, dense in zip(neurons, denses):
                    zeros = np.zeros(sd.sigma.shape, dtype=np.int32)
                    for var in (sd.sigma, sd.act, sd.residue, dense.a_buff):
                        var.set(zeros)
            source.run(condition=RunSteps(num_steps=min(chunk, n_steps - start)), run_cfg=run_cfg)
        acts, outs = [], []
        for sd, m_act, m_out in monitors:  # noqa: B007
            acts.append(np.asarray(m_act.get_data()[sd.name]["act"]).astype(np.int64))
            outs.append(np.asarray(m_out.get_data()[sd.name]["s_out"]).astype(np.int64))
    finally:
        source.stop()
    output = acts[-1]
    if not record:
        return output
    return output, Trace([o[:, :, None] for o in outs], [a[:, :, None] for a in acts])
