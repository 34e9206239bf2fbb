"""YAML through PyYAML's safe loader and dumper: dicts, lists and scalars.

Only PyYAML's safe loader and dumper are used, so a file can never name a Python
object to build; their libyaml (C) versions when PyYAML was built with it, which
read and write the same documents about five times faster. The common documents
(a dict of plain values) take a faster path on top (``_yaml_fast``) that gives
the same objects back. Text is UTF-8 (non-ASCII written as is); key order is
kept. ``compress=".gz"`` gzips the file; gzipped files are read transparently.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ._common import (
    EncodingFormatter,
    check_compress,
    check_python_type,
    check_result,
    failed,
    read_text,
    unsupported,
)
from ._yaml_fast import ResolveCache, dump, load

__all__ = ["YamlFormatter"]

_READS = ("dict", "list", "str", "int", "float", "bool")


class YamlFormatter(EncodingFormatter):
    """YAML documents of dicts, lists and scalars."""

    name = "yaml"

    def __init__(self) -> None:
        self._resolved = ResolveCache()

    def encode(self, obj: object, compress: str | None, path: Path) -> bytes:
        check_compress(self.name, compress, (".gz",))
        try:
            text = dump(obj)
        except yaml.YAMLError as exc:
            raise unsupported(
                self.name, obj, "dict, list, str, int, float, bool, None, date and datetime"
            ) from exc
        return text.encode("utf-8")

    def read(
        self, path: Path, *, python_type: str | None = None, hdu: int | str | None = None
    ) -> object:
        check_python_type(self.name, python_type, _READS)
        text = read_text(self.name, path)
        try:
            obj = load(text, self._resolved)  # a safe loader (libyaml or Python)
        except yaml.YAMLError as exc:
            raise failed("YAML", "read", path, exc) from exc
        return check_result("YAML", path, obj, python_type)
