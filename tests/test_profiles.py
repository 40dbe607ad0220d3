"""Device profiles: the shipped ones load and round-trip; every bad profile fails with a message
naming the file, the key, what was expected and what was found; an installed wheel finds them."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from neurodecorr.devices.loader import default_spec, describe, load_profile, profile_from_dict, profile_names
from neurodecorr.devices.profile import CrossbarSpec, DigitalSpec, PCMSpec, RRAMSpec
from neurodecorr.errors import NeurodecorrError, ProfileError

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ["analog-pcm", "analog-pcm-periphery", "analog-rram", "analog-rram-periphery", "analog-symmetric",
           "ideal", "loihi2", "loihi2-residual", "loihi2-sliced"]

DIGITAL = 'name = "t"\nkind = "digital"\n[digital]\n'
PCM = 'name = "t"\nkind = "crossbar"\n[crossbar]\ntechnology = "pcm"\n[pcm]\n'
RRAM = 'name = "t"\nkind = "crossbar"\n[crossbar]\ntechnology = "rram"\n[rram]\n'


def _write(tmp_path: Path, text: str, name: str = "bad.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _error(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    return message


# --- the shipped profiles -------------------------------------------------------------------

def test_profile_names_lists_the_shipped_profiles():
    assert profile_names() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profile_loads_and_round_trips(name):
    profile = load_profile(name)
    assert profile.name == name
    assert profile.description and "\n" not in profile.description
    assert Path(profile.source).name == f"{name}.toml"
    data = profile.to_dict()
    assert None not in data.values()
    again = profile_from_dict(json.loads(json.dumps(data)))  # through config.json and back
    assert again == profile
    assert again.to_dict() == data


def test_shipped_profiles_hold_the_documented_values():
    loihi = load_profile("loihi2")
    assert loihi.kind == "digital" and loihi.crossbar is None and loihi.pcm is None
    assert (loihi.digital.weight_bits, loihi.digital.payload_bits, loihi.digital.payload_frac_bits,
            loihi.digital.state_bits, loihi.digital.modulator_bits) == (8, 16, 8, 24, 8)
    assert loihi.digital.rounding == "stochastic"
    pcm = load_profile("analog-pcm")
    assert (pcm.crossbar.technology, pcm.crossbar.tile_size, pcm.crossbar.dac_bits, pcm.crossbar.adc_bits,
            pcm.crossbar.output_bound, pcm.crossbar.output_noise) == ("pcm", 256, 7, 9, 12.0, 0.06)
    assert pcm.pcm.prog_noise_us == (0.26348, 1.9650, -1.1731) and pcm.rram is None
    assert (pcm.pcm.t_read_s, pcm.pcm.t0_s, pcm.pcm.inference_time_s) == (250e-9, 20.0, 3600.0)
    rram = load_profile("analog-rram")
    assert rram.crossbar.technology == "rram" and rram.pcm is None
    assert (rram.rram.dw_min, rram.rram.w_min, rram.rram.w_max) == (0.002, -0.75, 1.25)
    assert rram.rram.max_pulses == 31
    assert rram.rram.read_noise == 0.0175 and rram.rram.soft_bounds
    ideal = load_profile("ideal")
    assert (ideal.digital, ideal.crossbar, ideal.pcm, ideal.rram) == (None, None, None, None)


def test_profiles_are_frozen_and_typed():
    profile = load_profile("analog-pcm")
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile.crossbar.adc_bits = 4
    assert isinstance(profile.pcm.prog_noise_us, tuple)
    assert all(type(getattr(profile.crossbar, f)) is float for f in ("input_bound", "output_bound"))


def test_describe_renders_every_resolved_value():
    profile = load_profile("analog-rram")
    text = describe(profile)
    assert text.splitlines()[0] == f"analog-rram: {profile.description}"
    assert "kind    crossbar" in text and profile.source in text
    for table in ("crossbar", "rram"):
        assert f"[{table}]" in text
        for key in profile.to_dict()[table]:
            assert f"    {key} " in text
    assert "[pcm]" not in text and "[digital]" not in text


# --- a user's own profile -------------------------------------------------------------------

@pytest.mark.parametrize("name", SHIPPED)
def test_own_profile_by_path_loads_like_the_shipped_one(tmp_path, name):
    shipped = load_profile(name)
    copy = tmp_path / "my-chip.toml"
    shutil.copy(shipped.source, copy)
    for given in (copy, str(copy)):
        own = load_profile(given)
        assert own.source == str(copy)
        assert own == dataclasses.replace(shipped, source=str(copy))


def test_missing_keys_take_the_shipped_values_of_their_kind_and_ints_count_as_floats(tmp_path):
    """Defaults have one home, the shipped profiles: a key left out takes their value."""
    shipped = {name: load_profile(name) for name in ("loihi2", "analog-pcm", "analog-rram")}
    profile = load_profile(_write(tmp_path, PCM.replace('[pcm]\n', '[pcm]\ng_max_us = 30\n'), "p.toml"))
    assert profile.crossbar == shipped["analog-pcm"].crossbar
    assert profile.pcm == dataclasses.replace(shipped["analog-pcm"].pcm, g_max_us=30.0)
    assert type(profile.pcm.g_max_us) is float
    rram = load_profile(_write(tmp_path, RRAM, "r.toml"))
    assert rram.rram == shipped["analog-rram"].rram and rram.crossbar == shipped["analog-rram"].crossbar
    digital = load_profile(_write(tmp_path, 'kind = "digital"\n[digital]\n', "no-name.toml"))
    assert digital.digital == shipped["loihi2"].digital and digital.name == "no-name" and digital.energy == {}
    assert default_spec("digital", weight_bits=4) == dataclasses.replace(shipped["loihi2"].digital, weight_bits=4)


@pytest.mark.parametrize("spec", [CrossbarSpec, DigitalSpec, PCMSpec, RRAMSpec])
def test_profile_dataclasses_have_no_defaults_of_their_own(spec):
    """One source of truth: every default is in a shipped TOML file, with its source cited."""
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(spec))
    with pytest.raises(TypeError):
        spec()


def test_energy_table_is_kept_as_floats(tmp_path):
    text = DIGITAL + '[energy]\nac_pj = 23.6\nneuron_update_pj = 81\n'
    profile = load_profile(_write(tmp_path, text))
    assert profile.energy == {"ac_pj": 23.6, "neuron_update_pj": 81.0}
    assert all(type(v) is float for v in profile.energy.values())


# --- bad profiles ---------------------------------------------------------------------------

BAD = {
    # case: (profile text, dotted key, expected (part), found (part))
    "unknown top-level key": ('name = "t"\nkind = "ideal"\ncolour = "red"\n', "colour", "a known key",
                              'colour = "red" (string)'),
    "unknown key in a table": (DIGITAL + "weight_bit = 8\n", "digital.weight_bit",
                               "did you mean digital.weight_bits?", "= 8 (integer)"),
    "string for bits": (PCM.replace("[pcm]", 'adc_bits = "nine"\n[pcm]'), "crossbar.adc_bits",
                        "an integer", '"nine" (string)'),
    "bool for an int": (DIGITAL + "weight_bits = true\n", "digital.weight_bits", "an integer",
                        "true (boolean)"),
    "float for an int": (RRAM + "max_pulses = 31.0\n", "rram.max_pulses", "an integer", "31.0 (float)"),
    "bool for a float": (RRAM + "dw_min = false\n", "rram.dw_min", "a finite number", "false (boolean)"),
    "string for a bool": (PCM + 'drift = "yes"\n', "pcm.drift", "a boolean", '"yes" (string)'),
    "two coefficients for three": (PCM + "prog_noise_us = [0.1, 0.2]\n", "pcm.prog_noise_us",
                                   "an array of 3 finite numbers", "[0.1, 0.2] (array)"),
    "nan noise": (PCM.replace("[pcm]", "output_noise = nan\n[pcm]"), "crossbar.output_noise",
                  "a finite number", "nan (float)"),
    "name not a string": ('name = 3\nkind = "ideal"\n', "name", "a string", "3 (integer)"),
    "table given as a value": ('name = "t"\nkind = "digital"\ndigital = 5\n', "digital",
                               "a [digital] table", "5 (integer)"),
    "adc bits too many": (PCM.replace("[pcm]", "adc_bits = 40\n[pcm]"), "crossbar.adc_bits",
                          "an integer in 2..32", "40 (integer)"),
    "weight bits too few": (DIGITAL + "weight_bits = 1\n", "digital.weight_bits", "an integer in 2..32",
                            "1 (integer)"),
    "fraction bits fill the payload": (DIGITAL + "payload_frac_bits = 16\n", "digital.payload_frac_bits",
                                       "fewer fractional bits than digital.payload_bits = 16",
                                       "16 (integer)"),
    "default fraction bits fill a narrow state": (DIGITAL + "state_bits = 12\n", "digital.state_frac_bits",
                                                  "digital.state_bits = 12", "12 (integer, the loihi2 value)"),
    "headroom below one": (DIGITAL + "weight_headroom = 0.5\n", "digital.weight_headroom", ">= 1",
                           "0.5 (float)"),
    "unknown rounding": (DIGITAL + 'rounding = "up"\n', "digital.rounding",
                         'one of "stochastic", "nearest"', '"up" (string)'),
    "unknown technology": (PCM.replace('"pcm"', '"sram"'), "crossbar.technology",
                           'one of "pcm", "rram"', '"sram" (string)'),
    "zero tile": (PCM.replace("[pcm]", "tile_size = 0\n[pcm]"), "crossbar.tile_size", "an integer >= 1",
                  "0 (integer)"),
    "negative noise": (PCM.replace("[pcm]", "output_noise = -0.1\n[pcm]"), "crossbar.output_noise",
                       "a number >= 0", "-0.1 (float)"),
    "zero step": (RRAM + "dw_min = 0\n", "rram.dw_min", "a number > 0", "0 (integer)"),
    "granularity above one": (PCM + "update_granularity = 1.5\n", "pcm.update_granularity",
                              "a number in (0, 1]", "1.5 (float)"),
    "zero time": (PCM + "t0_s = 0.0\n", "pcm.t0_s", "a number > 0", "0.0 (float)"),
    "full asymmetry": (RRAM + "up_down = 1.0\n", "rram.up_down", "a number in (-1, 1)", "1.0 (float)"),
    "positive lower bound": (RRAM + "w_min = 0.5\n", "rram.w_min", "a number < 0", "0.5 (float)"),
    "no pulses": (RRAM + "max_pulses = 0\n", "rram.max_pulses", "an integer >= 1", "0 (integer)"),
    "negative energy": (DIGITAL + "[energy]\nac_pj = -1.0\n", "energy.ac_pj", "picojoules >= 0",
                        "-1.0 (float)"),
    "unknown energy kind": (DIGITAL + "[energy]\nsynop_pj = 1.0\n", "energy.synop_pj", "one of ac_pj",
                            "synop_pj"),
    "digital table on a crossbar": (PCM + "[digital]\n", "digital",
                                    'no [digital] table on a kind = "crossbar" profile', "a [digital] table"),
    "crossbar table on ideal": ('name = "t"\nkind = "ideal"\n[crossbar]\n', "crossbar",
                                'no [crossbar] table on a kind = "ideal" profile', "a [crossbar] table"),
    "pcm table on rram": (RRAM + "[pcm]\n", "pcm", 'no [pcm] table when crossbar.technology = "rram"',
                          "a [pcm] table"),
    "digital without its table": ('name = "t"\nkind = "digital"\n', "digital",
                                  'a [digital] table for kind = "digital"', "no such table"),
    "crossbar without its table": ('name = "t"\nkind = "crossbar"\n[pcm]\n', "crossbar",
                                   'a [crossbar] table for kind = "crossbar"', "no such table"),
    "crossbar without its device table": (RRAM.replace("[rram]\n", ""), "rram",
                                          'a [rram] table for crossbar.technology = "rram"', "no such table"),
    "bad kind": ('name = "t"\nkind = "analog"\n', "kind", 'one of "ideal", "digital", "crossbar"',
                 '"analog" (string)'),
    "kind as a number": ('name = "t"\nkind = 2\n', "kind", "a string", "2 (integer)"),
    "no kind": ('name = "t"\n', "kind", 'one of "ideal", "digital", "crossbar"', "no kind key"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_profile_names_file_key_expectation_and_found_value(tmp_path, case):
    text, key, expected, found = BAD[case]
    message = _error(tmp_path, text)
    assert f": {key}: expected " in message, message
    assert expected in message.split("; found ")[0], message
    assert found in message.split("; found ")[-1], message


def test_toml_syntax_error_names_the_file_and_line(tmp_path):
    message = _error(tmp_path, 'name = "t"\nkind = \n')
    assert "valid TOML" in message and "line 2" in message


def test_unknown_name_lists_the_shipped_profiles():
    with pytest.raises(ProfileError) as info:
        load_profile("loihi3")
    message = str(info.value)
    assert '"loihi3"' in message
    for name in SHIPPED:
        assert name in message
    assert isinstance(info.value, NeurodecorrError)


def test_profile_from_dict_validates_like_a_file():
    data = load_profile("loihi2").to_dict()
    data["digital"]["payload_bits"] = "16"
    with pytest.raises(ProfileError, match=r"digital\.payload_bits: expected an integer; found \"16\""):
        profile_from_dict(data)


# --- installed, not editable ----------------------------------------------------------------

def _install(tmp_path: Path) -> Path:
    """Install a copy of the project (so nothing is written into the checkout) into a plain
    directory: through a wheel where this venv can build one offline; else with setuptools'
    build_py, which lays out the same files a wheel of this pure-Python package holds."""
    src, site = tmp_path / "src", tmp_path / "site"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("neurodecorr", "models", "hw_profiles"):
        shutil.copytree(REPO / folder, src / folder, ignore=skip)
    for file in REPO.iterdir():
        if file.is_file():
            shutil.copy(file, src / file.name)
    can_wheel = (importlib.util.find_spec("wheel") is not None
                 or importlib.util.find_spec("setuptools.command.bdist_wheel") is not None)
    if can_wheel:
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
        dist = tmp_path / "dist"
        subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)],
                       check=True, capture_output=True, timeout=120)
        wheel = next(dist.glob("neurodecorr-*.whl"))
        subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
                       check=True, capture_output=True, timeout=120)
    else:
        setup = [sys.executable, "-c", "from setuptools import setup; setup()", "-q"]
        subprocess.run([*setup, "build_py", "--build-lib", str(site)],
                       cwd=src, check=True, capture_output=True, timeout=120)
    return site


@pytest.mark.slow
def test_installed_package_finds_shipped_profiles_and_models(tmp_path):
    site = _install(tmp_path)
    probe = (
        "import json, neurodecorr\n"
        "from neurodecorr.devices.loader import load_profile, profile_names\n"
        "from neurodecorr.nets.spec import load_spec\n"
        "p = load_profile('loihi2')\n"
        "print(json.dumps({'package': neurodecorr.__file__, 'profile': p.source,\n"
        "                  'bits': p.digital.weight_bits, 'names': profile_names(),\n"
        "                  'spec': load_spec('paper-mlp').name}))\n"
    )
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert Path(found["package"]).is_relative_to(site)  # the installed copy, not the checkout
    assert Path(found["profile"]) == site / "neurodecorr" / "shipped" / "hw_profiles" / "loihi2.toml"
    assert found["bits"] == 8 and found["names"] == SHIPPED and found["spec"] == "paper-mlp"
