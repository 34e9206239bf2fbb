"""Batched ingest: one registry transaction per batch, a bad file failing alone, and a
rerun after a SIGKILL mid-batch that finishes the job."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from butler import ingest as ingest_module
from butler.butler import Butler
from butler.ingest import read_header_file, write_header_only_fits
from butler.maintenance import verify
from butler.storage import LocalStorage

HEADER = Path(__file__).parent / "data" / "headers" / "fitsheader-hsc.yaml"


def hsc_raws(folder: Path, count: int) -> list[Path]:
    """``count`` HSC raws of one exposure, one CCD each (the real header, DET-ID varied)."""
    header = read_header_file(HEADER)
    files = []
    for ccd in range(count):
        header["FRAMEID"] = f"HSCA{904024 * 100 + ccd:08d}"
        header["DET-ID"] = ccd
        header["T_CCDID"] = ccd
        files.append(write_header_only_fits(header, folder / f"HSCA904024{ccd:03d}.fits"))
    return files


def test_a_bad_file_mid_batch_fails_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_module, "BATCH_FILES", 3)  # batches of 3: 2 flushes and a rest
    files = hsc_raws(tmp_path / "incoming", 6)
    bad = tmp_path / "incoming" / "truncated.fits"
    bad.write_bytes(b"SIMPLE  =                    T")
    given = [*files[:2], bad, *files[2:4], files[3], *files[4:]]  # files[3] twice in one batch
    with Butler.create(tmp_path / "repo", mapper="hsc") as butler:
        report = butler.ingest(given, show_progress=False)
        assert [source for source, _ in report.failed] == [str(bad)]
        assert [source for source, _ in report.skipped] == [str(files[3])]
        assert [f.source for f in report.ingested] == [str(f.absolute()) for f in files]
        assert sorted(d["ccd"] for d in butler.query("raw")) == list(range(6))
        assert verify(butler).clean


def test_a_rerun_after_a_kill_mid_batch_finishes_the_job(tmp_path: Path) -> None:
    files = hsc_raws(tmp_path / "incoming", 8)
    root = tmp_path / "repo"
    Butler.create(root, mapper="hsc").close()
    # A real process, SIGKILLed between renaming the batch's third file into place
    # and the batch's commit: the worst moment (files placed, none recorded).
    child = textwrap.dedent(
        f"""
        import os, signal
        from butler import Butler
        from butler.storage import LocalStorage

        publish, placed = LocalStorage.publish, []

        def publish_then_die(self, temporary, target):
            publish(self, temporary, target)
            placed.append(target)
            if len(placed) == 3:
                os.kill(os.getpid(), signal.SIGKILL)

        LocalStorage.publish = publish_then_die
        with Butler({str(root)!r}) as butler:
            butler.ingest({[str(f) for f in files]!r}, show_progress=False)
        """
    )
    died = subprocess.run([sys.executable, "-c", child], capture_output=True, check=False)
    assert died.returncode == -9, died.stderr.decode()
    with Butler(root) as butler:
        assert butler.count("raw") == 0
        assert len(verify(butler).untracked) == 3  # placed, not recorded: not datasets
        report = butler.ingest(files, show_progress=False)
        assert report.ok and len(report.ingested) == 8, str(report)
        assert sorted(d["ccd"] for d in butler.query("raw")) == list(range(8))
        assert not verify(butler).untracked and not verify(butler).missing
        assert verify(butler, repair=True).repaired == 5  # the dead writer's temporaries
        assert verify(butler).clean
        again = butler.ingest(files, show_progress=False)
        assert len(again.skipped) == 8 and not again.ingested


def test_jobs_give_the_same_result_as_one_process(tmp_path: Path) -> None:
    files = hsc_raws(tmp_path / "incoming", 5)
    bad = tmp_path / "incoming" / "empty.fits"
    bad.write_bytes(b"")
    given = [*files[:2], bad, *files[2:]]
    outcomes = []
    for jobs in (1, 2):
        with Butler.create(tmp_path / f"repo{jobs}", mapper="hsc") as butler:
            report = butler.ingest(given, show_progress=False, jobs=jobs)
            found = sorted(str(d) for d in butler.query("raw"))
            outcomes.append(
                (
                    [(f.source, f.path, f.data_ids) for f in report.ingested],
                    [source for source, _ in report.failed],
                    found,
                )
            )
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1] == [str(bad)]


def test_a_batch_clashing_with_a_concurrent_ingest_goes_file_by_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = hsc_raws(tmp_path / "incoming", 4)
    root = tmp_path / "repo"
    Butler.create(root, mapper="hsc").close()
    sync = LocalStorage.sync

    def another_ingest_first(written: list[Path], **options: bool) -> None:
        """Just before the batch's commit, another Butler ingests one of its files."""
        monkeypatch.setattr(LocalStorage, "sync", staticmethod(sync))
        with Butler(root) as other:
            assert other.ingest([files[1]], show_progress=False).ok
        sync(written, **options)

    monkeypatch.setattr(LocalStorage, "sync", staticmethod(another_ingest_first))
    with Butler(root) as butler:
        report = butler.ingest(files, show_progress=False)
        assert report.ok, str(report)
        assert [source for source, _ in report.skipped] == [str(files[1])]
        assert len(report.ingested) == 3
        assert sorted(d["ccd"] for d in butler.query("raw")) == [0, 1, 2, 3]
        assert verify(butler).clean
