"""The audit trail from the outside: query it, export it, accept events from other systems."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError

from warden.errors import Unavailable
from warden.models.audit import AuditEvent, AuditQuery
from warden.stores.audit import AuditStore, to_csv

T = TypeVar("T")


class AuditUnavailable(Unavailable):
    """The audit store cannot be read or written."""


class AuditService:
    """Blocking (database calls): faces that serve many callers run it in a thread."""

    def __init__(self, store: AuditStore) -> None:
        self.store = store

    def query(self, query: AuditQuery) -> list[AuditEvent]:
        return self._guarded(lambda: self.store.query(query), "read")

    def export(self, query: AuditQuery, *, csv: bool) -> tuple[str, int]:
        """CSV with a header row, or JSON lines (one event a line); and how many events."""
        events = self.query(query)
        text = to_csv(events) if csv else "".join(e.model_dump_json() + "\n" for e in events)
        return text, len(events)

    def accept(self, event: AuditEvent) -> tuple[AuditEvent, bool]:
        """Store `event` unless its id is stored already: (the stored event, whether it is new)."""

        def write() -> tuple[AuditEvent, bool]:
            if self.store.write([event]):
                return event, True
            return self.store.get(event.eventId) or event, False

        return self._guarded(write, "written")

    def _guarded(self, call: Callable[[], T], verb: str) -> T:
        try:
            return call()
        except SQLAlchemyError:
            raise AuditUnavailable(
                f"the audit store cannot be {verb}; try again", "AuditStoreUnavailable"
            ) from None
