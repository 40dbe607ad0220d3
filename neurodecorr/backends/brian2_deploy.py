"""`neurodecorr deploy RUN --backend brian2`: a trained run as a network of integrate-and-fire
neurons in Brian2 (rate-to-spike conversion), against the rate model on the same samples. Dense
networks only: a conv net is refused (its shared kernels would have to be unrolled into
per-position synapses); `--backend lava` runs it on Lava's Conv processes.

Steps: the shared preparation (`prepare`: the run loaded, decorrelation folded into the dense
layers, hidden LeakyReLU as ReLU); thresholds balanced on training data (`prepare.balance_factors`);
B copies of the spiking network in one `brian2.Network` (block-diagonal synapses: each copy is one
sample); each chunk of B samples run for `steps` time steps of dt = 1 ms; classified by the output
layer's potential.

Neurons (hidden layer l, per copy; one step is dt = 1 ms):

    v ← v + I_l                    I_l = b'_l (· s): the bias as a constant input every step
    v ← v + Σ_k w'_jk              for every spike k arriving from layer l − 1 (same step)
    spike when v ≥ 1;  then v ← v − 1 and count ← count + 1     (reset by subtraction)

The output layer does not spike: it integrates the same way and the prediction after t steps is
argmax of its potential. Its firing rate makes neuron j of layer l a ReLU unit: rate_j ≈
ReLU(h_j)/λ_l spikes per step, clipped at 1.

Threshold balancing (data-based normalisation, Rueckauer et al. 2017): λ_l is the 99.9th
percentile of layer l's ReLU activations on up to 2,000 training samples (λ_0 = 1, λ_L = 1 for
the output), and

    W'_l = W_l λ_{l−1} / λ_l,   b'_l = b_l / λ_l.

Input (`input_mode`):
- "current": the first hidden layer receives its analog input W'_1 x as a constant current each
  step (added to its bias current); no input spikes.
- "poisson": sample x becomes 2·n_in Bernoulli-per-step spike trains (Poisson at dt = 1 ms) with
  probability |x_k| s per step, s = 1 / max_k |x_k| for that sample; positive parts drive +W'_1,
  negative parts −W'_1. The expected input per step is then W'_1 x s, so each copy's biases are
  scaled by the same s (ReLU nets are positively homogeneous: the copy computes s·f(x), same
  argmax), and the λ_l are taken from the activations of s-scaled training samples.

Spikes are counted twice: by each neuron's `count` (incremented in the reset) and by SpikeMonitors
(optional); the report says whether they agree. Operations, priced by `deploy` (loihi2 profile):

    ACs (effective synaptic operations) = Σ_spiking layers spikes × fan-out
                                          (+ input spikes × n_1 in poisson mode)
    messages = spikes;  neuron updates = neurons · steps (hidden and output)

(in current mode the one analog product W'_1 x per sample, n_in · n_1 multiply-adds, is reported
as `input_macs_per_sample` and not priced.)

Code generation: 'cython' where Cython compiles a test module, else 'numpy'; set through
`brian2.prefs.codegen.target` only while a simulation runs, restored afterwards.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurodecorr.backends.base import BackendRun, inference_counts
from neurodecorr.backends.prepare import BALANCE_SAMPLES, INPUT_MODES, balance_factors
from neurodecorr.errors import RunError
from neurodecorr.nets.fold import FoldedLayer

CODEGEN_ENV = "NEURODECORR_BRIAN2_CODEGEN"
MAX_SYNAPSES = 3e7  # synapses in one Brian2 run (≈ 1–2 GB of Brian2 state)
MAX_CURVE_POINTS = 200
MONITOR_AUTO_LIMIT = 1e8  # spiking neuron-steps up to which SpikeMonitors are on by default


# ---------------------------------------------------------------------------- code generation

def pick_codegen_target() -> str:
    """$NEURODECORR_BRIAN2_CODEGEN if set ('numpy' or 'cython'); else 'cython' if Cython is
    importable and compiles a test module with the C compiler here, else 'numpy'."""
    forced = os.environ.get(CODEGEN_ENV)
    if forced:
        if forced not in ("numpy", "cython"):
            raise RunError(f"${CODEGEN_ENV}: expected numpy or cython, found {forced!r}")
        return forced
    try:
        from brian2.codegen.runtime.cython_rt import CythonCodeObject

        return "cython" if CythonCodeObject.is_available() else "numpy"
    except Exception:  # noqa: BLE001 - any failure of the check means: no working Cython
        return "numpy"


@contextmanager
def codegen_target(target: str):
    """Set `brian2.prefs.codegen.target` for the duration of the block, then restore it."""
    from brian2 import prefs

    previous = prefs.codegen.target
    prefs.codegen.target = target
    try:
        yield target
    finally:
        prefs.codegen.target = previous


# ------------------------------------------------------------------------- threshold balancing

@dataclass(frozen=True)
class SpikingLayer:
    """One balanced layer. Shapes: W (n_out, n_in), b (n_out,), float64; `spiking` is False for
    the output layer (an integrator). `lam` is the layer's balancing factor λ_l."""

    W: np.ndarray
    b: np.ndarray
    spiking: bool
    lam: float


