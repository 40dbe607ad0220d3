"""Network specs: which dense layers, which nonlinearity, where decorrelation sits, which loss.

A spec is data, read from `models/*.yaml` (or built in Python) and validated when loaded. Input
and output widths come from the dataset when the network is built, so one spec serves every
dataset. File format::

    name: small-mlp
    description: one line
    hidden:                     # hidden layers, in order
      - {width: 256, activation: leaky_relu}
    loss: cross_entropy         # or mse; the output layer is linear (softmax lives in the loss)
    decorrelate: all            # all | none | list of dense-layer indices (0 = the input layer)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from neurodecorr.errors import SpecError
from neurodecorr.nets.activations import ACTIVATIONS
from neurodecorr.nets.losses import LOSSES
from neurodecorr.resources import find_file, shipped_files


@dataclass(frozen=True)
class HiddenSpec:
    width: int
    activation: str


@dataclass(frozen=True)
class LayerShape:
    """One dense layer once the input and output widths are known: h = W x̃ + b, W (n_out, n_in)."""

    n_in: int
    n_out: int
    activation: str
    decorrelated: bool


@dataclass(frozen=True)
class NetSpec:
    name: str
    hidden: tuple[HiddenSpec, ...]
    loss: str = "cross_entropy"
    decorrelate: str | tuple[int, ...] = "all"
    description: str = ""

    def layers(self, n_in: int, n_out: int) -> tuple[LayerShape, ...]:
        """The dense layers for an input of `n_in` features and `n_out` outputs."""
        widths = [n_in] + [h.width for h in self.hidden] + [n_out]
        acts = [h.activation for h in self.hidden] + ["identity"]
        n_layers = len(acts)
        if self.decorrelate == "all":
            decor = set(range(n_layers))
        elif self.decorrelate == "none":
            decor = set()
        else:
            decor = set(self.decorrelate)
            bad = sorted(i for i in decor if not 0 <= i < n_layers)
            if bad:
                raise SpecError(
                    f"network '{self.name}': decorrelate lists layer(s) {bad}, but the network has "
                    f"dense layers 0..{n_layers - 1}"
                )
        return tuple(
            LayerShape(widths[i], widths[i + 1], acts[i], i in decor) for i in range(n_layers)
        )

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "hidden": [{"width": h.width, "activation": h.activation} for h in self.hidden],
            "loss": self.loss,
            "decorrelate": self.decorrelate if isinstance(self.decorrelate, str) else list(self.decorrelate),
        }


_KEYS = {"name", "description", "hidden", "loss", "decorrelate"}


def spec_from_dict(data: dict, where: str = "<dict>") -> NetSpec:
    """Validate a spec given as a mapping; errors name `where`, the key, the expectation and the value."""
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a mapping of spec keys, found {type(data).__name__}")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(_KEYS)}")
    hidden_raw = data.get("hidden", [])
    if not isinstance(hidden_raw, list):
        raise SpecError(f"{where}: 'hidden' must be a list of {{width, activation}}, found {hidden_raw!r}")
    hidden = []
    for i, layer in enumerate(hidden_raw):
        key = f"hidden[{i}]"
        if not isinstance(layer, dict) or set(layer) - {"width", "activation"} or "width" not in layer:
            raise SpecError(f"{where}: '{key}' must be {{width: int, activation: name}}, found {layer!r}")
        width, act = layer["width"], layer.get("activation", "leaky_relu")
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise SpecError(f"{where}: '{key}.width' must be a positive integer, found {width!r}")
        if act not in ACTIVATIONS:
            raise SpecError(f"{where}: '{key}.activation' must be one of {sorted(ACTIVATIONS)}, found {act!r}")
        hidden.append(HiddenSpec(width, act))
    loss = data.get("loss", "cross_entropy")
    if loss not in LOSSES:
        raise SpecError(f"{where}: 'loss' must be one of {sorted(LOSSES)}, found {loss!r}")
    decor = data.get("decorrelate", "all")
    if isinstance(decor, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in decor):
        decor = tuple(decor)
    elif decor not in ("all", "none"):
        raise SpecError(
            f"{where}: 'decorrelate' must be 'all', 'none' or a list of layer indices, found {decor!r}"
        )
    name = data.get("name", Path(where).stem)
    if not isinstance(name, str) or not name:
        raise SpecError(f"{where}: 'name' must be a non-empty string, found {name!r}")
    return NetSpec(name, tuple(hidden), loss, decor, str(data.get("description", "")))


def model_names() -> list[str]:
    return sorted(shipped_files("models", ".yaml"))


def load_spec(name_or_path: str | os.PathLike) -> NetSpec:
    """Load a shipped spec by name (e.g. "paper-mlp") or any spec file by path."""
    path = find_file(name_or_path, "models", ".yaml")
    if path is None:
        raise SpecError(
            f"no network spec '{name_or_path}': not a file, and not a shipped model "
            f"(shipped: {', '.join(model_names()) or 'none found'})"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read the network spec: {exc}") from None
    return spec_from_dict(data, str(path))
