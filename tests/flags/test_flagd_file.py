"""The flagd-file backend against real flag files, and a real flagd client reading them."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from warden.flagstore import FlagConfigError, FlagNotFound
from warden.flagstore.flagd_file import (
    SCHEMA_URL,
    FlagdFileBackend,
    dump_flag_document,
    flag_file,
    init_flag_file,
)


def _doc(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _served(flag: dict[str, Any]) -> int:
    """Percent served the on-variant, as a flagd evaluator reads the definition."""
    if flag["state"] == "DISABLED":
        return 0
    fractional = (flag.get("targeting") or {}).get("fractional")
    if fractional:
        weights: dict[str, int] = dict(fractional)
        return round(100 * weights["on"] / sum(weights.values()))
    return 100 if flag["defaultVariant"] == "on" else 0


def _rich_document() -> dict[str, Any]:
    """A flag file someone else wrote too: evaluators, metadata, non-boolean and custom-targeted flags."""
    return {
        "$schema": SCHEMA_URL,
        "metadata": {"owner": "support-platform", "version": "7"},
        "$evaluators": {"internal": {"in": [{"var": "email"}, ["ops@example.com"]]}},
        "flags": {
            "ai.solutions": {
                "state": "ENABLED",
                "variants": {"on": True, "off": False},
                "defaultVariant": "off",
                "metadata": {"ticket": "SD-1042", "team": "ai"},
            },
            "chat.channel.feishu": {
                "state": "ENABLED",
                "variants": {"on": True, "off": False},
                "defaultVariant": "on",
            },
            "support.greeting": {
                "state": "ENABLED",
                "variants": {"formal": "Dear customer", "casual": "Hi!"},
                "defaultVariant": "formal",
                "targeting": {"if": [{"$ref": "internal"}, "casual", None]},
            },
        },
    }


async def test_ramp_steps_show_in_the_flag_file(
    flagd_backend: FlagdFileBackend, flags_dir: Path
) -> None:
    path = flag_file(flags_dir, "pilot")
    init_flag_file(path, {"ai.solutions": 0, "chat.channel.feishu": 100})
    for percent in (5, 25, 50, 100):
        result = await flagd_backend.set_percent("pilot", "ai.solutions", percent)
        assert result.changed
        assert result.after is not None and result.after.percent == percent
        flag = _doc(path)["flags"]["ai.solutions"]
        assert _served(flag) == percent
        if percent < 100:
            assert flag["targeting"] == {"fractional": [["on", percent], ["off", 100 - percent]]}
        else:
            assert "targeting" not in flag and flag["defaultVariant"] == "on"
    [state] = await flagd_backend.read("pilot", ["ai.solutions"])
    assert (state.enabled, state.percent) == (True, 100)


async def test_the_same_step_twice_writes_nothing_the_second_time(
    flagd_backend: FlagdFileBackend, flags_dir: Path
) -> None:
    path = flag_file(flags_dir, "pilot")
    init_flag_file(path, {"ai.solutions": 0})
    first = await flagd_backend.set_percent("pilot", "ai.solutions", 25)
    content, stat = path.read_bytes(), path.stat()
    second = await flagd_backend.set_percent("pilot", "ai.solutions", 25)
    assert first.changed and not second.changed
    assert second.before == second.after
    assert path.read_bytes() == content
    assert path.stat().st_ino == stat.st_ino and path.stat().st_mtime_ns == stat.st_mtime_ns


async def test_other_flags_and_unknown_fields_are_kept(
    flagd_backend: FlagdFileBackend, flags_dir: Path
) -> None:
    path = flag_file(flags_dir, "production")
    original = _rich_document()
    path.write_text(json.dumps(original, indent=4), encoding="utf-8")
    await flagd_backend.set_percent("production", "ai.solutions", 25)
    after = _doc(path)
    assert {k: v for k, v in after.items() if k != "flags"} == {
        k: v for k, v in original.items() if k != "flags"
    }
    assert after["flags"]["chat.channel.feishu"] == original["flags"]["chat.channel.feishu"]
    assert after["flags"]["support.greeting"] == original["flags"]["support.greeting"]
    ramped = after["flags"]["ai.solutions"]
    assert ramped["metadata"] == {"ticket": "SD-1042", "team": "ai"}
    assert _served(ramped) == 25


async def test_a_reader_never_sees_a_partial_file(
    flagd_backend: FlagdFileBackend, flags_dir: Path
) -> None:
    path = flag_file(flags_dir, "pilot")
    # A large file makes a torn write likely to be seen if writes were not atomic.
    init_flag_file(path, {f"bulk.flag{i:04d}": i % 101 for i in range(500)} | {"ai.solutions": 0})
    stop = threading.Event()
    reads: list[int] = []
    torn: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                doc = json.loads(path.read_bytes())
                reads.append(_served(doc["flags"]["ai.solutions"]))
            except (ValueError, KeyError) as exc:  # a half-written or missing file
                torn.append(repr(exc))

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        for step in range(40):
            await flagd_backend.set_percent("pilot", "ai.solutions", 10 if step % 2 else 90)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert torn == []
    assert reads and set(reads) <= {0, 10, 90}
    leftovers = [p.name for p in flags_dir.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


async def test_concurrent_writers_lose_no_update(flags_dir: Path) -> None:
    path = flag_file(flags_dir, "pilot")
    init_flag_file(path, {f"flag.{i}": 0 for i in range(8)})
    backends = [FlagdFileBackend(flags_dir) for _ in range(8)]
    await asyncio.gather(
        *(b.set_percent("pilot", f"flag.{i}", 40 + i) for i, b in enumerate(backends))
    )
    flags = _doc(path)["flags"]
    assert {key: _served(flags[key]) for key in flags} == {f"flag.{i}": 40 + i for i in range(8)}


async def test_restore_puts_the_file_back_byte_for_byte(
    flagd_backend: FlagdFileBackend, flags_dir: Path
) -> None:
    path = flag_file(flags_dir, "pilot")
    path.write_text(dump_flag_document(_rich_document()), encoding="utf-8")
    original = path.read_bytes()
    snapshot = await flagd_backend.read("pilot", ["ai.solutions", "chat.channel.feishu"])
    await flagd_backend.set_percent("pilot", "ai.solutions", 50)
    await flagd_backend.set_percent("pilot", "chat.channel.feishu", 0)
    assert path.read_bytes() != original
    # The snapshot travels through Temporal as JSON; restore what came back from that trip.
    travelled = [type(s).model_validate_json(s.model_dump_json()) for s in snapshot]
    await flagd_backend.restore("pilot", travelled)
    assert path.read_bytes() == original
    assert await flagd_backend.read("pilot", ["ai.solutions", "chat.channel.feishu"]) == snapshot


async def test_restore_removes_a_flag_that_did_not_exist(
    flagd_backend: FlagdFileBackend, flags_dir: Path
) -> None:
    path = flag_file(flags_dir, "dev")
    init_flag_file(path, {"chat.channel.feishu": 100})
    original = path.read_bytes()
    [absent] = await flagd_backend.read("dev", ["ai.solutions"])
    assert not absent.exists
    doc = _doc(path)
    doc["flags"]["ai.solutions"] = {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "on",
    }
    path.write_text(dump_flag_document(doc), encoding="utf-8")
    await flagd_backend.restore("dev", [absent])
    assert path.read_bytes() == original


async def test_missing_flag_is_reported_and_never_created(
    flagd_backend: FlagdFileBackend, flags_dir: Path
) -> None:
    path = flag_file(flags_dir, "pilot")
    init_flag_file(path, {"chat.channel.feishu": 100})
    original = path.read_bytes()
    [state] = await flagd_backend.read("pilot", ["ai.solutions"])
    assert not state.exists and state.definition is None
    with pytest.raises(FlagNotFound, match="ai.solutions") as refused:
        await flagd_backend.set_percent("pilot", "ai.solutions", 25)
    assert path.read_bytes() == original
    # the refusal names the command that fixes it
    assert "`warden flags add ai.solutions --env pilot --percent N`" in str(refused.value)


def test_adding_flags_leaves_every_existing_flag_and_field_as_it_was(
    flagd_backend: FlagdFileBackend, flags_dir: Path
) -> None:
    path = flag_file(flags_dir, "production")
    path.write_text(dump_flag_document(_rich_document()), encoding="utf-8")
    before = _doc(path)
    update = flagd_backend.add_missing(
        "production", {"chat.channel.enterprise-qq": 100, "chat.channel.feishu": 0}
    )
    assert not update.created and update.added == ["chat.channel.enterprise-qq"]
    [kept] = update.kept
    assert (kept.flag, kept.percent) == ("chat.channel.feishu", 100)  # not set to the 0 asked for
    after = _doc(path)
    added = after["flags"].pop("chat.channel.enterprise-qq")
    assert after == before  # every other flag, evaluator and metadata byte for byte as JSON
    assert _served(added) == 100

    content = path.read_bytes()
    again = flagd_backend.add_missing("production", {"chat.channel.enterprise-qq": 0})
    assert again.added == [] and [s.percent for s in again.kept] == [100]
    assert path.read_bytes() == content  # nothing to add: nothing written


def test_adding_to_a_missing_file_creates_it_and_a_dry_run_writes_nothing(
    flagd_backend: FlagdFileBackend, flags_dir: Path
) -> None:
    path = flag_file(flags_dir, "qa")
    planned = flagd_backend.add_missing("qa", {"ai.solutions": 25}, dry_run=True)
    assert planned.created and planned.added == ["ai.solutions"] and not path.exists()
    made = flagd_backend.add_missing("qa", {"ai.solutions": 25})
    assert made.created and _served(_doc(path)["flags"]["ai.solutions"]) == 25
    broken = flag_file(flags_dir, "dev")
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(FlagConfigError, match="not valid JSON"):
        flagd_backend.add_missing("dev", {"ai.solutions": 0})
    assert broken.read_text() == "{"


async def test_an_environment_without_a_flag_file_is_a_configuration_error(
    flagd_backend: FlagdFileBackend,
) -> None:
    with pytest.raises(FlagConfigError, match="no flag file"):
        await flagd_backend.read("staging", ["ai.solutions"])


async def test_a_flag_without_on_and_off_variants_cannot_be_ramped(
    flagd_backend: FlagdFileBackend, flags_dir: Path
) -> None:
    path = flag_file(flags_dir, "pilot")
    path.write_text(dump_flag_document(_rich_document()), encoding="utf-8")
    original = path.read_bytes()
    with pytest.raises(FlagConfigError, match="on and an off variant"):
        await flagd_backend.set_percent("pilot", "support.greeting", 25)
    assert path.read_bytes() == original


def _share_on(enabled: Any, flag: str, keys: int = 2000) -> float:
    return sum(bool(enabled(flag, f"conversation-{i}")) for i in range(keys)) / keys


def _wait_for_share(enabled: Any, flag: str, accept: Any) -> float:
    """The provider reloads the file on its own schedule: look until it has (bounded), not for how long."""
    share = _share_on(enabled, flag)
    for _ in range(200):
        if accept(share):
            # The reload may have landed halfway through that count: count again, all on the new file.
            return _share_on(enabled, flag)
        time.sleep(0.1)
        share = _share_on(enabled, flag)
    return share


class _FlagdFileClient:
    """The OpenFeature SDK with the flagd provider in FILE mode, as any service would use it."""

    def __init__(self, path: Path) -> None:
        from openfeature import api
        from openfeature.contrib.provider.flagd import FlagdProvider
        from openfeature.contrib.provider.flagd.config import ResolverType

        self._api = api
        self.domain = f"flag-test-{path.parent.name}-{id(self)}"
        self._provider = FlagdProvider(
            resolver_type=ResolverType.FILE, offline_flag_source_path=str(path), deadline_ms=50
        )
        self.client = api.get_client(domain=self.domain)

    def start(self) -> None:
        self._api.set_provider_and_wait(self._provider, domain=self.domain)

    def stop(self) -> None:
        from openfeature.provider.no_op_provider import NoOpProvider

        self._provider.shutdown()
        self._api.set_provider(NoOpProvider(), domain=self.domain)

    def enabled(self, flag: str, targeting_key: str) -> bool:
        from openfeature.evaluation_context import EvaluationContext

        return bool(
            self.client.get_boolean_value(
                flag, False, EvaluationContext(targeting_key=targeting_key)
            )
        )


def _flagd_client(path: Path) -> Any:
    """The support-desk sample service's flag client when it ships, else the SDK directly."""
    try:
        from examples.support_desk.flags import DeskFlags
    except ImportError:
        return _FlagdFileClient(path)
    return DeskFlags(path, poll_ms=50)


