"""`butlerc` as build systems and people run it: real subprocesses, real files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BUTLERC = str(Path(sys.executable).with_name("butlerc"))
FIXTURES = Path(__file__).parent / "fixtures"

GOOD = """\
instrument Cam "A small camera" {
    key visit: int in 0..999_999 doc "The visit"
    key filter: str one of "g" "r"
    format fits { formatter fits extensions ".fits" hdus }
    dataset raw {
        doc "Raw data"
        template "raw/{filter}/{visit:06d}.fits"
        format fits
        keys visit, filter
    }
}
"""


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BUTLERC, *args], cwd=cwd, capture_output=True, text=True, check=False)


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "cam.butler"
    path.write_text(GOOD, encoding="utf-8")
    return path


def test_compile_writes_module_and_reports_success(policy: Path, tmp_path: Path) -> None:
    done = run("compile", policy.name, "-o", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    module = tmp_path / "out" / "cam.py"
    assert module.is_file()
    assert "import lark" not in module.read_text() and "jinja2" not in module.read_text()


def test_compile_is_incremental(policy: Path, tmp_path: Path) -> None:
    assert run("compile", policy.name, "-o", "out", cwd=tmp_path).returncode == 0
    module = tmp_path / "out" / "cam.py"
    first = module.stat().st_mtime_ns
    again = run("compile", policy.name, "-o", "out", "-v", cwd=tmp_path)
    assert again.returncode == 0
    assert "up to date" in again.stderr
    assert module.stat().st_mtime_ns == first
    policy.write_text(GOOD.replace("Raw data", "Raw frames"), encoding="utf-8")
    changed = run("compile", policy.name, "-o", "out", cwd=tmp_path)
    assert changed.returncode == 0
    assert "Raw frames" in module.read_text()


def test_compile_is_deterministic(policy: Path, tmp_path: Path) -> None:
    run("compile", policy.name, "-o", "a", cwd=tmp_path)
    run("compile", policy.name, "-o", "b", "--force", cwd=tmp_path)
    assert (tmp_path / "a" / "cam.py").read_bytes() == (tmp_path / "b" / "cam.py").read_bytes()


def test_errors_exit_1_with_located_diagnostics(tmp_path: Path) -> None:
    bad = tmp_path / "bad.butler"
    bad.write_text(GOOD.replace("{visit:06d}", "{vist:06d}"), encoding="utf-8")
    done = run("check", bad.name, cwd=tmp_path)
    assert done.returncode == 1
    assert "bad.butler:7:" in done.stdout and "error[BC002]" in done.stdout
    assert "did you mean 'visit'?" in done.stdout
    assert not (tmp_path / "out").exists()


def test_json_diagnostics_for_tools(tmp_path: Path) -> None:
    bad = tmp_path / "bad.butler"
    bad.write_text(GOOD.replace("format fits\n", "format fitz\n"), encoding="utf-8")
    done = run("check", "--format", "json", bad.name, cwd=tmp_path)
    assert done.returncode == 1
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert records[0]["code"] == "BC003"
    assert records[0]["span"]["file"] == "bad.butler"
    assert records[0]["span"]["line"] == 8


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run("compile", cwd=tmp_path).returncode == 2
    assert run("frobnicate", cwd=tmp_path).returncode == 2
    assert run("explain", "BC999", cwd=tmp_path).returncode == 2


def test_explain_prints_the_long_text(tmp_path: Path) -> None:
    done = run("explain", "bc004", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.startswith("BC004")


def test_emit_ir_writes_schema_valid_json(policy: Path, tmp_path: Path) -> None:
    from butlerc.ir import validate

    assert run("compile", policy.name, "-o", "ir", "--emit", "ir", cwd=tmp_path).returncode == 0
    ir = json.loads((tmp_path / "ir" / "cam.ir.json").read_text())
    validate(ir)
    assert ir["instrument"]["name"] == "Cam"


def test_check_counts_warnings_in_words(tmp_path: Path) -> None:
    one = tmp_path / "one.butler"
    one.write_text(GOOD.replace('"raw/{filter}', '"raw/{filter}/x/{visit:07d}'), encoding="utf-8")
    done = run("check", one.name, cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines()[-2:] == ["1 warning", "one.butler: ok (1 warning, 0 allowed)"]


def test_check_quiet_prints_only_diagnostics(policy: Path, tmp_path: Path) -> None:
    done = run("check", "-q", policy.name, cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_warn_and_allow_select_codes(tmp_path: Path) -> None:
    shared = tmp_path / "shared.butler"
    shared.write_text(
        GOOD.replace(
            "keys visit, filter\n", "keys visit, filter\n        shares path with copy\n"
        ).replace(
            "    dataset raw {",
            '    dataset copy { template "raw/{filter}/{visit:06d}.fits"'
            " format fits keys visit, filter }\n    dataset raw {",
        ),
        encoding="utf-8",
    )
    quiet = run("check", shared.name, cwd=tmp_path)
    assert quiet.returncode == 0 and "BC103" not in quiet.stdout, quiet.stdout
    assert "ok (0 warnings, 1 allowed)" in quiet.stdout
    warned = run("check", "--warn", "BC103", shared.name, cwd=tmp_path)
    assert "warning[BC103]" in warned.stdout and "ok (1 warning, 0 allowed)" in warned.stdout
    listed = run("check", "--show-allowed", shared.name, cwd=tmp_path)
    assert "allowed: " in listed.stdout and "--warn BC103 reports it" in listed.stdout
    allowed = run("check", "--warn", "BC103", "--allow", "BC103", shared.name, cwd=tmp_path)
    assert allowed.returncode == 2 and "both" in allowed.stderr
    for wrong in ("BC006", "BC1O3"):
        done = run("check", "--allow", wrong, shared.name, cwd=tmp_path)
        assert done.returncode == 2 and wrong in done.stderr, done.stderr


def test_show_allowed_names_the_policy_allowance(tmp_path: Path) -> None:
    policies = Path(__file__).parent.parent / "policies"
    done = run("check", "--show-allowed", str(policies / "hsc.butler"), cwd=tmp_path)
    assert done.returncode == 0
    plot = [line for line in done.stdout.splitlines() if "'plotSky'" in line]
    assert len(plot) == 1 and "[allowed at " in plot[0] and "Gen2 layout" in plot[0], plot


def test_bundled_policies_check_without_errors(tmp_path: Path) -> None:
    policies = Path(__file__).parent.parent / "policies"
    for policy in sorted(policies.glob("*.butler")):
        shutil.copy(policy, tmp_path)
    for extra in policies.glob("*.csv"):
        shutil.copy(extra, tmp_path)
    names = sorted(p.name for p in tmp_path.glob("*.butler"))
    assert names, "no bundled policies"
    done = run("check", *names, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning[" not in done.stdout
    assert run("check", "--quiet", *names, cwd=tmp_path).stdout == ""
    formatted = run("fmt", "--check", *names, cwd=tmp_path)
    assert formatted.returncode == 0, formatted.stdout
