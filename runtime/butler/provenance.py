"""Runs and versions: who wrote a repository and each of its datasets.

- A repository records the software versions that created it (``created_by`` in
  ``butler.yaml``) and, for every run that wrote to it, the run's versions, host,
  user and start time (registry metadata ``run:<name>``).
- Every dataset records its run: ``put(..., run="name")``, or the Butler's
  session run (``butler.provenance.run``, by default ``<user>-<UTC time>-<pid>``).
  ``butler.provenance.of("calexp", visit=1, ...)`` says which repository holds
  it, its run, when it was written and the versions that wrote it.
- A run's configs, logs and version records are datasets like any other:
  :meth:`Provenance.define_run_dataset_types` registers ``run_config`` (YAML),
  ``run_log`` (text) and ``run_versions`` (YAML), keyed by ``run``, and
  :meth:`Provenance.write_versions` stores the run's versions through ``put``.
- :func:`select_repository` picks, among several repositories, the one written
  by the software version asked for (``butler select --version 'butler>=0.2' A B``).
"""

from __future__ import annotations

import datetime
import getpass
import json
import os
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import read_config, software_versions
from .errors import ButlerError, DatasetNotFoundError, RemoteError, RepositoryError

if TYPE_CHECKING:
    from .butler import Butler

__all__ = [
    "RUN_DATASET_TYPES",
    "DatasetProvenance",
    "Provenance",
    "parse_requirement",
    "select_repository",
]

RUN_PREFIX = "run:"

#: The dataset types :meth:`Provenance.define_run_dataset_types` registers.
RUN_DATASET_TYPES = ("run_config", "run_log", "run_versions")

_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+-]*\Z")


@dataclass(frozen=True)
class DatasetProvenance:
    """Where a dataset is stored, the run that wrote it, when, and with which versions."""

    dataset_type: str
    data_id: Mapping[str, object]
    repository: Path
    path: str
    run: str | None
    created: datetime.datetime | None
    versions: dict[str, str] = field(default_factory=dict)


def _default_run() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "user"
    user = re.sub(r"[^A-Za-z0-9_.-]", "_", user) or "user"
    now = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{user}-{now}-{os.getpid()}"


class Provenance:
    """The runs and versions of one opened repository (``butler.provenance``)."""

    def __init__(self, butler: Butler) -> None:
        self._butler = butler
        self._run: str | None = None
        self._recorded: set[str] = set()

    @property
    def run(self) -> str:
        """The run that puts without ``run=`` record (chosen once per Butler)."""
        if self._run is None:
            self._run = _default_run()
        return self._run

    @run.setter
    def run(self, name: str) -> None:
        self._run = _check_run(name)

    def run_for(self, run: str | None) -> str:
        """The run a write records (``run`` or the session's), recorded in the registry once."""
        name = self.run if run is None else _check_run(run)
        if name not in self._recorded:
            registry = self._butler.registry
            key = RUN_PREFIX + name
            if key not in registry.metadata:
                record = {
                    "run": name,
                    "started": datetime.datetime.now(datetime.UTC).isoformat(),
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "user": getpass.getuser() if _has_user() else "",
                    "versions": software_versions(),
                }
                registry.set_metadata(key, json.dumps(record, sort_keys=True))
            self._recorded.add(name)
        return name

    def import_run(self, name: str, record: Mapping[str, Any]) -> bool:
        """Record a run as another repository recorded it (export, import, transfer), unless
        this repository already has a run of that name; whether it was added."""
        registry = self._butler.registry
        key = RUN_PREFIX + _check_run(name)
        if key in registry.metadata:
            return False
        registry.set_metadata(key, json.dumps(dict(record), sort_keys=True, default=str))
        self._recorded.add(name)
        return True

    def runs(self) -> dict[str, dict[str, Any]]:
        """Every run recorded in this repository (not its parents), by name."""
        result = {}
        for key, value in self._butler.registry.metadata.items():
            if key.startswith(RUN_PREFIX):
                try:
                    result[key[len(RUN_PREFIX) :]] = json.loads(value)
                except ValueError:
                    continue
        return result

    def written_by(self) -> dict[str, Any]:
        """The versions that created the repository and those of every run that wrote to it."""
        return {
            "created_by": dict(self._butler.config.created_by),
            "runs": {name: record.get("versions", {}) for name, record in self.runs().items()},
        }

    def of(
        self, dataset_type: str, data_id: Mapping[str, object] | None = None, **keys: object
    ) -> DatasetProvenance:
        """The provenance of one stored dataset, from whichever repository of the chain holds it."""
        butler = self._butler
        plan = butler.plan(dataset_type)
        found = butler.find_dataset(plan, butler.mapper.normalize(data_id, **keys))
        if found is None:
            raise DatasetNotFoundError(
                f"no dataset {dataset_type!r} with data ID {dict(data_id or {}, **keys)} in "
                f"{butler.chain.searched(butler)}"
            )
        member = found.repository.local()
        if member is None:
            raise RemoteError(
                f"the provenance of {dataset_type!r} {dict(found.data_id)} is recorded in parent "
                f"repository {found.repository.address}, which is served; ask it there"
            )
        if found.ref is not None:  # a parent's find: its own, with the path it records
            found = member.locate(found.ref)[1]
        restricted = {k: v for k, v in found.data_id.items() if k in plan.keys}
        record = member.registry.record(dataset_type, restricted)
        run = created = None
        if record is not None:
            _, run, created = record
        versions = member.provenance.runs().get(run or "", {}).get("versions", {})
        return DatasetProvenance(
            dataset_type, dict(found.data_id), member.root, found.path, run, created, versions
        )

    # ---- run records as datasets --------------------------------------------------------------

    def define_run_dataset_types(self) -> None:
        """Register ``run_config``, ``run_log`` and ``run_versions`` (keyed by ``run``)."""
        butler = self._butler
        if all(name in butler.mapper.dataset_types for name in RUN_DATASET_TYPES):
            return
        spec = butler.mapper.spec
        keys = {k.name: k for k in spec.keys}
        lines = []
        if "run" not in keys:
            lines.append(f'key run: str matches r"{_RUN_NAME.pattern[:-2]}"')
        elif keys["run"].type != "str":
            raise RepositoryError(
                f"instrument {spec.name} has a key 'run' of type {keys['run'].type}; run records "
                "need a str key 'run'"
            )
        yaml_format = _format(spec, "yaml", "dict", "run_yaml", ".yaml", lines)
        text_format = _format(spec, "text", "str", "run_text", ".txt", lines)
        for name, fmt, file in (
            ("run_config", yaml_format, "config.yaml"),
            ("run_log", text_format, "log.txt"),
            ("run_versions", yaml_format, "versions.yaml"),
        ):
            lines.append(
                f'dataset {name} {{ template "_runs/{{run}}/{file}" format {fmt} keys run '
                f'doc "The {name[4:]} of a run." }}'
            )
        butler.register_dataset_type(text="\n".join(lines))

    def write_versions(self, run: str | None = None) -> str:
        """Store the versions of the software running now as ``run_versions``; the run."""
        name = self.run_for(run)
        self.define_run_dataset_types()
        self._butler.put(
            software_versions(), "run_versions", {"run": name}, run=name, overwrite=True
        )
        return name


