"""Notices: what Release Warden tells people through webhooks (Slack, Feishu, DingTalk, JSON)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from warden.models.common import Record


class Notice(Record):
    key: str = Field(description="Stable id of the state change; a webhook receives each key once.")
    title: str
    text: str
    severity: Literal["info", "warning", "critical"] = "info"
    audience: list[str] = Field(default_factory=list)
    release_id: str | None = None
    stage: str | None = None
    trace_id: str | None = None
    link: str | None = None


class NoticeResult(Record):
    delivered: int = 0
    failed: list[str] = Field(default_factory=list)
    skipped: bool = False