def input_scale(x: np.ndarray, input_mode: str) -> np.ndarray:
    """Per-sample input scale s (N,): 1 for current input, 1 / max_k |x_k| for Poisson input."""
    if input_mode == "current":
        return np.ones(len(x))
    peak = np.abs(x).max(axis=1).astype(np.float64)
    return 1.0 / np.where(peak > 0, peak, 1.0)


def balance(layers: list[FoldedLayer], x_train: np.ndarray, input_mode: str) -> list[SpikingLayer]:
    """Threshold balancing: W'_l = W_l λ_{l−1}/λ_l, b'_l = b_l/λ_l with λ_l from
    `prepare.balance_factors` on s-scaled training samples (λ_0 = λ_L = 1)."""
    x = x_train[:BALANCE_SAMPLES]
    lams = [1.0, *balance_factors(layers, x, input_scale(x, input_mode)), 1.0]
    return [SpikingLayer(l.W * lams[i] / lams[i + 1], l.b / lams[i + 1],
                         spiking=i < len(layers) - 1, lam=lams[i + 1])
            for i, l in enumerate(layers)]


# ------------------------------------------------------------------------ the Brian2 network

@dataclass
class ChunkResult:
    """One chunk of k samples. potential (k, steps, n_classes): output potential after every
    step; counts[l] (k, n_l): spikes per neuron of spiking layer l (the input population first in
    poisson mode), from the `count` variables; monitor_counts[l] the same from SpikeMonitors
    (None without monitors)."""

    potential: np.ndarray
    counts: list[np.ndarray]
    monitor_counts: list[np.ndarray] | None