def _format(
    spec: Any, formatter: str, python: str, fallback: str, extension: str, lines: list[str]
) -> str:
    for fmt in spec.formats:
        if fmt.formatter == formatter and fmt.python_type in (python, None) and not fmt.unsafe:
            return str(fmt.name)
    if fallback not in {f.name for f in spec.formats}:
        lines.append(
            f'format {fallback} {{ formatter {formatter} extensions "{extension}" '
            f'python "{python}" }}'
        )
    return fallback


def _has_user() -> bool:
    try:
        getpass.getuser()
    except (KeyError, OSError):
        return False
    return True


def _check_run(run: object) -> str:
    if not isinstance(run, str) or not _RUN_NAME.match(run):
        raise ButlerError(
            f"run name {run!r} is not valid: use letters, digits and _ . : + - "
            "(starting with a letter or digit)"
        )
    return run


# ---- selecting a repository by version -------------------------------------------------------

_OPERATORS = ("==", "!=", ">=", "<=", ">", "<")


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = re.findall(r"\d+", text.split("+")[0])
    return tuple(int(p) for p in parts)


def parse_requirement(requirement: str) -> tuple[str, list[tuple[str, tuple[int, ...]]]]:
    """``"butler>=0.2,<0.4"`` as ``("butler", [(">=", (0, 2)), ("<", (0, 4))])``."""
    match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*(.*)", requirement)
    if match is None or not match.group(2).strip():
        raise ButlerError(
            f"version requirement {requirement!r} is not PACKAGE OP VERSION[, OP VERSION], "
            "e.g. 'butler>=0.2,<0.4'"
        )
    clauses = []
    for clause in match.group(2).split(","):
        clause = clause.strip()
        operator = next((op for op in _OPERATORS if clause.startswith(op)), None)
        version = clause[len(operator) :].strip() if operator else ""
        if operator is None or not _version_tuple(version):
            raise ButlerError(
                f"version requirement {requirement!r}: {clause!r} is not OP VERSION "
                f"(OP one of {' '.join(_OPERATORS)})"
            )
        clauses.append((operator, _version_tuple(version)))
    return match.group(1), clauses


def _satisfies(version: tuple[int, ...], clauses: list[tuple[str, tuple[int, ...]]]) -> bool:
    def pad(v: tuple[int, ...], n: int) -> tuple[int, ...]:
        return v + (0,) * (n - len(v))

    for operator, wanted in clauses:
        n = max(len(version), len(wanted))
        a, b = pad(version, n), pad(wanted, n)
        ok = {
            "==": a == b,
            "!=": a != b,
            ">=": a >= b,
            "<=": a <= b,
            ">": a > b,
            "<": a < b,
        }[operator]
        if not ok:
            return False
    return True


def select_repository(candidates: Iterable[str | os.PathLike[str]], requirement: str) -> Path:
    """The repository among ``candidates`` created by software meeting ``requirement``.

    ``requirement`` is ``PACKAGE OP VERSION[, OP VERSION...]`` over the versions
    recorded in each repository's ``created_by`` (``"butler>=0.2,<0.4"``,
    ``"python==3.11"``). Of several that qualify, the newest version wins (then the
    first given). RepositoryError if none does, listing what each has.
    """
    package, clauses = parse_requirement(requirement)
    best: tuple[tuple[int, ...], Path] | None = None
    seen = []
    for candidate in candidates:
        root = Path(candidate).absolute()
        config = read_config(root)
        version = config.created_by.get(package)
        seen.append(f"  {root}: {package} {version or '(not recorded)'}")
        if version is None:
            continue
        parsed = _version_tuple(version)
        if _satisfies(parsed, clauses) and (best is None or parsed > best[0]):
            best = (parsed, root)
    if best is None:
        shown = "\n".join(seen) or "  (no candidates)"
        raise RepositoryError(f"no repository meets {requirement!r}:\n{shown}")
    return best[1]
