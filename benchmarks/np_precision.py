"""How precisely does node perturbation see its loss difference δL = L_noisy − L_clean?

NP's learning signal is δL, a difference of two nearly equal losses. This script takes the
paper's dense net at initialisation on Fashion-MNIST samples, draws the per-layer noise ξ for
several σ, and compares δL computed as the engine does (float32 network, losses of the float32
logits in float64) and fully in float32 against δL from the same network and noise in float64.
It prints the median relative error. The engine's default σ must sit where that error is small
and the perturbation still small (the second-order term grows like σ).
"""

from __future__ import annotations

import numpy as np

from neurodecorr.data import load_dataset
from neurodecorr.engine.config import TrainConfig
from neurodecorr.engine.learner import make_learner
from neurodecorr.nets.network import forward
from neurodecorr.nets.spec import load_spec


def main() -> None:
    data = load_dataset("fashion-mnist")
    learner = make_learner(TrainConfig(model="paper-mlp", rule="np", decor="none"),
                           load_spec("paper-mlp"), data.n_features, data.n_classes)
    net = learner.net
    x, y = data.x_train[:256], data.y_train[:256]
    net64 = make_learner(TrainConfig(model="paper-mlp", rule="np", decor="none"),
                         load_spec("paper-mlp"), data.n_features, data.n_classes).net
    for l64, l32 in zip(net64.layers, net.layers):
        l64.W, l64.b = l32.W.astype(np.float64), l32.b.astype(np.float64)
    loss = net.loss.per_sample
    clean32 = forward(net, x)[-1].h
    clean64 = forward(net64, x.astype(np.float64))[-1].h
    rng = np.random.default_rng(0)
    print("| σ | median rel. error of δL, engine (float32 net, float64 loss) | same, all float32 |")
    print("|---|---|---|")
    for sigma in (1e-6, 1e-5, 1e-4, 1e-3, 1e-2):
        noise = [sigma * rng.standard_normal((len(x), l.shape.n_out)) for l in net.layers]
        noisy32 = forward(net, x, noise=[n.astype(np.float32) for n in noise])[-1].h
        noisy64 = forward(net64, x.astype(np.float64), noise=noise)[-1].h
        exact = loss(noisy64, y) - loss(clean64, y)
        engine = loss(noisy32.astype(np.float64), y) - loss(clean32.astype(np.float64), y)
        single = loss(noisy32, y) - loss(clean32, y)
        err = lambda d, exact=exact: np.median(np.abs(d - exact) / np.abs(exact))  # noqa: E731
        print(f"| {sigma:g} | {err(engine):.2e} | {err(single):.2e} |")


if __name__ == "__main__":
    main()
