"""Load device profiles: TOML → the frozen dataclasses of `devices.profile`, validated.

    load_profile("loihi2")                 # a shipped profile, by name (see profile_names())
    load_profile("my-chip.toml")           # any profile file, by path
    profile_from_dict(profile.to_dict())   # back from config.json

Every problem is a ProfileError whose message names the file, the dotted key, what was expected
and what was found. Types are strict: an integer is accepted where a number is expected, a
boolean is never a number. A table the kind does not use is an error, not something silently
ignored.

Defaults have one home: the shipped profiles, where each value cites its source. A key left out
of a table takes the value of the same table in the shipped profile of its kind (`BASE_PROFILES`:
[digital] from loihi2, [crossbar] and [pcm] from analog-pcm, [crossbar] and [rram] from
analog-rram); the dataclasses of `devices.profile` have no defaults of their own.
`default_spec(table, **overrides)` builds a table's dataclass the same way, for code and tests.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import tomllib
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from neurodecorr.devices.profile import PRICE_KEYS, CrossbarSpec, DigitalSpec, PCMSpec, Profile, RRAMSpec, TransferSpec
from neurodecorr.errors import ProfileError
from neurodecorr.resources import find_file, shipped_files

KINDS = ("ideal", "digital", "crossbar")
TECHNOLOGIES = ("pcm", "rram")
ROUNDINGS = ("stochastic", "nearest")
MIN_BITS, MAX_BITS = 2, 32  # every width here is signed: 1 bit would hold only zero

_TABLES: dict[str, type] = {
    "digital": DigitalSpec, "crossbar": CrossbarSpec, "transfer": TransferSpec, "pcm": PCMSpec,
    "rram": RRAMSpec}
# the shipped profile whose table gives the defaults of each device table (crossbar: by technology)
BASE_PROFILES = {"digital": "loihi2", "pcm": "analog-pcm", "rram": "analog-rram"}
WEIGHT_UPDATES = ("direct", "tag")
DIGITAL_DECORRELATION = ("array", "residual")
MECHANISMS = ("direct", "mixed-precision", "tiki-taka", "ttv2", "chopped-ttv2", "agad")
CROSSBAR_DECORRELATION = ("array", "residual", "periphery")
NOISE_SCOPES = ("read", "step")
MAX_BASE_DEPTH = 8
DEFAULT_TECHNOLOGY = "pcm"
_TOP_KEYS = ("base", "name", "description", "kind", *_TABLES, "energy")


def _within(lo: float, hi: float, what: str) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: lo <= v <= hi), f"{what} in {lo}..{hi}"


def _above(lo: float, what: str = "a number") -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v > lo), f"{what} > {lo}"


def _at_least(lo: float, what: str = "a number") -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v >= lo), f"{what} >= {lo}"


def _one_of(choices: tuple[str, ...]) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v in choices), "one of " + ", ".join(json.dumps(c) for c in choices)


_BITS = _within(MIN_BITS, MAX_BITS, "an integer")
_FRAC_BITS = _within(0, MAX_BITS - 1, "an integer")

# Physical limits, by dotted key. Relations between keys are checked in _check_relations.
_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "digital.weight_bits": _BITS,
    "digital.weight_headroom": _at_least(1),
    "digital.payload_bits": _BITS,
    "digital.payload_frac_bits": _FRAC_BITS,
    "digital.state_bits": _BITS,
    "digital.state_frac_bits": _FRAC_BITS,
    "digital.modulator_bits": _BITS,
    "digital.rounding": _one_of(ROUNDINGS),
    "digital.weight_update": _one_of(WEIGHT_UPDATES),
    "digital.decorrelation_update": _one_of(WEIGHT_UPDATES),
    # a tag holds 9 signed bits ([-256, 255], Lava's tag_1): the threshold must leave it room
    "digital.tag_threshold": _within(2, 128, "an integer"),
    "digital.decorrelation": _one_of(DIGITAL_DECORRELATION),
    "digital.decorrelation_slices": _within(1, 2, "an integer"),
    "digital.consolidate_every": _at_least(1, "an integer"),
    "crossbar.mechanism": _one_of(MECHANISMS),
    "crossbar.decorrelation": _one_of(CROSSBAR_DECORRELATION),
    "crossbar.read_noise_scope": _one_of(NOISE_SCOPES),
    "crossbar.training_reads": _within(1, 64, "an integer"),
    "transfer.every": _at_least(1, "an integer"),
    "transfer.columns": _at_least(1, "an integer"),
    "transfer.gamma": _within(0, 1, "a number"),
    "transfer.fast_lr": _above(0),
    "transfer.transfer_lr": _above(0),
    "transfer.buffer_threshold": _above(0),
    "transfer.momentum": ((lambda v: 0 <= v < 1), "a number in [0, 1)"),
    "transfer.chop_probability": _within(0, 1, "a number"),
    "transfer.tail_weight": _at_least(0),
    "crossbar.technology": _one_of(TECHNOLOGIES),
    "crossbar.tile_size": _at_least(1, "an integer"),
    "crossbar.dac_bits": _BITS,
    "crossbar.adc_bits": _BITS,
    "crossbar.input_bound": _above(0),
    "crossbar.output_bound": _above(0),
    "crossbar.output_noise": _at_least(0),
    "crossbar.weight_headroom": _at_least(1),
    "pcm.g_max_us": _above(0),
    "pcm.t_read_s": _above(0),
    "pcm.t0_s": _above(0),
    "pcm.inference_time_s": _above(0),
    "pcm.update_granularity": ((lambda v: 0 < v <= 1), "a number in (0, 1]"),
    "pcm.update_noise": _at_least(0),
    "rram.dw_min": _above(0),
    "rram.dw_min_dtod": _at_least(0),
    "rram.dw_min_ctoc": _at_least(0),
    "rram.up_down": ((lambda v: -1 < v < 1), "a number in (-1, 1)"),
    "rram.up_down_dtod": _at_least(0),
    "rram.w_min": ((lambda v: v < 0), "a number < 0"),
    "rram.w_max": _above(0),
    "rram.max_pulses": _at_least(1, "an integer"),
    "rram.read_noise": _at_least(0),
}

_TOML_TYPES = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}


def _found(value: Any) -> str:
    """A value as TOML would spell it, with its TOML type: `"eight" (string)`, `true (boolean)`."""
    kind = _TOML_TYPES.get(type(value), type(value).__name__)
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (str, list)):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, dict):
        text = "{" + ", ".join(value) + "}"
    else:
        text = str(value)
    return f"{text} ({kind})"


def _error(where: str, key: str, expected: str, found: str) -> ProfileError:
    return ProfileError(f"{where}: {key}: expected {expected}; found {found}")


def _check_keys(table: Mapping[str, Any], allowed: tuple[str, ...], prefix: str, where: str) -> None:
    for key in table:
        if key not in allowed:
            dotted = f"{prefix}{key}"
            near = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {prefix}{near[0]}?)" if near else ""
            raise _error(where, dotted, f"a known key{hint}, one of {', '.join(allowed)}",
                         f"unknown key {dotted} = {_found(table[key])}")


def _coerce(value: Any, typ: Any, where: str, key: str) -> Any:
    """`value` checked against the annotation `typ` (bool, int, float, str or tuple of floats)."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if typ is bool:
        ok, expected = isinstance(value, bool), "a boolean (true or false)"
    elif typ is int:
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif typ is float:
        ok, expected = is_number and math.isfinite(value), "a finite number"
        value = float(value) if ok else value
    elif typ is str:
        ok, expected = isinstance(value, str), "a string"
    elif typing.get_origin(typ) is tuple:
        n = len(typing.get_args(typ))
        expected = f"an array of {n} finite numbers"
        ok = isinstance(value, list) and len(value) == n and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
        value = tuple(float(v) for v in value) if ok else value
    else:  # pragma: no cover - a new field type in profile.py needs a branch here
        raise TypeError(f"no TOML rule for the field type {typ!r} of {key}")
    if not ok:
        raise _error(where, key, expected, _found(value))
    return value


