"""flagd-file: one flagd JSON file per environment, the OpenFeature standard flag format.

Any service using the flagd provider in FILE mode (or a flagd daemon) watching
`<flags dir>/<environment>.flagd.json` picks changes up. Percentages are `fractional`
targeting; writes are atomic (temp file + os.replace) under a lock, and every flag and
field Release Warden does not touch is kept as it was.
"""

from __future__ import annotations

import asyncio
import copy
import fcntl
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warden.flagstore.backend import FlagBackend, FlagBackendError, FlagConfigError, FlagNotFound
from warden.models.flags import FlagChangeResult, FlagState

SCHEMA_URL = "https://flagd.dev/schema/v0/flags.json"
SUFFIX = ".flagd.json"
#: The environments of a release, in the order it walks them: listed first, the others after.
STAGE_ORDER = ("dev", "staging", "pilot", "production")


def flag_file(directory: Path, environment: str) -> Path:
    return directory / f"{environment}{SUFFIX}"


def flag_environments(directory: Path) -> list[str]:
    """The environments with a flag file in `directory`: dev, staging, pilot, production first."""
    try:
        names = [
            p.name[: -len(SUFFIX)]
            for p in directory.iterdir()
            if p.name.endswith(SUFFIX) and not p.name.startswith(".") and p.is_file()
        ]
    except OSError:  # no directory (yet), or not readable: no environments here
        return []
    order = {name: i for i, name in enumerate(STAGE_ORDER)}
    return sorted((n for n in names if n), key=lambda n: (order.get(n, len(order)), n))


def boolean_flag(percent: int = 0, *, state: str = "ENABLED") -> dict[str, Any]:
    """A new boolean flag definition with on/off variants at `percent`."""
    definition: dict[str, Any] = {
        "state": state,
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
    }
    return apply_percent(definition, percent, "new flag")


def on_off_variants(flag: str, definition: dict[str, Any]) -> tuple[str, str]:
    variants = definition.get("variants")
    if not isinstance(variants, dict) or not variants:
        raise FlagConfigError(f"flag {flag!r} has no variants")
    on = next((k for k, v in variants.items() if v is True), "on" if "on" in variants else None)
    off = next((k for k, v in variants.items() if v is False), "off" if "off" in variants else None)
    if on is None or off is None or on == off:
        raise FlagConfigError(
            f"flag {flag!r} needs an on and an off variant (boolean true/false, or named 'on'/'off')"
        )
    return on, off


def percent_of(flag: str, definition: dict[str, Any]) -> tuple[bool, int]:
    """(enabled, percent of traffic served the on-variant)."""
    if definition.get("state") == "DISABLED":
        return False, 0
    on, off = on_off_variants(flag, definition)
    targeting = definition.get("targeting") or {}
    fractions = targeting.get("fractional") if isinstance(targeting, dict) else None
    if isinstance(fractions, list) and fractions:
        weights = {f[0]: f[1] for f in fractions if isinstance(f, list) and len(f) == 2}
        total = sum(w for w in weights.values() if isinstance(w, int))
        if total > 0:
            return True, round(100 * weights.get(on, 0) / total)
    return True, 100 if definition.get("defaultVariant") == on else 0


def apply_percent(definition: dict[str, Any], percent: int, flag: str) -> dict[str, Any]:
    """The same definition serving `percent`% the on-variant; other fields are left alone."""
    on, off = on_off_variants(flag, definition)
    updated = copy.deepcopy(definition)
    updated["state"] = "ENABLED"
    if percent in (0, 100):
        updated["defaultVariant"] = on if percent == 100 else off
        updated.pop("targeting", None)
    else:
        updated["defaultVariant"] = off
        buckets = [[on, percent], [off, 100 - percent]]
        updated["targeting"] = {"fractional": _bucketing(definition) + buckets}
    return updated


def _bucketing(definition: dict[str, Any]) -> list[Any]:
    """A fractional rule's own bucketing expression (e.g. by customer id), kept from step to step."""
    targeting = definition.get("targeting")
    if isinstance(targeting, dict) and list(targeting) == ["fractional"]:
        fractions = targeting["fractional"]
        if isinstance(fractions, list) and fractions and not isinstance(fractions[0], list):
            return [copy.deepcopy(fractions[0])]
    return []


@dataclass
class FlagFileUpdate:
    """What `add_missing` did to one flag file: created it, added flags, kept flags as they were."""

    path: Path
    created: bool
    added: list[str] = field(default_factory=list)
    kept: list[FlagState] = field(default_factory=list)


