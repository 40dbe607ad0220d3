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

Each run's directory under the sweep's output is named from its grid values, e.g.
`profile-ideal_rule-bp_decor-none_seed-42`; two values that would give the same name (two
profiles called chip.toml in different folders) get a short hash of the value appended. Every
grid key but the seed is a configuration: results are grouped by it, and each configuration is
averaged over its seeds.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from neurodecorr.engine.config import TrainConfig
from neurodecorr.errors import SpecError, short_repr

_KEYS = {"name", "description", "base", "grid"}
MAX_POINTS = 10_000
MAX_SWEEP_BYTES = 1_000_000


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

    @property
    def config_keys(self) -> list[str]:
        """The grid keys that tell configurations apart (every grid key but the seed)."""
        return [k for k in self.grid if k != "seed"]

    def points(self) -> list[RunPoint]:
        return [RunPoint(name, TrainConfig.from_dict({**self.base, **chosen}), chosen)
                for name, chosen in self.named_values()]

    def named_values(self) -> list[tuple[str, dict]]:
        """(run directory name, grid values) of every point, without building its settings."""
        keys = list(self.grid)
        slugs = {k: _unique_slugs(self.grid[k]) for k in keys}
        out = []
        for values in itertools.product(*(range(len(self.grid[k])) for k in keys)):
            name = "_".join(f"{k}-{slugs[k][i]}" for k, i in zip(keys, values)) or "run"
            out.append((name, {k: self.grid[k][i] for k, i in zip(keys, values)}))
        return out

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "base": self.base, "grid": self.grid}


def _slug(value) -> str:
    text = Path(str(value)).stem if str(value).endswith((".toml", ".yaml")) else str(value)
    return "".join(c if c.isalnum() or c in ".+" else "-" for c in text)[:40]


def _unique_slugs(values: list) -> list[str]:
    """A directory-name part per value; values whose parts collide get a hash of the value."""
    plain = [_slug(v) for v in values]
    slugs = [f"{s}-{hashlib.sha256(repr(v).encode()).hexdigest()[:6]}".lstrip("-")
             if plain.count(s) > 1 or not s else s for s, v in zip(plain, values)]
    if len(set(slugs)) < len(slugs):  # the same value listed twice
        repeated = sorted({repr(v) for v in values if values.count(v) > 1})
        raise SpecError(f"a grid lists the same value more than once: {short_repr(repeated)}")
    return slugs


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file; every grid point must be a valid training setting."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_SWEEP_BYTES:
            raise SpecError(f"{path}: a sweep file is a few lines of YAML; this one has "
                            f"{path.stat().st_size:,} bytes (at most {MAX_SWEEP_BYTES:,})")
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"sweep file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read the sweep file: {short_repr(str(exc))}") from None
    except RecursionError:
        raise SpecError(f"{path}: the YAML is nested too deeply to be a sweep file") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping with keys {sorted(_KEYS)}, found {type(data).__name__}")
    unknown = sorted(str(k) for k in set(data) - _KEYS)
    if unknown:
        raise SpecError(f"{path}: unknown key(s) {short_repr(unknown)}; expected some of {sorted(_KEYS)}")
    base, grid = data.get("base") or {}, data.get("grid") or {}
    if not isinstance(base, dict) or not isinstance(grid, dict):
        raise SpecError(f"{path}: 'base' and 'grid' must be mappings of training settings")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SpecError(f"{path}: grid.{key} must be a non-empty list, found {short_repr(values)}")
    overlap = sorted(set(base) & set(grid))
    if overlap:
        raise SpecError(f"{path}: {overlap} appear in both 'base' and 'grid'; give each setting once")
    n_points = math.prod(len(v) for v in grid.values())
    if n_points > MAX_POINTS:
        raise SpecError(f"{path}: the grid has {n_points:,} points; a sweep runs at most "
                        f"{MAX_POINTS:,} (split it into several sweep files)")
    sweep = Sweep(str(data.get("name", path.stem)), str(data.get("description", "")), base, grid)
    try:
        sweep.points()
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None
    except TypeError as exc:
        raise SpecError(f"{path}: {short_repr(str(exc))}") from None
    return sweep
