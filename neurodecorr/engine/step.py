"""One training step on one batch: forward, modulators, local updates, decorrelation."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np

from ..errors import DivergenceError
from ..nets.network import forward
from ..rules import local_outer
from .state import Learner


def train_step(learner: Learner, x: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
               buffers: dict[str, np.ndarray], where: str = "") -> float:
    """Update every synapse of `learner` from the batch x (B, n_in), labels (B,).

    Returns the batch's mean (clean) loss. `buffers` holds reusable gradient arrays, one per
    synapse array. Raises DivergenceError, before any synapse is written, when the forward pass
    is not finite (the trainer also checks every synapse before it saves an epoch).
    """
    net = learner.net
    device = net.device
    during = device.counts.during if device.counts is not None else (lambda phase: nullcontext())
    with during("learning_forward"):
        traces = forward(net, x, track_mean=True)
    loss = float(np.mean(net.loss.per_sample(traces[-1].h, labels)))
    if not np.isfinite(loss):
        raise DivergenceError(_diagnose(learner, traces, where))
    with during(learner.credit.modulator_phase):
        mods = learner.credit.modulators(net, traces, labels, learner.credit_state, rng)
    learner.optimizer.next_step()
    with during("weight_update"):
        for i, (layer, trace, e) in enumerate(zip(net.layers, traces, mods)):
            name = f"layer{i}.W"
            grad = buffers.get(name)
            if grad is None:
                grad = buffers[name] = np.empty_like(layer.W)
            local_outer(e, trace.x, out=grad)
            device.count_update(e, trace.x, name)
            device.write(layer.W, learner.optimizer.step(name, grad), name)
            device.write(layer.b, learner.optimizer.step(f"layer{i}.b", e.mean(axis=0)), f"layer{i}.b")
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
                        f"Likely fix: {hint}. The last good checkpoint is kept.")
    return (f"training diverged {where}: the loss became non-finite. Likely fix: lower --lr "
            f"(now {cfg.lr:g}). The last good checkpoint is kept.")