class FlagdFileBackend(FlagBackend):
    name = "flagd-file"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, environment: str) -> Path:
        return flag_file(self.directory, environment)

    async def read(self, environment: str, flags: Iterable[str]) -> list[FlagState]:
        return await asyncio.to_thread(self._read, environment, list(flags))

    async def list_flags(self, environment: str) -> list[FlagState]:
        doc = await asyncio.to_thread(self._load, environment)
        return [self._state(environment, key, doc["flags"].get(key)) for key in doc["flags"]]

    async def known_environments(self) -> list[str]:
        found = await asyncio.to_thread(flag_environments, self.directory)
        if not found:
            raise FlagConfigError(
                f"no flag files in {self.directory} (create them with `warden flags init`)"
            )
        return found

    async def set_percent(self, environment: str, flag: str, percent: int) -> FlagChangeResult:
        return await asyncio.to_thread(self._set_percent, environment, flag, percent)

    async def restore(self, environment: str, states: list[FlagState]) -> None:
        await asyncio.to_thread(self._restore, environment, states)

    def add_missing(
        self, environment: str, flags: dict[str, int], *, dry_run: bool = False
    ) -> FlagFileUpdate:
        """Add the flags the environment's file does not define yet, at the given percentages
        (creating the file when there is none); a flag already there is never changed.
        `dry_run` reads the file and says what would change, writing nothing."""
        with self._locked(environment):
            path = self.path(environment)
            created = not path.exists()
            doc: dict[str, Any] = (
                {"$schema": SCHEMA_URL, "flags": {}} if created else self._load(environment)
            )
            update = FlagFileUpdate(path=path, created=created)
            for key, percent in flags.items():
                current = doc["flags"].get(key)
                if current is None:
                    doc["flags"][key] = boolean_flag(percent)
                    update.added.append(key)
                else:
                    update.kept.append(self._state(environment, key, current))
            if (created or update.added) and not dry_run:
                self._write(environment, doc)
            return update

    # -- file work, under the environment's lock -------------------------------------------

    def _read(self, environment: str, flags: list[str]) -> list[FlagState]:
        doc = self._load(environment)
        return [self._state(environment, key, doc["flags"].get(key)) for key in flags]

    def _set_percent(self, environment: str, flag: str, percent: int) -> FlagChangeResult:
        with self._locked(environment):
            doc = self._load(environment)
            current = doc["flags"].get(flag)
            if current is None:
                raise FlagNotFound(
                    f"flag {flag!r} does not exist in {self.path(environment)}; add it at the "
                    f"percentage it serves now with `warden flags add {flag} --env {environment} "
                    "--percent N` (it leaves every other flag as it is)"
                )
            before = self._state(environment, flag, current)
            updated = apply_percent(current, percent, flag)
            changed = updated != current
            if changed:
                doc["flags"][flag] = updated
                self._write(environment, doc)
            return FlagChangeResult(
                flag=flag,
                environment=environment,
                percent=percent,
                changed=changed,
                before=before,
                after=self._state(environment, flag, updated),
            )

    def _restore(self, environment: str, states: list[FlagState]) -> None:
        with self._locked(environment):
            doc = self._load(environment)
            changed = False
            for state in states:
                current = doc["flags"].get(state.flag)
                if not state.exists:
                    if current is not None:
                        del doc["flags"][state.flag]
                        changed = True
                elif current != state.definition:
                    doc["flags"][state.flag] = copy.deepcopy(state.definition)
                    changed = True
            if changed:
                self._write(environment, doc)

    def _state(self, environment: str, flag: str, definition: dict[str, Any] | None) -> FlagState:
        if definition is None:
            return FlagState(flag=flag, environment=environment, exists=False)
        try:
            enabled, percent = percent_of(flag, definition)
        except FlagConfigError:
            enabled, percent = definition.get("state") == "ENABLED", None
        return FlagState(
            flag=flag,
            environment=environment,
            exists=True,
            enabled=enabled,
            percent=percent,
            definition=copy.deepcopy(definition),
        )

    def _load(self, environment: str) -> dict[str, Any]:
        path = self.path(environment)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            existing = flag_environments(self.directory)
            there = (
                f"flag files exist for {', '.join(existing)}; "
                if existing
                else "no flag files yet; "
            )
            raise FlagConfigError(
                f"no flag file for environment {environment!r} at {path} ({there}create it with "
                f"`warden flags init --env {environment}`)"
            ) from None
        except OSError as exc:
            raise FlagBackendError(f"cannot read {path}: {exc}") from exc
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FlagConfigError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("flags"), dict):
            raise FlagConfigError(f"{path} is not a flagd flag file (no 'flags' object)")
        return doc

    def _write(self, environment: str, doc: dict[str, Any]) -> None:
        path = self.path(environment)
        try:
            write_json_atomic(path, doc)
        except OSError as exc:  # disk full, read-only file system, a directory in the way
            raise FlagBackendError(f"cannot write {path}: {exc.strerror or exc}") from exc

    @contextmanager
    def _locked(self, environment: str) -> Iterator[None]:
        lock_path = self.directory / f".{environment}.flagd.lock"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle = open(lock_path, "a+")  # closed by the `with` below, after the unlock
        except OSError as exc:
            raise FlagBackendError(f"cannot lock {lock_path}: {exc.strerror or exc}") from exc
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def dump_flag_document(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    """Readers see the old file or the new one, never half of either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(dump_flag_document(doc))
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def init_flag_file(path: Path, flags: dict[str, int]) -> bool:
    """Create a flag file with boolean flags at the given percentages; False if it exists."""
    if path.exists():
        return False
    doc = {"$schema": SCHEMA_URL, "flags": {key: boolean_flag(p) for key, p in flags.items()}}
    write_json_atomic(path, doc)
    return True
