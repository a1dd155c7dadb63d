"""Who may do what: the governance file, approved access changes on top of it, and API tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import Boolean, Column, DateTime, String, Table, Text, select
from sqlalchemy.engine import Engine

from warden.models.governance import AccessGrant, ConfigSignoff, GovernanceFile
from warden.stores.db import insert_for, make_engine, metadata

access_grants = Table(
    "access_grants",
    metadata,
    Column("change_id", String(100), primary_key=True),
    Column("user_name", String(100), nullable=False),
    Column("role", String(100), nullable=False),
    Column("grant", Boolean, nullable=False),
    Column("requested_by", String(100), nullable=False),
    Column("approved_by", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

config_signoffs = Table(
    "config_signoffs",
    metadata,
    Column("change_id", String(100), primary_key=True),
    Column("version", String(100), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("requested_by", String(100), nullable=False),
    Column("approved_by", Text, nullable=False),
    Column("signed_at", DateTime(timezone=True), nullable=False),
)

#: What each base role may do; committee members decide sign-offs (checked by the workflow).
PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"release.view", "audit.read"}),
    "release-manager": frozenset(
        {
            "release.view",
            "release.start",
            "release.pause",
            "release.resume",
            "release.abort",
            "audit.read",
            "audit.write",
        }
    ),
    "operator": frozenset(
        {
            "release.view",
            "release.pause",
            "release.resume",
            "release.abort",
            "flags.change",
            "flags.view",
            "audit.read",
            "audit.write",
            "ops.use",
        }
    ),
    "committee-member": frozenset(
        {"release.view", "release.decide", "access.decide", "audit.read", "audit.write"}
    ),
}
#: What every user in the governance file may do, whatever their roles.
EVERY_ROLE = frozenset({"identity.view", "access.request", "access.view", "governance.view"})


def roles_for(permission: str) -> list[str]:
    """The roles that give `permission` (admin gives everything)."""
    if permission in EVERY_ROLE:
        return ["any user in the governance file"]
    found = [
        "committee-member:<committee>" if role == "committee-member" else role
        for role, allowed in PERMISSIONS.items()
        if permission in allowed
    ]
    return [*found, "admin"]


class GovernanceError(ValueError):
    """A governance file that cannot be used; the message is one readable line per problem."""


def load_governance(path: Path) -> GovernanceFile:
    import yaml

    from warden.models.plan import format_validation_error

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GovernanceError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise GovernanceError(f"{path}: cannot read: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise GovernanceError(f"{path}: the document is nested too deeply") from None
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        # PyYAML's constructors raise these for explicit tags with bad values (`!!float abc`)
        # and for integers too long for Python (over 4300 digits)
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise GovernanceError(f"{path}: not valid YAML (a value cannot be read: {first})") from None
    try:
        return GovernanceFile.model_validate(data)
    except ValidationError as exc:
        raise GovernanceError(f"{path}: " + "; ".join(format_validation_error(exc))) from None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh API token and the SHA-256 that goes into the governance file."""
    token = "wdn_" + secrets.token_urlsafe(32)
    return token, hash_token(token)


@dataclass(frozen=True)
class Principal:
    """Someone acting: their name, effective roles, and whether the name was only claimed (dev setup)."""

    name: str
    roles: frozenset[str]
    dev_identity: bool = False

    def can(self, permission: str) -> bool:
        if "admin" in self.roles or permission in EVERY_ROLE:
            return True
        for role in self.roles:
            base = role.split(":", 1)[0]
            if permission in PERMISSIONS.get(base, frozenset()):
                return True
        return False

    def committees(self) -> set[str]:
        return {r.split(":", 1)[1] for r in self.roles if r.startswith("committee-member:")}


class GovernanceStore:
    """Approved access changes and config sign-offs, in Release Warden's database."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = make_engine(url)

    def apply_grant(self, grant: AccessGrant) -> bool:
        """Record an approved change once (idempotent by change id); True when newly applied."""
        statement = (
            insert_for(self.engine)(access_grants)
            .values(
                change_id=grant.change_id,
                user_name=grant.user,
                role=grant.role,
                grant=grant.grant,
                requested_by=grant.requested_by,
                approved_by=",".join(grant.approved_by),
                reason=grant.reason,
                applied_at=grant.applied_at.astimezone(UTC),
            )
            .on_conflict_do_nothing(index_elements=["change_id"])
        )
        with self.engine.begin() as conn:
            return bool(conn.execute(statement).rowcount)

    def grants(self) -> list[AccessGrant]:
        with self.engine.connect() as conn:
            rows = (
                conn.execute(select(access_grants).order_by(access_grants.c.applied_at))
                .mappings()
                .all()
            )
        return [
            AccessGrant(
                change_id=r["change_id"],
                user=r["user_name"],
                role=r["role"],
                grant=r["grant"],
                requested_by=r["requested_by"],
                approved_by=[a for a in r["approved_by"].split(",") if a],
                reason=r["reason"],
                applied_at=_aware(r["applied_at"]),
            )
            for r in rows
        ]

    def record_signoff(self, signoff: ConfigSignoff) -> bool:
        statement = (
            insert_for(self.engine)(config_signoffs)
            .values(
                change_id=signoff.change_id,
                version=signoff.version,
                digest=signoff.digest,
                requested_by=signoff.requested_by,
                approved_by=",".join(signoff.approved_by),
                signed_at=signoff.signed_at.astimezone(UTC),
            )
            .on_conflict_do_nothing(index_elements=["change_id"])
        )
        with self.engine.begin() as conn:
            return bool(conn.execute(statement).rowcount)

    def signoff_for(self, digest: str) -> ConfigSignoff | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    select(config_signoffs)
                    .where(config_signoffs.c.digest == digest)
                    .order_by(config_signoffs.c.signed_at)
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        return ConfigSignoff(
            change_id=row["change_id"],
            version=row["version"],
            digest=row["digest"],
            requested_by=row["requested_by"],
            approved_by=[a for a in row["approved_by"].split(",") if a],
            signed_at=_aware(row["signed_at"]),
        )

    def close(self) -> None:
        self.engine.dispose()


def effective_roles(
    governance: GovernanceFile, grants: Iterable[AccessGrant], user: str
) -> frozenset[str]:
    """The file's roles, then every approved grant and revocation in the order applied."""
    found = governance.user(user)
    roles = set(found.roles) if found else set()
    for grant in grants:
        if grant.user != user:
            continue
        if grant.grant:
            roles.add(grant.role)
        else:
            roles.discard(grant.role)
    return frozenset(roles)


def principal_for_token(
    governance: GovernanceFile, grants: Iterable[AccessGrant], token: str
) -> Principal | None:
    digest = hash_token(token)
    for user in governance.users:
        if user.token_sha256 and hmac.compare_digest(user.token_sha256, digest):
            return Principal(user.name, effective_roles(governance, grants, user.name))
    return None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
