"""``butler serve`` and ``butler token create``: serving repositories over HTTP (issue 16).

    butler serve ROOT... [--host 127.0.0.1] [--port 8642] [--max-queries N] [--max-upload BYTES]
    butler token create ROOT --scope read|write [--label TEXT]

See docs/remote.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._cli_common import add_root, command, echo
from .errors import ButlerError
from .objectstore.location import is_s3_uri

__all__ = ["add_commands"]

DEFAULT_PORT = 8642


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from .remote.server import Limits, create_app, repository_names
    except ImportError as error:
        raise ButlerError(
            f"`butler serve` needs the server extra ({error.name} is not installed): "
            "pip install 'butler[server]'"
        ) from None
    named: dict[str, Path | str] = {}
    plain: list[Path | str] = []
    for given in args.roots:
        name, equals, root = given.partition("=")
        if equals and name and "/" not in name:
            named[name] = root if is_s3_uri(root) else Path(root).absolute()
        else:
            plain.append(given if is_s3_uri(given) else Path(given))
    for name, root in repository_names(plain).items():
        if name in named:
            raise ButlerError(f"two served repositories are named {name!r}")
        named[name] = root
    limits = Limits(
        upload_bytes=args.max_upload,
        streams=args.max_queries,
        signed_seconds=args.signed_url_seconds,
    )
    app = create_app(named, limits)
    for name, root in named.items():
        echo(f"serving {root} at http://{args.host}:{args.port}/repos/{name}")
    # uvicorn picks httptools and uvloop when installed (the server extra has both); the
    # access log, a line per request, only when asked for (--log-level info or debug)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=args.log_level in ("info", "debug"),
    )
    return 0


def _token_create(args: argparse.Namespace) -> int:
    from .remote.tokens import create_stored_token, create_token

    if is_s3_uri(args.root):  # the token file is an object of the repository
        from .butler import Butler

        with Butler(args.root) as butler:
            token = create_stored_token(butler.datastore, args.scope, args.label)
    else:
        token = create_token(Path(args.root).absolute(), args.scope, args.label)
    echo(token)  # shown once: only its hash is kept
    return 0


def add_commands(commands: Any) -> None:
    """Add ``serve`` and ``token create``."""
    serve = command(commands, "serve", "serve repositories over HTTP (docs/remote.md)")
    serve.add_argument(
        "roots",
        nargs="+",
        metavar="ROOT",
        help="a repository folder, served as /repos/<folder name>; NAME=ROOT names it",
    )
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="the port to listen on")
    serve.add_argument(
        "--max-queries",
        type=int,
        default=8,
        metavar="N",
        help="streamed queries answered at once; past that, 503 with Retry-After (default 8)",
    )
    serve.add_argument(
        "--max-upload",
        type=int,
        default=1 << 30,
        metavar="BYTES",
        help="the largest put (all its files together; default 1 GiB); JSON requests: 1 MiB",
    )
    serve.add_argument(
        "--signed-url-seconds",
        type=int,
        default=300,
        metavar="S",
        help="how long the signed URLs of object storage live (downloads, uploads; default 300)",
    )
    serve.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="how much the server logs (info: every request)",
    )
    serve.set_defaults(run=_serve)

    token = command(commands, "token", "make access tokens for a served repository")
    actions = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = command(actions, "create", "print a new token (shown once; only its hash is kept)")
    add_root(create)
    create.add_argument("--scope", choices=["read", "write"], required=True)
    create.add_argument("--label", default="", help="a note kept with the token's hash")
    create.set_defaults(run=_token_create)
