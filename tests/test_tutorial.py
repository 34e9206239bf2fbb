"""The tutorial's command-line steps work as shown (docs/tutorial.md, "Ingest a raw file")."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

TUTORIAL = Path(__file__).resolve().parent.parent / "docs" / "tutorial.md"


def _section(title: str) -> str:
    text = TUTORIAL.read_text(encoding="utf-8")
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def _blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, re.DOTALL)


def _matches(expected: str, actual: str) -> bool:
    """``...`` in the tutorial stands for any text (a temporary folder)."""
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual) is not None


def test_ingest_a_raw_file_runs_as_shown(tmp_path: Path) -> None:
    section = _section("9. Ingest a raw file")
    (script,) = _blocks(section, "python")
    (tmp_path / "make_toy_raw.py").write_text(script, encoding="utf-8")
    (console,) = _blocks(section, "console")
    steps: list[tuple[str, list[str]]] = []
    for line in console.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    bin_folder = str(Path(sys.executable).parent)
    environment = {**os.environ, "PATH": bin_folder + os.pathsep + os.environ.get("PATH", "")}
    for command, expected in steps:
        done = subprocess.run(
            command,
            shell=True,
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"{command}: {done.stderr}"
        actual = done.stdout.splitlines()
        assert len(actual) == len(expected), f"{command}:\n{done.stdout}"
        for want, got in zip(expected, actual, strict=True):
            assert _matches(want, got), f"{command}: expected {want!r}, got {got!r}"
    assert (tmp_path / "toyrepo/raw/2024-03-01/TC-R/toy-000017.fits").is_file()
