"""`neurodecorr deploy RUN --backend lava`: a trained run on Lava's Loihi simulator, checked
against neurodecorr's own bit-exact emulator and against the rate model.

The folded ReLU network (`prepare`) is quantised to Lava's fixed point (graded spikes,
`sigma_delta`: Dense or Conv synapses, an avg pooling as a sum-pooling Conv stage); `samples`
test samples run through real Lava processes on Lava's runtime, each in a window of `steps` time
steps with the neurons' state zeroed between windows; the same computation runs through the
emulator and every output is compared at every step. The emulator then also classifies the
whole test set. Operations are the emulator's tally, which is Lava's (the comparison checks the
outputs, `tests/test_lava_deploy.py` and `tests/test_conv_deploy.py` every step).
"""

from __future__ import annotations

import time

import numpy as np

from neurodecorr.backends.base import BackendRun
from neurodecorr.backends.emulator import check_wraps, classify, deployed_net, per_sample, tally_counts
from neurodecorr.backends.sigma_delta import emulate, parallel_streams, sample_stream


class LavaBackend:
    name = "lava"
    requires = "lava"
    default_steps = 32
    neurons = "Lava's SigmaDelta neurons"

    def run(self, d, options, log):
        from neurodecorr.backends.lava_run import run_lava

        net = deployed_net(d.layers, options)
        steps, samples = options.steps, d.samples
        if steps <= len(net.layers):
            log(f"note: {steps} steps per sample is not enough for an input to cross "
                f"{len(net.layers)} layers (each Dense delays one step); predictions will lag")
        x_int = net.encode(d.x)
        tally: dict = {}
        t0 = time.perf_counter()
        emu_out = emulate(net, parallel_streams(x_int, steps), tally=tally)  # (steps, n_out, samples)
        emu_seconds = time.perf_counter() - t0
        emu_pred = emu_out[-1].T.argmax(axis=1)
        check_wraps(tally, log)

        log(f"running {samples} samples × {steps} steps on Lava (fixed_pt) …")
        t0 = time.perf_counter()
        lava_out = run_lava(net, sample_stream(x_int, steps), reset_every=steps)
        lava_seconds = time.perf_counter() - t0
        lava_out = lava_out.reshape(samples, steps, -1)  # per sample, per step
        lava_pred = lava_out[:, -1].argmax(axis=1)

        t0 = time.perf_counter()
        full = classify(net, d.data.x_test, steps)
        full_seconds = time.perf_counter() - t0
        full_accuracy = float(np.mean(full == d.data.y_test))
        details = {
            "vth": options.vth,
            "frac_bits": options.frac_bits,
            "weight_bits": net.layers[0].weight_bits,
            "emulator_accuracy": float(np.mean(emu_pred == d.y)),
            "agreement": float(np.mean(lava_pred == emu_pred)),
            "outputs_identical": bool(np.array_equal(lava_out, emu_out.transpose(2, 0, 1))),
            "emulator_full_test_accuracy": full_accuracy,
            "per_sample": per_sample(tally, samples),
            "seconds": {"lava": lava_seconds, "emulator_same_stream": emu_seconds,
                        "emulator_full_test_set": full_seconds},
            "samples_per_second": {"lava": samples / lava_seconds,
                                   "emulator_same_stream": samples / emu_seconds,
                                   "emulator_parallel": len(d.data.y_test) / full_seconds},
            "layers": [l.describe() for l in net.layers],
        }
        summary = (f"agreement with the emulator {100 * details['agreement']:.1f}% (outputs "
                   f"{'identical' if details['outputs_identical'] else 'DIFFERENT'}); emulator on the "
                   f"whole test set {100 * full_accuracy:.2f}%; per sample "
                   f"{details['per_sample']['messages']:.0f} messages, "
                   f"{details['per_sample']['acs']:.0f} accumulates; Lava {lava_seconds:.1f} s "
                   f"({samples / lava_seconds:.1f} samples/s), emulator {emu_seconds:.2f} s")
        return BackendRun(float(np.mean(lava_pred == d.y)), tally_counts(tally, samples), details, summary)
