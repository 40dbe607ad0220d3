"""The `neurodecorr` command line.

    neurodecorr train --dataset fashion-mnist --model paper-mlp --rule fa --decor seed --epochs 5 --out runs/fa-decor
    neurodecorr models        # the shipped network specs
    neurodecorr datasets      # the known datasets
    neurodecorr profiles [NAME]   # the shipped device profiles, or one of them resolved
    neurodecorr energy RUN [--profile NAME]   # a run's energy report, or re-priced for another chip
    neurodecorr evaluate RUN --profile analog-pcm --inference-time 1,3600,86400   # on another chip
    neurodecorr deploy RUN --backend lava --samples 200 --steps 32   # run it on Lava's Loihi simulator
    neurodecorr deploy RUN --backend brian2 --samples 200 --steps 100 --plot   # as a spiking network
    neurodecorr spiking-decor --plot   # decorrelation learned by spiking plasticity (Brian2)
    neurodecorr export RUN --format nir FILE   # the deployed network as a NIR graph
    neurodecorr sweep sweeps/demo.yaml --out runs/demo [--scheduler tcp://host:8786]
    neurodecorr report runs/demo   # rebuild results.md, pareto.png, curves.png

Errors that neurodecorr raises on purpose print as one line (exit status 2); a diverging run
exits with status 3 and keeps its last good checkpoint.
"""

from __future__ import annotations

import argparse
import os
import sys

from neurodecorr import __version__
from neurodecorr.errors import DivergenceError, NeurodecorrError, RunError

# `train` flags: (flag, setting, type, help). Every flag defaults to None ("not given"): a new run
# takes the TrainConfig default or the preset value of what it leaves out, and --resume refuses a
# flag that would change the run's own settings.
_TRAIN_FLAGS = [
    ("--dataset", "dataset", str, "fashion-mnist, digits, mnist or cifar10"),
    ("--data-dir", "data_dir", str, "directory holding the dataset's files"),
    ("--preset", "preset", str, "a named settings bundle: reference (the paper's reference code)"),
    ("--model", "model", str, "a shipped model name (`neurodecorr models`) or a spec .yaml file"),
    ("--profile", "profile", str, "device profile: a shipped name (`neurodecorr profiles`) or a .toml file"),
    ("--rule", "rule", str, "credit assignment: bp, fa, dfa or np"),
    ("--decor", "decor", str, "decorrelation: seed, cpi, whiten, zca or none"),
    ("--optimizer", "optimizer", str, "adam or sgd"),
    ("--lr", "lr", float, "forward-weight learning rate"),
    ("--momentum", "momentum", float, "sgd momentum"),
    ("--decor-lr", "decor_lr", float, "decorrelation learning rate η_R"),
    ("--decor-fraction", "decor_fraction", float, "fraction of each batch the decorrelation rule learns from"),
    ("--decor-kappa", "decor_kappa", float, "κ of the whiten rule"),
    ("--decor-gain", "decor_gain", str,
     "seed rule's gain: centred (‖a − μ‖/‖z‖), raw (‖a‖/‖z‖) or unit (unit variance of z)"),
    ("--decor-centre", "decor_centre", str, "training centres with the running or the batch mean"),
    ("--decor-side", "decor_side", str, "seed rule's update: left (R − η C R) or right (R − η R C)"),
    ("--np-sigma", "np_sigma", float, "node perturbation's noise σ"),
    ("--np-loss-precision", "np_loss_precision", str, "node perturbation's loss difference: float64 or float32"),
    ("--feedback-init", "feedback_init", str, "FA/DFA feedback matrices: uniform (±1/√n) or kaiming (±√(6/n))"),
    ("--input-scaling", "input_scaling", str, "standardise (per feature), global (one mean, one scale), unit ([0, 1])"),
    ("--batch-size", "batch_size", int, "samples per training step"),
    ("--epochs", "epochs", int, "epochs to train (a resumed run may raise its own)"),
    ("--train-samples", "train_samples", int, "train on the first N training samples only [all]"),
    ("--seed", "seed", int, "the seed of every random draw"),
    ("--decorrelation-rank", "decorrelation_rank", int,
     "PCM: the test evaluation keeps R's K most-suppressed directions beside the fold (evaluate's flag) [0]"),
]


def _default_help(setting: str) -> str:
    """Where a left-out setting's value comes from, for --help: "[1e-3 on digits, else 1e-4]"."""
    from neurodecorr.engine import presets
    from neurodecorr.engine.config import TrainConfig

    if setting not in presets.DEFAULTS:
        default = getattr(TrainConfig, setting, None)
        return f" [{default}]" if default is not None else ""
    parts = [f"{v} on {d}" for d, table in presets.BY_DATASET.items() if setting in table
             for v in [table[setting]]]
    parts += [f"{v} for {' '.join(k)}" for k, table in presets.BY_DATASET_RULE.items()
              if setting in table for v in [table[setting]]]
    parts += [f"{v} for {' '.join(k)}" for k, table in presets.BY_MODEL.items()
              if setting in table for v in [table[setting]]]
    parts += [f"{v} for {r} on a {k}" for (k, r), table in presets.BY_DEVICE_RULE.items()
              if setting in table for v in [table[setting]]]
    default = presets.DEFAULTS[setting]
    return f" [{', '.join(parts + [f'else {default}']) if parts else default}]"


