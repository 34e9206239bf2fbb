"""``butler``: the repository command line.

    butler create ROOT --mapper INSTRUMENT [--registry URL] [--durability put|close]
    butler dataset-types ROOT
    butler query ROOT DATASET_TYPE [KEY=VALUE ...] [--where EXPR] [--bind NAME=VALUE ...]
                 [--with TYPE] [--without TYPE] [--order-by KEY] [--limit N]
                 [--count | --values KEY]
    butler remove ROOT DATASET_TYPE [KEY=VALUE ...] [--where EXPR] [--dry-run] [--yes]
    butler export ROOT OUT [--dataset-type NAME ...] [--where EXPR] [--bind NAME=VALUE ...]
    butler import ROOT BUNDLE [--skip-existing] [--overwrite] [--batch-size N]
    butler transfer SRC DST [DATASET_TYPE ...] [--where EXPR] [--transfer copy|link|move]
                    [--skip-existing] [--overwrite] [--batch-size N]
    butler uri ROOT DATASET_TYPE KEY=VALUE ...
    butler runs ROOT
    butler skymap ROOT [NAME] [--find RA,DEC]
    butler index ROOT [DATASET_TYPE ...]
    butler verify ROOT [--read] [--repair]
    butler ingest ROOT FILE ... [--transfer copy|move|link|symlink|none] [--dataset-type NAME]
                                  [--jobs N]
    butler import-gen2 GEN2_ROOT NEW_ROOT [--transfer copy|link|symlink|none] [--mapper NAME]
    butler certify ROOT CALIBRATION KEY=VALUE ... --from TIME [--to TIME] [--supersede]
    butler decertify ROOT CALIBRATION KEY=VALUE ... [--from TIME] [--to TIME]
    butler calibs ROOT CALIBRATION [KEY=VALUE ...] [--as-of TIME] [--current] [--plot PNG]
    butler ingest-curated ROOT DIR [--dataset-type NAME ...]
    butler serve ROOT... [--host 127.0.0.1] [--port 8642]
    butler token create ROOT --scope read|write

Exit status: 0 success; 1 when the operation found nothing or a problem
(no such dataset, a repository that does not verify); 2 for usage errors and
invalid input (bad data IDs, unknown dataset types, broken repositories); 141
(128 + SIGPIPE, as other Unix tools) when the reader of the output went away,
e.g. ``butler dataset-types ROOT | head``: the command stops without a traceback.

Everything printed goes through :func:`butler._cli_common.echo`: control characters
in data ID values and paths are escaped, never sent to the terminal.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from ._cli_chain import add_commands as add_chain_commands
from ._cli_chain import session_config
from ._cli_common import (
    add_data_id,
    add_dataset_type,
    add_root,
    command,
    echo,
)
from ._cli_move import add_commands as add_move_commands
from ._cli_query import add_commands as add_query_commands
from ._cli_remote import add_commands as add_remote_commands
from ._cli_skymap import add_commands as add_skymap_commands
from .config import DURABILITY
from .errors import ButlerError, DatasetNotFoundError

__all__ = ["build_parser", "main"]

#: The exit status of a command whose output pipe was closed (128 + SIGPIPE).
BROKEN_PIPE = 128 + signal.SIGPIPE


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
        echo(
            f"created {butler.root} for instrument {butler.mapper.name} "
            f"({len(butler.dataset_types)} dataset types)"
        )
        echo(f"registry: {butler.registry.url}")
        for parent in butler.chain.parents:
            echo(f"parent: {parent.address}")
    return 0


def _dataset_types(args: argparse.Namespace) -> int:
    with _open(args.root) as butler:
        width = max((len(n) for n in butler.dataset_types), default=0)
        for name in butler.dataset_types:
            spec = butler.mapper.dataset_type(name)
            count = butler.count(name) if args.counts else None
            extra = f"  [{count}]" if count is not None else ""
            echo(f"{name:<{width}}  {spec.format:<8} {spec.template}{extra}")
    return 0


def _uri(args: argparse.Namespace) -> int:
    with _open(args.root) as butler:
        echo(butler.uri(args.dataset_type, args.data_id))
    return 0


def _runs(args: argparse.Namespace) -> int:
    from ._cli_runs import runs_table

    with _open(args.root) as butler:
        echo(runs_table(butler))
    return 0


def _index(args: argparse.Namespace) -> int:
    with _open(args.root, writeable=True) as butler:
        report = butler.index(args.dataset_types or None, show_progress=True)
        echo(report)
    return 0


def _verify(args: argparse.Namespace) -> int:
    with _open(args.root, writeable=args.repair) as butler:
        report = butler.verify(read=args.read, show_progress=True, repair=args.repair)
        echo(report)
    return 0 if report.clean else 1


def _transfer(text: str) -> str | None:
    return None if text == "none" else text


def _ingest(args: argparse.Namespace) -> int:
    from .ingest import rules_for

    with _open(args.root, writeable=True) as butler:
        rules = rules_for(butler.mapper, args.dataset_type)
        report = butler.ingest(args.files, transfer=args.transfer, rules=rules, jobs=args.jobs)
        echo(report)
    return 0 if report.ok else 1


def _import_gen2(args: argparse.Namespace) -> int:
    from .gen2.repository import import_gen2

    report = import_gen2(
        args.gen2_root,
        args.new_root,
        mapper=args.mapper,
        transfer=args.transfer,
        calib_root=args.calib,
        registry=args.registry,
    )
    echo(report)
    return 0 if report.ok else 1


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("butler")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The ``butler`` command line: every subcommand and option, each with its help."""
    parser = argparse.ArgumentParser(
        prog="butler",
        description="Create, query and check Butler repositories.",
    )
    parser.add_argument(
        "--version", action="version", version=f"butler {_version()}", help="print the version"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    create = command(commands, "create", "create a repository")
    add_root(create, "the repository folder (created if needed)")
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

    types = command(commands, "dataset-types", "list the dataset types and their templates")
    add_root(types)
    types.add_argument("--counts", action="store_true", help="also count stored datasets of each")
    types.set_defaults(run=_dataset_types)

    add_query_commands(commands)  # query and remove, with --where (issue 18)
    add_skymap_commands(commands)  # skymap, with --find (issue 17)
    add_move_commands(commands)  # export, import, transfer (issue 18)
    add_remote_commands(commands)  # serve, token create (issue 16)

    uri = command(commands, "uri", "print where a dataset is (or would be) stored")
    add_root(uri)
    add_dataset_type(uri)
    add_data_id(uri, "the dataset's data ID (partial if one stored dataset matches)", required=True)
    uri.set_defaults(run=_uri)

    runs = command(
        commands, "runs", "list the runs that wrote a repository: versions and dataset counts"
    )
    add_root(runs)
    runs.set_defaults(run=_runs)

    index = command(commands, "index", "register files already in the repository folder")
    add_root(index)
    index.add_argument(
        "dataset_types",
        nargs="*",
        metavar="DATASET_TYPE",
        help="only files of these dataset types (default: all)",
    )
    index.set_defaults(run=_index)

    verify = command(commands, "verify", "check that every record has its file")
    add_root(verify)
    verify.add_argument("--read", action="store_true", help="also read every file (slow)")
    verify.add_argument(
        "--repair",
        action="store_true",
        help="finish interrupted operations and delete temporaries of writers that are gone",
    )
    verify.set_defaults(run=_verify)

    ingest = command(
        commands, "ingest", "ingest raw files: translate their headers, place and record them"
    )
    add_root(ingest)
    ingest.add_argument("files", nargs="+", metavar="FILE", help="raw files to ingest")
    ingest.add_argument(
        "--transfer",
        type=_transfer,
        default="copy",
        choices=["copy", "move", "link", "symlink", None],
        metavar="{copy,move,link,symlink,none}",
        help="how a file gets to its templated path (default: copy; none: it stays put, "
        "and must already be inside ROOT)",
    )
    ingest.add_argument(
        "--dataset-type",
        default="raw",
        metavar="NAME",
        help="the dataset type to ingest as; its policy's `ingest` clause reads each file's "
        "data ID (default: raw)",
    )
    ingest.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="processes that read and convert headers (default: 1); files are placed and "
        "recorded in order by one",
    )
    ingest.set_defaults(run=_ingest)

    gen2 = command(
        commands, "import-gen2", "record a Gen2 repository's raw and calibration registries"
    )
    gen2.add_argument("gen2_root", metavar="GEN2_ROOT", help="the Gen2 repository (with _mapper)")
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
            args.data_id,
            args.valid_from,
            args.valid_to,
            supersede=args.supersede,
            source=args.source,
        )
        echo(f"certified {certification.describe()}")
    return 0


