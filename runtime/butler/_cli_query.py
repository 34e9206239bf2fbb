"""``butler query`` and ``butler remove``: select datasets by keys and ``--where`` (issue 18).

    butler query ROOT DATASET_TYPE [KEY=VALUE ...] [--where EXPR] [--bind NAME=VALUE ...]
                 [--with TYPE ...] [--without TYPE ...] [--order-by KEY ...] [--limit N]
                 [--count | --values KEY]
    butler remove ROOT DATASET_TYPE [KEY=VALUE ...] [--where EXPR] [--bind NAME=VALUE ...]
                  [--dry-run] [--yes]

A ``--bind`` value is read like a literal of the expression language (``42``,
``'HSC-R'``, ``2024-01-31``, a comma-separated list); anything else is a string.
``remove`` lists what it selected before removing anything, removes in batches of
:data:`BATCH` datasets (one transaction each: a batch's rows and files go together),
only ever from ROOT itself (never from a parent), and exits 0 only if everything
selected was removed.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from typing import Any

from ._cli_common import add_data_id, add_dataset_type, add_root, command, echo, shown
from .dataid import format_data_id
from .errors import ButlerError, InvalidQueryError
from .progress import progress

__all__ = ["BATCH", "add_commands", "add_where", "binds"]

#: How many datasets ``butler remove`` removes in one transaction.
BATCH = 500


def _open(root: str, *, writeable: bool = False, parents: bool = True) -> Any:
    from ._cli_chain import session_config
    from .butler import Butler

    return Butler(root, writeable=writeable, parents=parents, config=session_config())


def bind_pair(text: str) -> tuple[str, str]:
    """One ``--bind NAME=VALUE`` item (argparse type)."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _bind_value(text: str) -> object:
    from .query.syntax import parse_values

    try:
        values = parse_values(text)
    except InvalidQueryError:
        return text  # not literals: the text itself, a string
    return values[0] if len(values) == 1 else values


def binds(pairs: Sequence[tuple[str, str]] | None) -> dict[str, object] | None:
    """The ``bind`` mapping of the ``--bind`` items (values parsed as literals)."""
    if not pairs:
        return None
    values: dict[str, object] = {}
    for name, text in pairs:
        if name in values:
            raise InvalidQueryError(f"--bind {name} is given twice; give it once")
        values[name] = _bind_value(text)
    return values


