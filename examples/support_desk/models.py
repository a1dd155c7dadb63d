"""The desk's API models. Request models are strict and closed, so the OpenAPI document says exactly
what the service accepts: what it declares valid it accepts, everything else is a 422."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict

#: Ids the service hands out and the customer/owner ids it is given: letters, digits, '_' and '-'.
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


def _integral_float(value: Any) -> Any:
    """JSON Schema counts 5.0 as an integer; strict int validation would not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: An integer as JSON Schema defines it: 5 or 5.0, never "5" or true.
JsonInt = Annotated[int, BeforeValidator(_integral_float), Strict()]
#: A number as JSON Schema defines it: 5 or 5.5, never "5" or true.
JsonNumber = Annotated[float, Strict()]

Id = Annotated[str, Field(pattern=ID_PATTERN, min_length=1, max_length=64)]
Title = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(min_length=1, max_length=2000)]


class Channel(StrEnum):
    FEISHU = "feishu"
    ENTERPRISE_QQ = "enterprise-qq"
    WECOM = "wecom"
    DINGTALK = "dingtalk"
    WEB_CHAT = "web-chat"
    EMAIL = "email"


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"


class SlaTier(StrEnum):
    STANDARD = "standard"
    PRIORITY = "priority"
    VIP = "vip"


class ConversationStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Author(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"


class TaskState(StrEnum):
    TODO = "todo"
    IN_PROGRESS = "in_progress"
    DONE = "done"


class ContractStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class RequestModel(BaseModel):
    """Closed: an unknown field is a 422. Numbers are strict (see `JsonInt`), so "5" is not 5."""

    model_config = ConfigDict(extra="forbid", populate_by_name=False)


class ResponseModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


# -- errors ------------------------------------------------------------------------------------


class Problem(ResponseModel):
    """Every 4xx other than a validation error."""

    detail: str


# -- health and channels -------------------------------------------------------------------------


class Health(ResponseModel):
    status: str
    build: str
    version: str


class ChannelStatus(ResponseModel):
    channel: Channel
    up: bool
    flag: str | None = Field(
        description="Flag that gates new conversations on this channel, if any."
    )
    conversations_open: int = Field(alias="conversationsOpen", ge=0)


# -- conversations ---------------------------------------------------------------------------------


class Sla(RequestModel):
    tier: SlaTier
    first_response_minutes: JsonInt = Field(alias="firstResponseMinutes", ge=1, le=1440)


class SlaPublic(ResponseModel):
    tier: SlaTier
    first_response_minutes: int = Field(alias="firstResponseMinutes", ge=1, le=1440)


class ConversationCreate(RequestModel):
    customer_id: Id = Field(alias="customerId")
    channel: Channel
    sla: Sla
    subject: str | None = Field(default=None, max_length=200)


class ConversationPublic(ResponseModel):
    id: str
    customer_id: str = Field(alias="customerId")
    channel: Channel
    sla: SlaPublic
    subject: str | None = None
    status: ConversationStatus
    messages: int = Field(ge=0)
    created_at: datetime = Field(alias="createdAt")
    resolved_at: datetime | None = Field(default=None, alias="resolvedAt")
    sla_met: bool | None = Field(default=None, alias="slaMet")


class ConversationList(ResponseModel):
    items: list[ConversationPublic]
    total: int = Field(ge=0)


class MessageCreate(RequestModel):
    author: Author
    text: Text


class MessagePublic(ResponseModel):
    id: str
    conversation_id: str = Field(alias="conversationId")
    author: Author
    text: str
    channel: Channel
    delivered_ms: float = Field(alias="deliveredMs", ge=0)
    created_at: datetime = Field(alias="createdAt")


class CustomerProfile(ResponseModel):
    customer_id: str = Field(alias="customerId")
    conversations: int = Field(ge=0)
    open_conversations: int = Field(alias="openConversations", ge=0)
    channels: list[Channel]
    refreshed: bool = Field(
        description="True when the profile was refreshed from the CRM for this request."
    )
    tier: SlaTier | None = None


# -- AI-suggested solutions (behind `ai.solutions`) --------------------------------------------


class SolutionRequest(RequestModel):
    conversation_id: Id = Field(alias="conversationId")
    question: Text


class Solution(ResponseModel):
    article_id: str = Field(alias="articleId")
    title: str
    confidence: float = Field(ge=0, le=1)


class SolutionSuggestions(ResponseModel):
    conversation_id: str = Field(alias="conversationId")
    enabled: bool = Field(
        description="Whether AI suggestions are switched on for this conversation."
    )
    solutions: list[Solution]


# -- requirements and tasks ----------------------------------------------------------------------


class RequirementCreate(RequestModel):
    title: Title
    priority: Priority
    owner: Id
    description: str | None = Field(default=None, max_length=2000)


class RequirementPublic(ResponseModel):
    id: str
    title: str
    priority: Priority
    owner: str
    description: str | None = None
    priority_applied: bool = Field(
        alias="priorityApplied",
        description="False when priority-based creation is off and the requirement was filed as medium.",
    )
    created_at: datetime = Field(alias="createdAt")


class RequirementList(ResponseModel):
    items: list[RequirementPublic]
    total: int = Field(ge=0)


class TaskCreate(RequestModel):
    title: Title
    priority: Priority
    owner: Id
    requirement_id: Id | None = Field(default=None, alias="requirementId")


class TaskUpdate(RequestModel):
    state: TaskState | None = None
    owner: Id | None = None
    priority: Priority | None = None


class TaskPublic(ResponseModel):
    id: str
    title: str
    priority: Priority
    owner: str
    state: TaskState
    requirement_id: str | None = Field(default=None, alias="requirementId")
    created_at: datetime = Field(alias="createdAt")
    updated_at: datetime = Field(alias="updatedAt")


class TaskList(ResponseModel):
    items: list[TaskPublic]
    total: int = Field(ge=0)


# -- contracts -------------------------------------------------------------------------------------


class ContractCreate(RequestModel):
    customer_id: Id = Field(alias="customerId")
    title: Title
    status: ContractStatus
    annual_value: JsonNumber | None = Field(default=None, alias="annualValue", ge=0, le=1e9)


class ContractUpdate(RequestModel):
    status: ContractStatus


class ContractPublic(ResponseModel):
    id: str
    customer_id: str = Field(alias="customerId")
    title: str
    status: ContractStatus
    annual_value: float | None = Field(default=None, alias="annualValue")
    created_at: datetime = Field(alias="createdAt")
    updated_at: datetime = Field(alias="updatedAt")


class ContractList(ResponseModel):
    items: list[ContractPublic]
    total: int = Field(ge=0)


# -- audit -------------------------------------------------------------------------------------------


class AuditEventPublic(ResponseModel):
    id: str
    action: str
    entity: str
    result: str
    user_id: str = Field(alias="userId")
    timestamp: datetime
    trace_id: str | None = Field(default=None, alias="traceId")


class AuditEventList(ResponseModel):
    items: list[AuditEventPublic]
    total: int = Field(ge=0)
