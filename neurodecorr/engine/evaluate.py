"""`neurodecorr evaluate RUN --profile P`: a trained run's network on another chip, without
retraining — as aihwkit users evaluate a hardware-aware-trained network after programming.

The network is deployed as a chip would hold it for inference: decorrelation folded into the
weights (`nets.fold`; `keep_decorrelation` keeps R as arrays of its own, `decorrelation_rank` k
keeps the centring and a rank-k stage where the profile keeps R), installed on a device
of profile P (quantised onto its grid, or programmed onto its crossbars) and read as that
device reads after training (`device.inference()`: PCM programmed once, drifted to
`inference_time_s` and compensated). Reported per inference time: test accuracy and the
inference energy per sample on P (its operations priced by `energy.cost`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from neurodecorr.devices import make_device
from neurodecorr.devices.loader import load_profile
from neurodecorr.energy import Counts, build_report, missing_prices
from neurodecorr.engine import rundir
from neurodecorr.engine.saved import check_writable, load_run
from neurodecorr.errors import RunError
from neurodecorr.nets.fold import folded_network
from neurodecorr.nets.network import predict


def evaluate(run_dir, profile: str, inference_times_s: Sequence[float] | None = None,
             samples: int | None = None, keep_decorrelation: bool = False, seed: int = 0,
             decorrelation_rank: int = 0, log: Callable[[str], None] = print) -> dict:
    """Evaluate the run in `run_dir` on `profile`; write and return evaluate-<profile>.json."""
    run_dir = Path(run_dir)
    check_writable(run_dir)
    target = load_profile(profile)
    times = list(inference_times_s or [None])
    for t in times:
        if t is not None and not (np.isfinite(t) and t > 0):
            raise RunError(f"--inference-time: expected positive seconds, found {t}")
    if any(t is not None for t in times) and target.pcm is None:
        raise RunError(f"--inference-time applies to a PCM profile (drift); '{target.name}' has none")
    if samples is not None and samples < 1:
        raise RunError(f"--samples: expected a positive number, found {samples}")
    if decorrelation_rank < 0:
        raise RunError(f"--decorrelation-rank: expected a positive number, found {decorrelation_rank}")
    if decorrelation_rank and keep_decorrelation:
        raise RunError("--decorrelation-rank and --keep-decorrelation: choose one (a rank keeps part of R)")
    refusal = _rank_refusal(target) if decorrelation_rank else None
    if refusal:
        raise RunError(f"--decorrelation-rank: {refusal}")
    _, learner, data = load_run(run_dir)
    x, y = data.x_test[:samples], data.y_test[:samples]
    if decorrelation_rank:
        if not any(layer.R is not None for layer in learner.net.layers):
            raise RunError("--decorrelation-rank: the run has no decorrelation to keep (trained with --decor none)")
        trained = folded_network(learner.net, rank=decorrelation_rank)  # at most n_in // 2 a layer
    else:
        trained = learner.net if keep_decorrelation else folded_network(learner.net)
    results = []
    for t in times:
        chip = target if t is None else dataclasses.replace(
            target, pcm=dataclasses.replace(target.pcm, inference_time_s=float(t)))
        counts = Counts()
        net = _deployed_copy(trained)
        net.install(make_device(chip, np.random.default_rng(np.random.SeedSequence(seed)), counts))
        with counts.during("inference"):
            accuracy = float(np.mean(predict(net, x, fold=False).argmax(axis=1) == y))  # as prepared
        counts.samples["inference"] = len(y)
        missing = missing_prices(counts, chip)
        energy = None if missing else build_report(counts, chip)["inference_per_sample_j"]
        results.append({"inference_time_s": chip.pcm.inference_time_s if chip.pcm else None,
                        "accuracy": accuracy, "inference_per_sample_j": energy,
                        "missing_prices": missing})
        when = f" after {chip.pcm.inference_time_s:g} s" if chip.pcm else ""
        cost = f"{energy:.3e} J per sample" if energy is not None else f"no prices for {', '.join(missing)}"
        log(f"{target.name}{when}: accuracy {100 * accuracy:.2f}% on {len(y)} test samples, {cost}")
    report = {"run": str(run_dir), "profile": target.to_dict(), "samples": len(y),
              "decorrelation": ("kept as arrays" if keep_decorrelation else
                                f"rank {decorrelation_rank} kept, the rest folded" if decorrelation_rank
                                else "folded into the weights"),
              "rate_accuracy_ideal": float(np.mean(predict(learner.net, x).argmax(axis=1) == y)),
              "results": results}
    slug = "".join(c if c.isalnum() or c in "._+-" else "-" for c in target.name)  # a name, not a path
    rundir.write_json(run_dir / f"evaluate-{slug}.json", report)
    return report


def _rank_refusal(profile) -> str | None:
    """Why `profile` cannot hold a low-rank decorrelation stage, or None. The stage removes the
    inputs' dominant modes by a subtraction, c − (c Ṽ) Ṽᵀ, which must be exact or near it: on an
    analogue array its read of Ṽ leaks those modes back at the full gain of W' (bp + seed on
    small-conv, analog-pcm: 18.80 % with rank 16, against 71.32 folded and 87.49 with the stage
    in the periphery)."""
    spec = profile.crossbar if profile.crossbar is not None else profile.digital
    storage = getattr(spec, "decorrelation", None)
    if storage == "residual":
        return (f"'{profile.name}' holds R as R − I beside a wired identity; the low-rank stage has "
                "its identity as a wire already: use a profile that keeps R as it is")
    if profile.crossbar is not None and storage != "periphery":
        return (f"'{profile.name}' keeps R on an analogue array, whose read noise breaks the stage's "
                "subtraction of the dominant input modes: use a profile that keeps R in the digital "
                f"periphery ('{profile.name}-periphery' where it is shipped)")
    return None


def _deployed_copy(net):
    """A copy of the network's arrays (installing on a device quantises them in place)."""
    return dataclasses.replace(net, layers=[dataclasses.replace(
        layer, W=layer.W.copy(), b=layer.b.copy(), R=None if layer.R is None else layer.R.copy(),
        mu=None if layer.mu is None else layer.mu.copy()) for layer in net.layers])
