"""``butler export``, ``butler import`` and ``butler transfer``: move datasets (issue 18).

    butler export ROOT OUT [--dataset-type NAME ...] [--where EXPR] [--bind NAME=VALUE ...]
    butler import ROOT BUNDLE [--skip-existing] [--overwrite] [--batch-size N]
    butler transfer SRC DST [DATASET_TYPE ...] [--where EXPR] [--bind NAME=VALUE ...]
                    [--transfer copy|link|move] [--skip-existing] [--overwrite] [--batch-size N]

Each shows a progress bar on a terminal and ends with a summary line (how many were
exported/imported/transferred, skipped, in conflict, failed), then one line per
conflict or failure on stderr. Exit status 0 only when everything went; 1 when
anything conflicted or failed. See docs/transfer.md.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._cli_common import add_root, command, echo
from ._cli_query import add_where, binds
from .moving import BATCH_SIZE, MoveReport
from .transfer import MODES

__all__ = ["add_commands"]


def _open(root: str, *, writeable: bool) -> Any:
    from ._cli_chain import session_config
    from .butler import Butler

    # parents=False: only a repository's own datasets move, never a parent's
    return Butler(root, writeable=writeable, parents=False, config=session_config())


def _finish(command_name: str, report: MoveReport) -> int:
    echo(report.summary())
    for line in report.conflicts:
        echo(f"butler {command_name}: conflict: {line}", file=sys.stderr)
    for line in report.failed:
        echo(f"butler {command_name}: failed: {line}", file=sys.stderr)
    return 0 if report.ok else 1


def _export(args: argparse.Namespace) -> int:
    from .bundle import export_datasets

    with _open(args.root, writeable=False) as butler:
        report = export_datasets(
            butler,
            args.out,
            args.dataset_types or None,
            where=args.where,
            bind=binds(args.bind),
            show_progress=True,
        )
    return _finish("export", report)


def _import(args: argparse.Namespace) -> int:
    from .bundle import import_bundle

    with _open(args.root, writeable=True) as butler:
        report = import_bundle(
            butler,
            args.bundle,
            skip_existing=args.skip_existing,
            overwrite=args.overwrite,
            batch_size=args.batch_size,
            show_progress=True,
        )
    return _finish("import", report)


def _transfer(args: argparse.Namespace) -> int:
    from .transfer import transfer

    with (
        _open(args.source, writeable=args.transfer == "move") as source,
        _open(args.destination, writeable=True) as destination,
    ):
        report = transfer(
            source,
            destination,
            args.dataset_types or None,
            where=args.where,
            bind=binds(args.bind),
            mode=args.transfer,
            skip_existing=args.skip_existing,
            overwrite=args.overwrite,
            batch_size=args.batch_size,
            show_progress=True,
        )
    return _finish("transfer", report)


def _add_receiving(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--skip-existing",
        action="store_true",
        help="skip datasets already stored with the same content (rerun after an interruption)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a dataset stored with other content for the same data ID (a conflict, "
        "otherwise reported and left as it is)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=BATCH_SIZE,
        metavar="N",
        help=f"datasets per registry transaction and per fsync of their files "
        f"(default {BATCH_SIZE})",
    )


def add_commands(commands: Any) -> None:
    """Add ``export``, ``import`` and ``transfer`` to the ``butler`` command line."""
    export = command(
        commands, "export", "write selected datasets as a bundle (a folder, or a .zip) to import"
    )
    add_root(export)
    export.add_argument(
        "out", metavar="OUT", help="the bundle to write: a new folder, or a file ending in .zip"
    )
    export.add_argument(
        "--dataset-type",
        dest="dataset_types",
        action="append",
        metavar="NAME",
        help="a dataset type to export (repeatable; default: every one with datasets)",
    )
    add_where(export)
    export.set_defaults(run=_export)

    imported = command(
        commands, "import", "import a bundle written by `butler export`, keeping ids and runs"
    )
    add_root(imported)
    imported.add_argument("bundle", metavar="BUNDLE", help="the bundle folder or .zip file")
    _add_receiving(imported)
    imported.set_defaults(run=_import)

    moved = command(
        commands,
        "transfer",
        "copy, link or move datasets between two repositories of the same instrument",
    )
    moved.add_argument("source", metavar="SRC", help="the repository the datasets come from")
    moved.add_argument("destination", metavar="DST", help="the repository they go to")
    moved.add_argument(
        "dataset_types",
        nargs="*",
        metavar="DATASET_TYPE",
        help="the dataset types to transfer (default: every one SRC has datasets of)",
    )
    add_where(moved)
    moved.add_argument(
        "--transfer",
        choices=MODES,
        default="copy",
        help="copy the files (the default), hard-link them (a copy across file systems), or "
        "move them (SRC's datasets are removed once DST has committed them)",
    )
    _add_receiving(moved)
    moved.set_defaults(run=_transfer)
