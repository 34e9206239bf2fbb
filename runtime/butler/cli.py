"""``butler``: the repository command line.

    butler create ROOT --mapper INSTRUMENT [--registry URL] [--durability put|close]
    butler dataset-types ROOT
    butler query ROOT DATASET_TYPE [KEY=VALUE ...] [--count] [--values KEY]
    butler uri ROOT DATASET_TYPE KEY=VALUE ...
    butler index ROOT [DATASET_TYPE ...]
    butler verify ROOT [--read] [--repair]
    butler ingest ROOT FILE ... [--transfer copy|move|link|symlink|none]
    butler import-gen2 GEN2_ROOT NEW_ROOT [--transfer copy|link|symlink|none] [--mapper NAME]
    butler certify ROOT CALIBRATION KEY=VALUE ... --from TIME [--to TIME] [--supersede]
    butler decertify ROOT CALIBRATION KEY=VALUE ... [--from TIME] [--to TIME]
    butler calibs ROOT CALIBRATION [KEY=VALUE ...] [--as-of TIME] [--current] [--plot PNG]
    butler ingest-curated ROOT DIR [--dataset-type NAME ...]

Exit status: 0 success; 1 when the operation found nothing or a problem
(no such dataset, a repository that does not verify); 2 for usage errors and
invalid input (bad data IDs, unknown dataset types, broken repositories).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._cli_chain import add_commands as add_chain_commands
from ._cli_chain import session_config
from .config import DURABILITY
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

    return Butler(root, writeable=writeable, config=session_config())


def _create(args: argparse.Namespace) -> int:
    from .butler import Butler

    with Butler.create(
        args.root,
        mapper=args.mapper,
        registry=args.registry,
        parents=args.parents or (),
        durability=args.durability,
    ) as butler:
        print(
            f"created {butler.root} for instrument {butler.mapper.name} "
            f"({len(butler.dataset_types)} dataset types)"
        )
        print(f"registry: {butler.registry.url}")
        for parent in butler.chain.parents:
            print(f"parent: {parent.root}")
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
        report = butler.index(args.dataset_types or None, show_progress=True)
        print(report)
    return 0


def _verify(args: argparse.Namespace) -> int:
    with _open(args.root, writeable=args.repair) as butler:
        report = butler.verify(read=args.read, show_progress=True, repair=args.repair)
        print(report)
    return 0 if report.clean else 1


def _transfer(text: str) -> str | None:
    return None if text == "none" else text


def _ingest(args: argparse.Namespace) -> int:
    with _open(args.root, writeable=True) as butler:
        report = butler.ingest(args.files, transfer=args.transfer)
        print(report)
    return 0 if report.ok else 1


def _import_gen2(args: argparse.Namespace) -> int:
    from .gen2repo import import_gen2

    report = import_gen2(
        args.gen2_root,
        args.new_root,
        mapper=args.mapper,
        transfer=args.transfer,
        calib_root=args.calib,
        registry=args.registry,
    )
    print(report)
    return 0 if report.ok else 1


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
    create.add_argument(
        "--durability",
        choices=DURABILITY,
        default="put",
        help="when a put's file is forced to disk: before the put returns (put, the default), "
        "or together with others when the Butler closes (close; faster, but an OS crash or "
        "power loss may lose recent puts)",
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
    verify.add_argument(
        "--repair",
        action="store_true",
        help="finish interrupted operations and delete temporaries of writers that are gone",
    )
    verify.set_defaults(run=_verify)

    ingest = commands.add_parser(
        "ingest", help="ingest raw files: translate their headers, place and record them"
    )
    ingest.add_argument("root", metavar="ROOT")
    ingest.add_argument("files", nargs="+", metavar="FILE")
    ingest.add_argument(
        "--transfer",
        type=_transfer,
        default="copy",
        choices=["copy", "move", "link", "symlink", None],
        metavar="{copy,move,link,symlink,none}",
        help="how a file gets to its templated path (default: copy; none: it stays put, "
        "and must already be inside ROOT)",
    )
    ingest.set_defaults(run=_ingest)

    gen2 = commands.add_parser(
        "import-gen2", help="record a Gen2 repository's raw and calibration registries"
    )
    gen2.add_argument("gen2_root", metavar="GEN2_ROOT")
    gen2.add_argument(
        "new_root", metavar="NEW_ROOT", help="the repository (created if needed; may be GEN2_ROOT)"
    )
    gen2.add_argument(
        "--transfer",
        type=_transfer,
        default=None,
        choices=["copy", "link", "symlink", None],
        metavar="{copy,link,symlink,none}",
        help="place the files in NEW_ROOT (default: none, the files stay where they are, "
        "which needs NEW_ROOT = GEN2_ROOT)",
    )
    gen2.add_argument(
        "--mapper", metavar="INSTRUMENT", help="the instrument (default: from GEN2_ROOT/_mapper)"
    )
    gen2.add_argument(
        "--calib", metavar="DIR", help="the folder of calibRegistry.sqlite3 (default: found)"
    )
    gen2.add_argument("--registry", metavar="URL", help="registry URL of a new NEW_ROOT")
    gen2.set_defaults(run=_import_gen2)
    _calibration_commands(commands)  # certify, decertify, calibs, ingest-curated (issue 4)
    add_chain_commands(parser, commands)  # --config, create --parent, explain, select (issue 6)
    return parser


# ---- calibrations (issue 4; the logic is in calibrations.py and curated.py) ---------------------


def _certify(args: argparse.Namespace) -> int:
    with _open(args.root, writeable=True) as butler:
        certification = butler.certify(
            args.dataset_type,
            _data_id(args.data_id),
            args.valid_from,
            args.valid_to,
            supersede=args.supersede,
            source=args.source,
        )
        print(f"certified {certification.describe()}")
    return 0


def _decertify(args: argparse.Namespace) -> int:
    with _open(args.root, writeable=True) as butler:
        closed = butler.decertify(
            args.dataset_type, _data_id(args.data_id), args.valid_from, args.valid_to
        )
        for certification in closed:
            print(f"closed {certification.describe()}")
    return 0


def _calibs(args: argparse.Namespace) -> int:
    from .calibrations import plot_timeline, timeline

    with _open(args.root) as butler:
        history = butler.calibration_history(
            args.dataset_type,
            _data_id(args.data_id) or None,
            as_of=args.as_of,
            include_closed=not args.current,
        )
        print(timeline(history))
        if args.plot:
            plot_timeline(history, args.plot, title=f"{args.dataset_type} certifications")
            print(f"wrote {args.plot}")
    return 0 if history else 1


def _ingest_curated(args: argparse.Namespace) -> int:
    from .curated import ingest_curated

    with _open(args.root, writeable=True) as butler:
        report = ingest_curated(butler, args.directory, dataset_types=args.dataset_types or None)
        print(report)
    return 0


def _calibration_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    certify = commands.add_parser(
        "certify", help="certify a stored calibration for a valid-time range"
    )
    certify.add_argument("root", metavar="ROOT")
    certify.add_argument("dataset_type", metavar="DATASET_TYPE")
    certify.add_argument("data_id", nargs="+", metavar="KEY=VALUE", help="the calibration's keys")
    certify.add_argument(
        "--from",
        dest="valid_from",
        required=True,
        metavar="TIME",
        help="start of validity (ISO 8601, in the validity key's time scale)",
    )
    certify.add_argument(
        "--to", dest="valid_to", metavar="TIME", help="end of validity, exclusive (default: open)"
    )
    certify.add_argument(
        "--supersede",
        action="store_true",
        help="close overlapping certifications for this range instead of refusing",
    )
    certify.add_argument("--source", metavar="TEXT", help="who or what certifies it")
    certify.set_defaults(run=_certify)

    decertify = commands.add_parser(
        "decertify", help="close a calibration's certifications (history is kept)"
    )
    decertify.add_argument("root", metavar="ROOT")
    decertify.add_argument("dataset_type", metavar="DATASET_TYPE")
    decertify.add_argument("data_id", nargs="+", metavar="KEY=VALUE")
    decertify.add_argument("--from", dest="valid_from", metavar="TIME", help="only from TIME")
    decertify.add_argument("--to", dest="valid_to", metavar="TIME", help="only until TIME")
    decertify.set_defaults(run=_decertify)

    calibs = commands.add_parser(
        "calibs", help="the certification timeline of a calibration type, per match key"
    )
    calibs.add_argument("root", metavar="ROOT")
    calibs.add_argument("dataset_type", metavar="DATASET_TYPE")
    calibs.add_argument("data_id", nargs="*", metavar="KEY=VALUE", help="match keys to show")
    calibs.add_argument("--as-of", metavar="TIME", help="as the registry stood then (UTC)")
    calibs.add_argument("--current", action="store_true", help="hide closed certifications")
    calibs.add_argument("--plot", metavar="PNG", help="also draw the timeline (needs matplotlib)")
    calibs.set_defaults(run=_calibs)

    curated = commands.add_parser(
        "ingest-curated",
        help="ingest and certify curated calibrations laid out like obs_*_data",
    )
    curated.add_argument("root", metavar="ROOT")
    curated.add_argument(
        "directory", metavar="DIR", help="<calib type>/<detector>[/<filter>]/<valid start>.<ext>"
    )
    curated.add_argument(
        "--dataset-type",
        dest="dataset_types",
        action="append",
        metavar="NAME",
        help="only this calibration type (repeatable)",
    )
    curated.set_defaults(run=_ingest_curated)


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
