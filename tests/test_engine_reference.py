"""The engine on the ideal device against an independent float64 implementation of the same
equations (README, "The science in the engine"), computed in the same test run.

The reference below is written from the equations alone, row-major, in float64, without the
engine's devices, traces, buffers or optimiser classes. Both start from the same initial arrays
and see the same batches and the same node-perturbation noise; after a few SGD steps every
array's change must agree to the stated tolerance. float32 against float64 (and one machine's
BLAS against another's) differ by rounding, so this holds on any CPU; a wrong sign, a missing
transpose, a wrong sub-sample or an update in the wrong order does not pass.
"""

import numpy as np
import pytest

from neurodecorr import TrainConfig, kernels, keys
from neurodecorr.engine.learner import make_learner
from neurodecorr.engine.step import train_step
from neurodecorr.nets.spec import HiddenSpec, NetSpec

SPEC = NetSpec("ref", (HiddenSpec(24, "leaky_relu"), HiddenSpec(16, "tanh")), "cross_entropy", "all")
STEPS, BATCH = 4, 40
LR, MOMENTUM, DECOR_LR, KAPPA, SIGMA = 0.05, 0.9, 0.01, 0.5, 1e-2
# float32 engine against float64 reference: relative error of each array's total change
TOLERANCE = {"bp": 1e-4, "fa": 1e-4, "dfa": 1e-4, "np": 2e-3}


def _act(name, h):
    return {"leaky_relu": np.where(h > 0, h, 0.01 * h), "tanh": np.tanh(h), "identity": h}[name]


def _dact(name, h):
    return {"leaky_relu": np.where(h > 0, 1.0, 0.01), "tanh": 1 - np.tanh(h) ** 2,
            "identity": np.ones_like(h)}[name]


def _ce(logits, y):
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(y)), y], np.exp(logp)


class Reference:
    """x̃ = R(a − μ) (μ: running mean, momentum 0.1, updated from the batch first), h = W x̃ + b,
    output f(h); modulators of bp/fa/dfa/np; W ← W − lr·v with v ← m·v + e x̃ᵀ/B (SGD with
    momentum); then each R by its rule from the first ⌊0.1·B⌋ + 1 samples."""

    def __init__(self, arrays, credit, acts, rule, decor):
        self.W = [arrays[keys.W(i)].astype(np.float64) for i in range(len(acts))]
        self.b = [arrays[keys.b(i)].astype(np.float64) for i in range(len(acts))]
        self.R = [arrays[keys.R(i)].astype(np.float64) if keys.R(i) in arrays else None
                  for i in range(len(acts))]
        self.mu = [np.zeros(len(W[0])) for W in self.W]
        self.credit = {k: v.astype(np.float64) for k, v in credit.items()}
        self.acts, self.rule, self.decor = acts, rule, decor
        self.vel = {}

    def forward(self, x, track, noise=None):
        a, out = x.astype(np.float64), []
        for i, (W, b, R) in enumerate(zip(self.W, self.b, self.R)):
            if R is not None:
                if track:
                    self.mu[i] = 0.9 * self.mu[i] + 0.1 * a.mean(axis=0)
                c = a - self.mu[i]
                xt = c @ R.T
            else:
                c, xt = None, a
            h = xt @ W.T + b + (0 if noise is None else noise[i])
            out.append((c, xt, h))
            a = _act(self.acts[i], h)
        return out

    def modulators(self, x, y, tr, noise_draws):
        L = len(self.W)
        loss, p = _ce(tr[-1][2], y)
        e_out = p.copy()
        e_out[np.arange(len(y)), y] -= 1
        if self.rule == "np":
            noise = [SIGMA * d for d in noise_draws]
            noisy, _ = _ce(self.forward(x, False, noise)[-1][2], y)
            return [((noisy - loss) / SIGMA**2)[:, None] * xi for xi in noise], loss
        e = [None] * L
        e[-1] = e_out
        for l in range(L - 2, -1, -1):
            if self.rule == "dfa":
                back = e_out @ self.credit[keys.D(l)].T
            else:
                M = self.W[l + 1] if self.rule == "bp" else self.credit[keys.B(l + 1)]
                back = e[l + 1] @ M
                if self.R[l + 1] is not None:
                    back = back @ self.R[l + 1]
            e[l] = _dact(self.acts[l], tr[l][2]) * back
        return e, loss

    def step(self, x, y, noise_draws):
        tr = self.forward(x, True)
        e, loss = self.modulators(x, y, tr, noise_draws)
        for i in range(len(self.W)):
            for name, g in (("W", e[i].T @ tr[i][1] / len(x)), ("b", e[i].mean(axis=0))):
                v = self.vel[name, i] = MOMENTUM * self.vel.get((name, i), 0) + g
                getattr(self, name)[i] = getattr(self, name)[i] - LR * v
        n = int(0.1 * len(x)) + 1
        for i, R in enumerate(self.R):
            if R is None:
                continue
            c, z = tr[i][0][:n], tr[i][1][:n]
            C = z.T @ z / n
            var = np.diag(C)
            if self.decor == "seed":
                gain = np.mean(np.linalg.norm(c, axis=1) / (np.linalg.norm(z, axis=1) + 1e-8))
                self.R[i] = gain * (R - DECOR_LR * C @ R)
            elif self.decor == "cpi":
                self.R[i] = R - DECOR_LR * (C - np.diag(var)) @ R
            elif self.decor == "whiten":
                self.R[i] = R - DECOR_LR * ((1 - KAPPA) * (C - np.diag(var)) @ R
                                            + KAPPA * np.diag(var - 1) @ R)
        return loss.mean()