def _train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a network and write a run directory",
                       description="Train a network with a local learning rule; write a run "
                                   "directory. Defaults are shown in brackets (README: 'Defaults').")
    for flag, setting, kind, text in _TRAIN_FLAGS:
        p.add_argument(flag, dest=setting, type=kind, default=None, help=text + _default_help(setting))
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last completed epoch with its own "
                        "settings (--epochs may raise its number of epochs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _cmd_train(args) -> int:
    from pathlib import Path

    from neurodecorr.engine import rundir
    from neurodecorr.engine.config import TrainConfig
    from neurodecorr.engine.trainer import train

    given = {setting: getattr(args, setting) for _, setting, _, _ in _TRAIN_FLAGS
             if getattr(args, setting) is not None}
    if args.resume:
        stored = rundir.read_json(Path(args.out) / "config.json")
        if not isinstance(stored, dict) or not isinstance(stored.get("train"), dict):
            raise RunError(f"{Path(args.out) / 'config.json'} is not a neurodecorr run's config")
        own = stored["train"]
        changed = sorted(k for k, v in given.items() if k != "epochs" and own.get(k) != v)
        if changed:
            flags = ", ".join(f"--{k.replace('_', '-')}" for k in changed)
            raise RunError(f"--resume continues the run with its own settings; {flags} would change "
                           f"them (drop {flags}, or start a new run with another --out)")
        config = TrainConfig.from_dict({**own, "epochs": given.get("epochs", own.get("epochs"))})
    else:
        config = TrainConfig(**given)
    result = train(config, args.out, resume=args.resume, progress=not args.quiet)
    last = result.epochs[-1]
    print(f"done: test accuracy {100 * last['test_accuracy']:.2f}% after {last['epoch']} epochs, "
          f"{result.samples_per_second:.0f} training samples/s; run in {args.out}")
    return 0


def _cmd_models(args) -> int:
    from neurodecorr.nets.spec import load_spec, model_names

    for name in model_names():
        print(f"{name:16s} {load_spec(name).description}")
    return 0


def _cmd_profiles(args) -> int:
    from neurodecorr.devices.loader import describe, load_profile, profile_names

    if args.name:
        print(describe(load_profile(args.name)))
        return 0
    names = profile_names()
    width = max(map(len, names), default=0)
    for name in names:
        print(f"{name:{width}s}  {load_profile(name).description}")
    return 0