def _base_name(name: str, technology: str | None) -> str:
    """The shipped profile that gives table `name` its defaults (crossbar tables: by technology)."""
    if name in ("crossbar", "transfer"):
        return BASE_PROFILES.get(technology or DEFAULT_TECHNOLOGY, BASE_PROFILES[DEFAULT_TECHNOLOGY])
    return BASE_PROFILES[name]


def _base_table(name: str, technology: str | None) -> tuple[dict[str, Any], str]:
    """The defaults of table `name` (the shipped profile's table, as TOML values) and their file."""
    path = shipped_files("hw_profiles", ".toml").get(_base_name(name, technology))
    if path is None:  # pragma: no cover - an installation without its shipped profiles
        raise ProfileError(f"the shipped profile {_base_name(name, technology)!r}, which gives the "
                           f"defaults of [{name}], is missing; reinstall neurodecorr")
    with open(path, "rb") as f:
        return dict(tomllib.load(f)[name]), str(path)


def _build_table(name: str, table: Any, where: str, technology: str | None = None) -> Any:
    """The dataclass of table `name` from its TOML table, every key typed and range-checked, the
    keys it leaves out taken from the shipped profile of its kind."""
    if not isinstance(table, dict):
        raise _error(where, name, f"a [{name}] table", _found(table))
    cls = _TABLES[name]
    hints = typing.get_type_hints(cls)
    fields = tuple(f.name for f in dataclasses.fields(cls))
    _check_keys(table, fields, f"{name}.", where)
    if name == "crossbar" and isinstance(table.get("technology"), str):  # else its check names it
        technology = table["technology"]
    base, base_file = _base_table(name, technology)
    values = {}
    for key in fields:
        origin = where if key in table else base_file
        if key not in table and key not in base:  # pragma: no cover - a shipped profile lacks a key
            raise _error(base_file, f"{name}.{key}", "every key of the table in the shipped profile",
                         "no such key")
        raw = table.get(key, base.get(key))
        dotted = f"{name}.{key}"
        value = _coerce(raw, hints[key], origin, dotted)
        check, expected = _RANGES.get(dotted, (lambda v: True, ""))
        if not check(value):
            raise _error(origin, dotted, expected, _found(raw))
        values[key] = value
    spec = cls(**values)
    _check_relations(name, spec, table, where)
    return spec