def _draws(rng, x, widths):
    """Node perturbation's unit noise as the engine draws it (`kernels.normals`), in float64."""
    return [kernels.normals((len(x), w), rng).astype(np.float64) for w in widths]


@pytest.mark.parametrize("decor", ["none", "seed", "cpi", "whiten"])
@pytest.mark.parametrize("rule", ["bp", "fa", "dfa", "np"])
def test_engine_on_the_ideal_device_follows_the_equations(rule, decor, digits):
    cfg = TrainConfig(dataset="digits", rule=rule, decor=decor, optimizer="sgd", lr=LR,
                      momentum=MOMENTUM, decor_lr=DECOR_LR, decor_kappa=KAPPA, np_sigma=SIGMA,
                      profile="ideal")
    learner = make_learner(cfg, SPEC, digits.n_features, digits.n_classes)
    start = {**{k: v.copy() for k, v in learner.net.keyed_arrays().items()}}
    acts = [layer.shape.activation for layer in learner.net.layers]
    ref = Reference(start, learner.credit_state, acts, rule, decor)
    widths = [layer.shape.n_out for layer in learner.net.layers]
    order = np.random.default_rng(5).permutation(len(digits.y_train))
    buffers = {}
    for s in range(STEPS):
        idx = order[s * BATCH:(s + 1) * BATCH]
        x, y = digits.x_train[idx], digits.y_train[idx]
        seed = 100 + s  # the same noise draws for both (the engine draws them in this order)
        loss = train_step(learner, x, y, np.random.default_rng(seed), buffers)
        ref_loss = ref.step(x, y, _draws(np.random.default_rng(seed), x, widths))
        assert loss == pytest.approx(ref_loss, rel=1e-5)
    got = learner.net.keyed_arrays()
    for key, before in start.items():
        if key.role is keys.Role.mu:
            want = ref.mu[key.layer]
            np.testing.assert_allclose(got[key], want, rtol=1e-5, atol=1e-6, err_msg=key.name)
            continue
        want = getattr(ref, key.role.value)[key.layer]
        change, want_change = got[key].astype(np.float64) - before, want - before
        assert np.linalg.norm(want_change) > 0, f"{key.name} did not learn in the reference"
        error = np.linalg.norm(change - want_change) / np.linalg.norm(want_change)
        assert error < TOLERANCE[rule], f"{rule}/{decor} {key.name}: relative error {error:.2e}"