def _cmd_energy(args) -> int:
    from pathlib import Path

    from neurodecorr.devices.loader import load_profile, profile_from_dict
    from neurodecorr.energy import Counts, build_report, format_report
    from neurodecorr.energy.neurobench import format_neurobench, static_metrics
    from neurodecorr.engine import rundir

    run = Path(args.run)
    saved = rundir.read_json(run / "energy.json")
    try:
        counts = Counts.from_dict(saved["counts"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RunError(f"{run / 'energy.json'} holds no readable operation counts "
                       f"({type(exc).__name__}: {exc}); is it a neurodecorr run's?") from None
    if not counts.table or not counts.samples.get("training"):
        raise RunError(f"{run / 'energy.json'} holds no operations: the run has not completed an epoch")
    try:
        config = rundir.read_json(run / "config.json")
    except RunError:
        if not args.profile:  # it names the profile to price with
            raise
        config = {}
    if args.profile:
        profile = load_profile(args.profile)
    else:
        try:
            profile = profile_from_dict(config["profile"])
        except (KeyError, TypeError) as exc:
            raise RunError(f"{run / 'config.json'} names no profile ({exc}); pass --profile") from None
    try:  # a low-rank stage evaluated in training is part of the deployed network
        rank = int(config["train"].get("decorrelation_rank", 0))
    except (KeyError, TypeError, ValueError, AttributeError):
        rank = 0
    report = build_report(counts, profile, stages_deployed=rank > 0)
    if args.profile:
        print(f"(counts of {run}, trained on '{saved.get('profile')}', priced for '{profile.name}')")
    print(format_report(report))
    weights = run / "weights.npz"
    static = None
    if weights.exists():
        arrays = rundir.read_npz(weights)
        static = static_metrics({k[4:]: v for k, v in arrays.items() if k.startswith("net/")})
    print(format_neurobench(report, static))
    return 0


def _cmd_evaluate(args) -> int:
    from neurodecorr.engine.evaluate import evaluate

    times = None
    if args.inference_time:
        try:
            times = [float(t) for t in args.inference_time.split(",")]
        except ValueError:
            raise RunError(f"--inference-time: expected seconds separated by commas, found "
                           f"{args.inference_time!r}") from None
    evaluate(args.run, args.profile, times, samples=args.samples,
             keep_decorrelation=args.keep_decorrelation, seed=args.seed,
             decorrelation_rank=args.decorrelation_rank)
    return 0


def _cmd_deploy(args) -> int:
    from neurodecorr.backends import BACKENDS, DeployOptions, deploy

    if args.backend not in BACKENDS:
        raise NeurodecorrError(f"unknown backend {args.backend!r}; available: {', '.join(BACKENDS)}")
    options = DeployOptions(samples=args.samples, steps=args.steps, vth=args.vth,
                            frac_bits=args.frac_bits, input_mode=args.input, plot=args.plot)
    deploy(BACKENDS[args.backend](), args.run, options, profile=args.profile)
    return 0


def _cmd_spiking_decor(args) -> int:
    import math
    from pathlib import Path

    from neurodecorr.backends import require

    if not (math.isfinite(args.duration) and args.duration > 0):
        raise RunError(f"--duration: expected a positive number of seconds, found {args.duration}")
    if args.n < 2:
        raise RunError(f"--n: expected at least 2 units to decorrelate, found {args.n}")
    if args.plot:
        parent = Path(args.plot).resolve().parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise RunError(f"--plot {args.plot}: cannot write there (no such directory or no permission)")
    require("brian2")
    from neurodecorr.backends.brian2_decor import spiking_decorrelation

    report = spiking_decorrelation(n=args.n, duration_s=args.duration, seed=args.seed,
                                   plot_path=args.plot)
    print(f"mean |off-diagonal correlation| of output rates: "
          f"{report['mean_abs_offdiag_before']:.3f} untrained → {report['mean_abs_offdiag_after']:.3f} "
          f"after learning ({report['seconds']:.1f} s, {report['codegen_target']})"
          + (f"; plot in {args.plot}" if args.plot else ""))
    return 0


def _cmd_export(args) -> int:
    from pathlib import Path

    from neurodecorr.backends import DeployOptions
    from neurodecorr.backends.nir_export import export_nir

    if args.format != "nir":
        raise NeurodecorrError(f"unknown export format {args.format!r}; available: nir")
    DeployOptions(frac_bits=args.frac_bits)  # the same check as deploy's
    parent = Path(args.file).resolve().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK) or Path(args.file).is_dir():
        raise NeurodecorrError(f"cannot write {args.file}: its directory does not exist, is not "
                               f"writable, or it is a directory")
    graph, _ = export_nir(args.run, args.file, frac_bits=args.frac_bits)
    print(f"wrote {args.file}: NIR graph of {len(graph.nodes)} nodes")
    return 0


def _cmd_sweep(args) -> int:
    from neurodecorr.sweep import load_sweep, report, run_sweep

    if not args.out:
        raise RunError("--out is empty; give the directory for the sweep's runs")
    sweep = load_sweep(args.file)
    summaries = run_sweep(sweep, args.out, scheduler=args.scheduler, workers=args.workers,
                          rerun=args.rerun)
    _print_report(args.out, report(args.out))
    failed = [s for s in summaries if s["status"] == "failed"]
    return 1 if failed else 0


def _print_report(out, result) -> None:
    from pathlib import Path

    rows, agg = result
    print(Path(out, "results.md").read_text())
    if agg:
        print(f"plots: {Path(out, 'pareto.png')}, {Path(out, 'curves.png')}")
    unfinished = [r["run"] for r in rows if r["status"] != "finished"]
    if unfinished:
        print(f"not finished: {', '.join(unfinished)}")


def _cmd_report(args) -> int:
    from pathlib import Path

    from neurodecorr.sweep import report

    _print_report(args.dir, report(Path(args.dir)))
    return 0


def _cmd_datasets(args) -> int:
    from neurodecorr.data import DATASETS

    for name in DATASETS:
        print(name)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neurodecorr", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"neurodecorr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    sub.add_parser("models", help="list the shipped network specs")
    sub.add_parser("datasets", help="list the known datasets")
    dep = sub.add_parser("deploy", help="run a trained network on a backend (Lava's Loihi simulator)")
    dep.add_argument("run", help="a run directory written by `neurodecorr train`")
    dep.add_argument("--backend", default="lava",
                     help="lava (Lava's runtime), emulator (its bit-exact numpy emulator) or brian2 "
                          "(integrate-and-fire neurons) [%(default)s]")
    dep.add_argument("--samples", type=int, default=200, help="test samples to run [%(default)s]")
    dep.add_argument("--steps", type=int, default=None,
                     help="time steps per sample [32 on lava and emulator, 100 on brian2]")
    dep.add_argument("--profile", default="loihi2",
                     help="the device profile that prices the deployed run's operations [%(default)s]")
    dep.add_argument("--input", default="current", choices=("current", "poisson"),
                     help="brian2: rate-coded input as a constant current or Poisson spikes [%(default)s]")
    dep.add_argument("--plot", action="store_true",
                     help="brian2: write accuracy_vs_steps.png in the run directory")
    dep.add_argument("--vth", type=int, default=0,
                     help="SigmaDelta threshold (fixed-point units): 0 sends every change; larger "
                          "sends fewer messages [%(default)s]")
    dep.add_argument("--frac-bits", type=int, default=6,
                     help="fractional bits of the fixed-point activations [%(default)s]")
    ev = sub.add_parser("evaluate", help="evaluate a trained run on another chip, without retraining")
    ev.add_argument("run", help="a run directory written by `neurodecorr train`")
    ev.add_argument("--profile", required=True, help="the chip: a shipped profile name or a .toml file")
    ev.add_argument("--inference-time", help="PCM: seconds after programming, e.g. 1,3600,86400 "
                                             "[the profile's inference_time_s]")
    ev.add_argument("--samples", type=int, help="test samples [all]")
    ev.add_argument("--keep-decorrelation", action="store_true",
                    help="program R as arrays of its own instead of folding it into the weights")
    ev.add_argument("--decorrelation-rank", type=int, default=0, metavar="K",
                    help="fold R but for the K input directions it suppresses most, kept with the "
                         "centring where the profile keeps R (analogue arrays: programming noise "
                         "breaks the folded weights' cancellation of those directions) [0: fold all]")
    ev.add_argument("--seed", type=int, default=0, help="programming and read noise [%(default)s]")
    exp = sub.add_parser("export", help="write the deployed network in another format (NIR)")
    exp.add_argument("run", help="a run directory written by `neurodecorr train`")
    exp.add_argument("--format", default="nir", help="nir [%(default)s]")
    exp.add_argument("file", help="the file to write (e.g. net.nir)")
    exp.add_argument("--frac-bits", type=int, default=6, help="as for deploy [%(default)s]")
    sw = sub.add_parser("sweep", help="run a grid of training runs on Dask, then report")
    sw.add_argument("file", help="a sweep file (see sweeps/demo.yaml)")
    sw.add_argument("--out", required=True, help="directory for the runs and the results")
    sw.add_argument("--scheduler", help="address of an existing Dask scheduler (tcp://host:8786); "
                                         "default: a LocalCluster on this machine")
    sw.add_argument("--workers", type=int, help="LocalCluster workers [one per core]")
    sw.add_argument("--rerun", action="store_true",
                    help="train afresh the runs whose settings the sweep file has changed (without "
                         "it, such runs stop the sweep with an error)")
    rep = sub.add_parser("report", help="rebuild a sweep's results table and plots from its runs")
    rep.add_argument("dir", help="the sweep's --out directory")
    sd = sub.add_parser("spiking-decor",
                        help="learn a decorrelating layer from spikes with local plasticity (Brian2)")
    sd.add_argument("--n", type=int, default=8, help="units in the layer [%(default)s]")
    sd.add_argument("--duration", type=float, default=60.0, help="seconds of learning [%(default)s]")
    sd.add_argument("--seed", type=int, default=0, help="[%(default)s]")
    sd.add_argument("--plot", nargs="?", const="spiking-decor.png", default=None,
                    help="write the correlation matrices and the curve to this PNG [spiking-decor.png]")
    energy = sub.add_parser("energy", help="print a run's energy report, or re-price it for another profile")
    energy.add_argument("run", help="a run directory written by `neurodecorr train`")
    energy.add_argument("--profile", help="price the same operation counts for this profile")
    prof = sub.add_parser("profiles", help="list the shipped device profiles, or print one resolved")
    prof.add_argument("name", nargs="?", help="a profile name or .toml file to print in full")
    return parser


_RESUME_HINTS = {
    "train": "continue with the same command and --resume (the last completed epoch is kept)",
    "sweep": "run the same sweep command again: finished runs are skipped, started ones resume",
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"train": _cmd_train, "models": _cmd_models, "datasets": _cmd_datasets,
                "profiles": _cmd_profiles, "energy": _cmd_energy, "deploy": _cmd_deploy,
                "evaluate": _cmd_evaluate,
                "export": _cmd_export, "sweep": _cmd_sweep, "report": _cmd_report,
                "spiking-decor": _cmd_spiking_decor}
    try:
        return handlers[args.command](args)
    except DivergenceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except NeurodecorrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted; {_RESUME_HINTS.get(args.command, 'nothing was left half-written')}",
              file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `neurodecorr report DIR | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