def _decertify(args: argparse.Namespace) -> int:
    with _open(args.root, writeable=True) as butler:
        closed = butler.decertify(args.dataset_type, args.data_id, args.valid_from, args.valid_to)
        for certification in closed:
            echo(f"closed {certification.describe()}")
    return 0


def _calibs(args: argparse.Namespace) -> int:
    from .calibrations import plot_timeline, timeline

    with _open(args.root) as butler:
        history = butler.calibration_history(
            args.dataset_type,
            args.data_id or None,
            as_of=args.as_of,
            include_closed=not args.current,
        )
        echo(timeline(history))
        if args.plot:
            plot_timeline(history, args.plot, title=f"{args.dataset_type} certifications")
            echo(f"wrote {args.plot}")
    return 0 if history else 1


def _ingest_curated(args: argparse.Namespace) -> int:
    from .gen2.curated import ingest_curated

    with _open(args.root, writeable=True) as butler:
        report = ingest_curated(butler, args.directory, dataset_types=args.dataset_types or None)
        echo(report)
    return 0


def _calibration_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    certify = command(commands, "certify", "certify a stored calibration for a valid-time range")
    add_root(certify)
    add_dataset_type(certify)
    add_data_id(certify, "the calibration's keys", required=True)
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

    decertify = command(
        commands, "decertify", "close a calibration's certifications (history is kept)"
    )
    add_root(decertify)
    add_dataset_type(decertify)
    add_data_id(decertify, "the calibration's keys", required=True)
    decertify.add_argument("--from", dest="valid_from", metavar="TIME", help="only from TIME")
    decertify.add_argument("--to", dest="valid_to", metavar="TIME", help="only until TIME")
    decertify.set_defaults(run=_decertify)

    calibs = command(
        commands, "calibs", "the certification timeline of a calibration type, per match key"
    )
    add_root(calibs)
    add_dataset_type(calibs)
    add_data_id(calibs, "match keys to show (none: all)")
    calibs.add_argument("--as-of", metavar="TIME", help="as the registry stood then (UTC)")
    calibs.add_argument("--current", action="store_true", help="hide closed certifications")
    calibs.add_argument(
        "--plot",
        metavar="PNG",
        help="also draw the timeline (needs matplotlib: `pip install -e '.[plot]'` in a checkout)",
    )
    calibs.set_defaults(run=_calibs)

    curated = command(
        commands,
        "ingest-curated",
        "ingest and certify curated calibrations laid out like obs_*_data",
    )
    add_root(curated)
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
    """Run one ``butler`` command; its exit status (see the module docstring)."""
    try:
        status = _run(build_parser().parse_args(argv))
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except BrokenPipeError:
        _discard_output()
        return BROKEN_PIPE
    return status


def _run(args: argparse.Namespace) -> int:
    try:
        status: int = args.run(args)
    except DatasetNotFoundError as error:
        echo(f"butler {args.command}: {error}", file=sys.stderr)
        return 1
    except ButlerError as error:
        echo(f"butler {args.command}: {error}", file=sys.stderr)
        return 2
    return status


def _discard_output() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # not a real file (a test's capture): nothing will be flushed to a pipe


if __name__ == "__main__":
    sys.exit(main())