class SpikingNet:
    """B copies of a balanced network in one explicit `brian2.Network` (build inside
    `codegen_target`). Spiking groups, in order: the input population (poisson mode), then the
    hidden layers; `self.spike_monitors` matches them (empty without monitors)."""

    def __init__(self, layers: list[SpikingLayer], copies: int, input_mode: str,
                 monitors: bool = True):
        import gc

        import brian2 as b2

        if input_mode not in INPUT_MODES:
            raise RunError(f"input mode {input_mode!r} is not one of {', '.join(INPUT_MODES)}")
        gc.collect()  # free the names of earlier, unreachable networks: same names → cached code
        self.layers, self.copies, self.input_mode = layers, copies, input_mode
        dt = 1 * b2.ms
        ns = {"step": dt}
        self.spiking_groups, self.synapses = [], []
        self.n_in = layers[0].W.shape[1]
        if input_mode == "poisson":
            # p: spike probability per step; a Bernoulli draw per step is a Poisson train at dt.
            self.input = b2.NeuronGroup(copies * 2 * self.n_in, "p : 1\ncount : 1",
                                        threshold="rand() < p", reset="count += 1", dt=dt,
                                        name="inputs")
            self.spiking_groups.append(self.input)
        self.hidden = []
        for i, layer in enumerate(layers):
            n = copies * layer.W.shape[0]
            if layer.spiking:
                group = b2.NeuronGroup(n, "dv/dt = I / step : 1\nI : 1\ncount : 1",
                                       threshold="v >= 1", reset="v -= 1\ncount += 1",
                                       method="euler", dt=dt, namespace=ns, name=f"layer{i}")
                self.hidden.append(group)
                self.spiking_groups.append(group)
            else:
                group = b2.NeuronGroup(n, "dv/dt = I / step : 1\nI : 1", method="euler", dt=dt,
                                       namespace=ns, name="output")
                self.output = group
        groups = ([self.input] if input_mode == "poisson" else []) + self.hidden + [self.output]
        offset = 1 if input_mode == "poisson" else 0  # groups[i + offset] is layer i
        for i, layer in enumerate(layers):
            if i + offset == 0:  # current mode: layer 0 gets its input as a current
                continue
            self.synapses.append(self._connect(b2, groups[i + offset - 1], groups[i + offset],
                                               layer.W, signed_input=offset == 1 and i == 0,
                                               name=f"synapses{i}"))
        self.output_monitor = b2.StateMonitor(self.output, "v", record=True, dt=dt, when="end",
                                            name="output_potential")
        self.spike_monitors = [b2.SpikeMonitor(g, name=f"spikes_{g.name}")
                               for g in self.spiking_groups] if monitors else []
        self.network = b2.Network(*groups, *self.synapses, self.output_monitor,
                                  *self.spike_monitors)
        self.n_synapses = int(sum(len(s) for s in self.synapses))

    def _connect(self, b2, pre, post, W: np.ndarray, signed_input: bool, name: str):
        """Block-diagonal synapses: copy c's pre neurons to copy c's post neurons only.
        signed_input: pre has 2·n_in neurons per copy, the second half carrying −W."""
        n_post, n_in = W.shape
        n_pre = 2 * n_in if signed_input else n_in
        syn = b2.Synapses(pre, post, "w : 1 (constant)", on_pre="v_post += w", delay=0 * b2.ms,
                          dt=1 * b2.ms, name=name)
        local_pre, local_post = np.meshgrid(np.arange(n_pre, dtype=np.int32),
                                            np.arange(n_post, dtype=np.int32), indexing="ij")
        copy = np.arange(self.copies, dtype=np.int32)[:, None]
        syn.connect(i=(local_pre.ravel()[None, :] + copy * n_pre).ravel(),
                    j=(local_post.ravel()[None, :] + copy * n_post).ravel())
        i_local = np.asarray(syn.i[:]) % n_pre  # read back: Brian2 may store another order
        j_local = np.asarray(syn.j[:]) % n_post
        sign = np.where(i_local < n_in, 1.0, -1.0)
        syn.w[:] = sign * W[j_local, i_local % n_in]
        return syn

    def run(self, x: np.ndarray, s: np.ndarray, steps: int) -> ChunkResult:
        """Simulate up to B samples x (k, n_in) with input scales s (k,) for `steps` steps from
        rest (v = 0, counts 0). Unused copies get the last sample and are ignored."""
        import brian2 as b2

        k = len(x)
        pad = self.copies - k
        x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)]).astype(np.float64)
        s = np.concatenate([s, np.repeat(s[-1:], pad)])
        for group in self.hidden + [self.output]:
            group.v = 0
        for group in self.spiking_groups:
            group.count = 0
        currents = [np.outer(s, layer.b) for layer in self.layers]  # (B, n_l) bias per step
        if self.input_mode == "current":
            currents[0] = currents[0] + x @ self.layers[0].W.T
        else:
            scaled = x * s[:, None]
            self.input.p = np.concatenate([np.maximum(scaled, 0), np.maximum(-scaled, 0)],
                                          axis=1).ravel()
        for group, current in zip(self.hidden + [self.output], currents):
            group.I = current.ravel()
        spikes_before = [m.num_spikes for m in self.spike_monitors]
        self.network.run(steps * b2.ms)
        potential = np.asarray(self.output_monitor.v[:, -steps:])  # (B·n_classes, steps)
        potential = potential.reshape(self.copies, -1, steps)[:k].transpose(0, 2, 1)
        counts = [np.asarray(g.count[:]).reshape(self.copies, -1)[:k].round().astype(np.int64)
                  for g in self.spiking_groups]
        monitor_counts = None
        if self.spike_monitors:
            monitor_counts = []
            for g, m, before in zip(self.spiking_groups, self.spike_monitors, spikes_before):
                per_neuron = np.bincount(np.asarray(m.i[before:]), minlength=len(g))
                monitor_counts.append(per_neuron.reshape(self.copies, -1)[:k])
        return ChunkResult(potential, counts, monitor_counts)


