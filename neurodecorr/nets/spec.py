"""Network specs: which layers, which nonlinearity, where decorrelation sits, which loss.

A spec is data, read from `models/*.yaml` (or built in Python) and validated when loaded. Input
and output widths come from the dataset when the network is built, so one spec serves every
dataset. File format::

    name: small-mlp
    description: one line
    hidden:                     # hidden layers, in order
      - {width: 256, activation: leaky_relu}
    loss: cross_entropy         # or mse; the output layer is linear (softmax lives in the loss)
    decorrelate: all            # all | none | list of layer indices (0 = the input layer)

Convolutional layers (`nets.conv`) come first, each optionally followed by a pooling entry; the
first dense layer after them flattens the image::

    hidden:
      - {conv: 16, kernel: 3, padding: 1, stride: 1, activation: leaky_relu}
      - {pool: avg, size: 2}    # or max
      - {width: 128, activation: leaky_relu}

`padding` defaults to kernel // 2 ("same" for odd kernels at stride 1). A conv net needs a
dataset of images (Fashion-MNIST, MNIST, CIFAR-10, digits); layer indices count conv and dense
layers alike.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from neurodecorr.errors import SpecError, short_repr
from neurodecorr.nets.activations import ACTIVATIONS
from neurodecorr.nets.conv import POOLS, ConvGeometry
from neurodecorr.nets.losses import LOSSES
from neurodecorr.resources import find_file, shipped_files


@dataclass(frozen=True)
class HiddenSpec:
    """A hidden layer: `width` units (dense) or output channels (conv, with its kernel, stride,
    padding and the pooling that follows it)."""

    width: int
    activation: str
    kind: str = "dense"  # "dense" | "conv"
    kernel: int = 0
    stride: int = 1
    padding: int = 0
    pool: str | None = None
    pool_size: int = 2

    def to_dict(self) -> list[dict]:
        if self.kind == "dense":
            return [{"width": self.width, "activation": self.activation}]
        out = [{"conv": self.width, "kernel": self.kernel, "stride": self.stride,
                "padding": self.padding, "activation": self.activation}]
        if self.pool:
            out.append({"pool": self.pool, "size": self.pool_size})
        return out


@dataclass(frozen=True)
class LayerShape:
    """One layer once the input and output widths are known: h = W x̃ + b, W (n_out, n_in). For
    a conv layer (`conv` set) the rows are patches: n_in = k·k·C, n_out = C_out, and each sample
    gives `rows` = P rows (one per output position)."""

    n_in: int
    n_out: int
    activation: str
    decorrelated: bool
    conv: ConvGeometry | None = None
    # a deployed network's low-rank decorrelation stage (`nets.fold`): R holds Ṽᵀ (rank, n_in)
    # and x̃ = c − (c Ṽ) Ṽᵀ; 0: R is the full (n_in, n_in) matrix
    decorrelation_rank: int = 0

    @property
    def rows(self) -> int:
        """Rows of the layer's products per sample: P output positions (conv), 1 (dense)."""
        return 1 if self.conv is None else self.conv.positions

    @property
    def n_out_total(self) -> int:
        """Outputs per sample before pooling: P·C_out (conv), n_out (dense)."""
        return self.rows * self.n_out

    @property
    def mean_size(self) -> int:
        """Entries of the running mean μ: per input channel (conv), per input (dense)."""
        return self.n_in if self.conv is None else self.conv.in_channels

    def describe(self) -> dict:
        out = {"n_in": self.n_in, "n_out": self.n_out, "activation": self.activation,
               "decorrelated": self.decorrelated}
        if self.conv is not None:
            out["conv"] = self.conv.describe()
        return out


