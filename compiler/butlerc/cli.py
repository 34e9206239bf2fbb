"""``butlerc``: the policy compiler's command line.

    butlerc compile POLICY... -o OUTDIR      write OUTDIR/<instrument>.py (only what changed)
    butlerc check POLICY...                  report diagnostics; write nothing
    butlerc fmt [--check] POLICY...          canonical formatting
    butlerc explain CODE                     the long explanation of a diagnostic code
    butlerc parse POLICY                     print the parse tree (the first stage)
    butlerc import-gen2 MAPPER.yaml [--base B.yaml ...] [-o OUT.butler]
                                             convert a Gen2 mapper policy (notes on stderr)

Exit status: 0 success, 1 diagnostics (errors, or files ``fmt --check`` would change),
2 usage errors. ``--format json`` prints diagnostics as JSON lines for tools.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from . import __version__
from .codes import CODES, explain
from .diagnostics import to_json
from .driver import CompileResult, check_policy, compile_policy
from .ir import dumps
from .resolve import sha256_text

__all__ = ["main"]

MANIFEST = ".butlerc-manifest.json"


def _emit_diagnostics(result: CompileResult, form: str, stream: TextIO) -> None:
    if form == "json":
        for diagnostic in result.diagnostics:
            stream.write(json.dumps(to_json(diagnostic), sort_keys=True) + "\n")
    elif result.diagnostics:
        stream.write(result.report() + "\n")


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _read_manifest(outdir: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads((outdir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _up_to_date(entry: dict[str, object] | None, outdir: Path, emit: str) -> bool:
    """Whether a policy's recorded inputs are unchanged and its outputs still exist."""
    if not entry or entry.get("compiler") != __version__ or entry.get("emit") != emit:
        return False
    inputs = entry.get("inputs")
    outputs = entry.get("outputs")
    if not isinstance(inputs, dict) or not isinstance(outputs, list):
        return False
    for file, sha in inputs.items():
        try:
            if sha256_text(Path(file).read_text(encoding="utf-8")) != sha:
                return False
        except (OSError, UnicodeDecodeError):
            return False
    return all((outdir / str(name)).is_file() for name in outputs)


