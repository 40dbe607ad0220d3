"""Emulator against Lava: samples per second for the same deployed network and steps.

Trains (or loads, with --run) a network, deploys it as in `neurodecorr deploy`, and times
  - Lava's fixed-point runtime on `--lava-samples` samples (state zeroed between samples, as
    deploy runs it; and, for reference, one delta-encoded stream without resets),
  - neurodecorr's emulator on the same samples and on the whole test set (samples in parallel),
checking that the outputs are identical. Prints a table and the speed-up.

    .venv/bin/python benchmarks/lava_emulator.py [--run RUN] [--steps 16] [--lava-samples 50]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import numpy as np

from neurodecorr import TrainConfig, train
from neurodecorr.backends.lava_run import run_lava
from neurodecorr.backends.prepare import relu_variant
from neurodecorr.backends.sigma_delta import emulate, parallel_streams, quantise, sample_stream
from neurodecorr.engine.saved import load_run
from neurodecorr.nets.fold import fold


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="a trained run (default: train small-mlp on Fashion-MNIST, 1 epoch)")
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--lava-samples", type=int, default=50)
    args = p.parse_args(argv)
    run = args.run
    if run is None:
        run = tempfile.mkdtemp() + "/run"
        train(TrainConfig(dataset="fashion-mnist", model="small-mlp", rule="bp", decor="seed",
                          epochs=1), run, progress=False, log=lambda s: None)
    _, learner, data = load_run(run)
    net = quantise(relu_variant(fold(learner.net)))
    x_int = net.encode(data.x_test)
    n, steps = args.lava_samples, args.steps
    shape = " → ".join(str(l.weights.shape[1]) for l in net.layers) + f" → {net.layers[-1].weights.shape[0]}"

    t = time.perf_counter()
    lava_out = run_lava(net, sample_stream(x_int[:n], steps), reset_every=steps)
    lava_s = time.perf_counter() - t
    t = time.perf_counter()
    lava_stream_out = run_lava(net, sample_stream(x_int[:n], steps, resets=False))
    lava_stream_s = time.perf_counter() - t

    t = time.perf_counter()
    emu_out = emulate(net, parallel_streams(x_int[:n], steps))
    emu_s = time.perf_counter() - t
    t = time.perf_counter()
    emu_stream_out = emulate(net, sample_stream(x_int[:n], steps, resets=False))
    emu_stream_s = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(0, len(x_int), 1000):
        emulate(net, parallel_streams(x_int[i:i + 1000], steps))
    emu_all_s = time.perf_counter() - t

    same = np.array_equal(lava_out.reshape(n, steps, -1), emu_out.transpose(2, 0, 1))
    same_stream = np.array_equal(lava_stream_out, emu_stream_out)
    print(f"network {shape}, {steps} steps per sample; outputs identical to Lava: "
          f"{same} (reset per sample), {same_stream} (one stream)\n")
    print("| runner | samples | seconds | samples/s |\n|---|---|---|---|")
    rows = [("Lava, reset per sample (as deploy)", n, lava_s),
            ("Lava, one delta-encoded stream", n, lava_stream_s),
            ("emulator, same samples in parallel", n, emu_s),
            ("emulator, one delta-encoded stream", n, emu_stream_s),
            ("emulator, whole test set, 1,000 in parallel", len(x_int), emu_all_s)]
    for name, count, seconds in rows:
        print(f"| {name} | {count} | {seconds:.2f} | {count / seconds:.0f} |")
    print(f"\nspeed-up, emulator (whole test set) over Lava as deploy runs it: "
          f"{(len(x_int) / emu_all_s) / (n / lava_s):.0f}×; same single stream: "
          f"{lava_stream_s / emu_stream_s:.0f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
