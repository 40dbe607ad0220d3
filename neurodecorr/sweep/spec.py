"""Sweep files: a grid of training runs.

    name: demo
    description: one line
    base:                 # settings shared by every run (any `neurodecorr train` setting)
      dataset: fashion-mnist
      model: small-mlp
      epochs: 3
    grid:                 # lists; every combination is one run
      profile: [ideal, loihi2, analog-pcm]
      rule: [bp, fa, np]
      decor: [none, seed]
      seed: [42]

Each run's directory under the sweep's output is named from the grid values, e.g.
`profile-ideal_rule-bp_decor-none_seed-42`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import yaml

from neurodecorr.engine.config import TrainConfig
from neurodecorr.errors import SpecError

_KEYS = {"name", "description", "base", "grid"}


@dataclass(frozen=True)
class RunPoint:
    name: str                # directory name
    config: TrainConfig
    grid_values: dict        # the values this point takes on the grid's keys


@dataclass(frozen=True)
class Sweep:
    name: str
    description: str
    base: dict
    grid: dict

    def points(self) -> list[RunPoint]:
        keys = list(self.grid)
        out = []
        for values in itertools.product(*(self.grid[k] for k in keys)):
            chosen = dict(zip(keys, values))
            name = "_".join(f"{k}-{_slug(v)}" for k, v in chosen.items()) or "run"
            out.append(RunPoint(name, TrainConfig.from_dict({**self.base, **chosen}), chosen))
        return out


def _slug(value) -> str:
    text = Path(str(value)).stem if str(value).endswith((".toml", ".yaml")) else str(value)
    return "".join(c if c.isalnum() or c in ".+" else "-" for c in text)


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file; every grid point must be a valid training setting."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"sweep file {path} does not exist") from None
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read the sweep file: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping with keys {sorted(_KEYS)}, found {type(data).__name__}")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise SpecError(f"{path}: unknown key(s) {unknown}; expected some of {sorted(_KEYS)}")
    base, grid = data.get("base") or {}, data.get("grid") or {}
    if not isinstance(base, dict) or not isinstance(grid, dict):
        raise SpecError(f"{path}: 'base' and 'grid' must be mappings of training settings")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SpecError(f"{path}: grid.{key} must be a non-empty list, found {values!r}")
    overlap = sorted(set(base) & set(grid))
    if overlap:
        raise SpecError(f"{path}: {overlap} appear in both 'base' and 'grid'; give each setting once")
    sweep = Sweep(str(data.get("name", path.stem)), str(data.get("description", "")), base, grid)
    try:
        sweep.points()
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None
    except TypeError as exc:
        raise SpecError(f"{path}: {exc}") from None
    return sweep
