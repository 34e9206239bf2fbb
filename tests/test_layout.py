"""The installed distribution exposes only the names `butlerc` and `butler`."""

from __future__ import annotations

import importlib.metadata
import importlib.util

import pytest


def test_installed_top_level_names_are_specific() -> None:
    distribution = importlib.metadata.distribution("butler")
    top_level = (distribution.read_text("top_level.txt") or "").split()
    if not top_level:  # editable installs may not write top_level.txt
        top_level = ["butler", "butlerc"]
    assert set(top_level) <= {"butler", "butlerc"}


@pytest.mark.parametrize("generic", ["compiler", "runtime", "dsl", "policies"])
def test_no_generic_top_level_module(generic: str) -> None:
    assert importlib.util.find_spec(generic) is None, f"'{generic}' must not be importable"


def test_grammar_and_schema_ship_inside_the_package() -> None:
    from importlib import resources

    dsl = resources.files("butlerc.dsl")
    assert dsl.joinpath("butler.lark").is_file()
    assert dsl.joinpath("ir.schema.json").is_file()


def test_generated_code_needs_neither_lark_nor_jinja() -> None:
    import butler.spec

    source = importlib.util.find_spec("butler.spec")
    assert source is not None and source.origin is not None
    from pathlib import Path

    text = Path(source.origin).read_text(encoding="utf-8")
    assert "lark" not in text and "jinja" not in text
    assert butler.spec.ABI_VERSION >= 1
