"""Command-line forms of issue 6: chains, overrides, explain and version selection.

butler [--config KEY=VALUE ...] COMMAND ...     session overrides (after $BUTLER_CONFIG)
butler create ROOT --mapper M --parent P [--parent P2 ...]
butler explain ROOT DATASET_TYPE KEY=VALUE ...
butler register-dataset-type ROOT NAME --template T --format F --keys a,b [--doc D]
butler select --version 'butler>=0.2' ROOT ...
"""

from __future__ import annotations

import argparse
import contextvars
import os
import shlex
from collections.abc import Callable
from typing import Any

from ._cli_common import add_data_id, add_dataset_type, add_root, command, echo
from .overrides import ENVIRONMENT_VARIABLE, Override, parse_items

__all__ = ["add_commands", "session_config"]

_SESSION: contextvars.ContextVar[list[Override] | None] = contextvars.ContextVar(
    "butler_cli_config", default=None
)


def session_config() -> list[Override] | None:
    """The overrides of the running command: $BUTLER_CONFIG then ``--config`` (None: neither)."""
    return _SESSION.get()


def _with_session(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def wrapped(args: argparse.Namespace) -> int:
        items = getattr(args, "config_items", None)
        if not items:
            return run(args)
        env = shlex.split(os.environ.get(ENVIRONMENT_VARIABLE, ""))
        overrides = parse_items(env, f"${ENVIRONMENT_VARIABLE}") + parse_items(items, "--config")
        token = _SESSION.set(overrides)
        try:
            return run(args)
        finally:
            _SESSION.reset(token)

    return wrapped


def _explain(args: argparse.Namespace) -> int:
    from .butler import Butler

    with Butler(args.root, writeable=False, config=session_config()) as butler:
        # strict: a data ID that cannot be resolved is an error (exit 1 or 2), not a text
        echo(butler.explain(args.dataset_type, args.data_id, strict=True))
    return 0


def _register(args: argparse.Namespace) -> int:
    from .butler import Butler

    with Butler(args.root, config=session_config()) as butler:
        if args.text is not None:
            with open(args.text, encoding="utf-8") as stream:
                butler.register_dataset_type(text=stream.read())
        else:
            butler.register_dataset_type(
                args.name, template=args.template, format=args.format, keys=args.keys, doc=args.doc
            )
        echo(f"registered in {butler.root}; dataset types: {len(butler.dataset_types)}")
    return 0


def _select(args: argparse.Namespace) -> int:
    from .provenance import select_repository

    echo(select_repository(args.roots, args.version))
    return 0


def add_commands(parser: argparse.ArgumentParser, commands: Any) -> None:
    """Add ``--config``, ``create --parent``, ``explain``, ``register-dataset-type``, ``select``."""
    parser.add_argument(
        "--config",
        dest="config_items",
        action="append",
        metavar="KEY=VALUE",
        help="override a policy setting for this command, e.g. datasets.calexp.format=hdf5 "
        f"(repeatable; applied after ${ENVIRONMENT_VARIABLE})",
    )
    create = commands.choices["create"]
    create.add_argument(
        "--parent",
        dest="parents",
        action="append",
        metavar="ROOT",
        help="a repository read after this one (repeatable; searched in order)",
    )

    explain = command(
        commands, "explain", "how a data ID is normalized, its path, overrides, and who has it"
    )
    add_root(explain)
    add_dataset_type(explain)
    add_data_id(explain, "the data ID to explain (partial is fine)")
    explain.set_defaults(run=_explain)

    register = command(
        commands, "register-dataset-type", "define an output dataset type in a repository"
    )
    add_root(register)
    register.add_argument(
        "name", metavar="NAME", nargs="?", help="the new dataset type's name (not with --text)"
    )
    register.add_argument(
        "--template",
        metavar="TEMPLATE",
        help="its path template, e.g. 'myCat/{tract}/{patch}.fits'",
    )
    register.add_argument("--format", metavar="FORMAT", help="a format of the policy, e.g. fits")
    register.add_argument(
        "--keys", default="", metavar="KEY,KEY", help="the keys of its data IDs, comma-separated"
    )
    register.add_argument("--doc", default="", metavar="TEXT", help="what the dataset type holds")
    register.add_argument(
        "--text", metavar="FILE", help="definitions in the policy language, instead of the above"
    )
    register.set_defaults(run=_register)

    select = command(
        commands, "select", "print the repository created by the software version asked for"
    )
    select.add_argument("roots", nargs="+", metavar="ROOT", help="the candidate repositories")
    select.add_argument(
        "--version", required=True, metavar="REQUIREMENT", help="e.g. 'butler>=0.2,<0.4'"
    )
    select.set_defaults(run=_select)

    for sub in commands.choices.values():
        run = sub.get_default("run")
        if run is not None:
            sub.set_defaults(run=_with_session(run))
