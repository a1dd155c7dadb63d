"""unleash: flags in an Unleash server, through its Admin API.

Unleash OSS has two environments, `development` and `production`, while a release walks
through more stages. Each stage environment maps onto one Unleash environment
(`WARDEN_UNLEASH_ENVIRONMENTS`, default dev/staging -> development, pilot/production ->
production), and the stage itself is a constraint on a context field (`stage` by default):
in a stage Release Warden owns exactly one `flexibleRollout` strategy per flag, titled
`release-warden:<stage>` and constrained to `stage IN [<stage>]`, and sets its `rollout`.
Every other strategy is left as it is.

A flag's state in a stage (`FlagState.definition`) is the Unleash environment's on/off switch
plus every strategy that can apply to that stage (strategies constrained to other stages are
not part of it), in a canonical form without ids or server-generated fields, so the same
state always reads back equal. `restore` puts that slice back exactly.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from warden.flagstore.backend import FlagBackend, FlagBackendError, FlagConfigError, FlagNotFound
from warden.http import new_client, trace_headers
from warden.models.flags import FlagChangeResult, FlagState
from warden.settings import Settings

#: Title of the strategy Release Warden owns in a stage: `release-warden:<stage environment>`.
OWNED_TITLE_PREFIX = "release-warden:"
DEFAULT_ENVIRONMENTS = "dev=development,staging=development,pilot=production,production=production"
DEFAULT_STAGE_FIELD = "stage"
#: Restore passes: Unleash switches an environment off by itself when its last strategy goes.
RESTORE_PASSES = 3


def parse_environment_map(text: str) -> dict[str, str]:
    """`dev=development,pilot=production` -> {"dev": "development", "pilot": "production"}."""
    mapping: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        stage, sep, target = item.partition("=")
        stage, target = stage.strip(), target.strip()
        if not sep or not stage or not target:
            raise FlagConfigError(
                f"WARDEN_UNLEASH_ENVIRONMENTS: {item!r} is not 'stage environment=Unleash environment'"
            )
        if stage in mapping and mapping[stage] != target:
            raise FlagConfigError(f"WARDEN_UNLEASH_ENVIRONMENTS maps {stage!r} twice")
        mapping[stage] = target
    if not mapping:
        raise FlagConfigError("WARDEN_UNLEASH_ENVIRONMENTS maps no stage environment")
    return mapping


def owned_title(stage: str) -> str:
    return f"{OWNED_TITLE_PREFIX}{stage}"


def public_url(url: str) -> str:
    """The URL without user info, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


# -- canonical form ------------------------------------------------------------------------