def synapses_per_copy(layers: list[SpikingLayer], input_mode: str) -> int:
    sizes = [l.W.size for l in layers]
    return (2 * sizes[0] if input_mode == "poisson" else 0) + sum(sizes[1:])


def auto_batch(layers: list[SpikingLayer], input_mode: str, samples: int) -> int:
    """Copies per Brian2 run: few enough to keep the synapse count ≤ MAX_SYNAPSES (at least 1),
    spread evenly over the chunks the samples then need (no mostly idle last chunk)."""
    per_copy = max(synapses_per_copy(layers, input_mode), 1)
    most = int(max(1, min(samples, MAX_SYNAPSES // per_copy)))
    chunks = -(-samples // most)
    return -(-samples // chunks)


def simulate(layers: list[SpikingLayer], x: np.ndarray, steps: int, input_mode: str, batch: int,
             monitors: bool, seed: int = 0, log: Callable[[str], None] = print
             ) -> tuple[ChunkResult, float, float]:
    """All samples x (N, n_in) in chunks of `batch` copies; → (concatenated result, build
    seconds, run seconds). Run inside `codegen_target`."""
    import brian2 as b2

    b2.seed(seed)
    t0 = time.perf_counter()
    net = SpikingNet(layers, batch, input_mode, monitors=monitors)
    build_seconds = time.perf_counter() - t0
    s = input_scale(x, input_mode)
    parts = []
    t0 = time.perf_counter()
    for start in range(0, len(x), batch):
        parts.append(net.run(x[start:start + batch], s[start:start + batch], steps))
        log(f"  brian2: {min(start + batch, len(x))}/{len(x)} samples")
    run_seconds = time.perf_counter() - t0
    result = ChunkResult(
        np.concatenate([p.potential for p in parts]),
        [np.concatenate(c) for c in zip(*(p.counts for p in parts))],
        [np.concatenate(c) for c in zip(*(p.monitor_counts for p in parts))] if monitors else None)
    return result, build_seconds, run_seconds


# ---------------------------------------------------------------------------- deploy + report

def _curve(accuracy: np.ndarray) -> list[dict]:
    steps = len(accuracy)
    idx = np.unique(np.linspace(0, steps - 1, min(steps, MAX_CURVE_POINTS)).round().astype(int))
    return [{"step": int(i + 1), "accuracy": float(accuracy[i])} for i in idx]


def plot_accuracy(path: Path, accuracy: np.ndarray, rate_accuracy: float, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.arange(1, len(accuracy) + 1), 100 * accuracy, label="spiking (Brian2)")
    ax.axhline(100 * rate_accuracy, color="C1", ls="--", label="rate model")
    ax.set(xlabel="time steps (1 ms)", ylabel="accuracy (%)", title=title, ylim=(0, 100))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


class Brian2Backend:
    """`samples` test samples of a run as a spiking network in Brian2, `steps` steps each.

    batch: copies per Brian2 run (default: as many as keep ≤ 3e7 synapses). monitors: record
    SpikeMonitors too (default: when samples × steps × spiking neurons ≤ 1e8). seed: Brian2's
    random numbers (Poisson input)."""

    name = "brian2"
    requires = "brian2"
    default_steps = 100
    neurons = "integrate-and-fire neurons"

    def __init__(self, batch: int | None = None, monitors: bool | None = None, seed: int = 0):
        if batch is not None and batch < 1:
            raise RunError(f"batch must be a positive number of copies, found {batch}")
        self.batch, self.monitors, self.seed = batch, monitors, seed

    def run(self, d, options, log):
        conv = [i for i, l in enumerate(d.layers) if l.conv is not None]
        if conv:
            raise RunError(f"the brian2 backend deploys dense networks only; layer(s) {conv} of this "
                           f"run are conv layers, whose shared kernels it would have to unroll into "
                           f"per-position synapses; deploy it with --backend lava (Lava's Conv "
                           f"processes) or --backend emulator")
        steps, input_mode, samples = options.steps, options.input_mode, d.samples
        layers = balance(d.layers, d.data.x_train, input_mode)
        batch = min(self.batch or auto_batch(layers, input_mode, samples), samples)
        spiking_neurons = sum(l.W.shape[0] for l in layers if l.spiking)
        monitors = self.monitors
        if monitors is None:
            monitors = samples * steps * spiking_neurons <= MONITOR_AUTO_LIMIT

        target = pick_codegen_target()
        log(f"brian2 ({target}): {samples} samples × {steps} steps, {input_mode} input, "
            f"{batch} copies per run ({batch * synapses_per_copy(layers, input_mode):,} synapses)")
        t0 = time.perf_counter()
        with codegen_target(target):
            result, build_s, run_s = simulate(layers, d.x, steps, input_mode, batch, monitors,
                                              self.seed, log)
        seconds = time.perf_counter() - t0

        pred = result.potential.argmax(axis=2)  # (N, steps)
        by_step = np.mean(pred == d.y[:, None], axis=0)
        poisson = input_mode == "poisson"
        # spiking populations in order (the input population first in poisson mode), the
        # dense layer each one feeds, and that layer's fan-out
        names = (["input"] if poisson else []) + [f"layer{i}" for i, l in enumerate(layers) if l.spiking]
        feeds = ([0] if poisson else []) + [i + 1 for i, l in enumerate(layers) if l.spiking]
        totals = [int(c.sum()) for c in result.counts]
        counts = inference_counts(samples)
        for total, layer in zip(totals, feeds):
            counts.add(str(layer), "effective_synops", total * layers[layer].W.shape[0])
            # messages are filed with the layer they arrive at (the input population: layer 0)
            counts.add(str(layer), "messages", total)
        for i, layer in enumerate(layers):
            counts.add(str(i), "neuron_updates", layer.W.shape[0] * steps * samples)
        spikes = sum(totals) / samples
        details = {
            "dt_s": 1e-3,
            "input_mode": input_mode,
            "accuracy_by_step": _curve(by_step),
            "spikes_per_sample": {"total": spikes,
                                  "by_layer": {n: t / samples for n, t in zip(names, totals)}},
            "spikes_total": dict(zip(names, totals)),
            "monitor_spikes_total": (dict(zip(names, (int(c.sum()) for c in result.monitor_counts)))
                                     if monitors else None),
            "counts_match_monitors": (all(np.array_equal(a, b) for a, b in
                                          zip(result.counts, result.monitor_counts))
                                      if monitors else None),
            "acs_per_sample": counts.total(kind="effective_synops") / samples,
            "neuron_updates_per_sample": counts.total(kind="neuron_updates") / samples,
            "input_macs_per_sample": layers[0].W.size if input_mode == "current" else 0,
            "thresholds_lambda": [l.lam for l in layers],
            "codegen_target": target,
            "batch": batch,
            "synapses_per_run": batch * synapses_per_copy(layers, input_mode),
            "seconds": seconds,
            "seconds_build": build_s,
            "seconds_run": run_s,
            "samples_per_second": samples / seconds,
        }
        if options.plot:
            plot_accuracy(d.run_dir / "accuracy_vs_steps.png", by_step, d.rate_accuracy,
                          f"{d.data.name}: {samples} samples, {input_mode} input")
        quarter = by_step[max(0, steps // 4 - 1)]
        summary = (f"spiking accuracy {100 * quarter:.2f}% after {max(1, steps // 4)} steps; per "
                   f"sample {spikes:.0f} spikes, {details['acs_per_sample']:.0f} ACs; {seconds:.1f} s "
                   f"({samples / seconds:.1f} samples/s, codegen {target})")
        return BackendRun(float(by_step[-1]), counts, details, summary)
