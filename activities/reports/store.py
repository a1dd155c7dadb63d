"""Where reports are kept: `<artifacts>/reports/<release id>/<name>.{md,json,html}`, and the
release log (`WARDEN_RELEASE_LOG`, `release_log.md` in the state directory by default).

The release log gets one entry per release run, however often the activity that writes it runs:
the entry starts with a marker naming the release and its run, and the append happens under a
file lock, checks for the marker, and replaces the file atomically. A worker killed anywhere in
the middle leaves either the old file or the new one, never half an entry or a second one.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from activities.reports.render import render

RELEASE_LOG_HEADER = (
    "# Release log\n\nOne entry per release, written when it ends (Release Warden).\n"
)
_SAFE = re.compile(r"[^A-Za-z0-9._+\-]")


def safe_name(text: str) -> str:
    return _SAFE.sub("_", text)[:200] or "_"


def report_dir(artifacts: Path, owner: str) -> Path:
    return artifacts / "reports" / safe_name(owner)


def write_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the new one; the new one is on disk before it is visible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_dir(path.parent)


def _sync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def store_report(artifacts: Path, owner: str, name: str, report: Any) -> dict[str, Path]:
    """The report in every format; returns the path of each."""
    directory = report_dir(artifacts, owner)
    paths = {}
    for fmt in ("json", "md", "html"):
        path = directory / f"{safe_name(name)}.{fmt}"
        write_atomic(path, render(report, fmt))
        paths[fmt] = path
    return paths


def load_stored(artifacts: Path, owner: str, name: str, fmt: str) -> str | None:
    path = report_dir(artifacts, owner) / f"{safe_name(name)}.{fmt}"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


# -- the release log -------------------------------------------------------------------------


class LogBusy(Exception):
    """The release log stayed locked by someone else for too long; the activity retries."""


def entry_marker(release_id: str, run_id: str) -> str:
    return f"<!-- warden:retrospective release={release_id} run={run_id} -->"


@contextmanager
def locked(path: Path, timeout_s: float = 30.0) -> Iterator[None]:
    """An exclusive lock on `<path>.lock` (flock), waited for up to `timeout_s`."""
    lock_path = path.with_name(path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LogBusy(f"{path} stayed locked for {timeout_s:.0f}s") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def append_entry(path: Path, release_id: str, run_id: str, entry: str) -> bool:
    """Append `entry` to the release log unless this run's entry is there; True if written."""
    marker = entry_marker(release_id, run_id)
    with locked(path):
        try:
            current = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = RELEASE_LOG_HEADER
        if marker in current:
            return False
        text = current.rstrip("\n") + "\n\n" + marker + "\n" + entry.rstrip("\n") + "\n"
        write_atomic(path, text)
        return True


def entries(path: Path) -> list[tuple[str, str]]:
    """(release id, run id) of every entry in the release log, in order."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return re.findall(r"<!-- warden:retrospective release=(\S+) run=(\S+) -->", text)
