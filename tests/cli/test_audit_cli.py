"""`warden audit` as an operator reads it: the newest events first, why each happened, the date
forms the API takes, and a file that cannot be written named in one line. No Temporal needed."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.cli.conftest import WARDEN
from warden.models.audit import AuditEvent
from warden.stores.audit import AuditStore

BASE = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """An audit store with 30 events a minute apart, the 10th one with a reason."""
    state = tmp_path / "state"
    state.mkdir()
    store = AuditStore(f"sqlite:///{state / 'audit.db'}")
    store.write(
        AuditEvent(
            eventId=f"event-{i:02d}",
            userId="bob" if i == 9 else "alice",
            action="killswitch.applied" if i == 9 else "release.started",
            entity=f"release:release-support-desk-1.{i}.0",
            result="changed" if i == 9 else "started",
            timestamp=BASE + timedelta(minutes=i),
            details={"reason": "gateway flapping\nsince 03:00", "percent": 0, "requestId": "r"}
            if i == 9
            else {"version": f"1.{i}.0", "devIdentity": True},
        )
        for i in range(30)
    )
    store.close()
    return state


def warden(state: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env["WARDEN_STATE_DIR"] = str(state)
    return subprocess.run(
        [WARDEN, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def rows(output: str) -> list[str]:
    return output.strip().splitlines()[1:]  # below the header


def test_audit_list_shows_the_newest_events_with_their_details(state: Path) -> None:
    listed = warden(state, "audit", "list", "--limit", "5")
    assert listed.returncode == 0, listed.stderr
    header, *lines = listed.stdout.strip().splitlines()
    assert header.split() == ["TIME", "USER", "ACTION", "RESULT", "ENTITY", "DETAILS"]
    assert [line.split()[0:2] for line in lines] == [
        ["2026-11-01", f"09:{m}:00"] for m in ("25", "26", "27", "28", "29")
    ]  # the five newest, oldest of them first
    assert all(" UTC " in line for line in lines)
    assert lines[-1].rstrip().endswith("version=1.29.0")

    tail = warden(state, "audit", "list", "--tail", "21")
    assert rows(tail.stdout)[0].startswith("2026-11-01 09:09:00 UTC")
    why = rows(tail.stdout)[0]
    assert "gateway flapping since 03:00; percent=0" in why  # one line, the reason first
    assert "requestId" not in why

    default = warden(state, "audit", "list")
    assert len(rows(default.stdout)) == 30  # fewer than the default 50: all of them


def test_audit_dates_take_the_forms_the_api_takes(state: Path) -> None:
    def listed(*args: str) -> list[str]:
        result = warden(state, "audit", "list", *args)
        assert result.returncode == 0, result.stderr
        return [line.split()[1] for line in rows(result.stdout)]

    assert listed("--since", "2026-11-01 09:28") == ["09:28:00", "09:29:00"]
    assert listed("--since", "2026-11-01T10:28:00+01:00") == ["09:28:00", "09:29:00"]
    assert listed("--since", "2026-11-01 09:29:00 UTC") == ["09:29:00"]  # as `warden` prints it
    assert listed("--until", "2026-11-01T09:01Z") == ["09:00:00", "09:01:00"]
    assert len(listed("--since", "2026-11-01", "--until", "2026-11-01")) == 30  # the whole day
    assert listed("--until", "2026-10-31") == []

    bad = warden(state, "audit", "list", "--since", "2026-02-30")
    assert bad.returncode == 2
    [line] = bad.stderr.strip().splitlines()
    assert line.startswith("warden: error:") and "'2026-02-30' is not a date or time" in line


def test_audit_export_takes_the_newest_or_the_oldest(state: Path, tmp_path: Path) -> None:
    newest = warden(state, "audit", "export", "--tail", "2")
    assert [json.loads(line)["eventId"] for line in newest.stdout.splitlines()] == [
        "event-28",
        "event-29",
    ]
    oldest = warden(
        state, "audit", "export", "--limit", "2", "--csv", "-o", str(tmp_path / "a.csv")
    )
    assert oldest.returncode == 0, oldest.stderr
    assert [line.split(",")[0] for line in (tmp_path / "a.csv").read_text().splitlines()] == [
        "eventId",
        "event-00",
        "event-01",
    ]


def test_audit_export_to_a_missing_directory_names_it(state: Path, tmp_path: Path) -> None:
    target = tmp_path / "nonexistent" / "dir" / "x.csv"
    result = warden(state, "audit", "export", "-o", str(target))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line == (
        f"warden: error: cannot write {target}: directory {target.parent} does not exist"
    )
    assert "Errno" not in result.stderr and result.stdout == ""
