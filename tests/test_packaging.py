"""pyproject.toml ships every file the packages read at run time.

setuptools installs package data only for folders listed in ``packages``; a
folder left out still works in an editable install (with a warning banner) and
is silently missing from a wheel. These checks read the configuration instead
of building a wheel, so they stay fast.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).parent.parent
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
    "setuptools"
]


def folders() -> dict[str, Path]:
    """Every folder under each mapped package, by its dotted package name."""
    found: dict[str, Path] = {}
    for name, where in SETUPTOOLS["package-dir"].items():
        top = ROOT / where
        for folder in [top, *sorted(p for p in top.rglob("*") if p.is_dir())]:
            if folder.name == "__pycache__":
                continue
            parts = folder.relative_to(top).parts
            found.setdefault(".".join([name, *parts]), folder)
    return found


def test_every_folder_with_files_is_a_declared_package() -> None:
    declared = set(SETUPTOOLS["packages"])
    missing = [
        name
        for name, folder in folders().items()
        if any(entry.is_file() for entry in folder.iterdir()) and name not in declared
    ]
    assert missing == [], f"add {missing} to [tool.setuptools] packages in pyproject.toml"


def test_every_data_file_is_package_data() -> None:
    patterns = SETUPTOOLS["package-data"]
    left_out = [
        str(entry.relative_to(ROOT))
        for name, folder in folders().items()
        for entry in folder.iterdir()
        if entry.is_file()
        and entry.suffix not in (".py", ".pyc")
        and not any(fnmatch.fnmatch(entry.name, p) for p in patterns.get(name, []))
    ]
    assert left_out == [], f"add {left_out} to [tool.setuptools.package-data] in pyproject.toml"


def test_package_data_patterns_each_match_a_file() -> None:
    where = folders()
    stale = [
        f"{name}: {pattern}"
        for name, names in SETUPTOOLS["package-data"].items()
        for pattern in names
        if not list(where[name].glob(pattern))
    ]
    assert stale == []
