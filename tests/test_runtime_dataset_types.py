"""Dataset types defined at run time: checked like the policy, seen by every process.

Every test runs on SQLite and PostgreSQL. "Another process" is a real subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _repos import RegistryFactory, registries  # noqa: F401  (fixture)
from butler.butler import Butler
from butler.errors import ConflictError, DatasetTypeDefinitionError

MY_CAT = {"template": "mycat/{visit:06d}-{detector:02d}.yaml", "format": "yaml"}


@pytest.fixture
def repo(tmp_path: Path, registries: RegistryFactory) -> Path:  # noqa: F811
    root = tmp_path / "repo"
    Butler.create(root, mapper="toycam", registry=registries()).close()
    return root


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_registered_type_behaves_like_a_policy_one(repo: Path) -> None:
    with Butler(repo) as butler:
        butler.register_dataset_type("myCat", keys=["visit", "detector"], doc="mine", **MY_CAT)
        assert "myCat" in butler.dataset_types
        data_id = butler.put({"n": 1}, "myCat", visit=42, ccd=5).data_id  # ccd: alias
        assert butler.get("myCat", visit=42, detector=5) == {"n": 1}
        assert (repo / "mycat/000042-05.yaml").is_file()
        assert butler.mapper.parse("myCat", "mycat/000042-05.yaml") == data_id
        assert [d["visit"] for d in butler.query("myCat")] == [42]
        assert "defined at run time" in butler.explain("myCat", visit=42, detector=5)
        # the same definition again is a no-op
        butler.register_dataset_type("myCat", keys=["visit", "detector"], doc="mine", **MY_CAT)


def test_seen_by_a_second_process(repo: Path) -> None:
    with Butler(repo) as butler:
        butler.register_dataset_type("myCat", keys=["visit", "detector"], **MY_CAT)
        butler.put({"n": 7}, "myCat", visit=1, detector=2)
    result = _python(
        f"""
        import json
        from butler.butler import Butler
        with Butler({str(repo)!r}) as butler:
            value = butler.get("myCat", visit=1, detector=2)
            butler.put({{"n": 8}}, "myCat", visit=2, detector=2)
            print(json.dumps([value, butler.mapper.dataset_type("myCat").template]))
        """
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"n": 7}, MY_CAT["template"]]
    with Butler(repo) as butler:
        assert butler.get("myCat", visit=2, detector=2) == {"n": 8}


def test_an_open_butler_sees_a_type_another_process_registered(repo: Path) -> None:
    with Butler(repo) as butler:
        assert "myCat" not in butler.dataset_types
        result = _python(
            f"""
            from butler.butler import Butler
            with Butler({str(repo)!r}) as butler:
                butler.register_dataset_type(
                    "myCat", template={MY_CAT["template"]!r}, format="yaml",
                    keys=["visit", "detector"],
                )
                butler.put({{"n": 3}}, "myCat", visit=3, detector=3)
            """
        )
        assert result.returncode == 0, result.stderr
        assert butler.get("myCat", visit=3, detector=3) == {"n": 3}


def test_concurrent_registration_from_two_processes(repo: Path) -> None:
    """Two processes register at once: each succeeds, or gets a clear ConflictError."""
    script = """
        import sys
        from butler.butler import Butler
        from butler.errors import ConflictError
        name, template = sys.argv[1], sys.argv[2]
        with Butler({root!r}) as butler:
            try:
                butler.register_dataset_type(
                    name, template=template, format="yaml", keys=["visit", "detector"]
                )
                butler.register_dataset_type(
                    "shared", template="shared/" + template, format="yaml",
                    keys=["visit", "detector"],
                )
            except ConflictError as error:
                print("CONFLICT", error)
                sys.exit(3)
        print("OK")
    """
    code = textwrap.dedent(script.format(root=str(repo)))
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", code, name, f"{name}/{{visit:06d}}-{{detector:02d}}.yaml"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("catA", "catB")
    ]
    outcomes = []
    for job in jobs:
        out, err = job.communicate(timeout=300)
        assert job.returncode in (0, 3), err
        outcomes.append((job.returncode, out))
    # both define "catA"/"catB" fine; "shared" differs, so exactly one of them wins it
    assert sorted(code for code, _ in outcomes) == [0, 3]
    loser = next(out for code, out in outcomes if code == 3)
    assert "already registered" in loser and "'shared'" in loser
    with Butler(repo) as butler:
        assert {"catA", "catB", "shared"} <= set(butler.dataset_types)


def test_concurrent_identical_registration_both_succeed(repo: Path) -> None:
    code = textwrap.dedent(
        f"""
        from butler.butler import Butler
        with Butler({str(repo)!r}) as butler:
            butler.register_dataset_type(
                "same", template="same/{{visit:06d}}.yaml", format="yaml", keys=["visit"]
            )
        """
    )
    jobs = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for job in jobs:
        _, err = job.communicate(timeout=300)
        assert job.returncode == 0, err


def test_conflicting_definition_is_a_clear_error(repo: Path) -> None:
    with Butler(repo) as butler:
        butler.register_dataset_type("myCat", keys=["visit", "detector"], **MY_CAT)
        with pytest.raises(ConflictError, match=r"already registered .* different definition"):
            butler.register_dataset_type(
                "myCat", template="other/{visit:06d}.yaml", format="yaml", keys=["visit"]
            )


@pytest.mark.parametrize(
    ("kwargs", "code", "hint"),
    [
        ({"template": "x/{vist:06d}.yaml", "keys": ["visit"]}, "BC002", "did you mean 'visit'"),
        ({"template": "x/{filter:06d}.yaml", "keys": ["filter"]}, "BC004", None),
        (
            {"template": "focus/{visit:06d}/offset{focus:.2f}.yaml", "keys": ["visit", "focus"]},
            "BC006",
            "focusSweep",
        ),
        ({"template": "x/{visit:06d}.yaml", "keys": ["visit", "nokey"]}, "BC002", None),
    ],
)
def test_checked_by_the_compilers_rules(
    repo: Path, kwargs: dict[str, object], code: str, hint: str | None
) -> None:
    with Butler(repo) as butler, pytest.raises(DatasetTypeDefinitionError) as error:
        butler.register_dataset_type("bad", format="yaml", **kwargs)  # type: ignore[arg-type]
    assert f"error[{code}]" in str(error.value)
    assert "<dataset type bad>:" in str(error.value)
    if hint:
        assert hint in str(error.value)
    assert code in {d.code for d in error.value.diagnostics}  # type: ignore[attr-defined]
    with Butler(repo) as butler:
        assert "bad" not in butler.dataset_types


def test_name_of_a_policy_dataset_type_is_rejected(repo: Path) -> None:
    with Butler(repo) as butler, pytest.raises(DatasetTypeDefinitionError, match="BC009"):
        butler.register_dataset_type("calexp", template="c/{visit}.yaml", format="yaml")


def test_definitions_in_the_policy_language(repo: Path) -> None:
    text = """
    key tag: str matches r"[a-z0-9]+"
    format notes { formatter text extensions ".txt" python "str" }
    dataset runNote {
        doc "A note per tag."
        template "notes/{tag}.txt"
        format notes
        keys tag
    }
    """
    with Butler(repo) as butler:
        butler.register_dataset_type(text=text)
        butler.put("hello\n", "runNote", tag="abc")
    with Butler(repo) as butler:
        assert butler.get("runNote", tag="abc") == "hello\n"
        assert butler.mapper.keys("runNote") == {"tag": "str"}


def test_a_later_type_is_checked_against_earlier_runtime_types(repo: Path) -> None:
    with Butler(repo) as butler:
        butler.register_dataset_type("myCat", keys=["visit", "detector"], **MY_CAT)
        with pytest.raises(DatasetTypeDefinitionError, match=r"BC006.*'myCat' and 'again'"):
            butler.register_dataset_type("again", keys=["visit", "detector"], **MY_CAT)


def test_parents_runtime_types_are_readable_through_the_chain(
    tmp_path: Path,
    registries: RegistryFactory,  # noqa: F811
) -> None:
    parent = tmp_path / "parent"
    with Butler.create(parent, mapper="toycam", registry=registries()) as butler:
        butler.register_dataset_type("myCat", keys=["visit", "detector"], **MY_CAT)
        butler.put({"n": 1}, "myCat", visit=1, detector=1)
    with Butler.create(
        tmp_path / "out", mapper="toycam", registry=registries(), parents=[parent]
    ) as out:
        assert out.get("myCat", visit=1, detector=1) == {"n": 1}
        out.put({"n": 2}, "myCat", visit=2, detector=1)
        assert sorted(d["visit"] for d in out.query("myCat")) == [1, 2]
