"""Configuration from the environment (`WARDEN_*`), one place for every component."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "warden"


class Settings(BaseSettings):
    """Every setting is an environment variable: `state_dir` is `WARDEN_STATE_DIR`, and so on."""

    model_config = SettingsConfigDict(env_prefix="WARDEN_", extra="ignore")

    env: Literal["dev", "staging", "production"] = Field(
        default="dev", description="Deployment environment of Release Warden itself."
    )
    # Temporal
    temporal_address: str | None = Field(
        default=None, description="host:port of a Temporal cluster; unset = embedded dev server."
    )
    temporal_namespace: str = "default"
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_tls_ca: Path | None = None
    temporal_api_key: SecretStr | None = None
    task_queue: str = "release-warden"
    search_attributes: bool | None = Field(
        default=None,
        description="Upsert WardenService/WardenVersion/WardenStage/WardenState; default on for the embedded server.",
    )
    # Embedded dev server
    state_dir: Path = Field(default_factory=_default_state_dir)
    dev_server_port: int = Field(default=7233, ge=1, le=65535)
    dev_server_ui_port: int = Field(default=8233, ge=1, le=65535)
    autostart_worker: bool = Field(
        default=True, description="Embedded mode: start a background worker when none is polling."
    )
    # Identity
    user: str | None = Field(
        default=None, description="Who you are for --as when not given (dev identity only)."
    )
    token: SecretStr | None = Field(
        default=None,
        description="Your API token: the CLI acts as its user when a governance file is configured, and sends it to WARDEN_API_URL.",
    )
    assertion_key: Path | None = Field(
        default=None,
        description="Ed25519 key that signs decision proofs (API and CLI hosts); default <state dir>/assertion.key, made on first use.",
    )
    trusted_issuers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated public keys (base64) of other issuers whose decision proofs releases trust.",
    )
    allow_unsigned_decisions: bool = Field(
        default=False,
        description="With a governance file: count approvals, rejections, pause, resume and abort sent by a plain Temporal client without a proof (marked as claimed).",
    )
    # Where things are written
    artifacts_dir: Path | None = None
    flags_dir: Path | None = None
    audit_db_url: str | None = None
    release_log: Path | None = None
    # Gates
    flag_backend: Literal["flagd-file", "unleash"] = "flagd-file"
    unleash_url: str | None = None
    unleash_token: SecretStr | None = None
    unleash_project: str = "default"
    unleash_environments: str = Field(
        default="dev=development,staging=development,pilot=production,production=production",
        description="Comma-separated stage environment=Unleash environment pairs (docs/flag-backends.md).",
    )
    unleash_stage_field: str = Field(
        default="stage",
        description="Unleash context field whose value is the stage environment; Release Warden's strategies are constrained on it.",
    )
    prometheus_url: str | None = None
    prometheus_token: SecretStr | None = None
    prometheus_username: str | None = None
    prometheus_password: SecretStr | None = None
    http_timeout_s: float = Field(default=10.0, gt=0)
    webhook_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated notice webhooks, each optionally prefixed by its format: slack:, feishu:, dingtalk:, json:.",
    )
    governance_file: Path | None = None
    # HTTP API and its operational switches
    api_host: str = Field(default="127.0.0.1", description="Where `warden api` listens.")
    api_port: int = Field(default=8700, ge=1, le=65535)
    api_url: str | None = Field(
        default=None,
        description="The CLI talks to this API (with WARDEN_TOKEN) instead of Temporal.",
    )
    dev_endpoints: bool | None = Field(
        default=None,
        description="Dev endpoints (demo data); default on only when WARDEN_ENV is dev or staging.",
    )
    ops_endpoints: bool | None = Field(
        default=None,
        description="Operational endpoints (re-run a check, force-restore flags, task queue); default on only in dev/staging.",
    )
    ops_allow_users: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated users allowed on dev/ops endpoints (empty = any allowed role).",
    )
    ops_allow_cidrs: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated client networks allowed on dev/ops endpoints (empty = any).",
    )
    # Dashboard (`warden api` serves it under /ui/; docs/dashboard.md)
    dashboard_file: Path | None = Field(
        default=None,
        description="YAML file naming the service, environments and queries behind the health cards; unset = the sample stack's four environments.",
    )
    dashboard_secret: SecretStr | None = Field(
        default=None,
        description="Key that signs dashboard session cookies; default <state dir>/dashboard.key, made on first use.",
    )
    dashboard_session_hours: float = Field(
        default=12.0, gt=0, description="How long a dashboard sign-in lasts."
    )
    # Worker
    worker_metrics_port: int | None = Field(default=None, ge=0, le=65535)
    max_cached_workflows: int = Field(default=1000, ge=0)
    max_concurrent_activities: int = Field(default=100, ge=1)
    workflow_sandbox: Literal["shared", "isolated"] = Field(
        default="shared",
        description=(
            "shared: the workflow modules are imported once and used by every run (about 180 KiB "
            "less per cached release); isolated: each run re-imports them and the sandbox also "
            "checks what they call (the workflow tests run this way)."
        ),
    )

    @field_validator(
        "webhook_urls", "ops_allow_users", "ops_allow_cidrs", "trusted_issuers", mode="before"
    )
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("ops_allow_cidrs")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(
                    f"{cidr!r} is not a network (e.g. 10.0.0.0/8 or 127.0.0.1/32)"
                ) from None
        return value

    @property
    def dev_endpoints_enabled(self) -> bool:
        return self.env in ("dev", "staging") if self.dev_endpoints is None else self.dev_endpoints

    @property
    def ops_endpoints_enabled(self) -> bool:
        return self.env in ("dev", "staging") if self.ops_endpoints is None else self.ops_endpoints

    @property
    def embedded(self) -> bool:
        return not self.temporal_address

    @property
    def use_search_attributes(self) -> bool:
        return self.embedded if self.search_attributes is None else self.search_attributes

    @cached_property
    def resolved_state_dir(self) -> Path:
        return self.state_dir.expanduser().resolve()

    @property
    def artifacts_path(self) -> Path:
        return (self.artifacts_dir or self.resolved_state_dir / "artifacts").expanduser()

    @property
    def flags_path(self) -> Path:
        return (self.flags_dir or self.resolved_state_dir / "flags").expanduser()

    @property
    def audit_url(self) -> str:
        return self.audit_db_url or f"sqlite:///{self.resolved_state_dir / 'audit.db'}"

    @property
    def release_log_path(self) -> Path:
        return (self.release_log or self.resolved_state_dir / "release_log.md").expanduser()

    @property
    def assertion_key_path(self) -> Path:
        return (self.assertion_key or self.resolved_state_dir / "assertion.key").expanduser()

    @property
    def dev_server_address(self) -> str:
        return f"127.0.0.1:{self.dev_server_port}"

    @property
    def target_address(self) -> str:
        return self.temporal_address or self.dev_server_address


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
