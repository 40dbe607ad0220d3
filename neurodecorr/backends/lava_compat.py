"""Make lava-nc 0.10.0 importable on Python 3.11, without editing site-packages.

lava-nc 0.10.0 declares Requires-Python <3.11 (the set-up installs it with
--ignore-requires-python). Its one incompatibility is `lava/magma/compiler/var_model.py`, whose
dataclasses give fields a mutable default instance (`x: ByteEncoder = ByteEncoder()`), which
Python 3.11's dataclasses reject at import time. `install()` adds an import hook that rewrites
exactly those defaults to `dataclasses.field(default_factory=ByteEncoder)` while the module is
loaded; the file on disk is untouched, and an already-fixed Lava is left alone.

Lava's runtime also calls `multiprocessing.set_start_method('fork')` when it is imported, which
fails if anything in the process (tqdm's locks, for one) has already fixed the start method.
`import_lava()` imports that module with the call made forcing, so the order of imports does
not matter ('fork' is Linux's default start method in Python 3.11 anyway).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys

TARGET = "lava.magma.compiler.var_model"
_MUTABLE_DEFAULT = re.compile(r"^(\s+\w+\s*:\s*ByteEncoder\s*)=\s*ByteEncoder\(\)\s*$", re.MULTILINE)


def patch_source(source: str) -> str:
    """The module's source with each `name: ByteEncoder = ByteEncoder()` given a factory."""
    # an inline import keeps line numbers and any `from __future__` line first
    return _MUTABLE_DEFAULT.sub(
        r"\1= __import__('dataclasses').field(default_factory=ByteEncoder)", source)


class _PatchingLoader(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname):
        source = self.get_source(fullname)
        return compile(patch_source(source), self.path, "exec", dont_inherit=True)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.origin and spec.origin.endswith(".py"):
                spec.loader = _PatchingLoader(fullname, spec.origin)
                return spec
        return None


def install() -> None:
    """Add the hook (once). Call before the first `import lava...`."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def import_lava():
    """Install the hook and import Lava's core; a clear error says how to install it if absent."""
    from neurodecorr.errors import NeurodecorrError

    if importlib.util.find_spec("lava") is None:
        raise NeurodecorrError(
            "lava-nc is not installed; install it with "
            "`pip install --ignore-requires-python lava-nc==0.10.0` (`make setup` does this)")
    install()
    import multiprocessing

    import lava.magma.compiler.var_model  # noqa: F401  (the patched module)

    original = multiprocessing.set_start_method
    multiprocessing.set_start_method = lambda method, force=False: original(method, force=True)
    try:
        import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401
    finally:
        multiprocessing.set_start_method = original
    import lava.magma.core.run_configs  # noqa: F401

    return lava
