"""Training throughput of the rate engine against this machine's GEMM, and chips against ideal.

1. For bp, fa, dfa and np, each with --decor none and --decor seed, it times training steps on
   the paper's dense net with Fashion-MNIST batches of 256 (after warm-up), counts the
   floating-point operations each step performs, and reports samples per second and the
   fraction of the float32 GEMM rate measured in the same run (issue 14's goals: bp and fa
   ≥ 85 %, dfa and np ≥ 80 %, the seed rule ≤ 1.9× the time without it), then the cost of the
   energy counters and the peak memory of a training run (goal ≤ 1 GiB). A rule's
   configurations are timed in rounds, each a GEMM block, a block of steps of every
   configuration and a GEMM block again: each figure is the median over the rounds of a ratio
   between neighbours in time (`interleaved`), with its quartiles. The same rounds time each
   configuration's matrix products alone (`Products`): the fraction the step would reach if
   nothing else took time, so a figure below its goal reads as the BLAS's rate on the net's
   shapes or as the rest of the step.
2. Whole `train` runs of the demo's net (small-mlp, 1 epoch on --chip-samples samples, the test
   set's evaluation, counters and report) on each shipped chip, as a ratio to the same run on
   ideal timed right before it (the median of --chip-repeats pairs' ratios; goals: digital ≤ 1.3×,
   crossbar ≤ 2×).
3. The same settings' training steps alone, chip and ideal in one process in alternating blocks
   (the median of --chip-rounds rounds' ratios): the code's own cost, where two runs seconds
   apart also read the host's drift.

Run: `make bench` or `.venv/bin/python benchmarks/train_throughput.py [--rounds N]
[--chip-repeats 0] [--chip-rounds 0]`. The element-wise kernels are numba's unless
NEURODECORR_KERNELS=numpy (then the numpy fallback is measured).

FLOPs counted per sample, for a dense layer with n_in inputs and n_out outputs (2 per multiply-add):
forward W x̃: 2·n_in·n_out; backward to the layer below (bp/fa, not layer 0): 2·n_in·n_out (dfa
instead: D_l e_L, 2·n_out·n_classes per hidden layer); weight update e x̃ᵀ: 2·n_in·n_out;
decorrelated layers add R(a − μ): 2·n_in², the backward read through R (not layer 0): 2·n_in²,
and the rule's Zᵀ(Z R) on the sub-sample: 4·n·n_in² per batch. np: two forward passes, no
backward pass; on ideal the noisy one takes its first layer's x̃ and W x̃ from the clean one.
Element-wise work (activations, Adam, noise draws) is not counted: with the BLAS's lower rate on
some of these shapes (the weight updates' inner dimension of 256, the sub-sample's 26 rows, the
10 outputs), it is what keeps the fraction below 1.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from neurodecorr.data import batches, load_dataset
from neurodecorr.energy import Counts
from neurodecorr.engine.config import TrainConfig
from neurodecorr.engine.learner import make_learner
from neurodecorr.engine.step import train_step
from neurodecorr.engine.trainer import blas_info
from neurodecorr.nets.spec import load_spec
from neurodecorr.rules.decorrelation import subsample_size
from neurodecorr.rules.plasticity import local_outer


class Gemm:
    """The float32 GEMM of the engine's typical shape, (batch × n) @ (n × n), timed a block at a
    time between training steps."""

    def __init__(self, n: int = 1000, batch: int = 256, repeats: int = 20):
        rng = np.random.default_rng(0)
        self.a = rng.standard_normal((batch, n)).astype(np.float32)
        self.b = rng.standard_normal((n, n)).astype(np.float32)
        self.repeats = repeats
        self.flops = 2 * batch * n * n * repeats
        for _ in range(5):
            self.a @ self.b

    def seconds(self) -> float:
        t = time.perf_counter()
        for _ in range(self.repeats):
            self.a @ self.b
        return time.perf_counter() - t


ENGINE_GOALS = {"bp": 0.85, "fa": 0.85, "dfa": 0.80, "np": 0.80}  # issue 14: fraction of GEMM
DECOR_GOAL = 1.9  # issue 14: time with the seed rule over without (its FLOP ratio)


def step_products(layers, rule: str, decor: bool, batch: int) -> list[tuple[str, int, int, int]]:
    """The matrix products of one training step on ideal, as (kind, rows, n_in, n_out), each
    2·rows·n_in·n_out FLOPs, in the orientation the engine computes it: "forward" x (rows, n_in)
    @ W (n_out, n_in)ᵀ (a read, `mvm`); "back" e (rows, n_in) @ M (n_in, n_out) (a transposed
    read, `mvm_t`); "update" and "rule" eᵀ x with e (rows, n_in), x (rows, n_out)
    (`local_outer`: a weight update into its kept buffer; the decorrelation rule's C R into a new
    array). For R both widths are the layer's n_in. Dense layers, the seed rule's left form and
    the default sub-sample fraction, as this bench runs them."""
    out = []
    n_sub = subsample_size(batch, 0.1)
    for i, s in enumerate(layers):
        decorrelated = decor and s.decorrelated
        passes = 2 if rule == "np" and i > 0 else 1  # np's noisy pass reuses the first layer's
        for _ in range(passes):
            if decorrelated:
                out.append(("forward", batch, s.n_in, s.n_in))  # R(a − μ)
            out.append(("forward", batch, s.n_in, s.n_out))
        out.append(("update", batch, s.n_out, s.n_in))  # e x̃ᵀ
        if rule in ("bp", "fa") and i > 0:  # backward to the layer below, through W (or B) and R
            out.append(("back", batch, s.n_out, s.n_in))
            if decorrelated:
                out.append(("back", batch, s.n_in, s.n_in))
        if rule == "dfa" and i < len(layers) - 1:
            out.append(("forward", batch, layers[-1].n_out, s.n_out))  # D_l e_L
        if decorrelated:  # the rule's Zᵀ(Z R) on the sub-sample
            out += [("back", n_sub, s.n_in, s.n_in), ("rule", n_sub, s.n_in, s.n_in)]
    return out


def flops_per_batch(layers, rule: str, decor: bool, batch: int) -> float:
    return float(sum(2 * rows * n_in * n_out for _, rows, n_in, n_out in step_products(layers, rule, decor, batch)))


class Products:
    """A step's matrix products alone (`step_products`), on random operands of the same shapes
    and orientations, through the engine's own `local_outer` for the outer products (whose
    1/batch scaling pass comes with them): roughly what the step would take if everything else
    were free. Timed beside the steps, it splits the fraction of GEMM into the BLAS's rate on
    these shapes and the rest of the step."""

    def __init__(self, layers, rule: str, decor: bool, batch: int):
        rng = np.random.default_rng(1)
        self.calls = []
        self.flops = flops_per_batch(layers, rule, decor, batch)
        for kind, rows, n_in, n_out in step_products(layers, rule, decor, batch):
            a = rng.standard_normal((rows, n_in), dtype=np.float32)
            if kind == "forward":
                b = rng.standard_normal((n_out, n_in), dtype=np.float32)
                self.calls.append(lambda a=a, b=b: a @ b.T)
            elif kind == "back":
                b = rng.standard_normal((n_in, n_out), dtype=np.float32)
                self.calls.append(lambda a=a, b=b: a @ b)
            else:
                b = rng.standard_normal((rows, n_out), dtype=np.float32)
                out = np.empty((n_in, n_out), np.float32) if kind == "update" else None
                self.calls.append(lambda a=a, b=b, out=out: local_outer(a, b, out=out))
        self.seconds(2)

    def seconds(self, steps: int) -> float:
        t = time.perf_counter()
        for _ in range(steps):
            for call in self.calls:
                call()
        return (time.perf_counter() - t) / steps


class Stepper:
    """One configuration's learner on the paper's net (or `model`), stepped a block at a time
    through the same shuffled Fashion-MNIST batches as every other configuration."""

    def __init__(self, data, rule: str, decor: str, batch: int, counting: bool = False,
                 model: str = "paper-mlp", profile: str = "ideal"):
        cfg = TrainConfig(dataset="fashion-mnist", model=model, rule=rule, decor=decor,
                          batch_size=batch, profile=profile)
        spec = load_spec(model)
        self.learner = make_learner(cfg, spec, data.input_shape, data.n_classes,
                                    counter=Counts() if counting else None)
        self.data, self.rng, self.buffers, self.at = data, np.random.default_rng(0), {}, 0
        self.index = list(batches(len(data.y_train), batch, np.random.default_rng(0)))
        self.flops = flops_per_batch(spec.layers(data.input_shape, data.n_classes), rule, decor != "none", batch)
        self.seconds(5)  # warm-up: compiled kernels, first touches

    def seconds(self, steps: int) -> float:
        """Time of `steps` training steps, per step."""
        t = time.perf_counter()
        for _ in range(steps):
            i = self.index[self.at % len(self.index)]
            train_step(self.learner, self.data.x_train[i], self.data.y_train[i], self.rng, self.buffers)
            self.at += 1
        return (time.perf_counter() - t) / steps


def interleaved(steppers: dict, gemm: Gemm, rounds: int, steps: int) -> tuple[dict, list]:
    """Rounds of [GEMM block, each configuration's block of `steps` steps in turn, GEMM block]:
    per round and configuration, its GFLOP/s over the GEMM rate of the blocks either side (the
    fraction) and its step time. Neighbours share the host's state: this shared machine's rate
    drifts by tens of percent between minutes, which a ratio of two separate best-of figures
    reads as a property of the code. Returns name → (fractions, step seconds), one per round,
    and the GEMM rates (FLOP/s) of the rounds."""
    out, rates = {name: ([], []) for name in steppers}, []
    for _ in range(rounds):
        before = gemm.seconds()
        times = {name: s.seconds(steps) for name, s in steppers.items()}
        rate = gemm.flops / ((before + gemm.seconds()) / 2)
        rates.append(rate)
        for name, t in times.items():
            out[name][0].append(steppers[name].flops / t / rate)
            out[name][1].append(t)
    return out, rates


def spread(values) -> tuple[float, str]:
    """The median and the interquartile range of per-round figures."""
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    return med, f"{q1:.2f}–{q3:.2f}"


def peak_memory_gib(rule: str, decor: str, batch: int, steps: int = 10) -> float:
    """Peak resident memory of a fresh process that loads Fashion-MNIST and trains the paper's
    net for `steps` steps with `rule` and `decor` (what a training run holds)."""
    # VmHWM, the new process image's own peak: getrusage's ru_maxrss would carry over this
    # process's peak from the fork
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import train_throughput as t; "
            "from neurodecorr.data import load_dataset; "
            "run = t.Stepper(load_dataset('fashion-mnist'), sys.argv[2], sys.argv[3], int(sys.argv[4])); "
            "run.seconds(int(sys.argv[5])); "
            "print(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])")
    here = str(Path(__file__).resolve().parent)
    done = subprocess.run([sys.executable, "-c", code, here, rule, decor, str(batch), str(steps)],
                          capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1]) / 2**20  # kB


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=24,
                   help="rounds per rule, each timing every configuration's block between two GEMM blocks")
    p.add_argument("--steps", type=int, default=2, help="training steps per configuration and round")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--chip-samples", type=int, default=60000,
                   help="training samples of each whole run in the chip comparison (default: an epoch, "
                        "as each of the demo's epochs: one test evaluation per epoch)")
    p.add_argument("--chip-repeats", type=int, default=3,
                   help="chip runs per setting, each beside its own ideal run; the median of their ratios is "
                        "reported (0: no chip runs)")
    p.add_argument("--chip-rounds", type=int, default=16,
                   help="rounds of alternating blocks of chip and ideal training steps, per setting (0: none)")
    args = p.parse_args(argv)
    data = load_dataset("fashion-mnist")
    from neurodecorr import kernels

    print(f"BLAS: {blas_info()}; element-wise kernels: {kernels.BACKEND}")
    gemm = Gemm()
    rows, rates, counted = [], [], {}
    for rule in ("bp", "fa", "dfa", "np"):
        steppers = {d: Stepper(data, rule, d, args.batch_size) for d in ("none", "seed")}
        layers = load_spec("paper-mlp").layers(data.input_shape, data.n_classes)
        steppers.update({f"{d} products": Products(layers, rule, d != "none", args.batch_size)
                         for d in ("none", "seed")})
        if rule == "bp":  # the energy counters' cost, in the same rounds
            steppers.update({f"{d} counted": Stepper(data, rule, d, args.batch_size, counting=True)
                             for d in ("none", "seed")})
        per_round, gemm_rates = interleaved(steppers, gemm, args.rounds, args.steps)
        times = {name: np.array(t) for name, (_, t) in per_round.items()}
        rates += [r / 1e9 for r in gemm_rates]
        for decor in ("none", "seed"):
            fraction, iqr = spread(per_round[decor][0])
            over, over_iqr = spread(times[decor] / times["none"])
            ceiling, _ = spread(per_round[f"{decor} products"][0])
            rest, _ = spread(1 - times[f"{decor} products"] / times[decor])
            products_over, _ = spread(times[f"{decor} products"] / times["none products"])
            rows.append((rule, decor, args.batch_size / np.median(times[decor]), fraction, iqr, over, over_iqr,
                         ceiling, rest, products_over))
        if rule == "bp":
            counted = {d: spread(times[f"{d} counted"] / times[d]) for d in ("none", "seed")}
        print(f"  {rule}: " + ", ".join(f"{n} {1e3 * np.median(t):.1f} ms" for n, t in times.items()),
              file=sys.stderr)
        del steppers, per_round
    print(f"float32 GEMM (256×1000 @ 1000×1000), timed between the steps: {min(rates):.0f}–{max(rates):.0f} "
          f"GFLOP/s over the rounds (median {np.median(rates):.0f}). Each figure is the median over "
          f"{args.rounds} rounds of the ratio to its neighbours "
          f"(GEMM blocks either side; the same round's run without decorrelation), the 25th–75th "
          "percentiles beside it. *Products alone*: the step's matrix products by themselves (`Products`: "
          "the same shapes and orientations, timed apart from the step) as a fraction of GEMM, roughly the "
          "most the step could reach with this BLAS, and their own time with the seed rule over without; "
          "*rest of the step*: 1 − their time over the step's, the share of the step beyond its products' "
          "time alone.\n")
    print("| rule | decor | samples/s | fraction of GEMM | (quartiles) | products alone | rest of the step "
          "| time vs no decor | (quartiles) | products alone vs no decor | goal |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for rule, decor, sps, fraction, iqr, over, over_iqr, ceiling, rest, products_over in rows:
        goal = ENGINE_GOALS[rule]
        met = fraction >= goal and (decor == "none" or over <= DECOR_GOAL)
        print(f"| {rule} | {decor} | {sps:.0f} | {100 * fraction:.0f} % | {iqr} | {100 * ceiling:.0f} % | "
              f"{100 * rest:.0f} % | {over:.2f}× | {'' if decor == 'none' else over_iqr} | "
              f"{'' if decor == 'none' else f'{products_over:.2f}×'} | "
              f"≥ {100 * goal:.0f} %{'' if decor == 'none' else f', ≤ {DECOR_GOAL}×'}: "
              f"{'met' if met else 'NOT met'} |")
    print("\nEnergy counters on (bp): what `neurodecorr train` runs; its step time over the same round's "
          "uncounted step")
    print("| decor | slowdown | (quartiles) |\n|---|---|---|")
    for decor, (ratio, iqr) in counted.items():
        print(f"| {decor} | {100 * (ratio - 1):+.1f} % | {iqr} |")
    peak = max(peak_memory_gib(rule, "seed", args.batch_size) for rule in ("bp", "np"))
    print(f"\npeak resident memory of a paper-mlp training run (bp and np with the seed rule, each in a "
          f"fresh process): {peak:.2f} GiB (goal ≤ 1 GiB: {'met' if peak <= 1 else 'NOT met'})")
    if args.chip_repeats > 0:
        chip_runs(data, args.chip_samples, args.chip_repeats)
    if args.chip_rounds > 0:
        chip_steps(data, args.chip_rounds, args.batch_size)
    return 0


CHIP_PROFILES = ("ideal", "loihi2", "loihi2-residual", "analog-pcm", "analog-pcm-periphery",
                 "analog-rram", "analog-rram-periphery")
CHIP_RUNS = (("bp", "none"), ("bp", "seed"), ("fa", "seed"), ("np", "seed"))
CHIP_GOALS = {"digital": 1.3, "crossbar": 2.0}  # issue 14: time of a run against ideal


def chip_runs(data, samples: int, repeats: int = 2) -> None:
    """Whole `train` runs (1 epoch on `samples` training samples, the evaluation on the test set,
    energy counters and report) of the demo's net on each chip, against the same run on ideal.
    Each chip run is paired with an ideal run of the same settings right before it, `repeats`
    times, and the figure is the median of the pairs' ratios: a shared host's rate drifts by
    tens of percent from one minute to the next (the same ideal run took 0.70 and 1.30 s within
    minutes here), and neighbours see the same state, where the best of each set may not."""
    from neurodecorr.devices.loader import load_profile
    from neurodecorr.engine.trainer import train

    def timed(profile, rule, decor):
        cfg = TrainConfig(dataset="fashion-mnist", model="small-mlp", rule=rule, decor=decor,
                          profile=profile, epochs=1, train_samples=samples)
        t = time.perf_counter()
        train(cfg, data=data, progress=False, log=lambda _: None)
        return time.perf_counter() - t

    print(f"\nChips against ideal: whole runs of small-mlp (the demo's net), 1 epoch on {samples} "
          f"samples and the evaluation on the test set; the median of {repeats} ratios, each of a chip run "
          "to the same run on ideal timed right before it")
    print("| profile | " + " | ".join(f"{r} {d}" for r, d in CHIP_RUNS) + " | worst | goal |")
    print("|---|" + "---|" * (len(CHIP_RUNS) + 2))
    ideal_all = {run: [] for run in CHIP_RUNS}
    rows = []
    for profile in (p for p in CHIP_PROFILES if p != "ideal"):  # ideal: each run's own baseline
        ratios = []
        for rule, decor in CHIP_RUNS:
            ideal, chip = [], []
            for _ in range(repeats):
                ideal.append(timed("ideal", rule, decor))
                chip.append(timed(profile, rule, decor))
            ideal_all[rule, decor] += ideal
            pairs = np.array(chip) / np.array(ideal)
            ratios.append(float(np.median(pairs)))
            print(f"  {profile} {rule} {decor}: {' '.join(f'{c:.2f}/{i:.2f} s' for c, i in zip(chip, ideal))}"
                  f" (chip/ideal), ratios {pairs.min():.2f}–{pairs.max():.2f}", file=sys.stderr)
        limit = CHIP_GOALS[load_profile(profile).kind]
        worst = max(ratios)
        rows.append(f"| {profile} | " + " | ".join(f"{r:.2f}×" for r in ratios)
                    + f" | {worst:.2f}× | ≤ {limit}×: {'met' if worst <= limit else 'NOT met'} |")
    best = [min(ideal_all[run]) for run in CHIP_RUNS]
    print("| ideal (fastest) | " + " | ".join(f"{t:.2f} s" for t in best) + f" | {max(best):.2f} s | (the baseline) |")
    print("\n".join(rows))


def chip_steps(data, rounds: int, batch: int, steps: int = 4) -> None:
    """Training steps alone (no set-up, evaluation or report) of the demo's net with the counters
    on, each chip against ideal with the same settings in the same process: rounds of a block of
    `steps` steps of each, in alternating order, and the median of the rounds' ratios. Blocks
    seconds apart share the host's state, which whole runs can not."""
    from neurodecorr.devices.loader import load_profile

    print(f"\nChips against ideal, training steps alone (small-mlp, batch {batch}, counters on): the median "
          f"over {rounds} rounds of a block of {steps} chip steps over a block of ideal steps beside it, "
          "the quartiles in brackets")
    print("| profile | " + " | ".join(f"{r} {d}" for r, d in CHIP_RUNS) + " | worst | goal |")
    print("|---|" + "---|" * (len(CHIP_RUNS) + 2))
    ideal = {run: Stepper(data, *run, batch, counting=True, model="small-mlp") for run in CHIP_RUNS}
    for profile in (p for p in CHIP_PROFILES if p != "ideal"):
        cells, medians = [], []
        for run in CHIP_RUNS:
            chip = Stepper(data, *run, batch, counting=True, model="small-mlp", profile=profile)
            ratios = []
            for k in range(rounds):
                first, second = (ideal[run], chip) if k % 2 == 0 else (chip, ideal[run])
                a, b = first.seconds(steps), second.seconds(steps)
                ratios.append(b / a if first is ideal[run] else a / b)
            median, iqr = spread(ratios)
            medians.append(median)
            cells.append(f"{median:.2f}× ({iqr})")
        limit = CHIP_GOALS[load_profile(profile).kind]
        worst = max(medians)
        print(f"| {profile} | " + " | ".join(cells) + f" | {worst:.2f}× | ≤ {limit}×: "
              f"{'met' if worst <= limit else 'NOT met'} |")


if __name__ == "__main__":
    sys.exit(main())
