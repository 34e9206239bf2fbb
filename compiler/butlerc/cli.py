"""``butlerc``: the policy compiler's command line.

    butlerc compile POLICY... -o OUTDIR      write OUTDIR/<instrument>.py (only what changed)
    butlerc check [-q] [--warn CODE] [--allow CODE] [--show-allowed] POLICY...
                                             report diagnostics; write nothing
    butlerc fmt [--check] POLICY...          canonical formatting
    butlerc explain CODE                     the long explanation of a diagnostic code
    butlerc parse POLICY                     print the parse tree (the first stage)
    butlerc import-gen2 MAPPER.yaml [--base B.yaml ...] [-o OUT.butler]
                                             convert a Gen2 mapper policy (notes on stderr)

Exit status: 0 success, 1 diagnostics (errors, files ``fmt --check`` would change, or an
``import-gen2`` output that does not check), 2 usage errors. ``--format json`` prints
diagnostics as JSON lines for tools.
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
from .levels import Selection, SelectionError
from .resolve import sha256_text

__all__ = ["main"]

MANIFEST = ".butlerc-manifest.json"


def _emit_diagnostics(result: CompileResult, form: str, stream: TextIO) -> None:
    if form == "json":
        for diagnostic in result.diagnostics:
            stream.write(json.dumps(to_json(diagnostic), sort_keys=True) + "\n")
    elif result.diagnostics:
        stream.write(result.report() + "\n")


def plural(count: int, noun: str) -> str:
    """``1 warning``, ``2 warnings``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _selection(args: argparse.Namespace) -> Selection | None:
    """The ``--warn``/``--allow`` codes, or ``None`` after printing what is wrong."""
    try:
        return Selection.parse(args.warn, args.allow)
    except SelectionError as error:
        print(f"butlerc {args.command}: {error}", file=sys.stderr)
        return None


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
    selection = _selection(args)
    if selection is None:
        return 2
    outdir: Path = args.output
    manifest = _read_manifest(outdir)
    status = 0
    for policy in args.policies:
        key = Path(policy).resolve().as_posix()
        if not args.force and _up_to_date(manifest.get(key), outdir, args.emit):
            if args.verbose:
                print(f"{policy}: up to date", file=sys.stderr)
            continue
        result = compile_policy(
            policy, emit="ir" if args.emit == "ir" else "module", selection=selection
        )
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
    selection = _selection(args)
    if selection is None:
        return 2
    status = 0
    for policy in args.policies:
        result = check_policy(policy, selection=selection)
        _emit_diagnostics(result, args.format, sys.stdout)
        if args.show_allowed:
            _show_allowed(result, args.format)
        if not result.ok:
            status = 1
        elif args.format == "text" and not args.quiet:
            found = plural(len(result.warnings), "warning")
            print(f"{policy}: ok ({found}, {len(result.allowed)} allowed)")
    return status


def _show_allowed(result: CompileResult, form: str) -> None:
    """One line per warning not reported, with what allowed it."""
    for allowed in result.allowed:
        if form == "json":
            entry = to_json(allowed.diagnostic)
            entry["allowed"] = {
                "reason": allowed.reason,
                "by": None if allowed.by is None else str(allowed.by),
            }
            print(json.dumps(entry, sort_keys=True))
        else:
            print(f"allowed: {allowed}")


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
        conversion = convert(args.mapper, args.base, name=args.name, output=args.output)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        print(f"butlerc import-gen2: {error}", file=sys.stderr)
        return 1
    for note in conversion.notes:
        print(f"warning: {note}", file=sys.stderr)
    for problem in conversion.errors:
        print(f"{problem.file}: {problem.message}", file=sys.stderr)
    if args.output is None:
        sys.stdout.write(conversion.text)
    else:
        _write_atomic(args.output, conversion.text)
        print(f"{args.mapper}: wrote {args.output}", file=sys.stderr)
    if not conversion.ok:
        where = args.output if args.output is not None else "the output"
        print(
            f"butlerc import-gen2: {where} does not check "
            f"({plural(len(conversion.errors), 'error')} above): edit it by hand, or pass the "
            "--base files the mapper was stacked over",
            file=sys.stderr,
        )
        return 1
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

    def warning_selection(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--warn",
            action="append",
            default=[],
            metavar="CODE",
            help="report warning CODE even where it is allowed by default (e.g. BC103; a "
            "policy's 'allow CODE' clause still wins); repeat or separate with commas",
        )
        sub.add_argument(
            "--allow",
            action="append",
            default=[],
            metavar="CODE",
            help="do not report warning CODE (errors cannot be allowed); repeat or separate "
            "with commas",
        )

    warning_selection(compile_)

    check = commands.add_parser(
        "check",
        help="report diagnostics without writing anything",
        description="Report the diagnostics of each policy; write nothing. Warnings that a "
        "policy allows ('allow CODE \"reason\"'), or that are allowed by default, are "
        "counted and listed with --show-allowed.",
    )
    check.add_argument("policies", nargs="+", metavar="POLICY", help="policy files (.butler)")
    check.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print diagnostics only, no line for a policy that checks clean",
    )
    warning_selection(check)
    check.add_argument(
        "--show-allowed",
        action="store_true",
        help="also list every warning not reported, with the allowance or option that allowed it",
    )
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
        "import-gen2",
        help="convert a Gen2 mapper policy (YAML) into the policy language",
        description="Convert a Gen2 mapper policy, stacked over the obs_base policies it "
        "extends, into one instrument block. Notes on what could not be said go to stderr; "
        "exit status 1 if the converted policy does not check. Example: butlerc import-gen2 "
        "HscMapper.yaml --base obs_base-exposures.yaml --base obs_base-datasets.yaml --base "
        "obs_base-ExposureMappingDefaults.yaml --base obs_base-ImageMappingDefaults.yaml "
        "--base obs_base-CalibrationMappingDefaults.yaml -o hsc.butler",
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
    try:
        status: int = args.run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`butlerc check ... | head`): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