async def test_a_flagd_client_sees_each_step(
    flagd_backend: FlagdFileBackend, flags_dir: Path
) -> None:
    """A real flagd provider (FILE mode) reads the file Release Warden writes, step by step."""
    path = flag_file(flags_dir, "pilot")
    init_flag_file(path, {"ai.solutions": 0, "chat.channel.feishu": 100})
    desk = _flagd_client(path)
    desk.start()
    try:
        assert _share_on(desk.enabled, "ai.solutions") == 0.0
        assert _share_on(desk.enabled, "chat.channel.feishu") == 1.0
        await flagd_backend.set_percent("pilot", "ai.solutions", 25)
        share = _wait_for_share(desk.enabled, "ai.solutions", lambda s: s > 0)
        assert 0.20 <= share <= 0.30, share
        await flagd_backend.set_percent("pilot", "ai.solutions", 100)
        assert _wait_for_share(desk.enabled, "ai.solutions", lambda s: s == 1.0) == 1.0
        await flagd_backend.set_percent("pilot", "ai.solutions", 0)
        assert _wait_for_share(desk.enabled, "ai.solutions", lambda s: s == 0.0) == 0.0
    finally:
        desk.stop()


def test_the_sdk_client_without_the_sample_service(flags_dir: Path) -> None:
    """The same file read by the bare OpenFeature SDK + flagd provider (no sample service)."""
    path = flag_file(flags_dir, "pilot")
    init_flag_file(path, {"ai.solutions": 25})
    client = _FlagdFileClient(path)
    client.start()
    try:
        share = _wait_for_share(client.enabled, "ai.solutions", lambda s: s > 0)
        assert 0.20 <= share <= 0.30, share
    finally:
        client.stop()


