"""The desk's domain: conversations over IM channels, requirements, tasks, contracts, audit events.

In memory, one instance per process, driven from the event loop only (every endpoint is async),
so no locking is needed. Every write is an audit event; every outcome moves a metric.
"""

from __future__ import annotations

import math
import random
import uuid
import zlib
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from examples.support_desk import flags as flag_keys
from examples.support_desk.config import DeskConfig
from examples.support_desk.flags import DeskFlags
from examples.support_desk.metrics import CHANNELS, DeskMetrics
from examples.support_desk.models import (
    AuditEventPublic,
    Author,
    ChannelStatus,
    ContractCreate,
    ContractPublic,
    ContractStatus,
    ContractUpdate,
    ConversationCreate,
    ConversationPublic,
    ConversationStatus,
    CustomerProfile,
    MessageCreate,
    MessagePublic,
    Priority,
    RequirementCreate,
    RequirementPublic,
    SlaPublic,
    SlaTier,
    Solution,
    SolutionRequest,
    SolutionSuggestions,
    TaskCreate,
    TaskPublic,
    TaskState,
    TaskUpdate,
)

#: Typical delivery latency per channel, in seconds (jittered log-normally).
CHANNEL_BASE_LATENCY = {
    "feishu": 0.06,
    "enterprise-qq": 0.09,
    "wecom": 0.07,
    "dingtalk": 0.08,
    "web-chat": 0.03,
    "email": 0.4,
}

#: The knowledge base behind AI-suggested solutions.
ARTICLES = (
    ("kb-101", "Reset a customer's password", ("password", "login", "reset")),
    ("kb-102", "Refund an order", ("refund", "money", "order")),
    ("kb-103", "Reconnect an IM channel", ("channel", "feishu", "wecom", "dingtalk", "qq")),
    ("kb-104", "Change a contract's billing contact", ("contract", "billing", "invoice")),
    ("kb-105", "Escalate to second-line support", ("urgent", "escalate", "outage")),
)

TIER_RANK = {SlaTier.STANDARD: 0, SlaTier.PRIORITY: 1, SlaTier.VIP: 2}


class NotFound(Exception):
    """The addressed resource does not exist (404)."""


class Conflict(Exception):
    """The request is valid but the resource's state does not allow it (409)."""


class UpstreamFailure(Exception):
    """An external API failed and the build lets it through as a 500."""


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


@dataclass
class Conversation:
    id: str
    customer_id: str
    channel: str
    tier: SlaTier
    first_response_minutes: int
    subject: str | None
    created_at: datetime
    status: ConversationStatus = ConversationStatus.OPEN
    messages: int = 0
    first_agent_reply_at: datetime | None = None
    resolved_at: datetime | None = None
    sla_met: bool | None = None
    #: Simulated traffic only: minutes of agent response time the simulator stands in for.
    synthetic_response_minutes: float | None = None

    def public(self) -> ConversationPublic:
        return ConversationPublic(
            id=self.id,
            customer_id=self.customer_id,
            channel=self.channel,
            sla=SlaPublic(tier=self.tier, first_response_minutes=self.first_response_minutes),
            subject=self.subject,
            status=self.status,
            messages=self.messages,
            created_at=self.created_at,
            resolved_at=self.resolved_at,
            sla_met=self.sla_met,
        )


@dataclass
class AuditRecord:
    id: str
    action: str
    entity: str
    result: str
    user_id: str
    timestamp: datetime
    trace_id: str | None

    def public(self) -> AuditEventPublic:
        return AuditEventPublic(
            id=self.id,
            action=self.action,
            entity=self.entity,
            result=self.result,
            user_id=self.user_id,
            timestamp=self.timestamp,
            trace_id=self.trace_id,
        )


