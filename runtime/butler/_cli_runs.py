"""``butler runs ROOT``: the runs that wrote a repository, with versions and dataset counts.

The records are those of :mod:`butler.provenance` (one per run, stored when the run
first writes) and the registry's count of datasets per run; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .butler import Butler

__all__ = ["runs_table"]

#: Stands for datasets recorded without a run (registered by ``butler index``, say).
NO_RUN = "(no run recorded)"


def _versions(versions: Mapping[str, Any]) -> str:
    return ", ".join(f"{package} {version}" for package, version in versions.items()) or "-"


def runs_table(butler: Butler) -> str:
    """Who created the repository, then one line per run, oldest first."""
    records = butler.provenance.runs()
    counts = butler.registry.run_counts()
    names = sorted(
        {*records, *(run for run in counts if run is not None)},
        key=lambda run: (str(records.get(run, {}).get("started", "")), run),
    )
    rows = [("run", "started (UTC)", "datasets", "host", "versions")]
    for name in names:
        record = records.get(name, {})
        started = str(record.get("started", "-"))[:19]
        host = str(record.get("host") or "-")
        rows.append(
            (name, started, str(counts.get(name, 0)), host, _versions(record.get("versions", {})))
        )
    if counts.get(None):
        rows.append((NO_RUN, "-", str(counts[None]), "-", "-"))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = [f"created by {_versions(butler.config.created_by)}", ""]
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].rjust(widths[2])]
        lines.append("  ".join([*cells, row[3].ljust(widths[3]), row[4]]).rstrip())
    if len(rows) == 1:
        lines.append("(no run has written to this repository)")
    return "\n".join(lines)
