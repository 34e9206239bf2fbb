"""``butler``: the repository command line.

    butler create ROOT --mapper INSTRUMENT [--registry URL]
    butler dataset-types ROOT
    butler query ROOT DATASET_TYPE [KEY=VALUE ...] [--count] [--values KEY]
    butler uri ROOT DATASET_TYPE KEY=VALUE ...
    butler index ROOT [DATASET_TYPE ...]
    butler verify ROOT [--read]

Exit status: 0 success; 1 when the operation found nothing or a problem
(no such dataset, a repository that does not verify); 2 for usage errors and
invalid input (bad data IDs, unknown dataset types, broken repositories).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .errors import ButlerError, DatasetNotFoundError

__all__ = ["main"]


def _data_id(pairs: Sequence[str]) -> dict[str, object]:
    """``visit=903334 ccd=16`` as a dict; values stay text and the mapper converts them."""
    result: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"data ID items are KEY=VALUE, got {pair!r}")
        result[key] = value
    return result


def _open(root: str, writeable: bool = False):  # type: ignore[no-untyped-def]
    from .butler import Butler

    return Butler(root, writeable=writeable)


def _create(args: argparse.Namespace) -> int:
    from .butler import Butler

    with Butler.create(args.root, mapper=args.mapper, registry=args.registry) as butler:
        print(
            f"created {butler.root} for instrument {butler.mapper.name} "
            f"({len(butler.dataset_types)} dataset types)"
        )
        print(f"registry: {butler.registry.url}")
    return 0


def _dataset_types(args: argparse.Namespace) -> int:
    with _open(args.root) as butler:
        width = max((len(n) for n in butler.dataset_types), default=0)
        for name in butler.dataset_types:
            spec = butler.mapper.dataset_type(name)
            count = butler.count(name) if args.counts else None
            extra = f"  [{count}]" if count is not None else ""
            print(f"{name:<{width}}  {spec.format:<8} {spec.template}{extra}")
    return 0


def _query(args: argparse.Namespace) -> int:
    with _open(args.root) as butler:
        data_id = _data_id(args.data_id)
        if args.count:
            print(butler.count(args.dataset_type, data_id))
            return 0
        if args.values:
            for value in butler.query_values(args.dataset_type, args.values, data_id):
                print(value)
            return 0
        found = 0
        for result in butler.query(args.dataset_type, data_id):
            found += 1
            print(
                " ".join(
                    f"{k}={v}"
                    for k, v in result.items()
                    if k in butler.mapper.keys(args.dataset_type)
                )
            )
        return 0 if found else 1


def _uri(args: argparse.Namespace) -> int:
    with _open(args.root) as butler:
        print(butler.uri(args.dataset_type, _data_id(args.data_id)))
    return 0


def _index(args: argparse.Namespace) -> int:
    with _open(args.root, writeable=True) as butler:
        report = butler.index(args.dataset_types or None)
        print(report)
    return 0


def _verify(args: argparse.Namespace) -> int:
    with _open(args.root) as butler:
        report = butler.verify(read=args.read)
        print(report)
    return 0 if report.clean else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="butler",
        description="Create, query and check Butler repositories.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    create = commands.add_parser("create", help="create a repository")
    create.add_argument("root", metavar="ROOT", help="the repository folder (created if needed)")
    create.add_argument(
        "--mapper",
        required=True,
        metavar="INSTRUMENT",
        help="a bundled instrument (hsc, toycam), a generated module's name, or its .py path",
    )
    create.add_argument(
        "--registry",
        metavar="URL",
        help="an SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db (default: SQLite in ROOT)",
    )
    create.set_defaults(run=_create)

    types = commands.add_parser("dataset-types", help="list the dataset types and their templates")
    types.add_argument("root", metavar="ROOT")
    types.add_argument("--counts", action="store_true", help="also count stored datasets of each")
    types.set_defaults(run=_dataset_types)

    query = commands.add_parser("query", help="list stored data IDs matching a partial data ID")
    query.add_argument("root", metavar="ROOT")
    query.add_argument("dataset_type", metavar="DATASET_TYPE")
    query.add_argument("data_id", nargs="*", metavar="KEY=VALUE")
    query.add_argument("--count", action="store_true", help="print only how many match")
    query.add_argument("--values", metavar="KEY", help="print the distinct values of KEY")
    query.set_defaults(run=_query)

    uri = commands.add_parser("uri", help="print where a dataset is (or would be) stored")
    uri.add_argument("root", metavar="ROOT")
    uri.add_argument("dataset_type", metavar="DATASET_TYPE")
    uri.add_argument("data_id", nargs="+", metavar="KEY=VALUE")
    uri.set_defaults(run=_uri)

    index = commands.add_parser("index", help="register files already in the repository folder")
    index.add_argument("root", metavar="ROOT")
    index.add_argument("dataset_types", nargs="*", metavar="DATASET_TYPE")
    index.set_defaults(run=_index)

    verify = commands.add_parser("verify", help="check that every record has its file")
    verify.add_argument("root", metavar="ROOT")
    verify.add_argument("--read", action="store_true", help="also read every file (slow)")
    verify.set_defaults(run=_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    except DatasetNotFoundError as error:
        print(f"butler {args.command}: {error}", file=sys.stderr)
        return 1
    except ButlerError as error:
        print(f"butler {args.command}: {error}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
