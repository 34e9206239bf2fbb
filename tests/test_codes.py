"""Every diagnostic code has a page in docs/errors that says the same as `butlerc explain`."""

from __future__ import annotations

from pathlib import Path

import pytest
from butlerc.codes import CODES, explain, index_page, page

DOCS = Path(__file__).parent.parent / "docs" / "errors"


@pytest.mark.parametrize("code", sorted(CODES))
def test_docs_page_is_current(code: str) -> None:
    path = DOCS / f"{code}.md"
    assert path.is_file(), f"run `make docs` to write {path}"
    assert path.read_text(encoding="utf-8") == page(code), "docs/errors is stale: run `make docs`"


def test_index_lists_every_code() -> None:
    assert (DOCS / "README.md").read_text(encoding="utf-8") == index_page()


@pytest.mark.parametrize("code", sorted(CODES))
def test_explain_names_code_title_and_fix(code: str) -> None:
    text = explain(code.lower())
    assert text.startswith(code)
    assert CODES[code].title in text
    assert "How to fix it:" in text


def test_codes_are_stable_and_well_formed() -> None:
    for code, entry in CODES.items():
        assert entry.code == code
        assert code.startswith("BC") and len(code) == 5 and code[2:].isdigit()
        assert entry.severity == ("warning" if code[2] == "1" else "error")