def _selection(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``Butler.query``/``count``/``query_values`` from the options."""
    return {
        "where": args.where,
        "bind": binds(args.bind),
        "with_datasets": tuple(args.with_datasets or ()),
        "without_datasets": tuple(args.without_datasets or ()),
    }


def _numbers(option: str, text: str, what: str) -> list[float]:
    try:
        numbers = [float(part) for part in text.split(",")]
    except ValueError:
        numbers = []
    if not numbers or not all(math.isfinite(n) for n in numbers):
        raise InvalidQueryError(f"{option} {text!r}: give {what}, numbers in degrees")
    return numbers


def _dec(option: str, text: str, dec: float) -> None:
    if not -90.0 <= dec <= 90.0:
        raise InvalidQueryError(f"{option} {text!r}: dec {dec:g} is not in [-90, 90] degrees")


def _sky(args: argparse.Namespace) -> dict[str, Any]:
    """``region``/``contains`` of ``Butler.query`` from --circle, --polygon, --contains."""
    from .skymap import Circle, Polygon

    sky: dict[str, Any] = {}
    if args.circle is not None and args.polygon is not None:
        raise InvalidQueryError("give --circle or --polygon, not both")
    if args.circle is not None:
        numbers = _numbers("--circle", args.circle, "RA,DEC,RADIUS")
        if len(numbers) != 3:
            raise InvalidQueryError(
                f"--circle {args.circle!r}: give RA,DEC,RADIUS (three numbers, degrees)"
            )
        ra, dec, radius = numbers
        _dec("--circle", args.circle, dec)
        if not 0.0 < radius <= 180.0:
            raise InvalidQueryError(
                f"--circle {args.circle!r}: the radius {radius:g} must be more than 0 and at "
                "most 180 degrees"
            )
        sky["region"] = Circle(ra, dec, radius)
    if args.polygon is not None:
        numbers = _numbers("--polygon", args.polygon, "RA1,DEC1,RA2,DEC2,RA3,DEC3,...")
        if len(numbers) % 2 or len(numbers) < 6:
            raise InvalidQueryError(
                f"--polygon {args.polygon!r}: give at least three RA,DEC vertices "
                "(RA1,DEC1,RA2,DEC2,RA3,DEC3,...; degrees)"
            )
        vertices = tuple(zip(numbers[::2], numbers[1::2], strict=True))
        for _, dec in vertices:
            _dec("--polygon", args.polygon, dec)
        sky["region"] = Polygon(vertices)
    if args.contains is not None:
        numbers = _numbers("--contains", args.contains, "RA,DEC")
        if len(numbers) != 2:
            raise InvalidQueryError(f"--contains {args.contains!r}: give RA,DEC (degrees)")
        _dec("--contains", args.contains, numbers[1])
        sky["contains"] = (numbers[0], numbers[1])
    return sky


def _query(args: argparse.Namespace) -> int:
    sky = _sky(args)  # checked before the repository is opened
    with _open(args.root) as butler:
        selection = _selection(args)
        selection.update(sky)  # spatial (issue 17): count, values and query all take it
        if args.count:
            echo(butler.count(args.dataset_type, args.data_id, **selection))
            return 0
        if args.values:
            for value in butler.query_values(
                args.dataset_type, args.values, args.data_id, **selection
            ):
                echo(shown(value))
            return 0
        found = 0
        keys = butler.mapper.keys(args.dataset_type)
        results = butler.query(
            args.dataset_type,
            args.data_id,
            order_by=tuple(args.order_by or ()),
            limit=args.limit,
            **selection,
        )
        for result in results:
            found += 1
            echo(format_data_id({k: v for k, v in result.items() if k in keys}))
        return 0 if found else 1


def _remove(args: argparse.Namespace) -> int:
    # parents=False: only this repository's own datasets are selected, never a parent's
    with _open(args.root, writeable=not args.dry_run, parents=False) as butler:
        name = args.dataset_type
        keys = butler.mapper.keys(name)
        selected = list(butler.query(name, args.data_id, **_selection(args)))
        verb = "remove" if args.yes and not args.dry_run else "would remove"
        for data_id in selected:
            echo(f"{verb} {name} {_shown_id(data_id, keys)}")
        total = len(selected)
        if args.dry_run:
            echo(f"{total} {name!r} dataset(s) would be removed from {butler.root} (dry run)")
            return 0
        if not total:
            echo(f"no {name!r} dataset matches; nothing was removed")
            return 0
        if not args.yes and not _confirmed(total, name):
            echo("nothing was removed", file=sys.stderr)
            return 1
        removed, failures = _remove_batches(butler, name, selected)
    echo(f"removed {removed} of {total} {name!r} dataset(s) from {butler.root}")
    for error in failures:
        echo(f"butler remove: {error}", file=sys.stderr)
    return 0 if removed == total else 1


def _shown_id(data_id: Any, keys: Any) -> str:
    return format_data_id({k: v for k, v in data_id.items() if k in keys})


def _confirmed(total: int, name: str) -> bool:
    if not sys.stdin.isatty():
        raise InvalidQueryError(
            f"not removing the {total} {name!r} dataset(s) listed: not on a terminal to ask; "
            "pass --yes to remove them without asking (or --dry-run to only list them)"
        )
    answer = input(f"remove these {total} {name!r} dataset(s)? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _remove_batches(butler: Any, name: str, selected: list[Any]) -> tuple[int, list[str]]:
    """Remove in batches, each in one transaction; how many went, and what failed."""
    removed = 0
    failures: list[str] = []
    batches = [selected[i : i + BATCH] for i in range(0, len(selected), BATCH)]
    for batch in progress(batches, f"removing {name}", total=len(batches)):
        try:
            with butler.transaction():
                for data_id in batch:
                    butler.remove(name, data_id)
        except (ButlerError, OSError) as error:
            first = _shown_id(batch[0], butler.mapper.keys(name))
            failures.append(
                f"a batch of {len(batch)} dataset(s) from {first} was not removed "
                f"(nothing of it changed): {error}"
            )
        else:
            removed += len(batch)
    return removed, failures


def _add_selection(parser: argparse.ArgumentParser) -> None:
    add_root(parser)
    add_dataset_type(parser)
    add_data_id(parser, "keys to match exactly (none: every stored dataset)")
    add_where(parser)


def add_where(parser: argparse.ArgumentParser) -> None:
    """``--where EXPR`` and ``--bind NAME=VALUE`` (query, remove, export, transfer)."""
    parser.add_argument(
        "--where",
        metavar="EXPR",
        help="an expression over the keys, e.g. \"visit >= 10 AND filter IN ('r', 'i')\" "
        "(see docs/runtime.md, Queries)",
    )
    parser.add_argument(
        "--bind",
        action="append",
        type=bind_pair,
        metavar="NAME=VALUE",
        help="a value for :NAME in --where (a literal, or a comma-separated list; repeatable)",
    )


def add_commands(commands: Any) -> None:
    """Add ``query`` and ``remove`` to the ``butler`` command line."""
    query = command(commands, "query", "list stored data IDs matching keys or an expression")
    _add_selection(query)
    query.add_argument(
        "--with",
        dest="with_datasets",
        action="append",
        metavar="TYPE",
        help="only data IDs whose shared keys have a TYPE dataset too (repeatable)",
    )
    query.add_argument(
        "--without",
        dest="without_datasets",
        action="append",
        metavar="TYPE",
        help="only data IDs whose shared keys have no TYPE dataset (repeatable)",
    )
    query.add_argument(
        "--order-by",
        action="append",
        metavar="KEY",
        help="sort by KEY (--order-by=-KEY: descending) before the other keys (repeatable)",
    )
    query.add_argument(
        "--circle",
        metavar="RA,DEC,R",
        help="only datasets whose sky region meets this circle (degrees; issue 17)",
    )
    query.add_argument(
        "--polygon",
        metavar="RA,DEC,...",
        help="only datasets whose sky region meets this convex polygon (3+ vertices, degrees)",
    )
    query.add_argument(
        "--contains",
        metavar="RA,DEC",
        help="only datasets whose sky region contains this position (degrees)",
    )
    query.add_argument("--limit", type=int, metavar="N", help="print at most N data IDs")
    query.add_argument("--count", action="store_true", help="print only how many match")
    query.add_argument("--values", metavar="KEY", help="print the distinct values of KEY")
    query.set_defaults(run=_query)

    remove = command(
        commands, "remove", "remove the datasets that match, listing them first (never a parent's)"
    )
    _add_selection(remove)
    remove.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    remove.add_argument(
        "--yes", action="store_true", help="remove without asking (needed when not on a terminal)"
    )
    remove.set_defaults(run=_remove, with_datasets=None, without_datasets=None)
