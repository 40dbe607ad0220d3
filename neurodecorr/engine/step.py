"""One training step on one batch: forward, modulators, local updates, decorrelation."""

from __future__ import annotations

import numpy as np

from neurodecorr import kernels, keys
from neurodecorr.engine.learner import Learner
from neurodecorr.errors import DivergenceError
from neurodecorr.nets.network import forward
from neurodecorr.numerics import DTYPE
from neurodecorr.rules import local_outer


def train_step(learner: Learner, x: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
               buffers: dict[keys.ArrayKey, np.ndarray], where: str = "", kept: str = "") -> float:
    """Update every synapse of `learner` from the batch x (B, n_in), labels (B,).

    Returns the batch's mean (clean) loss. `buffers` holds reusable gradient arrays, one per
    synapse array. Raises DivergenceError, before any synapse is written, when the forward pass
    is not finite (the trainer also checks every synapse before it saves an epoch); `where` and
    `kept` (what happened to the checkpoint) complete its message.
    """
    net = learner.net
    device = net.device
    device.begin_step()
    during = device.counter.during
    with during("learning_forward"):
        traces = forward(net, x, track_mean=True, keep_product=learner.credit.repeats_forward)
    loss = float(np.mean(net.loss.per_sample(traces[-1].h, labels)))
    if not np.isfinite(loss):
        raise DivergenceError(f"{_diagnose(learner, traces, where)} {kept}".strip())
    with during(learner.credit.modulator_phase):
        mods = learner.credit.modulators(net, traces, labels, learner.credit_state, rng)
    learner.optimizer.next_step()
    with during("weight_update"):
        for i, (layer, trace, e) in enumerate(zip(net.layers, traces, mods)):
            w_key, b_key = keys.W(i), keys.b(i)
            grad = buffers.get(w_key)
            if grad is None:
                grad = buffers[w_key] = np.empty_like(layer.W)
            local_outer(e, trace.x, out=grad, samples=trace.batch)  # conv: summed over positions
            device.counter.update(w_key, e, trace.x)
            if getattr(device, "plain_writes", False):  # the step subtracted as it is formed
                device.written(layer.W, learner.optimizer.apply(w_key, grad, layer.W), w_key)
            else:
                device.write(layer.W, learner.optimizer.step(w_key, grad), w_key)
            bias_grad = kernels.column_sum(e) / DTYPE(trace.batch)  # the mean over samples, summed over positions
            device.write(layer.b, learner.optimizer.step(b_key, bias_grad), b_key)
    if learner.decor is not None:
        with during("decorrelation"):
            learner.decor.update(net, traces, learner.decor_state)
    return loss


def _diagnose(learner: Learner, traces, where: str) -> str:
    cfg = learner.config
    for i, (layer, trace) in enumerate(zip(learner.net.layers, traces)):
        for label, arr in (("weights W", layer.W), ("decorrelation matrix R", layer.R),
                           ("decorrelated input", trace.x), ("pre-activation h", trace.h)):
            if arr is not None and not np.all(np.isfinite(arr)):
                lr, decor_lr = f"--lr (now {cfg.lr:g})", f"--decor-lr (now {cfg.decor_lr:g})"
                hint = (f"lower {decor_lr}, or {lr}" if "decorrelat" in label and cfg.decor != "none"
                        else f"lower {lr}" + (f", or {decor_lr}" if cfg.decor != "none" else ""))
                return (f"training diverged {where}: layer {i} {label} became non-finite. "
                        f"Likely fix: {hint}.")
    return (f"training diverged {where}: the loss became non-finite. Likely fix: lower --lr "
            f"(now {cfg.lr:g}).")
