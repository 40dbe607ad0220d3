"""Typed errors. Each message names the bad value, what was expected and how to fix it.

The CLI prints these as one-line errors (no traceback); anything else is a bug.
"""

import reprlib

MAX_TEXT = 200  # characters of a bad value quoted in a message
_SHORT = reprlib.Repr()  # (Python 3.11's Repr takes no keyword arguments)
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, MAX_TEXT, MAX_TEXT
_SHORT.maxlist = _SHORT.maxdict = _SHORT.maxtuple = _SHORT.maxset = 8


def short_repr(value) -> str:
    """repr(value), bounded: a hostile value (deeply nested, self-referencing, huge) quoted in an
    error message must not make the message huge."""
    text = _SHORT.repr(value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


class NeurodecorrError(Exception):
    """Base class of every error neurodecorr raises on purpose."""


class DataError(NeurodecorrError):
    """A dataset file is missing, unreadable or malformed."""


class SpecError(NeurodecorrError):
    """A network spec (models/*.yaml) or a training setting is invalid."""


class RunError(NeurodecorrError):
    """A run directory cannot be written, read or resumed."""


class DivergenceError(NeurodecorrError):
    """Training produced a non-finite value; the last good checkpoint is kept."""


class ProfileError(NeurodecorrError):
    """A device profile (hw_profiles/*.toml) is missing, unreadable or invalid."""
