"""What every ``butler`` command shares: its arguments' shapes and how it prints.

- :func:`command` adds a subcommand whose one-line help is also its description.
- :func:`add_data_id` adds the ``KEY=VALUE ...`` arguments; a malformed item or a key
  given twice is a usage error naming the item (exit 2).
- :func:`echo` prints text with control characters escaped, and :func:`shown` writes a
  single value that holds one as a Python literal: data ID values are user input, and
  never reach the terminal raw (data IDs themselves are shown by
  :func:`butler.dataid.format_data_id`, whose values are Python literals).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = [
    "add_data_id",
    "add_dataset_type",
    "add_root",
    "command",
    "echo",
    "escaped",
    "shown",
]


def command(commands: Any, name: str, text: str) -> argparse.ArgumentParser:
    """A subcommand ``name`` whose ``--help`` and the command list both say ``text``."""
    parser: argparse.ArgumentParser = commands.add_parser(name, help=text, description=text)
    return parser


def add_root(parser: argparse.ArgumentParser, text: str = "the repository folder") -> None:
    parser.add_argument("root", metavar="ROOT", help=text)


def add_dataset_type(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dataset_type",
        metavar="DATASET_TYPE",
        help="a dataset type of the repository (`butler dataset-types ROOT` lists them)",
    )


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        example = f" (e.g. {text}=VALUE)" if not sep and text.isidentifier() else ""
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}{example}")
    return key, value


class _DataId(argparse.Action):
    """Collects ``KEY=VALUE`` items into a dict; a key given twice is a usage error."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        result: dict[str, object] = {}
        pairs: list[tuple[str, str]] = list(values) if isinstance(values, list) else []
        for key, value in pairs:
            if key in result:
                raise argparse.ArgumentError(
                    self, f"{key} given twice ({key}={result[key]} and {key}={value})"
                )
            result[key] = value
        setattr(namespace, self.dest, result)


def add_data_id(
    parser: argparse.ArgumentParser,
    text: str = "data ID items; values are converted as the policy says",
    *,
    required: bool = False,
) -> None:
    parser.add_argument(
        "data_id",
        nargs="+" if required else "*",
        metavar="KEY=VALUE",
        type=_pair,
        action=_DataId,
        help=text,
    )


def shown(value: object) -> str:
    """A data ID value as text: as it is, or as a Python literal if it holds control characters."""
    text = str(value)
    return text if text.isprintable() else repr(text)


def escaped(text: str) -> str:
    """``text`` with every character that is neither printable nor a newline escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == "\n" else repr(c)[1:-1] for c in text)


def echo(text: object, file: TextIO | None = None) -> None:
    """Print ``text`` (to stdout by default) with control characters escaped."""
    print(escaped(str(text)), file=file)