def default_spec(name: str, **overrides: Any) -> Any:
    """The dataclass of device table `name` ("digital", "crossbar", "pcm", "rram") with the
    shipped defaults of its kind and the given keys changed (validated like a profile file)."""
    if name not in _TABLES:
        raise ProfileError(f"no device table {name!r}; expected one of {', '.join(_TABLES)}")
    overrides = {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()}
    return _build_table(name, overrides, "<default_spec>")


def _check_relations(name: str, spec: Any, table: Mapping[str, Any], where: str) -> None:
    if name != "digital":
        return
    for frac, total in (("payload_frac_bits", "payload_bits"), ("state_frac_bits", "state_bits")):
        n_frac, n_total = getattr(spec, frac), getattr(spec, total)
        if n_frac >= n_total:
            default = "" if frac in table else f", the {BASE_PROFILES['digital']} value"
            raise _error(where, f"digital.{frac}",
                         f"fewer fractional bits than digital.{total} = {n_total}",
                         f"{n_frac} (integer{default})")
    if spec.decorrelation_slices == 2 and spec.decorrelation_update != "direct":
        raise _error(where, "digital.decorrelation_slices",
                     'decorrelation_update = "direct" (the fine slice takes the updates itself)',
                     f'2 with decorrelation_update = {json.dumps(spec.decorrelation_update)}')


def _build_energy(table: Any, where: str) -> dict[str, float]:
    if not isinstance(table, dict):
        raise _error(where, "energy", "an [energy] table of name = picojoules", _found(table))
    energy = {}
    known = sorted(PRICE_KEYS.values())
    for key, value in table.items():
        if key not in known:
            raise _error(where, f"energy.{key}", f"one of {', '.join(known)}", _found(key))
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (number and math.isfinite(value) and value >= 0):
            raise _error(where, f"energy.{key}", "a finite number of picojoules >= 0", _found(value))
        energy[key] = float(value)
    return energy


