"""The governance file from the outside: check one, and see who holds which role and whether
the configured file's version is signed off."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from warden.errors import WardenError
from warden.models.governance import AccessGrant, ConfigSignoff, GovernanceFile
from warden.settings import Settings
from warden.stores.governance import (
    GovernanceError,
    GovernanceStore,
    effective_roles,
    load_governance,
)


class UserRoles(BaseModel):
    user: str
    roles: list[str]


class GovernanceView(BaseModel):
    """The configured file: its version, its sign-off (who asked, who approved, when, the change
    id), users with effective roles, and every approved grant and revocation on top of the file
    (who, which role, who approved it, when it was applied), in the order applied."""

    version: str
    digest: str
    signoff: ConfigSignoff | None = None
    users: list[UserRoles]
    grants: list[AccessGrant] = []


class GovernanceService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def load(self, path: Path | None = None) -> GovernanceFile:
        """The file at `path`, else the configured one; a file that cannot be used is refused."""
        path = path or self.settings.governance_file
        if path is None:
            raise WardenError("give a file or set WARDEN_GOVERNANCE_FILE")
        try:
            return load_governance(path)
        except GovernanceError as exc:
            raise WardenError(str(exc)) from None

    def show(self) -> GovernanceView:
        """Effective roles are the file's plus the access changes the committee approved."""
        if self.settings.governance_file is None:
            raise WardenError("no governance file is configured (WARDEN_GOVERNANCE_FILE)")
        document = self.load()
        store = GovernanceStore(self.settings.audit_url)
        try:
            grants = store.grants()
            signoff = store.signoff_for(document.digest())
        finally:
            store.close()
        return GovernanceView(
            version=document.version,
            digest=document.digest(),
            signoff=signoff,
            users=[
                UserRoles(user=u.name, roles=sorted(effective_roles(document, grants, u.name)))
                for u in document.users
            ],
            grants=grants,
        )