@dataclass(frozen=True)
class NetSpec:
    name: str
    hidden: tuple[HiddenSpec, ...]
    loss: str = "cross_entropy"
    decorrelate: str | tuple[int, ...] = "all"
    description: str = ""

    @property
    def is_conv(self) -> bool:
        return any(h.kind == "conv" for h in self.hidden)

    def layers(self, n_in: int | tuple[int, int, int], n_out: int) -> tuple[LayerShape, ...]:
        """The layers for an input of `n_in` features, or of images (channels, height, width),
        and `n_out` outputs."""
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
        if self.is_conv and isinstance(n_in, int):
            raise SpecError(f"network '{self.name}' has conv layers, but its input is a vector of "
                            f"{n_in} features; conv layers need a dataset of images (fashion-mnist, "
                            "mnist, cifar10, digits)")
        image = None if isinstance(n_in, int) else (n_in[1], n_in[2], n_in[0])  # (H, W, C)
        width = n_in if isinstance(n_in, int) else int(np.prod(n_in))
        shapes = []
        for i, h in enumerate(self.hidden + (HiddenSpec(n_out, "identity"),)):
            if h.kind == "conv":
                g = ConvGeometry(*image, h.width, h.kernel, h.stride, h.padding, h.pool, h.pool_size)
                if g.out_height < 1 or g.out_width < 1 or min(g.pooled_shape[:2]) < 1:
                    raise SpecError(
                        f"network '{self.name}': conv layer {i} ({h.kernel}×{h.kernel}, stride "
                        f"{h.stride}, padding {h.padding}{', pool ' + str(h.pool_size) if h.pool else ''}) "
                        f"does not fit its {image[0]}×{image[1]} input")
                shapes.append(LayerShape(g.patch_size, h.width, acts[i], i in decor, g))
                image = g.pooled_shape
                width = int(np.prod(image))
            else:
                shapes.append(LayerShape(width, h.width, acts[i], i in decor))
                width = h.width
        return tuple(shapes)

    def n_parameters(self, n_in: int, n_out: int, decorrelate: bool) -> int:
        """Synapses and biases of the network: W and b of every layer, R of every decorrelated
        layer (when decorrelation is on)."""
        return sum(s.n_in * s.n_out + s.n_out + (s.n_in * s.n_in if decorrelate and s.decorrelated else 0)
                   for s in self.layers(n_in, n_out))  # a conv layer's W is its kernel, shared

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
            "hidden": [entry for h in self.hidden for entry in h.to_dict()],
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
    hidden: list[HiddenSpec] = []
    for i, layer in enumerate(hidden_raw):
        key = f"hidden[{i}]"
        if isinstance(layer, dict) and "pool" in layer:
            hidden[-1:] = [_pool_entry(layer, hidden[-1] if hidden else None, where, key)]
        elif isinstance(layer, dict) and "conv" in layer:
            if hidden and hidden[-1].kind == "dense":
                raise SpecError(f"{where}: '{key}' is a conv layer after a dense one; conv layers "
                                "come first (the first dense layer flattens the image)")
            hidden.append(_conv_entry(layer, where, key))
        else:
            hidden.append(_dense_entry(layer, where, key))
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


def _positive(value, what: str, where: str, minimum: int = 1) -> int:
    """`where` is "file: 'hidden[i]": the key's name completes it."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        qualifier = "a positive integer" if minimum == 1 else f"an integer ≥ {minimum}"
        raise SpecError(f"{where}.{what}' must be {qualifier}, found {short_repr(value)}")
    return value


def _activation(entry: dict, where: str) -> str:
    act = entry.get("activation", "leaky_relu")
    if not isinstance(act, str) or act not in ACTIVATIONS:
        raise SpecError(f"{where}.activation' must be one of {sorted(ACTIVATIONS)}, found {short_repr(act)}")
    return act


def _dense_entry(layer, path: str, key: str) -> HiddenSpec:
    where = f"{path}: '{key}"
    if not isinstance(layer, dict) or set(layer) - {"width", "activation"} or "width" not in layer:
        raise SpecError(f"{where}' must be {{width: int, activation: name}}, {{conv: channels, kernel: "
                        f"int, …}} or {{pool: max|avg, size: int}}, found {short_repr(layer)}")
    return HiddenSpec(_positive(layer["width"], "width", where), _activation(layer, where))


_CONV_KEYS = {"conv", "kernel", "stride", "padding", "activation"}


def _conv_entry(layer: dict, path: str, key: str) -> HiddenSpec:
    where = f"{path}: '{key}"
    unknown = sorted(str(k) for k in set(layer) - _CONV_KEYS)
    if unknown or "kernel" not in layer:
        raise SpecError(f"{where}': a conv layer is {{conv: channels, kernel: int, stride: int, padding: "
                        f"int, activation: name}} (kernel required); found {short_repr(layer)}")
    kernel = _positive(layer["kernel"], "kernel", where)
    return HiddenSpec(_positive(layer["conv"], "conv", where), _activation(layer, where), "conv", kernel,
                      _positive(layer.get("stride", 1), "stride", where),
                      _positive(layer.get("padding", kernel // 2), "padding", where, minimum=0))


def _pool_entry(layer: dict, previous: HiddenSpec | None, path: str, key: str) -> HiddenSpec:
    where = f"{path}: '{key}"
    if previous is None or previous.kind != "conv" or previous.pool is not None:
        raise SpecError(f"{where}': pooling follows a conv layer (one pooling per conv layer); "
                        f"found {short_repr(layer)} after {'nothing' if previous is None else previous.kind}")
    if set(layer) - {"pool", "size"} or layer["pool"] not in POOLS:
        raise SpecError(f"{where}': pooling is {{pool: {' | '.join(POOLS)}, size: int}}, found {short_repr(layer)}")
    return dataclasses.replace(previous, pool=layer["pool"], pool_size=_positive(layer.get("size", 2), "size", where))


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