def _compile(args: argparse.Namespace) -> int:
    outdir: Path = args.output
    manifest = _read_manifest(outdir)
    status = 0
    for policy in args.policies:
        key = Path(policy).resolve().as_posix()
        if not args.force and _up_to_date(manifest.get(key), outdir, args.emit):
            if args.verbose:
                print(f"{policy}: up to date", file=sys.stderr)
            continue
        result = compile_policy(policy, emit="ir" if args.emit == "ir" else "module")
        _emit_diagnostics(result, args.format, sys.stderr)
        if not result.ok:
            status = 1
            manifest.pop(key, None)
            continue
        outputs = []
        if args.emit == "ir":
            for name, ir in result.irs.items():
                _write_atomic(outdir / f"{name}.ir.json", dumps(ir))
                outputs.append(f"{name}.ir.json")
        else:
            for name, source in result.modules.items():
                target = outdir / f"{name}.py"
                if not target.is_file() or target.read_text(encoding="utf-8") != source:
                    _write_atomic(target, source)
                outputs.append(f"{name}.py")
        if args.verbose or args.format == "text":
            for output in outputs:
                print(f"{policy}: wrote {outdir / output}", file=sys.stderr)
        manifest[key] = {
            "compiler": __version__,
            "emit": args.emit,
            "inputs": {Path(i.file).resolve().as_posix(): i.sha256 for i in result.inputs},
            "outputs": outputs,
        }
    _write_atomic(outdir / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return status


def _check(args: argparse.Namespace) -> int:
    status = 0
    for policy in args.policies:
        result = check_policy(policy)
        _emit_diagnostics(result, args.format, sys.stdout)
        if not result.ok:
            status = 1
        elif args.format == "text":
            print(f"{policy}: ok ({len(result.warnings)} warnings)")
    return status


def _fmt(args: argparse.Namespace) -> int:
    from .fmt import format_policy

    status = 0
    for policy in args.policies:
        path = Path(policy)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            print(f"butlerc fmt: cannot read {policy}: {error}", file=sys.stderr)
            status = 1
            continue
        formatted, diagnostics = format_policy(text, policy)
        if formatted is None:
            result = CompileResult(policy, tuple(diagnostics), {policy: text})
            _emit_diagnostics(result, args.format, sys.stderr)
            status = 1
            continue
        if formatted == text:
            continue
        if args.check:
            print(f"{policy}: would be reformatted")
            status = 1
        else:
            _write_atomic(path, formatted)
            print(f"{policy}: reformatted")
    return status


def _explain(args: argparse.Namespace) -> int:
    code = args.code.upper()
    if code not in CODES:
        print(
            f"butlerc explain: no diagnostic code '{args.code}'; codes are {', '.join(CODES)}",
            file=sys.stderr,
        )
        return 2
    print(explain(code), end="")
    return 0


def _parse(args: argparse.Namespace) -> int:
    from .parse import parse

    path = Path(args.policy)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        print(f"butlerc parse: cannot read {args.policy}: {error}", file=sys.stderr)
        return 1
    tree, diagnostics = parse(text, args.policy)
    if tree is None:
        _emit_diagnostics(
            CompileResult(args.policy, tuple(diagnostics), {args.policy: text}), "text", sys.stderr
        )
        return 1
    print(tree.pretty(), end="")
    return 0


def _import_gen2(args: argparse.Namespace) -> int:
    from .gen2 import convert

    try:
        conversion = convert(args.mapper, args.base, name=args.name)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        print(f"butlerc import-gen2: {error}", file=sys.stderr)
        return 1
    for note in conversion.notes:
        print(f"warning: {note}", file=sys.stderr)
    if args.output is None:
        sys.stdout.write(conversion.text)
    else:
        _write_atomic(args.output, conversion.text)
        print(f"{args.mapper}: wrote {args.output}", file=sys.stderr)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="butlerc",
        description="Check Butler policies and compile them into mapper modules.",
    )
    parser.add_argument("--version", action="version", version=f"butlerc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def diagnostics_format(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--format",
            choices=("text", "json"),
            default="text",
            help="how diagnostics are printed: text for people, json (one per line) for tools",
        )

    compile_ = commands.add_parser(
        "compile", help="check policies and write one mapper module per instrument"
    )
    compile_.add_argument("policies", nargs="+", metavar="POLICY")
    compile_.add_argument("-o", "--output", type=Path, required=True, metavar="OUTDIR")
    compile_.add_argument(
        "--emit",
        choices=("module", "ir"),
        default="module",
        help="what to write: the Python module (default) or the IR as JSON",
    )
    compile_.add_argument("--force", action="store_true", help="recompile even if nothing changed")
    compile_.add_argument("-v", "--verbose", action="store_true")
    diagnostics_format(compile_)
    compile_.set_defaults(run=_compile)

    check = commands.add_parser("check", help="report diagnostics without writing anything")
    check.add_argument("policies", nargs="+", metavar="POLICY")
    diagnostics_format(check)
    check.set_defaults(run=_check)

    fmt = commands.add_parser("fmt", help="rewrite policies in canonical form")
    fmt.add_argument("policies", nargs="+", metavar="POLICY")
    fmt.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if any file would change"
    )
    diagnostics_format(fmt)
    fmt.set_defaults(run=_fmt)

    explain_ = commands.add_parser("explain", help="explain a diagnostic code, e.g. BC004")
    explain_.add_argument("code", metavar="CODE")
    explain_.set_defaults(run=_explain)

    parse_ = commands.add_parser("parse", help="print a policy's parse tree")
    parse_.add_argument("policy", metavar="POLICY")
    parse_.set_defaults(run=_parse)

    gen2 = commands.add_parser(
        "import-gen2", help="convert a Gen2 mapper policy (YAML) into the policy language"
    )
    gen2.add_argument("mapper", metavar="MAPPER.yaml")
    gen2.add_argument(
        "--base",
        action="append",
        default=[],
        metavar="BASE.yaml",
        help="a policy the mapper is stacked over (repeat; earlier files win, as in Gen2)",
    )
    gen2.add_argument("--name", help="the instrument's name (default: from the file name)")
    gen2.add_argument("-o", "--output", type=Path, metavar="OUT.butler")
    gen2.set_defaults(run=_import_gen2)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
