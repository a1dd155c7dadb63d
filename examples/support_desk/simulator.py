"""Synthetic workload: customers writing in over IM channels, agents answering, pipelines moving.

Traffic goes through the service's own HTTP stack (in-process, via httpx's ASGI transport), so it
passes the same routes, validation, flags and request metrics as real traffic: when `ai.solutions`
ramps up in the bad build, the simulated 5xx rate and `external_api_errors_total` rise with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections import Counter
from typing import Any

import httpx

from examples.support_desk.metrics import CHANNELS
from examples.support_desk.service import Desk

log = logging.getLogger("support_desk.simulator")

QUESTIONS = (
    "I cannot login after the password reset",
    "Please refund my last order",
    "The feishu channel stopped delivering messages",
    "Who is the billing contact on our contract?",
    "Urgent: checkout is down for all our stores",
)
TIERS = ("standard", "priority", "vip")
PRIORITIES = ("low", "medium", "high", "urgent")
OWNERS = ("alice", "bob", "carol", "dave")


class TrafficSimulator:
    """About `rps` requests a second, as a handful of short customer journeys."""

    def __init__(self, app: Any, desk: Desk, rps: float, seed: int | None = None) -> None:
        self.desk = desk
        self.rps = rps
        self.rng = random.Random(seed)
        self.statuses: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://support-desk.sim",
            headers={"X-Trace-Id": f"sim-{uuid.uuid4().hex[:12]}"},
        )
        self._open: list[str] = []
        self._tasks: list[str] = []

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="support-desk-simulator"
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.aclose()

    def stats(self) -> dict[str, Any]:
        return {
            "rps": self.rps,
            "statuses": dict(self.statuses),
            "openConversations": len(self._open),
        }

    async def _run(self) -> None:
        interval = 1.0 / self.rps
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            try:
                await self._step()
            except Exception:  # the simulator keeps going whatever one request does
                log.exception("simulated request failed")
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            # Fell far behind (a paused process): carry on from now instead of bursting to catch up.
            if loop.time() - next_at > 5:
                next_at = loop.time()

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        headers = {"X-Request-Id": uuid.uuid4().hex}
        response = await self._client.request(method, path, json=body, headers=headers)
        self.statuses[f"{response.status_code // 100}xx"] += 1
        return response

    async def _step(self) -> None:
        """One request of a journey, chosen by what the desk currently has open."""
        roll = self.rng.random()
        if roll < 0.25 or not self._open:
            await self._open_conversation()
        elif roll < 0.55:
            await self._message(self.rng.choice(self._open))
        elif roll < 0.70:
            await self._suggest(self.rng.choice(self._open))
        elif roll < 0.85:
            await self._resolve(self._open.pop(self.rng.randrange(len(self._open))))
        elif roll < 0.95:
            await self._pipeline()
        else:
            customer = f"cust-{self.rng.randrange(200)}"
            await self._call("GET", f"/customers/{customer}/profile")

    async def _open_conversation(self) -> None:
        body = {
            "customerId": f"cust-{self.rng.randrange(200)}",
            "channel": self.rng.choice(CHANNELS),
            "sla": {
                "tier": self.rng.choice(TIERS),
                "firstResponseMinutes": self.rng.choice((5, 15, 30, 60)),
            },
            "subject": self.rng.choice(QUESTIONS),
        }
        response = await self._call("POST", "/conversations", body)
        if response.status_code == 201:
            conversation_id = response.json()["id"]
            conversation = self.desk.conversations.get(conversation_id)
            if conversation is not None:
                conversation.synthetic_response_minutes = self.desk.sample_response_minutes(
                    conversation
                )
            self._open.append(conversation_id)
            del self._open[:-500]

    async def _message(self, conversation_id: str) -> None:
        author = self.rng.choice(("customer", "agent"))
        await self._call(
            "POST",
            f"/conversations/{conversation_id}/messages",
            {"author": author, "text": self.rng.choice(QUESTIONS)},
        )

    async def _suggest(self, conversation_id: str) -> None:
        # The conversation id is the targeting key: a 25% rollout reaches a stable quarter of conversations.
        await self._call(
            "POST",
            "/solutions/suggest",
            {"conversationId": conversation_id, "question": self.rng.choice(QUESTIONS)},
        )

    async def _resolve(self, conversation_id: str) -> None:
        await self._call("POST", f"/conversations/{conversation_id}/resolve")

    async def _pipeline(self) -> None:
        if self._tasks and self.rng.random() < 0.6:
            task_id = self._tasks.pop(0)
            await self._call("PATCH", f"/tasks/{task_id}", {"state": "in_progress"})
            await self._call("PATCH", f"/tasks/{task_id}", {"state": "done"})
            return
        owner = self.rng.choice(OWNERS)
        requirement = await self._call(
            "POST",
            "/requirements",
            {
                "title": "Support macro for refunds",
                "priority": self.rng.choice(PRIORITIES),
                "owner": owner,
            },
        )
        if requirement.status_code != 201:
            return
        task = await self._call(
            "POST",
            "/tasks",
            {
                "title": "Write the macro",
                "priority": self.rng.choice(PRIORITIES),
                "owner": owner,
                "requirementId": requirement.json()["id"],
            },
        )
        if task.status_code == 201:
            self._tasks.append(task.json()["id"])
            del self._tasks[:-200]