def canonical_constraint(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A constraint with defaults dropped, so `inverted: false` and no `inverted` compare equal."""
    out: dict[str, Any] = {
        "contextName": raw.get("contextName"),
        "operator": raw.get("operator"),
        "values": list(raw.get("values") or []),
    }
    if raw.get("value") not in (None, ""):
        out["value"] = raw["value"]
    if raw.get("inverted"):
        out["inverted"] = True
    if raw.get("caseInsensitive"):
        out["caseInsensitive"] = True
    return out


def canonical_strategy(raw: Mapping[str, Any]) -> dict[str, Any]:
    """What a strategy does and where it sits, without its id or any field the server generates."""
    segments = [s["id"] if isinstance(s, Mapping) else s for s in raw.get("segments") or []]
    out: dict[str, Any] = {
        "name": raw.get("name"),
        "sortOrder": int(raw.get("sortOrder") or 0),
        "disabled": bool(raw.get("disabled") or False),
        "constraints": [canonical_constraint(c) for c in raw.get("constraints") or []],
        "parameters": dict(raw.get("parameters") or {}),
        "variants": copy.deepcopy(list(raw.get("variants") or [])),
        "segments": sorted(segments, key=str),
    }
    if raw.get("title"):
        out["title"] = raw["title"]
    return out


def _strategy_key(strategy: Mapping[str, Any]) -> tuple[int, str]:
    return int(strategy.get("sortOrder") or 0), json.dumps(strategy, sort_keys=True)


def constraint_matches(constraint: Mapping[str, Any], value: str) -> bool | None:
    """Whether a context value passes the constraint; None when it cannot be told here."""
    operator = constraint.get("operator")
    values = [str(v) for v in constraint.get("values") or []]
    if constraint.get("value") not in (None, ""):
        values.append(str(constraint["value"]))
    fold = bool(constraint.get("caseInsensitive"))
    subject = value.lower() if fold else value
    candidates = [v.lower() for v in values] if fold else values
    result: bool
    if operator == "IN":
        result = value in values
    elif operator == "NOT_IN":
        result = value not in values
    elif operator == "STR_CONTAINS":
        result = any(v in subject for v in candidates)
    elif operator == "STR_STARTS_WITH":
        result = any(subject.startswith(v) for v in candidates)
    elif operator == "STR_ENDS_WITH":
        result = any(subject.endswith(v) for v in candidates)
    else:
        return None
    return not result if constraint.get("inverted") else result


class UnleashBackend(FlagBackend):
    """Release Warden's flag backend over the Unleash Admin API (admin or personal access token)."""

    name = "unleash"

    def __init__(
        self,
        url: str | None,
        token: str | None,
        *,
        project: str = "default",
        environments: Mapping[str, str] | str = DEFAULT_ENVIRONMENTS,
        stage_field: str = DEFAULT_STAGE_FIELD,
        timeout_s: float = 10.0,
    ) -> None:
        # User info in the URL would replace the token header (HTTP basic auth): the token is the credential.
        self.url = public_url((url or "").strip()).rstrip("/") if url else ""
        if self.url.endswith("/api"):
            self.url = self.url[: -len("/api")]
        self._token = (token or "").strip()
        self.project = project
        self.stage_field = stage_field
        self._environments_text = environments if isinstance(environments, str) else None
        self._environments = dict(environments) if not isinstance(environments, str) else None
        self._client = new_client(timeout_s)
        self._ready = False

    @classmethod
    def from_settings(cls, settings: Settings) -> UnleashBackend:
        """Never raises: a missing URL or token fails the first flag operation with a clear reason."""
        return cls(
            settings.unleash_url,
            settings.unleash_token.get_secret_value() if settings.unleash_token else None,
            project=settings.unleash_project,
            environments=settings.unleash_environments,
            stage_field=settings.unleash_stage_field,
            timeout_s=settings.http_timeout_s,
        )

    @property
    def environments(self) -> dict[str, str]:
        """Stage environment -> Unleash environment."""
        if self._environments is None:
            self._environments = parse_environment_map(self._environments_text or "")
        return self._environments

    def unleash_environment(self, environment: str) -> str:
        target = self.environments.get(environment)
        if target is None:
            raise FlagConfigError(
                f"stage environment {environment!r} has no Unleash environment: add "
                f"'{environment}=<Unleash environment>' to WARDEN_UNLEASH_ENVIRONMENTS"
            )
        return target

    async def aclose(self) -> None:
        await self._client.aclose()

    async def known_environments(self) -> list[str]:
        return list(self.environments)

    # -- the interface ------------------------------------------------------------------------

    async def read(self, environment: str, flags: Iterable[str]) -> list[FlagState]:
        await self._ensure_ready()
        target = self.unleash_environment(environment)
        keys = list(flags)
        features = await asyncio.gather(*(self._feature(key) for key in keys))
        return [
            self._state(environment, target, key, feature)
            for key, feature in zip(keys, features, strict=True)
        ]

    async def list_flags(self, environment: str) -> list[FlagState]:
        await self._ensure_ready()
        body = await self._json("GET", f"{self._project_path()}/features")
        names = [
            f["name"] for f in body.get("features") or [] if isinstance(f, dict) and "name" in f
        ]
        return await self.read(environment, sorted(names))

    async def set_percent(self, environment: str, flag: str, percent: int) -> FlagChangeResult:
        await self._ensure_ready()
        target = self.unleash_environment(environment)
        feature = await self._feature(flag)
        if feature is None:
            raise FlagNotFound(self._not_found(flag))
        before = self._state(environment, target, flag, feature)
        block = self._environment_block(feature, target)
        owned = self._owned(block, environment)
        changed = False
        strategies = self._strategies_path(flag, target)
        if owned is None:
            if percent > 0:
                await self._json(
                    "POST", strategies, self._new_owned_strategy(environment, flag, percent)
                )
                changed = True
        elif str((owned.get("parameters") or {}).get("rollout")) != str(percent) or owned.get(
            "disabled"
        ):
            body = self._write_body(canonical_strategy(owned))
            body["parameters"] = {**body["parameters"], "rollout": str(percent)}
            body["disabled"] = False
            await self._json("PUT", f"{strategies}/{quote(str(owned['id']), safe='')}", body)
            changed = True
        # On only after the strategy is in place: Unleash adds a 100% default strategy to an
        # environment switched on without one.
        if percent > 0 and not block.get("enabled"):
            await self._request("POST", f"{self._environment_path(flag, target)}/on")
            changed = True
        after = before
        if changed:
            refreshed = await self._feature(flag)
            if refreshed is None:
                raise FlagNotFound(self._not_found(flag))
            after = self._state(environment, target, flag, refreshed)
        return FlagChangeResult(
            flag=flag,
            environment=environment,
            percent=percent,
            changed=changed,
            before=before,
            after=after,
        )

    async def restore(self, environment: str, states: list[FlagState]) -> None:
        await self._ensure_ready()
        for state in states:
            await self._restore_flag(environment, state)

    # -- restore ------------------------------------------------------------------------------

    async def _restore_flag(self, environment: str, state: FlagState) -> None:
        feature = await self._feature(state.flag)
        if not state.exists or state.definition is None:
            # The flag did not exist: a rollback never deletes a flag, only Release Warden's strategy.
            if feature is not None:
                target = self.unleash_environment(environment)
                owned = self._owned(self._environment_block(feature, target), environment)
                if owned is not None:
                    await self._request(
                        "DELETE", f"{self._strategies_path(state.flag, target)}/{owned['id']}"
                    )
            return
        definition = state.definition
        target = str(definition.get("environment") or self.unleash_environment(environment))
        if definition.get("project", self.project) != self.project:
            raise FlagConfigError(
                f"the snapshot of {state.flag!r} is from Unleash project {definition.get('project')!r}, "
                f"this worker uses {self.project!r}"
            )
        wanted_strategies = [canonical_strategy(s) for s in definition.get("strategies") or []]
        wanted_enabled = bool(definition.get("enabled"))
        for _ in range(RESTORE_PASSES):
            if feature is None:
                raise FlagNotFound(self._not_found(state.flag))
            block = self._environment_block(feature, target)
            if self._definition(target, block, environment) == definition:
                return
            if not wanted_enabled and block.get("enabled"):
                await self._request("POST", f"{self._environment_path(state.flag, target)}/off")
            await self._reconcile(state.flag, target, environment, block, wanted_strategies)
            if wanted_enabled:
                feature = await self._feature(state.flag)
                if feature is not None and not self._environment_block(feature, target).get(
                    "enabled"
                ):
                    await self._request("POST", f"{self._environment_path(state.flag, target)}/on")
            feature = await self._feature(state.flag)
        # What is left over is reported by the caller's read-back, not hidden here.

    async def _reconcile(
        self,
        flag: str,
        target: str,
        stage: str,
        block: Mapping[str, Any],
        wanted: list[dict[str, Any]],
    ) -> None:
        """Make the stage's strategies equal `wanted`: update in place where possible, then create, then delete."""
        current = self._relevant(block, stage)
        remaining = list(wanted)
        unmatched: list[dict[str, Any]] = []
        for raw in current:
            canon = canonical_strategy(raw)
            if canon in remaining:
                remaining.remove(canon)
            else:
                unmatched.append(raw)
        path = self._strategies_path(flag, target)
        doomed: list[dict[str, Any]] = []
        for raw in unmatched:
            partner = next((w for w in remaining if self._same_slot(raw, w)), None)
            if partner is None:
                doomed.append(raw)
                continue
            remaining.remove(partner)
            await self._json(
                "PUT", f"{path}/{quote(str(raw['id']), safe='')}", self._write_body(partner)
            )
        for wanted_strategy in remaining:
            await self._json("POST", path, self._write_body(wanted_strategy))
        for raw in doomed:
            await self._request("DELETE", f"{path}/{quote(str(raw['id']), safe='')}")

    @staticmethod
    def _same_slot(raw: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
        """The strategy that should become `wanted`: Release Warden's by title, others by type."""
        raw_title, wanted_title = raw.get("title") or "", wanted.get("title") or ""
        if raw_title.startswith(OWNED_TITLE_PREFIX) or wanted_title.startswith(OWNED_TITLE_PREFIX):
            return bool(raw_title == wanted_title)
        return bool(raw.get("name") == wanted.get("name"))

    # -- reading ------------------------------------------------------------------------------

    def _state(
        self, stage: str, target: str, flag: str, feature: Mapping[str, Any] | None
    ) -> FlagState:
        if feature is None:
            return FlagState(flag=flag, environment=stage, exists=False)
        block = self._environment_block(feature, target)
        definition = self._definition(target, block, stage)
        enabled = bool(definition["enabled"])
        return FlagState(
            flag=flag,
            environment=stage,
            exists=True,
            enabled=enabled,
            percent=self._percent(stage, definition["strategies"]) if enabled else 0,
            definition=definition,
        )

    def _definition(self, target: str, block: Mapping[str, Any], stage: str) -> dict[str, Any]:
        strategies = sorted(
            (canonical_strategy(s) for s in self._relevant(block, stage)), key=_strategy_key
        )
        return {
            "project": self.project,
            "environment": target,
            "enabled": bool(block.get("enabled")),
            "strategies": strategies,
        }

    def _relevant(self, block: Mapping[str, Any], stage: str) -> list[dict[str, Any]]:
        """Strategies that can serve the stage: none constrained to other stages only."""
        relevant = []
        for strategy in block.get("strategies") or []:
            excluded = False
            for constraint in strategy.get("constraints") or []:
                if constraint.get("contextName") != self.stage_field:
                    continue
                if constraint_matches(constraint, stage) is False:
                    excluded = True
                    break
            if not excluded:
                relevant.append(strategy)
        return sorted(relevant, key=lambda s: (int(s.get("sortOrder") or 0), str(s.get("id"))))

    def _owned(self, block: Mapping[str, Any], stage: str) -> dict[str, Any] | None:
        title = owned_title(stage)
        return next((s for s in self._relevant(block, stage) if s.get("title") == title), None)

    def _percent(self, stage: str, strategies: list[dict[str, Any]]) -> int:
        """Share of the stage's traffic served on: Release Warden's rollout, or a wider strategy that
        targets no one in particular (strategies for named users or segments are not a share)."""
        best = 0
        for strategy in strategies:
            if strategy["disabled"]:
                continue
            owned = strategy.get("title") == owned_title(stage)
            targeted = strategy["segments"] or any(
                c["contextName"] != self.stage_field for c in strategy["constraints"]
            )
            if targeted and not owned:
                continue
            parameters = strategy["parameters"]
            try:
                if strategy["name"] == "default":
                    share = 100
                elif strategy["name"] == "flexibleRollout":
                    share = round(float(parameters.get("rollout", 100)))
                elif "percentage" in parameters:
                    share = round(float(parameters["percentage"]))
                else:
                    continue
            except (TypeError, ValueError):
                continue
            best = max(best, min(100, max(0, share)))
        return best

    def _environment_block(self, feature: Mapping[str, Any], target: str) -> dict[str, Any]:
        for block in feature.get("environments") or []:
            if isinstance(block, dict) and block.get("name") == target:
                return block
        raise FlagConfigError(
            f"Unleash environment {target!r} is not enabled for flag {feature.get('name')!r} in project "
            f"{self.project!r} (check WARDEN_UNLEASH_ENVIRONMENTS and the project's environments)"
        )

    # -- writing ------------------------------------------------------------------------------

    def _new_owned_strategy(self, stage: str, flag: str, percent: int) -> dict[str, Any]:
        return {
            "name": "flexibleRollout",
            "title": owned_title(stage),
            "disabled": False,
            "constraints": [{"contextName": self.stage_field, "operator": "IN", "values": [stage]}],
            "parameters": {"rollout": str(percent), "stickiness": "default", "groupId": flag},
            "variants": [],
            "segments": [],
        }

    @staticmethod
    def _write_body(strategy: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "name": strategy["name"],
            "title": strategy.get("title"),
            "disabled": strategy["disabled"],
            "sortOrder": strategy["sortOrder"],
            "constraints": copy.deepcopy(strategy["constraints"]),
            "parameters": dict(strategy["parameters"]),
            "variants": copy.deepcopy(strategy["variants"]),
            "segments": list(strategy["segments"]),
        }

    # -- HTTP ---------------------------------------------------------------------------------

    def _project_path(self) -> str:
        return f"/api/admin/projects/{quote(self.project, safe='')}"

    def _feature_path(self, flag: str) -> str:
        return f"{self._project_path()}/features/{quote(flag, safe='')}"

    def _environment_path(self, flag: str, target: str) -> str:
        return f"{self._feature_path(flag)}/environments/{quote(target, safe='')}"

    def _strategies_path(self, flag: str, target: str) -> str:
        return f"{self._environment_path(flag, target)}/strategies"

    def _not_found(self, flag: str) -> str:
        return f"flag {flag!r} does not exist in Unleash project {self.project!r} at {public_url(self.url)}"

    async def _ensure_ready(self) -> None:
        """Configuration problems are found once, before anything is written."""
        if self._ready:
            return
        if not self.url:
            raise FlagConfigError(
                "the unleash flag backend needs WARDEN_UNLEASH_URL (the Unleash server's URL)"
            )
        if urlsplit(self.url).scheme not in ("http", "https"):
            raise FlagConfigError(
                f"WARDEN_UNLEASH_URL {public_url(self.url)!r} is not an http(s) URL"
            )
        if not self._token:
            raise FlagConfigError(
                "the unleash flag backend needs WARDEN_UNLEASH_TOKEN (an admin API token or personal access token)"
            )
        _ = self.environments
        body = await self._json("GET", "/api/admin/projects")
        projects = {p.get("id") for p in body.get("projects") or [] if isinstance(p, dict)}
        if self.project not in projects:
            raise FlagConfigError(
                f"Unleash project {self.project!r} does not exist at {public_url(self.url)} "
                "(check WARDEN_UNLEASH_PROJECT)"
            )
        self._ready = True

    async def _feature(self, flag: str) -> dict[str, Any] | None:
        response = await self._request("GET", self._feature_path(flag), missing_ok=True)
        if response is None:
            return None
        body = self._decode(response)
        if body.get("archived"):
            return None
        return body

    async def _json(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = await self._request(method, path, body)
        assert response is not None
        return self._decode(response)

    def _decode(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise FlagBackendError(
                f"Unleash at {public_url(self.url)} answered {response.request.method} "
                f"{response.request.url.path} with something that is not JSON"
            ) from None
        return body if isinstance(body, dict) else {"items": body}

    async def _request(
        self, method: str, path: str, body: Any = None, *, missing_ok: bool = False
    ) -> httpx.Response | None:
        headers = trace_headers(None)
        headers["Authorization"] = self._token
        headers["Accept"] = "application/json"
        where = f"Unleash at {public_url(self.url)}"
        try:
            response = await self._client.request(
                method, self.url + path, json=body, headers=headers
            )
        except httpx.TimeoutException:
            raise FlagBackendError(f"{where} did not answer {method} {path} in time") from None
        except httpx.HTTPError as exc:
            raise FlagBackendError(
                f"{where} is unreachable ({type(exc).__name__}) for {method} {path}"
            ) from None
        status = response.status_code
        if status < 300:
            return response
        detail = self._server_message(response)
        if status == 404 and missing_ok:
            return None
        if status in (401, 403):
            raise FlagConfigError(
                f"{where} refused {method} {path} ({status}{': ' + detail if detail else ''}); check that "
                f"WARDEN_UNLEASH_TOKEN is an admin or personal access token with access to project {self.project!r}"
            )
        if status == 429 or status >= 500:
            raise FlagBackendError(
                f"{where} answered {status} to {method} {path}{': ' + detail if detail else ''}"
            )
        if status == 404:
            raise FlagNotFound(f"{where} has no {path} ({detail or 'not found'})")
        raise FlagConfigError(
            f"{where} rejected {method} {path} ({status}{': ' + detail if detail else ''})"
        )

    @staticmethod
    def _server_message(response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return ""
        if isinstance(body, dict):
            details = body.get("details")
            if isinstance(details, list) and details and isinstance(details[0], dict):
                message = details[0].get("message") or body.get("message")
            else:
                message = body.get("message")
            return str(message)[:300] if message else ""
        return ""
