"""The raw floor: the file writes, reads and SQLite statements a put or get needs, by hand.

A put is: YAML text (libyaml), a hidden temporary file written and fsynced, an
``INSERT`` committed, a rename into place (a deferred put skips the fsync, and one
``syncfs`` forces a batch of them to disk afterwards). A get is: one ``SELECT`` on the
unique index, one file read, YAML parsed (libyaml). Same paths, same pragmas
(WAL, ``synchronous=NORMAL``) and the same table shape and indexes as Butler's
registry; no checks, no normalization, no error messages. Nothing can be faster
than this while doing the same I/O, so it is the yardstick of per-call overhead.
"""

from __future__ import annotations

import ctypes
import datetime
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import yaml
from _workload import (
    CALIB_EPOCHS,
    CALIB_VISITS,
    DETECTORS,
    Obs,
    System,
    calib_date,
    epoch_start,
    observations,
    payload,
)

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_SCHEMA = """
CREATE TABLE metrics (
    id INTEGER PRIMARY KEY, visit INTEGER NOT NULL, detector INTEGER NOT NULL,
    filter TEXT NOT NULL, path TEXT NOT NULL, run TEXT, created DATETIME NOT NULL,
    UNIQUE (visit, detector, filter));
CREATE INDEX ix_metrics_detector ON metrics (detector);
CREATE INDEX ix_metrics_filter ON metrics (filter);
CREATE TABLE raw (
    id INTEGER PRIMARY KEY, visit INTEGER NOT NULL, detector INTEGER NOT NULL,
    obsTime DATETIME NOT NULL, path TEXT NOT NULL, UNIQUE (visit, detector));
CREATE TABLE bias (
    id INTEGER PRIMARY KEY, calibDate DATE NOT NULL, detector INTEGER NOT NULL,
    path TEXT NOT NULL, UNIQUE (calibDate, detector));
CREATE TABLE bias_validity (
    id INTEGER PRIMARY KEY, dataset INTEGER NOT NULL REFERENCES bias (id),
    detector INTEGER NOT NULL, valid_from DATETIME NOT NULL, valid_to DATETIME,
    recorded_from DATETIME NOT NULL, recorded_to DATETIME);
CREATE INDEX ix_bias_validity ON bias_validity (detector, valid_from);
"""


def _path(o: Obs) -> str:
    return f"metrics/{o.visit:08d}/{o.filter}/metrics-{o.visit:08d}-{o.detector:02d}.yaml"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None).isoformat(" ")


