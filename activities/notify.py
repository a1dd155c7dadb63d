"""Notices over webhooks: generic JSON, or the payloads Slack, Feishu and DingTalk bots accept."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from warden.http import new_client, trace_headers
from warden.models.notice import Notice, NoticeResult
from warden.stores.audit import AuditStore

FORMATS = ("json", "slack", "feishu", "dingtalk")


def parse_target(target: str) -> tuple[str, str]:
    """`slack:https://hooks...` → ("slack", url); a bare URL is generic JSON."""
    head, sep, rest = target.partition(":")
    if sep and head in FORMATS and rest.startswith(("http://", "https://")):
        return head, rest
    return "json", target


def render(notice: Notice, fmt: str) -> dict[str, Any]:
    icon = {"info": "ℹ️", "warning": "⚠️", "critical": "🚨"}[notice.severity]
    lines = [f"{icon} {notice.title}", notice.text]
    if notice.release_id:
        lines.append(
            f"release: {notice.release_id}" + (f" · stage: {notice.stage}" if notice.stage else "")
        )
    if notice.audience:
        lines.append("for: " + ", ".join(notice.audience))
    if notice.trace_id:
        lines.append(f"trace: {notice.trace_id}")
    text = "\n".join(lines)
    if fmt == "slack":
        return {"text": text}
    if fmt == "feishu":
        return {"msg_type": "text", "content": {"text": text}}
    if fmt == "dingtalk":
        return {"msgtype": "text", "text": {"content": text}}
    return {"source": "release-warden", **notice.model_dump(mode="json")}


def target_id(url: str) -> str:
    """Webhook URLs carry secrets; store only a hash of them."""
    return hashlib.sha256(url.encode()).hexdigest()[:32]


class NoticeActivities:
    def __init__(
        self, targets: list[str], store: AuditStore, http: httpx.AsyncClient | None = None
    ) -> None:
        self._targets = [parse_target(t) for t in targets]
        self._store = store
        self._owns_http = http is None
        self._http = http or new_client()

    async def aclose(self) -> None:
        """Close the HTTP client this made (the worker calls it when it stops)."""
        if self._owns_http:
            await self._http.aclose()

    @activity.defn(name="send_notice")
    async def send_notice(self, notice: Notice) -> NoticeResult:
        if not self._targets:
            activity.logger.info(
                "notice (no webhook configured): %s: %s", notice.title, notice.text
            )
            return NoticeResult(skipped=True)
        delivered, failed = 0, []
        for fmt, url in self._targets:
            tid = target_id(url)
            if await asyncio.to_thread(self._store.delivered, notice.key, tid):
                delivered += 1
                continue
            try:
                response = await self._http.post(
                    url, json=render(notice, fmt), headers=trace_headers(notice.trace_id)
                )
                response.raise_for_status()
            except httpx.HTTPError as exc:
                failed.append(f"{fmt} webhook: {type(exc).__name__}: {exc}")
                continue
            await asyncio.to_thread(self._store.mark_delivered, notice.key, tid)
            delivered += 1
        if failed and activity.info().attempt < 3:
            raise ApplicationError("; ".join(failed), type="NoticeDeliveryFailed")
        return NoticeResult(delivered=delivered, failed=failed)
