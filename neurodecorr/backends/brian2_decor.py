"""`neurodecorr spiking-decor`: the seed decorrelation rule learned by plastic synapses in Brian2,
from spike trains whose rates share a hidden cause.

The model (n inputs, n outputs, dt = 1 ms; every update below is Brian2 code in the simulation):

    inputs      Poisson spikes (a Bernoulli draw per step) at rate
                r_i(t) = r_0 + σ_r (ρ_i S(t) + √(1 − ρ_i²) N_i(t)),  |ρ_i| ∈ [0.6, 0.9], any sign
                S (shared hidden cause) and N_i (private) are unit-variance Ornstein–Uhlenbeck
                signals (correlation time `signal_tau_s`) played from a TimedArray.
    traces      a_i: spike-rate trace (da/dt = −a/τ_a, a += 1/τ_a per spike, in Hz);
                μ_i: slow running mean (dμ/dt = (a − μ)/τ_μ);  d_i = (a_i − μ_i)/σ_r
    R synapses  input i → output j with weight R_ji (starts at I);
                z_j = Σ_i R_ji d_i                    summed variable onto the post side
                (Rᵀz)_i = Σ_j R_ji z_j                summed variable onto the PRE side: the same
                                                      synapses read transposed, no second array
    outputs     Poisson spikes at rate clip(r_0 + σ_r z_j, 0, 1/dt): a baseline makes negative z
                representable. The rule's post factor is z_j itself, the neuron's summed synaptic
                drive (local to the neuron); the output spikes carry z to the measurement.
    gain        one neuron; Σ d_i² and Σ z_j² arrive as summed variables; running means (τ_g)
                of their square roots, m_d and m_z, give g = m_d / m_z, i.e.
                mean‖a − μ‖ / mean‖z‖ (both /σ_r); the R synapses read g as a linked variable.
    update      every Δ = `update_every_s` (run_regularly, in the engine's order: C from z
                before the gain):  R_ji ← g (R_ji − η z_j (Rᵀz)_i),  i.e.  R ← g (R − η z zᵀ R);
                the gain neuron then rescales m_z by g, since every z just grew by g. m_z thus
                always describes the current R (m_z = m_d right after each update), and the gain
                works as an integral controller, ln g ≈ (Δ/τ_g)(1 − ‖z‖/m_d) per update, that
                holds mean‖z‖ = mean‖a − μ‖ — the seed rule's normalisation — without the
                overshoot that applying a lagging ratio every Δ ≪ τ_g would cause.

Protocol: `measure_s` with R = I and plasticity off; `duration_s` of learning; `measure_s` with
plasticity off again, replaying the same input rates as the first phase (fresh Poisson spikes).
Correlations: of output spike counts in bins of `bin_s`; the curve over sliding windows of
`window_s` across all three phases. The fixed point of the rule is C_z ∝ I for the covariance
of the traces d (signal plus Poisson noise), so output counts decorrelate up to their own Poisson
noise and the finite-window estimation floor (E|r| = √(2/π)/√bins for independent counts).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from neurodecorr.backends.brian2_deploy import codegen_target, pick_codegen_target
from neurodecorr.errors import RunError


@dataclass(frozen=True)
class DecorParams:
    """Settings of the spiking decorrelation model (rates in Hz, times in seconds)."""

    rate_hz: float = 80.0          # r_0: baseline rate of inputs and outputs
    rate_sd_hz: float = 40.0       # σ_r: input rate modulation; output rate per unit z
    signal_tau_s: float = 0.15     # correlation time of S and N_i
    trace_tau_s: float = 0.03      # τ_a
    mean_tau_s: float = 2.0        # τ_μ
    gain_tau_s: float = 1.0        # τ_g
    eta: float = 0.002             # η per update
    update_every_s: float = 0.01
    measure_s: float = 30.0
    bin_s: float = 0.1
    window_s: float = 10.0
    dt_s: float = 1e-3


def mean_abs_offdiag(c: np.ndarray) -> float:
    """Mean |C_ij| over i ≠ j of a square matrix."""
    return float(np.abs(c[~np.eye(len(c), dtype=bool)]).mean())


def binned_counts(t_s: np.ndarray, i: np.ndarray, n: int, start_s: float, stop_s: float,
                  bin_s: float) -> np.ndarray:
    """Spike counts (n, bins) of neurons i at times t_s in [start_s, stop_s)."""
    bins = int(round((stop_s - start_s) / bin_s))
    keep = (t_s >= start_s) & (t_s < stop_s)
    k = np.minimum(((t_s[keep] - start_s) / bin_s).astype(int), bins - 1)
    counts = np.zeros((n, bins))
    np.add.at(counts, (i[keep], k), 1)
    return counts


def count_correlation(t_s, i, n, start_s, stop_s, bin_s) -> np.ndarray:
    """Correlation matrix (n, n) of binned spike counts."""
    return np.corrcoef(binned_counts(t_s, i, n, start_s, stop_s, bin_s))


def _noise_floor(bins: float) -> float:
    """E|r| of the sample correlation of two independent series of `bins` values: √(2/π)/√bins."""
    return float(np.sqrt(2 / np.pi / bins))


def _hidden_signals(rng, n: int, steps: int, dt_s: float, tau_s: float) -> np.ndarray:
    """(steps, n + 1) unit-variance Ornstein–Uhlenbeck signals sampled every dt_s."""
    from scipy.signal import lfilter

    a = np.exp(-dt_s / tau_s)
    noise = rng.standard_normal((steps, n + 1))
    noise[0] /= np.sqrt(1 - a * a)  # start in the stationary distribution
    return lfilter([np.sqrt(1 - a * a)], [1, -a], noise, axis=0)


def _build(p: DecorParams, n: int, rng, learn_s: float):
    import gc

    import brian2 as b2

    gc.collect()  # free the names of earlier, unreachable models: same names → cached Cython code

    second, Hz = b2.second, b2.Hz
    dt = p.dt_s * second
    signal_dt_s = 0.01  # the TimedArray's resolution (signals vary over ≫ 10 ms)
    signal_steps = int(np.ceil((p.measure_s + learn_s) / signal_dt_s)) + 1
    hidden = _hidden_signals(rng, n, signal_steps, signal_dt_s, p.signal_tau_s)
    rho = rng.uniform(0.6, 0.9, n) * rng.choice([-1.0, 1.0], n)
    drive = hidden[:, :1] * rho + hidden[:, 1:] * np.sqrt(1 - rho ** 2)  # (steps, n)
    ns = {"r0": p.rate_hz * Hz, "sr": p.rate_sd_hz * Hz, "rmax": 1 / dt,
          "stim": b2.TimedArray(drive, dt=signal_dt_s * second, name="hidden_cause"),
          "tau_a": p.trace_tau_s * second, "tau_mu": p.mean_tau_s * second,
          "tau_g": p.gain_tau_s * second, "eta": p.eta}
    # Summed variables run just before their target group (order − 1): z (onto outputs,
    # order 0) is summed before Rᵀz (onto inputs, order 2), which reads z.
    inputs = b2.NeuronGroup(n, """
        rate = clip(r0 + sr * stim(t - t_shift, i), 0 * Hz, rmax) : Hz
        da/dt = -a / tau_a : Hz
        dmu/dt = (a - mu) / tau_mu : Hz
        d = (a - mu) / sr : 1
        rtz : 1
        t_shift : second (shared)
        """, threshold="rand() < rate * dt", reset="a += 1 / tau_a", method="exact", dt=dt,
        order=2, namespace=ns, name="inputs")
    outputs = b2.NeuronGroup(n, """
        z : 1
        rate = clip(r0 + sr * z, 0 * Hz, rmax) : Hz
        """, threshold="rand() < rate * dt", dt=dt, order=0, namespace=ns, name="outputs")
    gain = b2.NeuronGroup(1, """
        dsq : 1
        zsq : 1
        dnd/dt = (sqrt(dsq) - nd) / tau_g : 1
        dnz/dt = (sqrt(zsq) - nz) / tau_g : 1
        g : 1
        """, method="exact", dt=dt, order=0, namespace=ns, name="gain")
    R = b2.Synapses(inputs, outputs, """
        w : 1
        z_post = w * d_pre : 1 (summed)
        rtz_pre = w * z_post : 1 (summed)
        g_syn : 1 (linked)
        gain_index : integer (constant)
        """, dt=dt, namespace=ns, name="R")
    R.connect()
    R.w = (np.asarray(R.i[:]) == np.asarray(R.j[:])).astype(float)  # R = I
    R.gain_index = 0
    R.g_syn = b2.linked_var(gain, "g", index="gain_index")
    to_gain_d = b2.Synapses(inputs, gain, "dsq_post = d_pre ** 2 : 1 (summed)", dt=dt,
                            namespace=ns, name="d_to_gain")
    to_gain_z = b2.Synapses(outputs, gain, "zsq_post = z_pre ** 2 : 1 (summed)", dt=dt,
                            namespace=ns, name="z_to_gain")
    to_gain_d.connect()
    to_gain_z.connect()
    inputs.a = p.rate_hz * Hz
    inputs.mu = p.rate_hz * Hz
    gain.nd = gain.nz = np.sqrt(n)
    gain.g = 1
    every = p.update_every_s * second
    gain_update = gain.run_regularly("g = nd / (nz + 1e-9)\nnz = nz * g", dt=every, when="end",
                                     order=0, name="gain_update")
    plasticity = R.run_regularly("w = g_syn * (w - eta * z_post * rtz_pre)", dt=every,
                                 when="end", order=1, name="plasticity")
    spikes_out = b2.SpikeMonitor(outputs, name="output_spikes")
    spikes_in = b2.SpikeMonitor(inputs, name="input_spikes")
    net = b2.Network(inputs, outputs, gain, R, to_gain_d, to_gain_z, spikes_out, spikes_in)
    return net, inputs, R, (gain_update, plasticity), spikes_in, spikes_out, rho


def spiking_decorrelation(n: int = 8, duration_s: float = 60.0, seed: int = 0,
                          plot_path: str | Path | None = None, params: DecorParams = DecorParams(),
                          log: Callable[[str], None] = print) -> dict:
    """Learn R with the seed rule from spikes (module docstring); measure output correlations
    before (R = I) and after `duration_s` of learning. Returns the figures (JSON-ready)."""
    if n < 2:
        raise RunError(f"the decorrelating layer needs n ≥ 2 neurons, found n={n}")
    if duration_s <= 0 or params.measure_s < params.window_s:
        raise RunError(f"duration_s must be positive and measure_s ≥ window_s, found "
                       f"{duration_s} and {params.measure_s} < {params.window_s}")
    try:
        import brian2 as b2
    except ImportError:
        raise RunError("brian2 is not installed: `pip install brian2` (2.9 is tested)") from None

    t_start = time.perf_counter()
    target = pick_codegen_target()
    rng = np.random.default_rng(seed)
    p = params
    with codegen_target(target):
        b2.seed(seed)
        net, inputs, R, plastic_ops, spikes_in, spikes_out, rho = _build(p, n, rng, duration_s)
        phases = [("before", p.measure_s, False, 0.0),
                  ("learning", duration_s, True, 0.0),
                  ("after", p.measure_s, False, p.measure_s + duration_s)]  # replay phase 1
        for name, length, plastic, shift in phases:
            for op in plastic_ops:
                op.active = plastic
            inputs.t_shift = shift * b2.second
            t0 = time.perf_counter()
            net.run(length * b2.second)
            log(f"  spiking-decor: {name} phase, {length:.0f} s simulated in "
                f"{time.perf_counter() - t0:.1f} s")
        t_out, i_out = np.asarray(spikes_out.t / b2.second), np.asarray(spikes_out.i[:])
        t_in, i_in = np.asarray(spikes_in.t / b2.second), np.asarray(spikes_in.i[:])
        R_final = np.zeros((n, n))
        R_final[np.asarray(R.j[:]), np.asarray(R.i[:])] = np.asarray(R.w[:])

    end_before, start_after = p.measure_s, p.measure_s + duration_s
    total = start_after + p.measure_s
    c_before = count_correlation(t_out, i_out, n, 0.0, end_before, p.bin_s)
    c_after = count_correlation(t_out, i_out, n, start_after, total, p.bin_s)
    c_inputs = count_correlation(t_in, i_in, n, 0.0, end_before, p.bin_s)
    starts = np.arange(0.0, total - p.window_s + 1e-9, p.window_s / 4)
    values = [mean_abs_offdiag(count_correlation(t_out, i_out, n, s, s + p.window_s, p.bin_s))
              for s in starts]
    seconds = time.perf_counter() - t_start
    report = {
        "n": n,
        "seed": seed,
        "duration_s": duration_s,
        "mean_abs_offdiag_before": mean_abs_offdiag(c_before),
        "mean_abs_offdiag_after": mean_abs_offdiag(c_after),
        "mean_abs_offdiag_inputs": mean_abs_offdiag(c_inputs),
        "ratio": mean_abs_offdiag(c_after) / mean_abs_offdiag(c_before),
        "correlation_before": c_before.tolist(),
        "correlation_after": c_after.tolist(),
        "curve": {"times": (starts + p.window_s / 2).tolist(), "values": values,
                  "window_s": p.window_s, "phases_s": [0.0, end_before, start_after, total]},
        "noise_floor_window": _noise_floor(p.window_s / p.bin_s),
        "noise_floor_measure": _noise_floor(p.measure_s / p.bin_s),
        "R": R_final.tolist(),
        "loadings": rho.tolist(),
        "output_rate_hz": len(t_out) / (n * total),
        "seconds": seconds,
        "codegen_target": target,
        "params": asdict(p),
    }
    if plot_path is not None:
        plot_decorrelation(Path(plot_path), report)
    log(f"mean |off-diagonal correlation| of output spike counts: "
        f"{report['mean_abs_offdiag_before']:.3f} with R = I, "
        f"{report['mean_abs_offdiag_after']:.3f} after {duration_s:.0f} s of learning "
        f"(×{report['ratio']:.2f}); {seconds:.1f} s, codegen {target}")
    return report


def plot_decorrelation(path: Path, report: dict) -> None:
    """The two correlation matrices and the curve of mean |off-diagonal| over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1, 1.6]})
    for ax, when, title in ((axes[0], "before", "before (R = I)"),
                            (axes[1], "after", "after learning")):
        im = ax.imshow(np.array(report[f"correlation_{when}"]), vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set(title=f"{title}\nmean |off-diagonal| {report[f'mean_abs_offdiag_{when}']:.2f}",
               xlabel="output neuron", ylabel="output neuron")
    fig.colorbar(im, ax=axes[:2], shrink=0.8, label="correlation of output spike counts")
    ax = axes[2]
    curve = report["curve"]
    ax.plot(curve["times"], curve["values"], "o-", ms=3)
    _, end_before, start_after, _ = curve["phases_s"]
    ax.axvspan(end_before, start_after, color="C1", alpha=0.12, label="plasticity on")
    ax.axhline(report["noise_floor_window"], color="gray", ls=":",
               label="estimation floor (independent counts)")
    ax.set(xlabel="time (s)", ylabel="mean |off-diagonal correlation|", ylim=(0, None),
           title=f"sliding {curve['window_s']:.0f} s windows")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=110)
    plt.close(fig)
