"""The code base stays as clean as the style guide asks: ruff and mypy --strict pass.

The tool versions are pinned in pyproject.toml's test extra, so a new release
of either cannot change the verdict on unchanged code.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    executable = BIN / tool
    if not executable.exists():
        pytest.fail(f"{tool} is not installed beside {sys.executable}: install the test extra")
    return subprocess.run(
        [str(executable), *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_check_passes() -> None:
    done = run("ruff", "check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_is_applied() -> None:
    done = run("ruff", "format", "--check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_packages_pass_mypy_strict() -> None:
    done = run("mypy", "compiler/butlerc", "runtime/butler")
    assert done.returncode == 0, done.stdout + done.stderr
