"""Typed errors. Each message names the bad value, what was expected and how to fix it.

The CLI prints these as one-line errors (no traceback); anything else is a bug.
"""


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