class Floor(System):
    name = "raw floor"

    def create(self, root: str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True)
        self.db = sqlite3.connect(self.root / "registry.sqlite3", isolation_level=None)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.executescript(_SCHEMA)
        self.cursor = self.db.cursor()
        self._sync = True

    def put_one_deferred(self, obs: Sequence[Obs]) -> None:
        """``put_one`` without the fsync: the I/O of a put that defers (or skips) it."""
        self._sync = False
        try:
            self.put_one(obs)
        finally:
            self._sync = True

    def sync_deferred(self) -> None:
        """Force the deferred files to disk as Butler does for a batch: one ``syncfs``."""
        descriptor = os.open(self.root, os.O_RDONLY)
        try:
            if ctypes.CDLL(None, use_errno=True).syncfs(descriptor) != 0:
                raise OSError(ctypes.get_errno(), "syncfs failed")
        finally:
            os.close(descriptor)

    def _write(self, relative: str, obj: object) -> tuple[str, str]:
        target = os.path.join(self.root, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        temporary = os.path.join(os.path.dirname(target), "." + os.path.basename(target) + ".tmp")
        data = yaml.dump(obj, Dumper=_Dumper, allow_unicode=True, sort_keys=False).encode()
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
            if self._sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        return temporary, target

    def put_one(self, obs: Sequence[Obs]) -> None:
        execute = self.cursor.execute
        for o in obs:
            relative = _path(o)
            temporary, target = self._write(relative, payload(o.visit, o.detector))
            execute("BEGIN IMMEDIATE")
            execute(
                "INSERT INTO metrics (visit, detector, filter, path, run, created) "
                "VALUES (?, ?, ?, ?, NULL, ?)",
                (o.visit, o.detector, o.filter, relative, _now()),
            )
            execute("COMMIT")
            os.replace(temporary, target)

    def put_bulk(self, obs: Sequence[Obs]) -> None:
        written = []
        rows = []
        now = _now()
        for o in obs:
            relative = _path(o)
            written.append(self._write(relative, payload(o.visit, o.detector)))
            rows.append((o.visit, o.detector, o.filter, relative, now))
        self.cursor.execute("BEGIN IMMEDIATE")
        self.cursor.executemany(
            "INSERT INTO metrics (visit, detector, filter, path, run, created) "
            "VALUES (?, ?, ?, ?, NULL, ?)",
            rows,
        )
        self.cursor.execute("COMMIT")
        for temporary, target in written:
            os.replace(temporary, target)

    def _read(self, relative: str) -> object:
        with open(os.path.join(self.root, relative), "rb") as f:
            return yaml.load(f.read(), Loader=_Loader)

    def get(self, obs: Sequence[Obs]) -> None:
        execute = self.cursor.execute
        sql = "SELECT path FROM metrics WHERE visit = ? AND detector = ? AND filter = ?"
        for o in obs:
            (relative,) = execute(sql, (o.visit, o.detector, o.filter)).fetchone()
            self._read(relative)

    def get_completed(self, obs: Sequence[Obs]) -> None:
        execute = self.cursor.execute
        sql = (
            "SELECT visit, detector, filter, path FROM metrics WHERE visit = ? AND detector = ? "
            "ORDER BY visit, detector, filter LIMIT 11"
        )
        for o in obs:
            rows = execute(sql, (o.visit, o.detector)).fetchall()
            self._read(rows[0][3])

    def exists(self, obs: Sequence[Obs]) -> None:
        execute = self.cursor.execute
        sql = "SELECT path FROM metrics WHERE visit = ? AND detector = ? AND filter = ?"
        for o in obs:
            execute(sql, (o.visit, o.detector, o.filter)).fetchone()

    def query(self, visits: Sequence[int]) -> None:
        execute = self.cursor.execute
        sql = (
            "SELECT visit, detector, filter FROM metrics WHERE visit = ? "
            "ORDER BY visit, detector, filter"
        )
        for v in visits:
            [
                dict(zip(("visit", "detector", "filter"), row, strict=True))
                for row in execute(sql, (v,))
            ]

    def count(self, visits: Sequence[int]) -> None:
        execute = self.cursor.execute
        for v in visits:
            execute("SELECT COUNT(*) FROM metrics WHERE visit = ?", (v,)).fetchone()

    # ---- calibrations: a validity table beside the dataset table -------------------------

    def prepare_calibrations(self) -> None:
        execute = self.cursor.execute
        execute("BEGIN")
        for o in observations(0, CALIB_VISITS * DETECTORS):
            execute(
                "INSERT INTO raw (visit, detector, obsTime, path) VALUES (?, ?, ?, ?)",
                (o.visit, o.detector, o.time.isoformat(" "), f"raw/{o.visit}/{o.detector}"),
            )
        execute("COMMIT")
        self.biases = []
        for epoch in range(CALIB_EPOCHS):
            for detector in range(DETECTORS):
                day = calib_date(epoch)
                relative = f"calib/bias/{day:%Y%m%d}/bias-{detector:02d}.yaml"
                temporary, target = self._write(relative, {"epoch": epoch, "detector": detector})
                os.replace(temporary, target)
                execute("BEGIN")
                execute(
                    "INSERT INTO bias (calibDate, detector, path) VALUES (?, ?, ?)",
                    (day.isoformat(), detector, relative),
                )
                self.biases.append((epoch, detector, self.cursor.lastrowid))
                execute("COMMIT")

    def certify(self) -> None:
        execute = self.cursor.execute
        for epoch, detector, dataset in self.biases:
            begin = epoch_start(epoch).isoformat(" ")
            end = epoch_start(epoch + 1).isoformat(" ") if epoch + 1 < CALIB_EPOCHS else None
            execute("BEGIN IMMEDIATE")
            overlap = execute(
                "SELECT id FROM bias_validity WHERE detector = ? AND recorded_to IS NULL "
                "AND valid_from < COALESCE(?, '9999') AND (valid_to IS NULL OR valid_to > ?)",
                (detector, end, begin),
            ).fetchone()
            assert overlap is None
            execute(
                "INSERT INTO bias_validity (dataset, detector, valid_from, valid_to, "
                "recorded_from) VALUES (?, ?, ?, ?, ?)",
                (dataset, detector, begin, end, _now()),
            )
            execute("COMMIT")

    _CALIB = (
        "SELECT b.path FROM raw r JOIN bias_validity v ON v.detector = r.detector "
        "JOIN bias b ON b.id = v.dataset WHERE r.visit = ? AND r.detector = ? "
        "AND v.recorded_to IS NULL AND v.valid_from <= r.obsTime "
        "AND (v.valid_to IS NULL OR r.obsTime < v.valid_to) LIMIT 2"
    )

    def calib_one(self, obs: Sequence[Obs]) -> None:
        execute = self.cursor.execute
        for o in obs:
            ((relative,),) = execute(self._CALIB, (o.visit, o.detector)).fetchall()
            self._read(relative)

    def calib_bulk(self, obs: Sequence[Obs]) -> None:
        visits = sorted({o.visit for o in obs})
        marks = ", ".join("?" * len(visits))
        sql = (
            "SELECT r.visit, r.detector, b.path FROM raw r JOIN bias_validity v "
            "ON v.detector = r.detector JOIN bias b ON b.id = v.dataset "
            f"WHERE r.visit IN ({marks}) AND v.recorded_to IS NULL "
            "AND v.valid_from <= r.obsTime AND (v.valid_to IS NULL OR r.obsTime < v.valid_to)"
        )
        found = {(v, d): p for v, d, p in self.cursor.execute(sql, visits)}
        assert len(found) == len(obs), len(found)

    def close(self) -> None:
        self.db.close()
