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

from neurodecorr.errors import SpecError, short_repr
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

    def n_parameters(self, n_in: int, n_out: int, decorrelate: bool) -> int:
        """Synapses and biases of the network: W and b of every layer, R of every decorrelated
        layer (when decorrelation is on)."""
        return sum(s.n_in * s.n_out + s.n_out + (s.n_in * s.n_in if decorrelate and s.decorrelated else 0)
                   for s in self.layers(n_in, n_out))

    def check_size(self, n_in: int, n_out: int, decorrelate: bool) -> None:
        """Refuse, before allocating, a network whose arrays would not fit this machine's memory:
        each synapse is float32 with about ARRAY_COPIES copies (the array, Adam's two moments, the
        update buffer, a device's per-synapse state)."""
        need = self.n_parameters(n_in, n_out, decorrelate) * 4 * ARRAY_COPIES
        have = _physical_memory()
        if have and need > have:
            raise SpecError(f"network '{self.name}' needs about {need / 2**30:.1f} GiB for its "
                            f"{self.n_parameters(n_in, n_out, decorrelate):,} synapses and their "
                            f"training state; this machine has {have / 2**30:.1f} GiB")

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "hidden": [{"width": h.width, "activation": h.activation} for h in self.hidden],
            "loss": self.loss,
            "decorrelate": self.decorrelate if isinstance(self.decorrelate, str) else list(self.decorrelate),
        }


_KEYS = {"name", "description", "hidden", "loss", "decorrelate"}
MAX_SPEC_BYTES = 1_000_000
ARRAY_COPIES = 5


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not every platform says
        return 0


def spec_from_dict(data: dict, where: str = "<dict>") -> NetSpec:
    """Validate a spec given as a mapping; errors name `where`, the key, the expectation and the value."""
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a mapping of spec keys, found {type(data).__name__}")
    unknown = sorted(str(k) for k in set(data) - _KEYS)
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {short_repr(unknown)}; expected some of {sorted(_KEYS)}")
    hidden_raw = data.get("hidden", [])
    if not isinstance(hidden_raw, list):
        raise SpecError(f"{where}: 'hidden' must be a list of {{width, activation}}, found {short_repr(hidden_raw)}")
    hidden = []
    for i, layer in enumerate(hidden_raw):
        key = f"hidden[{i}]"
        if not isinstance(layer, dict) or set(layer) - {"width", "activation"} or "width" not in layer:
            raise SpecError(f"{where}: '{key}' must be {{width: int, activation: name}}, found {short_repr(layer)}")
        width, act = layer["width"], layer.get("activation", "leaky_relu")
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise SpecError(f"{where}: '{key}.width' must be a positive integer, found {short_repr(width)}")
        if not isinstance(act, str) or act not in ACTIVATIONS:
            raise SpecError(f"{where}: '{key}.activation' must be one of {sorted(ACTIVATIONS)}, "
                            f"found {short_repr(act)}")
        hidden.append(HiddenSpec(width, act))
    loss = data.get("loss", "cross_entropy")
    if not isinstance(loss, str) or loss not in LOSSES:
        raise SpecError(f"{where}: 'loss' must be one of {sorted(LOSSES)}, found {short_repr(loss)}")
    decor = data.get("decorrelate", "all")
    if isinstance(decor, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in decor):
        decor = tuple(decor)
    elif not isinstance(decor, str) or decor not in ("all", "none"):
        raise SpecError(
            f"{where}: 'decorrelate' must be 'all', 'none' or a list of layer indices, found {short_repr(decor)}"
        )
    name = data.get("name", Path(where).stem)
    if not isinstance(name, str) or not name:
        raise SpecError(f"{where}: 'name' must be a non-empty string, found {short_repr(name)}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise SpecError(f"{where}: 'description' must be a string, found {short_repr(description)}")
    return NetSpec(name, tuple(hidden), loss, decor, description)


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
        if path.stat().st_size > MAX_SPEC_BYTES:
            raise SpecError(f"{path}: a network spec is a few lines of YAML; this file has "
                            f"{path.stat().st_size:,} bytes (at most {MAX_SPEC_BYTES:,})")
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read the network spec: {short_repr(str(exc))}") from None
    except RecursionError:
        raise SpecError(f"{path}: the YAML is nested too deeply to be a network spec") from None
    return spec_from_dict(data, str(path))