async def test_a_custom_bucketing_key_is_kept_from_step_to_step(
    flagd_backend: FlagdFileBackend, flags_dir: Path
) -> None:
    """Whole customers move together when the rule buckets by customer: the ramp must not reset that."""
    path = flag_file(flags_dir, "pilot")
    doc = _rich_document()
    doc["flags"]["ai.solutions"]["targeting"] = {
        "fractional": [
            {"cat": [{"var": "$flagd.flagKey"}, {"var": "customerId"}]},
            ["on", 10],
            ["off", 90],
        ]
    }
    path.write_text(dump_flag_document(doc), encoding="utf-8")
    await flagd_backend.set_percent("pilot", "ai.solutions", 50)
    rule = _doc(path)["flags"]["ai.solutions"]["targeting"]["fractional"]
    assert rule == [
        {"cat": [{"var": "$flagd.flagKey"}, {"var": "customerId"}]},
        ["on", 50],
        ["off", 50],
    ]

    from openfeature.evaluation_context import EvaluationContext

    client = _FlagdFileClient(path)
    client.start()
    try:
        per_customer = {
            customer: {
                client.client.get_boolean_value(
                    "ai.solutions",
                    False,
                    EvaluationContext(
                        targeting_key=f"conv-{n}", attributes={"customerId": customer}
                    ),
                )
                for n in range(20)
            }
            for customer in (f"cust-{i}" for i in range(40))
        }
    finally:
        client.stop()
    assert all(len(answers) == 1 for answers in per_customer.values())
    assert {answer for answers in per_customer.values() for answer in answers} == {True, False}


async def test_a_write_that_fails_names_the_file_and_leaves_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full disk cannot be made here without mounting a file system: the fsync fails instead.
    import errno
    import os

    from warden.flagstore import FlagBackendError

    path = flag_file(tmp_path, "pilot")
    init_flag_file(path, {"ai.solutions": 0})
    before = path.read_bytes()
    backend = FlagdFileBackend(tmp_path)

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(FlagBackendError) as info:
        await backend.set_percent("pilot", "ai.solutions", 50)
    assert str(path) in str(info.value) and "No space left" in str(info.value)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
