"""Keeping a repository honest: register files already on disk, check records against files.

``Butler.index`` and ``Butler.verify`` call these; they read the Butler's mapper,
registry and storage and never write a file, except ``verify(repair=True)``, which
finishes interrupted operations (see :mod:`butler.recovery`) and deletes the
temporaries of writers that are gone.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import ButlerError, InvalidDataIdError
from .progress import progress
from .recovery import pending_entries, recover
from .storage import TEMP_SUFFIX

if TYPE_CHECKING:
    from .butler import Butler

__all__ = ["IndexReport", "VerifyReport", "index", "verify"]


@dataclass(frozen=True)
class IndexReport:
    """What :meth:`Butler.index` found: files registered, already known, and not understood."""

    registered: dict[str, int] = field(default_factory=dict)
    known: int = 0
    unmatched: tuple[str, ...] = ()

    def __str__(self) -> str:
        total = sum(self.registered.values())
        lines = [
            f"registered {total} file(s); {self.known} already known; "
            f"{len(self.unmatched)} not understood"
        ]
        lines += [f"  {name}: {count}" for name, count in sorted(self.registered.items())]
        lines += [f"  not a path of any dataset type: {p}" for p in self.unmatched[:20]]
        if len(self.unmatched) > 20:
            lines.append(f"  ... and {len(self.unmatched) - 20} more")
        return "\n".join(lines)


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`Butler.verify` found. ``clean`` means no record lacks its file."""

    datasets: int
    missing: tuple[tuple[str, str], ...] = ()
    unreadable: tuple[tuple[str, str, str], ...] = ()
    untracked: tuple[str, ...] = ()
    temporaries: tuple[str, ...] = ()
    #: Files set aside by an operation in progress or interrupted: (what, dataset path).
    pending: tuple[tuple[str, str], ...] = ()
    #: With ``repair``: interrupted operations' files finished, and temporaries deleted.
    repaired: int = 0

    @property
    def clean(self) -> bool:
        return not self.missing and not self.unreadable

    def __str__(self) -> str:
        lines = [
            f"{self.datasets} dataset(s) checked: {'clean' if self.clean else 'PROBLEMS FOUND'}"
        ]
        lines += [f"  missing file of {dt}: {path}" for dt, path in self.missing]
        lines += [f"  unreadable {dt} {path}: {why}" for dt, path, why in self.unreadable]
        if self.untracked:
            lines.append(
                f"  {len(self.untracked)} file(s) with no record (written by another tool, or by "
                "a put killed just before it committed; `butler index` registers them):"
            )
            lines += [f"    {p}" for p in self.untracked[:20]]
        if self.temporaries:
            lines.append(
                f"  {len(self.temporaries)} temporary file(s) of writes in progress or "
                "interrupted (invisible to readers; `butler verify --repair` deletes those "
                "of writers that are gone):"
            )
            lines += [f"    {p}" for p in self.temporaries[:20]]
        if self.pending:
            lines.append(
                f"  {len(self.pending)} file(s) of an operation in progress or interrupted "
                "(interrupted ones will be recovered when the repository is next opened for "
                "writing, or by `butler verify --repair`; never delete them by hand):"
            )
            lines += [f"    {what} {path}" for what, path in self.pending[:20]]
        if self.repaired:
            lines.append(f"  repaired: {self.repaired} file(s) of interrupted operations")
        return "\n".join(lines)


def index(
    butler: Butler, dataset_types: Iterable[str] | None = None, *, show_progress: bool = False
) -> IndexReport:
    """Register files already below the root by parsing their paths back into data IDs."""
    names = list(dataset_types) if dataset_types is not None else list(butler.dataset_types)
    plans = [butler.plan(n) for n in names]
    registered: dict[str, int] = {}
    known = 0
    unmatched: list[str] = []
    with butler.registry.transaction():
        recorded = _recorded_paths(butler)
        files = butler.storage.walk(butler.own_files())
        for relative in progress(files, "index") if show_progress else files:
            if relative.endswith(TEMP_SUFFIX):
                continue
            if relative in recorded:  # already some dataset's file: never a second record
                known += 1
                continue
            matched = False
            for plan in plans:
                candidate = relative
                for suffix in plan.format.compressed:
                    if candidate.endswith(suffix) and not plan.spec.template.endswith(suffix):
                        candidate = candidate[: -len(suffix)]
                try:
                    data_id = butler.mapper.parse(plan.spec.name, candidate)
                except InvalidDataIdError:
                    continue
                if not plan.keys.issubset(data_id):
                    continue
                matched = True
                butler.ensure_registered(plan)
                record = butler.restrict(plan, data_id)
                if butler.registry.find(plan.spec.name, record) is not None:
                    known += 1
                    continue
                butler.registry.insert(plan.spec.name, record, relative)
                recorded.add(relative)
                registered[plan.spec.name] = registered.get(plan.spec.name, 0) + 1
            if not matched:
                unmatched.append(relative)
    return IndexReport(registered, known, tuple(unmatched))


def _recorded_paths(butler: Butler) -> set[str]:
    """Every path the registry records, relative to the root (absolute ones as they are)."""
    return {path for _, _, path in butler.registry.datasets()}


def verify(
    butler: Butler, *, read: bool = False, show_progress: bool = False, repair: bool = False
) -> VerifyReport:
    """Check that every record has its file (and, with ``read``, that each file reads).

    ``repair`` first finishes the operations of Butlers that died mid-call, and
    deletes the temporaries of writers no longer running (on this host).
    """
    repaired = recover(butler.root, butler.registry, sweep=True) if repair else 0
    recorded: set[str] = set()
    missing: list[tuple[str, str]] = []
    unreadable: list[tuple[str, str, str]] = []
    count = 0
    records = butler.registry.datasets()
    if show_progress:
        records = progress(records, "verify")
    for name, data_id, path in records:
        count += 1
        recorded.add(path)
        file = butler.storage.absolute(path)
        if not file.is_file():
            missing.append((name, path))
        elif read and name in butler.mapper.dataset_types:
            plan = butler.plan(name)
            try:
                plan.formatter.read(
                    file, python_type=plan.format.python_type, hdu=butler.hdu(plan, data_id)
                )
            except (ButlerError, OSError, ValueError) as error:
                unreadable.append((name, path, str(error)))
    untracked: list[str] = []
    temporaries: list[str] = []
    for relative in butler.storage.walk(butler.own_files()):
        if relative.endswith(TEMP_SUFFIX):
            if repair and not _writer_alive(relative):
                (butler.root / relative).unlink(missing_ok=True)
                repaired += 1
            else:
                temporaries.append(relative)
        elif relative not in recorded:
            untracked.append(relative)
    pending = tuple((entry.kind, entry.target) for entry in pending_entries(butler.root))
    return VerifyReport(
        count,
        tuple(missing),
        tuple(unreadable),
        tuple(untracked),
        tuple(temporaries),
        pending,
        repaired,
    )


def _writer_alive(temporary: str) -> bool:
    """Whether the process that named a temporary (``.NAME.PID-HEX.butler-tmp``) still runs."""
    stem = temporary.rsplit("/", 1)[-1][: -len(TEMP_SUFFIX)]
    pid = stem.rsplit(".", 1)[-1].split("-", 1)[0]
    if not pid.isdigit():
        return True  # not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
