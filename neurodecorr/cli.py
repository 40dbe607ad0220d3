"""The `neurodecorr` command line.

    neurodecorr train --dataset fashion-mnist --model paper-mlp --rule fa --decor seed --epochs 5 --out runs/fa-decor
    neurodecorr models        # the shipped network specs
    neurodecorr datasets      # the known datasets
    neurodecorr profiles [NAME]   # the shipped device profiles, or one of them resolved
    neurodecorr energy RUN [--profile NAME]   # a run's energy report, or re-priced for another chip
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
import sys

from neurodecorr import __version__
from neurodecorr.errors import DivergenceError, NeurodecorrError


def _train_parser(sub) -> None:
    from neurodecorr.engine.config import TrainConfig

    d = TrainConfig()
    p = sub.add_parser("train", help="train a network and write a run directory",
                       description="Train a network with a local learning rule; write a run "
                                   "directory. Defaults are shown in brackets.")
    p.add_argument("--dataset", default=d.dataset, help="fashion-mnist, digits, mnist or cifar10 [%(default)s]")
    p.add_argument("--data-dir", default=None, help="directory holding the dataset's files")
    p.add_argument("--model", default=d.model, help="a shipped model name or a spec .yaml file [%(default)s]")
    p.add_argument("--profile", default=d.profile,
                   help="device profile: a shipped name (`neurodecorr profiles`) or a .toml file [%(default)s]")
    p.add_argument("--rule", default=d.rule, help="credit assignment: bp, fa, dfa or np [%(default)s]")
    p.add_argument("--decor", default=d.decor, help="decorrelation: seed, cpi, whiten, zca or none [%(default)s]")
    p.add_argument("--optimizer", default=d.optimizer, help="adam or sgd [%(default)s]")
    p.add_argument("--lr", type=float, default=d.lr, help="forward-weight learning rate [%(default)s]")
    p.add_argument("--momentum", type=float, default=d.momentum, help="sgd momentum [%(default)s]")
    p.add_argument("--decor-lr", type=float, default=d.decor_lr, help="decorrelation learning rate η_R [%(default)s]")
    p.add_argument("--decor-fraction", type=float, default=d.decor_fraction,
                   help="fraction of each batch the decorrelation rule learns from [%(default)s]")
    p.add_argument("--decor-kappa", type=float, default=d.decor_kappa, help="κ of the whiten rule [%(default)s]")
    p.add_argument("--np-sigma", type=float, default=d.np_sigma, help="node perturbation's noise σ [%(default)s]")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="[%(default)s]")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"epochs to train [{d.epochs}; a resumed run keeps its own]")
    p.add_argument("--seed", type=int, default=d.seed, help="[%(default)s]")
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last completed epoch (its own "
                        "settings are used; only --epochs may be raised)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _cmd_train(args) -> int:
    from pathlib import Path

    from neurodecorr.engine import rundir
    from neurodecorr.engine.config import TrainConfig
    from neurodecorr.engine.trainer import train

    if args.resume:
        stored = rundir.read_json(Path(args.out) / "config.json")["train"]
        epochs = args.epochs if args.epochs is not None else stored["epochs"]
        config = TrainConfig.from_dict({**stored, "epochs": epochs})
    else:
        keys = ("dataset", "data_dir", "model", "profile", "rule", "decor", "optimizer", "lr", "momentum",
                "decor_lr", "decor_fraction", "decor_kappa", "np_sigma", "batch_size", "epochs",
                "seed")
        settings = {k: getattr(args, k) for k in keys}
        if settings["epochs"] is None:
            settings["epochs"] = TrainConfig.epochs
        config = TrainConfig(**settings)
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
    for name in profile_names():
        print(f"{name:14s} {load_profile(name).description}")
    return 0


def _cmd_energy(args) -> int:
    from pathlib import Path

    from neurodecorr.devices.loader import load_profile, profile_from_dict
    from neurodecorr.energy import Counts, build_report, format_report
    from neurodecorr.engine import rundir

    run = Path(args.run)
    saved = rundir.read_json(run / "energy.json")
    if "counts" not in saved:
        raise NeurodecorrError(f"{run / 'energy.json'} holds no operation counts to price")
    profile = (load_profile(args.profile) if args.profile
               else profile_from_dict(rundir.read_json(run / "config.json")["profile"]))
    report = build_report(Counts.from_dict(saved["counts"]), profile)
    if args.profile:
        print(f"(counts of {run}, trained on '{saved['profile']}', priced for '{profile.name}')")
    print(format_report(report))
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
    from neurodecorr.backends import require

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

    from neurodecorr.backends.nir_export import export_nir

    if args.format != "nir":
        raise NeurodecorrError(f"unknown export format {args.format!r}; available: nir")
    if not Path(args.file).resolve().parent.is_dir():
        raise NeurodecorrError(f"cannot write {args.file}: its directory does not exist")
    graph, _ = export_nir(args.run, args.file, frac_bits=args.frac_bits)
    print(f"wrote {args.file}: NIR graph of {len(graph.nodes)} nodes")
    return 0


def _cmd_sweep(args) -> int:
    from neurodecorr.sweep import load_sweep, report, run_sweep

    sweep = load_sweep(args.file)
    summaries = run_sweep(sweep, args.out, scheduler=args.scheduler, workers=args.workers)
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

    if not Path(args.dir).is_dir():
        raise NeurodecorrError(f"{args.dir} is not a directory of sweep runs")
    _print_report(args.dir, report(args.dir))
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"train": _cmd_train, "models": _cmd_models, "datasets": _cmd_datasets,
                "profiles": _cmd_profiles, "energy": _cmd_energy, "deploy": _cmd_deploy,
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
        print("interrupted; resume with --resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `neurodecorr report DIR | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
