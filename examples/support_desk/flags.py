"""Feature flags through OpenFeature, served by the flagd provider reading a flagd JSON file.

The file is the one Release Warden's flagd-file backend writes (`<flags dir>/<env>.flagd.json`);
the provider polls it, so a ramp step is visible here within `flag_poll_ms`. Percentages are
flagd `fractional` targeting, hashed on the evaluation's `targetingKey`: the service passes the
conversation (or customer, or owner) id, so 25% means a stable quarter of conversations.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.provider.no_op_provider import NoOpProvider

log = logging.getLogger("support_desk.flags")

AI_SOLUTIONS = "ai.solutions"
CHANNEL_FEISHU = "chat.channel.feishu"
CHANNEL_ENTERPRISE_QQ = "chat.channel.enterprise-qq"
PROFILE_REFRESH = "customer.profile.refresh"
PRIORITY_CREATION = "requirements.priorityCreation"

#: Every flag the service reads, in the order the release checklist names them.
FLAG_KEYS = (
    CHANNEL_FEISHU,
    CHANNEL_ENTERPRISE_QQ,
    PROFILE_REFRESH,
    PRIORITY_CREATION,
    AI_SOLUTIONS,
)

#: Channels that can be switched off by a flag; the others are always open.
CHANNEL_FLAGS = {"feishu": CHANNEL_FEISHU, "enterprise-qq": CHANNEL_ENTERPRISE_QQ}


def default_flags() -> dict[str, int]:
    """The flags with their initial percentages: channels open, new behaviour off."""
    return {
        CHANNEL_FEISHU: 100,
        CHANNEL_ENTERPRISE_QQ: 100,
        PROFILE_REFRESH: 0,
        PRIORITY_CREATION: 0,
        AI_SOLUTIONS: 0,
    }


def seed_flag_file(path: Path, flags: dict[str, int] | None = None) -> bool:
    """Create a flagd file with the service's flags (Release Warden's own writer); False if it exists."""
    from warden.flagstore.flagd_file import init_flag_file

    return init_flag_file(path, flags if flags is not None else default_flags())


class DeskFlags:
    """One OpenFeature client per service instance, in its own provider domain.

    A flag the file does not define (or no file at all, or an unreadable one) evaluates to its
    default from `default_flags()`: channels open, new behaviour off. The service keeps serving.
    """

    def __init__(self, flags_file: Path | None, poll_ms: int = 200) -> None:
        self.flags_file = flags_file
        self.domain = f"support-desk-{uuid.uuid4().hex[:8]}"
        self._provider: FlagdProvider | None = None
        if flags_file is not None:
            # In this provider version the file watcher sleeps `deadline_ms` between mtime checks.
            self._provider = FlagdProvider(
                resolver_type=ResolverType.FILE,
                offline_flag_source_path=str(flags_file),
                deadline_ms=poll_ms,
            )
        self.client: OpenFeatureClient = api.get_client(domain=self.domain)

    def start(self) -> None:
        if self._provider is None:
            return
        try:
            api.set_provider_and_wait(self._provider, domain=self.domain)
        except Exception as exc:  # an unreadable file must not keep the service down
            log.warning(
                "flags file %s not readable yet (%s); flags are off until it is",
                self.flags_file,
                exc,
            )

    def stop(self) -> None:
        if self._provider is not None:
            self._provider.shutdown()
            api.set_provider(NoOpProvider(), domain=self.domain)

    def enabled(self, flag: str, targeting_key: str) -> bool:
        """Whether `flag` serves its on-variant to `targeting_key` (a conversation, customer or owner id)."""
        context = EvaluationContext(targeting_key=targeting_key)
        default = default_flags().get(flag, 0) == 100
        return bool(self.client.get_boolean_value(flag, default, context))

    def channel_enabled(self, channel: str, targeting_key: str) -> bool:
        flag = CHANNEL_FLAGS.get(channel)
        return True if flag is None else self.enabled(flag, targeting_key)