def _validate(data: Mapping[str, Any], where: str, default_name: str) -> Profile:
    _check_keys(data, _TOP_KEYS, "", where)
    if "kind" not in data:
        raise _error(where, "kind", "one of " + ", ".join(json.dumps(k) for k in KINDS), "no kind key")
    kind = _coerce(data["kind"], str, where, "kind")
    if kind not in KINDS:
        raise _error(where, "kind", "one of " + ", ".join(json.dumps(k) for k in KINDS), _found(kind))
    name = _coerce(data.get("name", default_name), str, where, "name")
    if not name.strip():
        raise _error(where, "name", "a non-empty string", _found(name))
    description = _coerce(data.get("description", ""), str, where, "description")

    specs: dict[str, Any] = {}
    needed = {"ideal": [], "digital": ["digital"], "crossbar": ["crossbar"]}[kind]
    for table in needed:
        if table not in data:
            raise _error(where, table, f"a [{table}] table for kind = {json.dumps(kind)}", "no such table")
        specs[table] = _build_table(table, data[table], where)
    if kind == "crossbar":
        technology = specs["crossbar"].technology
        for table in TECHNOLOGIES:
            if table != technology and table in data:
                raise _error(where, table, f"no [{table}] table when crossbar.technology = "
                             f"{json.dumps(technology)} (its device table is [{technology}])",
                             f"a [{table}] table")
        if technology not in data:
            raise _error(where, technology, f"a [{technology}] table for crossbar.technology = "
                         f"{json.dumps(technology)}", "no such table")
        specs[technology] = _build_table(technology, data[technology], where)
        # [transfer] may be left out: a mechanism that needs it takes the technology's defaults
        specs["transfer"] = _build_table("transfer", data.get("transfer", {}), where, technology)
    for table in _TABLES:
        if table in data and table not in specs:
            uses = " and ".join(f"[{t}]" for t in specs) or "no device tables"
            raise _error(where, table, f"no [{table}] table on a kind = {json.dumps(kind)} profile "
                         f"(it uses {uses})", f"a [{table}] table")
    energy = _build_energy(data.get("energy", {}), where)
    return Profile(name=name, description=description, kind=kind, energy=energy, source=where, **specs)


def profile_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> Profile:
    """A Profile from already-parsed data, such as `Profile.to_dict()` read back from config.json
    (whose "source" key, if present, becomes the profile's source)."""
    data = dict(data)
    source = str(data.pop("source", source))
    return _validate(data, source, default_name="")


def profile_names() -> list[str]:
    """The names of the shipped profiles (the files in `hw_profiles/`, without `.toml`)."""
    return sorted(shipped_files("hw_profiles", ".toml"))


def load_profile(name_or_path: str | os.PathLike) -> Profile:
    """Load a shipped profile by name (e.g. "loihi2") or any profile .toml file by path."""
    path = find_file(name_or_path, "hw_profiles", ".toml")
    if path is None:
        raise ProfileError(
            f"no device profile {json.dumps(str(name_or_path))}: expected a profile .toml file or a "
            f"shipped profile name ({', '.join(profile_names()) or 'none found'}); found neither"
        )
    return _validate(_read_with_base(path, ()), str(path), default_name=path.stem)


def _read_toml(path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: expected valid TOML; found a syntax error: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read the device profile: {exc}") from None


def _read_with_base(path, chain: tuple[str, ...]) -> dict[str, Any]:
    """A profile file's data with its `base` resolved: `base = "analog-rram"` (a shipped name or a
    path) starts from that profile and overrides what this file gives, key by key within each
    table; its name and description are this file's."""
    data = _read_toml(path)
    if "base" not in data:
        return data
    base = data.pop("base")
    if not isinstance(base, str) or not base:
        raise _error(str(path), "base", "the name or path of another profile", _found(base))
    found = find_file(base, "hw_profiles", ".toml")
    if found is None:
        raise _error(str(path), "base", f"a shipped profile ({', '.join(profile_names())}) or a "
                     f"profile file", _found(base))
    if str(found.resolve()) in chain or len(chain) >= MAX_BASE_DEPTH:
        raise _error(str(path), "base", "a chain of bases without a cycle", f"{base} (again)")
    merged = _read_with_base(found, (*chain, str(Path(path).resolve())))
    merged.pop("name", None)
    merged.pop("description", None)
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def describe(profile: Profile) -> str:
    """A readable multi-line rendering of the resolved profile (`neurodecorr profiles NAME`)."""
    data = profile.to_dict()
    lines = [f"{profile.name}: {profile.description}" if profile.description else profile.name,
             f"  kind    {profile.kind}", f"  file    {profile.source or '(not from a file)'}"]
    if profile.kind == "ideal":
        lines.append("  float32 arithmetic: no quantisation, no noise, no limits")
    for table in (*_TABLES, "energy"):
        if table not in data:
            continue
        values = data[table]
        if table == "energy" and not values:
            lines.append("  [energy] none given: runs on this profile cannot be priced")
            continue
        lines.append(f"  [{table}]" + ("  picojoules per operation" if table == "energy" else ""))
        width = max(len(k) for k in values)
        for key, value in values.items():
            text = json.dumps(value) if isinstance(value, (bool, str, list)) else str(value)
            lines.append(f"    {key:<{width}}  {text}")
    return "\n".join(lines)
