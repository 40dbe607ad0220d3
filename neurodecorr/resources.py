"""Find the files neurodecorr ships (network specs in `models/`, device profiles in
`hw_profiles/`) by name, from a source checkout, an editable install or a wheel.

The repository keeps them at the top level, where users look; `pyproject.toml` installs them
as the data packages `neurodecorr.shipped.<kind>`.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_REPO_ROOT = _PACKAGE.parent


def shipped_dirs(kind: str) -> list[Path]:
    """Directories that may hold shipped files of `kind` ("models" or "hw_profiles"), best first."""
    installed = _PACKAGE / "shipped" / kind  # a wheel install
    in_checkout = _REPO_ROOT / kind  # a source checkout or an editable install
    return [d for d in (installed, in_checkout) if d.is_dir()]


def find_file(name_or_path, kind: str, suffix: str) -> Path | None:
    """An existing file at `name_or_path`, else the shipped file of that name, else None."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    return shipped_files(kind, suffix).get(str(name_or_path))


def shipped_files(kind: str, suffix: str) -> dict[str, Path]:
    """Map of name → file for every shipped file of `kind` ending in `suffix`."""
    files: dict[str, Path] = {}
    for folder in reversed(shipped_dirs(kind)):
        for path in sorted(folder.glob(f"*{suffix}")):
            files[path.name[: -len(suffix)]] = path
    return files