@dataclass
class Desk:
    config: DeskConfig
    flags: DeskFlags
    metrics: DeskMetrics
    conversations: dict[str, Conversation] = field(default_factory=dict)
    requirements: dict[str, RequirementPublic] = field(default_factory=dict)
    tasks: dict[str, TaskPublic] = field(default_factory=dict)
    contracts: dict[str, ContractPublic] = field(default_factory=dict)
    audit_log: deque[AuditRecord] = field(default_factory=lambda: deque(maxlen=1000))
    channels_down: set[str] = field(default_factory=set)
    #: While paused, no audit events are recorded (exercises "no audit event for 5 minutes").
    audit_paused: bool = False
    rng: random.Random = field(default_factory=random.Random)
    #: Share of simulated conversations that miss their SLA; a dev endpoint changes it at run time.
    sla_overdue_rate: float = 0.0

    def __post_init__(self) -> None:
        if self.config.seed is not None:
            self.rng.seed(self.config.seed)
        self.sla_overdue_rate = self.config.sla_overdue_rate

    # -- audit -------------------------------------------------------------------------------

    def audit(
        self,
        action: str,
        entity: str,
        result: str = "ok",
        *,
        user: str = "api",
        trace_id: str | None = None,
    ) -> None:
        if self.audit_paused:
            return
        record = AuditRecord(
            id=_new_id("evt"),
            action=action,
            entity=entity,
            result=result,
            user_id=user,
            timestamp=_now(),
            trace_id=trace_id,
        )
        self.audit_log.append(record)
        self.metrics.audit_events.inc()
        self.metrics.audit_last_event.set(record.timestamp.timestamp())

    def audit_events(self, limit: int) -> list[AuditEventPublic]:
        return [r.public() for r in list(self.audit_log)[-limit:][::-1]]

    # -- channels ------------------------------------------------------------------------------

    def channel_status(self, channel: str) -> ChannelStatus:
        return ChannelStatus(
            channel=channel,
            up=channel not in self.channels_down,
            flag=flag_keys.CHANNEL_FLAGS.get(channel),
            conversations_open=sum(
                1
                for c in self.conversations.values()
                if c.channel == channel and c.status == ConversationStatus.OPEN
            ),
        )

    def set_channel_up(self, channel: str, up: bool) -> None:
        if channel not in CHANNELS:
            raise NotFound(f"unknown channel {channel!r}")
        if up:
            self.channels_down.discard(channel)
        else:
            self.channels_down.add(channel)
        self.metrics.channel_up.labels(channel=channel).set(1 if up else 0)
        self.audit("channel.up" if up else "channel.down", f"channel:{channel}", user="operator")

    def _deliver(self, channel: str) -> float:
        """Send over the IM gateway; returns the delivery latency in milliseconds."""
        self.metrics.external_requests.labels(api="im-gateway").inc()
        if channel in self.channels_down:
            self.metrics.external_errors.labels(api="im-gateway").inc()
            raise Conflict(f"channel {channel} is down; the message was not delivered")
        base = CHANNEL_BASE_LATENCY[channel]
        latency = base * math.exp(self.rng.gauss(0.0, 0.35))
        self.metrics.channel_latency.labels(channel=channel).observe(latency)
        return round(latency * 1000, 2)

    # -- conversations ---------------------------------------------------------------------------

    def create_conversation(
        self, body: ConversationCreate, trace_id: str | None = None
    ) -> Conversation:
        channel = body.channel.value
        if not self.flags.channel_enabled(channel, body.customer_id):
            raise Conflict(
                f"channel {channel} is not open for customer {body.customer_id} (flag off)"
            )
        if channel in self.channels_down:
            raise Conflict(f"channel {channel} is down")
        conversation = Conversation(
            id=_new_id("conv"),
            customer_id=body.customer_id,
            channel=channel,
            tier=body.sla.tier,
            first_response_minutes=body.sla.first_response_minutes,
            subject=body.subject,
            created_at=_now(),
        )
        self.conversations[conversation.id] = conversation
        self.audit("conversation.created", f"conversation:{conversation.id}", trace_id=trace_id)
        return conversation

    def conversation(self, conversation_id: str) -> Conversation:
        found = self.conversations.get(conversation_id)
        if found is None:
            raise NotFound(f"conversation {conversation_id} not found")
        return found

    def list_conversations(
        self, channel: str | None, status: str | None, limit: int
    ) -> tuple[list[ConversationPublic], int]:
        matching = [
            c
            for c in self.conversations.values()
            if (channel is None or c.channel == channel) and (status is None or c.status == status)
        ]
        return [c.public() for c in matching[-limit:]], len(matching)

    def delete_conversation(self, conversation_id: str, trace_id: str | None = None) -> None:
        self.conversation(conversation_id)
        del self.conversations[conversation_id]
        self.audit("conversation.deleted", f"conversation:{conversation_id}", trace_id=trace_id)

    def add_message(
        self, conversation_id: str, body: MessageCreate, trace_id: str | None = None
    ) -> MessagePublic:
        conversation = self.conversation(conversation_id)
        if conversation.status == ConversationStatus.RESOLVED:
            raise Conflict(f"conversation {conversation_id} is resolved")
        delivered_ms = self._deliver(conversation.channel)
        now = _now()
        conversation.messages += 1
        if body.author == Author.AGENT and conversation.first_agent_reply_at is None:
            conversation.first_agent_reply_at = now
        self.audit("message.sent", f"conversation:{conversation_id}", trace_id=trace_id)
        return MessagePublic(
            id=_new_id("msg"),
            conversation_id=conversation_id,
            author=body.author,
            text=body.text,
            channel=conversation.channel,
            delivered_ms=delivered_ms,
            created_at=now,
        )

    def resolve(self, conversation_id: str, trace_id: str | None = None) -> Conversation:
        conversation = self.conversation(conversation_id)
        if conversation.status == ConversationStatus.RESOLVED:
            raise Conflict(f"conversation {conversation_id} is already resolved")
        now = _now()
        if conversation.synthetic_response_minutes is not None:
            response_minutes = conversation.synthetic_response_minutes
        else:
            answered = conversation.first_agent_reply_at or now
            response_minutes = (answered - conversation.created_at) / timedelta(minutes=1)
        overdue = response_minutes > conversation.first_response_minutes
        conversation.status = ConversationStatus.RESOLVED
        conversation.resolved_at = now
        conversation.sla_met = not overdue
        self.metrics.record_sla(overdue)
        self.audit(
            "conversation.resolved",
            f"conversation:{conversation_id}",
            "overdue" if overdue else "met",
            trace_id=trace_id,
        )
        return conversation

    def customer_profile(self, customer_id: str) -> CustomerProfile:
        mine = [c for c in self.conversations.values() if c.customer_id == customer_id]
        if not mine:
            raise NotFound(f"customer {customer_id} has no conversations")
        refreshed = self.flags.enabled(flag_keys.PROFILE_REFRESH, customer_id)
        tier = None
        if refreshed:
            self.metrics.external_requests.labels(api="crm").inc()
            tier = max((c.tier for c in mine), key=TIER_RANK.__getitem__)
        return CustomerProfile(
            customer_id=customer_id,
            conversations=len(mine),
            open_conversations=sum(1 for c in mine if c.status == ConversationStatus.OPEN),
            channels=sorted({c.channel for c in mine}),
            refreshed=refreshed,
            tier=tier,
        )

    # -- AI-suggested solutions -----------------------------------------------------------------

    def suggest_solutions(self, body: SolutionRequest) -> SolutionSuggestions | dict[str, Any]:
        """Knowledge-base articles for a question, when `ai.solutions` is on for the conversation.

        The bad build ships a new AI client that passes the service's percent scores through as
        text ("87%") and lets upstream timeouts escape as 500s: it breaks the declared contract and
        raises the error rate, but only for conversations the flag is on for.
        """
        if not self.flags.enabled(flag_keys.AI_SOLUTIONS, body.conversation_id):
            return SolutionSuggestions(
                conversation_id=body.conversation_id, enabled=False, solutions=[]
            )
        self.metrics.external_requests.labels(api="ai-solutions").inc()
        words = body.question.lower()
        scored = []
        for article_id, title, keywords in ARTICLES:
            hits = sum(1 for k in keywords if k in words)
            scored.append((article_id, title, round(min(1.0, 0.2 + 0.25 * hits), 2)))
        scored.sort(key=lambda item: item[2], reverse=True)
        top = scored[:3]
        if self.config.build == "bad":
            # Deterministic per request, so a failure reproduces from its curl command.
            if zlib.crc32(f"{body.conversation_id}|{body.question}".encode()) % 2 == 0:
                self.metrics.external_errors.labels(api="ai-solutions").inc()
                raise UpstreamFailure("ai-solutions upstream timed out")
            return {
                "conversationId": body.conversation_id,
                "enabled": True,
                "solutions": [
                    {"articleId": a, "title": t, "confidence": f"{round(score * 100)}%"}
                    for a, t, score in top
                ],
            }
        return SolutionSuggestions(
            conversation_id=body.conversation_id,
            enabled=True,
            solutions=[Solution(article_id=a, title=t, confidence=score) for a, t, score in top],
        )

    # -- requirements and tasks ------------------------------------------------------------------

    def create_requirement(
        self, body: RequirementCreate, trace_id: str | None = None
    ) -> RequirementPublic:
        applied = self.flags.enabled(flag_keys.PRIORITY_CREATION, body.owner)
        requirement = RequirementPublic(
            id=_new_id("req"),
            title=body.title,
            priority=body.priority if applied else Priority.MEDIUM,
            owner=body.owner,
            description=body.description,
            priority_applied=applied,
            created_at=_now(),
        )
        self.requirements[requirement.id] = requirement
        self.metrics.pipeline_items.labels(kind="requirement", state="created").inc()
        self.audit("requirement.created", f"requirement:{requirement.id}", trace_id=trace_id)
        return requirement

    def requirement(self, requirement_id: str) -> RequirementPublic:
        found = self.requirements.get(requirement_id)
        if found is None:
            raise NotFound(f"requirement {requirement_id} not found")
        return found

    def delete_requirement(self, requirement_id: str, trace_id: str | None = None) -> None:
        self.requirement(requirement_id)
        del self.requirements[requirement_id]
        self.metrics.pipeline_items.labels(kind="requirement", state="deleted").inc()
        self.audit("requirement.deleted", f"requirement:{requirement_id}", trace_id=trace_id)

    def create_task(self, body: TaskCreate, trace_id: str | None = None) -> TaskPublic:
        if body.requirement_id is not None:
            self.requirement(body.requirement_id)
        now = _now()
        task = TaskPublic(
            id=_new_id("task"),
            title=body.title,
            priority=body.priority,
            owner=body.owner,
            state=TaskState.TODO,
            requirement_id=body.requirement_id,
            created_at=now,
            updated_at=now,
        )
        self.tasks[task.id] = task
        self.metrics.pipeline_items.labels(kind="task", state=TaskState.TODO.value).inc()
        self.audit("task.created", f"task:{task.id}", trace_id=trace_id)
        return task

    def task(self, task_id: str) -> TaskPublic:
        found = self.tasks.get(task_id)
        if found is None:
            raise NotFound(f"task {task_id} not found")
        return found

    def update_task(
        self, task_id: str, body: TaskUpdate, trace_id: str | None = None
    ) -> TaskPublic:
        task = self.task(task_id)
        changes = body.model_dump(exclude_none=True)
        updated = task.model_copy(update={**changes, "updated_at": _now()})
        self.tasks[task_id] = updated
        if body.state is not None and body.state != task.state:
            self.metrics.pipeline_items.labels(kind="task", state=body.state.value).inc()
        self.audit("task.updated", f"task:{task_id}", trace_id=trace_id)
        return updated

    def delete_task(self, task_id: str, trace_id: str | None = None) -> None:
        self.task(task_id)
        del self.tasks[task_id]
        self.metrics.pipeline_items.labels(kind="task", state="deleted").inc()
        self.audit("task.deleted", f"task:{task_id}", trace_id=trace_id)

    # -- contracts ----------------------------------------------------------------------------------

    def create_contract(self, body: ContractCreate, trace_id: str | None = None) -> ContractPublic:
        now = _now()
        contract = ContractPublic(
            id=_new_id("ctr"),
            customer_id=body.customer_id,
            title=body.title,
            status=body.status,
            annual_value=body.annual_value,
            created_at=now,
            updated_at=now,
        )
        self.contracts[contract.id] = contract
        self.audit("contract.created", f"contract:{contract.id}", trace_id=trace_id)
        return contract

    def contract(self, contract_id: str) -> ContractPublic:
        found = self.contracts.get(contract_id)
        if found is None:
            raise NotFound(f"contract {contract_id} not found")
        return found

    def update_contract(
        self, contract_id: str, body: ContractUpdate, trace_id: str | None = None
    ) -> ContractPublic:
        contract = self.contract(contract_id)
        if (
            contract.status == ContractStatus.TERMINATED
            and body.status != ContractStatus.TERMINATED
        ):
            raise Conflict(
                f"contract {contract_id} is terminated; a terminated contract cannot change status"
            )
        updated = contract.model_copy(update={"status": body.status, "updated_at": _now()})
        self.contracts[contract_id] = updated
        self.audit(
            "contract.status_changed",
            f"contract:{contract_id}",
            body.status.value,
            trace_id=trace_id,
        )
        return updated

    def delete_contract(self, contract_id: str, trace_id: str | None = None) -> None:
        self.contract(contract_id)
        del self.contracts[contract_id]
        self.audit("contract.deleted", f"contract:{contract_id}", trace_id=trace_id)

    # -- simulation support ----------------------------------------------------------------------------

    def sample_response_minutes(self, conversation: Conversation) -> float:
        """A synthetic agent response time: overdue with probability `sla_overdue_rate`."""
        limit = conversation.first_response_minutes
        if self.rng.random() < self.sla_overdue_rate:
            return limit * (1.0 + self.rng.uniform(0.1, 2.0))
        return limit * self.rng.uniform(0.05, 0.95)
