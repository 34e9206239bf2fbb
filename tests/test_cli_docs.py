"""The README and docs show what users can type: the package's import form and real commands."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from butler.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_examples_import_the_public_names_from_the_package() -> None:
    offenders = [
        f"{page.relative_to(ROOT)}:{number}"
        for page in DOCS
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if "from butler.butler import" in line
    ]
    assert offenders == []


def test_every_butler_command_in_the_readme_exists() -> None:
    parser = build_parser()
    (commands,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = set(re.findall(r"^butler ([a-z][a-z0-9-]*) ", text, re.MULTILINE))
    assert {"create", "query", "runs", "verify"} <= shown
    assert shown - set(commands.choices) == set()
