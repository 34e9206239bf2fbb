"""The ``butler`` command line as a user meets it: help, usage errors, messages, pipes, output."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import butlerc
import numpy as np
import pytest
from butler import Butler, Image
from butler.cli import BROKEN_PIPE, build_parser, main
from butler.errors import FormatError, MapperError

BUTLER = Path(sys.executable).parent / "butler"


@pytest.fixture
def toy(tmp_path: Path) -> Iterator[Butler]:
    with Butler.create(tmp_path / "toy", mapper="toycam") as butler:
        yield butler


def put_raw(butler: Butler, visit: int, run: str | None = None) -> None:
    pixels = Image(np.zeros((4, 4), np.float32), {})
    butler.put(
        pixels, "raw", visit=visit, detector=1, filter="r", obsTime="2026-03-01T04:02:00", run=run
    )


# ---- the parser --------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == "butler 0.1.0"


def test_butlerc_version(capsys: pytest.CaptureFixture[str]) -> None:
    from butlerc.cli import main as butlerc_main

    with pytest.raises(SystemExit) as exit_:
        butlerc_main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"butlerc {butlerc.__version__}"


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_command_has_a_description_and_every_argument_a_help_line() -> None:
    parser = build_parser()
    commands = subcommands(parser)
    assert {"create", "query", "runs", "register-dataset-type", "explain"} <= set(commands)
    undocumented = [
        f"{name} {action.metavar or '/'.join(action.option_strings) or action.dest}"
        for name, sub in [("butler", parser), *commands.items()]
        for action in sub._actions
        if not isinstance(action, argparse._SubParsersAction) and not (action.help or "").strip()
    ]
    assert undocumented == []
    assert [name for name, sub in commands.items() if not sub.description] == []


def test_a_data_id_item_without_a_value_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["query", "ROOT", "calexp", "visit"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert "usage: butler query" in error  # the command's usage, not the top level's
    assert "expected KEY=VALUE, got 'visit'" in error


def test_a_key_given_twice_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["uri", "ROOT", "calexp", "visit=1", "visit=2"])
    assert exit_.value.code == 2
    assert "visit given twice" in capsys.readouterr().err


# ---- messages in command-line terms -------------------------------------------------------


def test_an_unknown_mapper_lists_instruments_and_fails_before_compiling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an unknown instrument must not compile any policy")

    monkeypatch.setenv("BUTLER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(butlerc, "compile_policy", refuse)
    assert main(["create", str(tmp_path / "repo"), "--mapper", "hcs"]) == 2
    error = capsys.readouterr().err
    assert "the bundled instruments are DECam, HSC, imSim" in error
    assert "did you mean 'HSC'?" in error
    assert ".butler" not in error  # instrument names, not policy files
    assert not (tmp_path / "repo").exists()


def test_a_bundled_instrument_compiles_only_its_own_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled: list[str] = []
    compile_policy = butlerc.compile_policy

    def recording(path: Path) -> butlerc.CompileResult:
        compiled.append(Path(path).name)
        return compile_policy(path)

    monkeypatch.setenv("BUTLER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(butlerc, "compile_policy", recording)
    from butler import load_mapper

    assert load_mapper("toycam").name == "ToyCam"
    assert compiled == ["toycam.butler"]


def test_an_unknown_dataset_type_says_the_near_name_and_how_to_list_them(
    toy: Butler, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["query", str(toy.root), "calexpp"]) == 2
    error = capsys.readouterr().err
    assert "did you mean 'calexp'?" in error
    assert "`butler dataset-types ROOT`" in error
    assert "focusSweep" not in error  # not every name


def test_ingest_without_rules_says_what_a_command_line_user_can_do(
    toy: Butler, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "raw.fits"
    put_raw(toy, 1)
    raw.write_bytes(Path(toy.uri("raw", visit=1, detector=1)[len("file://") :]).read_bytes())
    assert main(["ingest", str(toy.root), str(raw)]) == 1  # no EXPNUM card: not a camera raw
    assert "its header has no EXPNUM card, which gives 'visit'" in capsys.readouterr().out
    assert main(["ingest", str(toy.root), "--dataset-type", "calexp", str(raw)]) == 2
    error = capsys.readouterr().err
    assert "dataset type 'calexp' of instrument 'ToyCam' has no ingest rules" in error
    assert "`ingest { KEY <- SOURCE ... }`" in error and "`butler index ROOT`" in error


def test_calibs_plot_says_how_to_install_the_plot_extra_in_a_checkout(
    toy: Butler, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # as where the extra is not installed: no matplotlib module, even one an earlier test loaded
    for name in [name for name in sys.modules if name.split(".")[0] == "matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    toy.put(Image(np.zeros((2, 2), np.float32), {}), "bias", calibDate="2026-03-01", detector=1)
    toy.certify("bias", {"calibDate": "2026-03-01", "detector": 1}, "2026-03-01")
    assert main(["calibs", str(toy.root), "bias", "--plot", str(tmp_path / "t.png")]) == 2
    error = capsys.readouterr().err
    assert "pip install -e '.[plot]'" in error
    assert "pip install 'butler[plot]'" in error


def test_a_corrupt_fits_file_names_the_dataset_the_file_and_verify(toy: Butler) -> None:
    put_raw(toy, 1)
    file = Path(toy.uri("raw", visit=1, detector=1)[len("file://") :])
    file.write_bytes(b"this is no longer a FITS file" * 100)
    with pytest.raises(FormatError) as raised:
        toy.get("raw", visit=1, detector=1)
    message = str(raised.value)
    assert "dataset 'raw'" in message and str(file) in message
    assert f"butler verify {toy.root} --read" in message
    assert "ignore_missing_simple" not in message


def test_mapper_errors_still_name_the_spec(tmp_path: Path) -> None:
    with pytest.raises(MapperError, match="cannot load mapper 'nosuchcam'"):
        Butler.create(tmp_path / "repo", mapper="nosuchcam")


# ---- output -------------------------------------------------------------------------------


def test_a_closed_pipe_ends_the_command_quietly(toy: Butler) -> None:
    # The reader goes away before the command writes: as `butler dataset-types ROOT | head`.
    process = subprocess.Popen(
        [str(BUTLER), "dataset-types", str(toy.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    error = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait() == BROKEN_PIPE == 141
    assert error == ""


def test_control_characters_in_data_id_values_are_escaped(
    toy: Butler, capsys: pytest.CaptureFixture[str]
) -> None:
    toy.register_dataset_type(
        text='key note: str\ndataset memo { template "memo/{note}.yaml" format yaml keys note }'
    )
    toy.put({"a": 1}, "memo", note="red\x1b[31mtext\x07")
    toy.put({"a": 2}, "memo", note="plain")
    root = str(toy.root)
    assert main(["query", root, "memo"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == ["{note: 'plain'}", "{note: 'red\\x1b[31mtext\\x07'}"]
    assert main(["query", root, "memo", "--values", "note"]) == 0
    assert "\x1b" not in capsys.readouterr().out
    for command in ("uri", "explain"):
        assert main([command, root, "memo", "note=red\x1b[31mtext\x07"]) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\x07" not in out


def test_runs_lists_each_run_with_its_versions_and_dataset_count(
    toy: Butler, capsys: pytest.CaptureFixture[str]
) -> None:
    put_raw(toy, 1, run="night-1")
    put_raw(toy, 2, run="night-1")
    put_raw(toy, 3, run="night-2")
    assert main(["runs", str(toy.root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("created by ") and "butler 0.1.0" in lines[0]
    rows = {line.split()[0]: line.split() for line in lines[3:]}
    assert set(rows) == {"night-1", "night-2"}
    assert rows["night-1"][2] == "2" and rows["night-2"][2] == "1"
    assert "butler" in rows["night-1"] and "0.1.0," in rows["night-1"]
