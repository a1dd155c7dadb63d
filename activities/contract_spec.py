"""Contract gate, part 1: from a stage's `contract` section to a schemathesis schema ready to run.

Resolves header secrets (environment or file, never the plan), fetches and reads the OpenAPI
document as schemathesis reads it (validating the whole of it only in strict mode), and selects
the operations the plan names. Problems a retry cannot fix are raised as non-retryable
`ApplicationError`s (`InvalidSpec` for the document, `GateConfigError` for the plan), which the
activity turns into a failed report.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

import httpx
from temporalio.exceptions import ApplicationError

from warden.http import new_client, trace_headers
from warden.models.contract import ContractSpec, HeaderValue

HTTP_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"})
FETCH_ATTEMPTS = 3
REDACTED = "[REDACTED]"

log = logging.getLogger("warden.contract")


def invalid_spec(message: str) -> ApplicationError:
    return ApplicationError(message, type="InvalidSpec", non_retryable=True)


def gate_config_error(message: str) -> ApplicationError:
    return ApplicationError(message, type="GateConfigError", non_retryable=True)


@dataclass
class ResolvedHeaders:
    """Header values for the run; `secrets` are values that must never reach a report or the history."""

    values: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)

    def redact(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text

    @property
    def secret_names(self) -> list[str]:
        return [
            name for name, value in self.values.items() if any(s in value for s in self.secrets)
        ]


def resolve_headers(headers: dict[str, HeaderValue]) -> ResolvedHeaders:
    """Read `from_env` / `from_file` on this worker; a missing secret is a configuration error."""
    resolved = ResolvedHeaders()
    for name, spec in headers.items():
        if spec.value is not None:
            resolved.values[name] = spec.prefix + spec.value
            continue
        if spec.from_env is not None:
            secret = os.environ.get(spec.from_env)
            if not secret:
                raise gate_config_error(
                    f"contract header {name}: environment variable {spec.from_env} is not set on this worker"
                )
        else:
            assert spec.from_file is not None
            path = Path(spec.from_file).expanduser()
            try:
                secret = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise gate_config_error(
                    f"contract header {name}: cannot read secret file {path}: {exc.strerror or exc}"
                ) from None
            if not secret:
                raise gate_config_error(f"contract header {name}: secret file {path} is empty")
        resolved.values[name] = spec.prefix + secret
        resolved.secrets.append(secret)
    return resolved


@dataclass(frozen=True)
class SpecLocation:
    kind: str  # "url" or "file"
    location: str


def resolve_location(openapi: str, base_url: str) -> SpecLocation:
    """`https://...` is fetched as is; `file:x`, `./x`, `../x`, `~/x` are files on the worker; any
    other path (`/openapi.json`) is fetched relative to the stage's base URL."""
    if openapi.startswith(("http://", "https://")):
        return SpecLocation("url", openapi)
    if openapi.startswith("file:"):
        return SpecLocation("file", openapi[len("file:") :].removeprefix("//"))
    if openapi.startswith(("./", "../", "~/")):
        return SpecLocation("file", openapi)
    return SpecLocation("url", urljoin(base_url.rstrip("/") + "/", openapi.lstrip("/")))


def same_origin(url: str, base_url: str) -> bool:
    a, b = urlparse(url), urlparse(base_url)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def parse_document(text: str, source: str, *, content_type: str | None = None) -> dict[str, Any]:
    """JSON or YAML, read the way schemathesis reads it; the result must look like OpenAPI (or Swagger).

    Schemathesis' own loader decides (by `Content-Type`, then by the file's suffix, then JSON
    before YAML), so a document `st run` can read is read here too, with the same YAML rules.
    """
    from schemathesis.core.errors import LoaderError
    from schemathesis.openapi.loaders import detect_content_type, load_content

    kind = detect_content_type(
        headers={"Content-Type": content_type} if content_type else None, path=source
    )
    try:
        doc = load_content(text, kind)
    except LoaderError as exc:
        details = "; ".join(exc.extras[:2]) if exc.extras else _first_line(exc)
        raise invalid_spec(
            f"OpenAPI document {source} is neither JSON nor YAML ({details})"
        ) from None
    except Exception as exc:  # a YAML constructor the loader refuses, deep recursion, ...
        raise invalid_spec(
            f"OpenAPI document {source} is neither JSON nor YAML ({_first_line(exc)})"
        ) from None
    if not isinstance(doc, dict):
        raise invalid_spec(f"OpenAPI document {source} is not an object")
    if "openapi" not in doc and "swagger" not in doc:
        raise invalid_spec(
            f"OpenAPI document {source} has no 'openapi' version field; is this an OpenAPI document?"
        )
    return doc


async def fetch_document(
    location: SpecLocation, *, headers: dict[str, str], trace_id: str, timeout: float
) -> dict[str, Any]:
    if location.kind == "file":
        path = Path(location.location).expanduser()
        try:
            text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        except OSError as exc:
            raise invalid_spec(
                f"cannot read OpenAPI document {path}: {exc.strerror or exc}"
            ) from None
        return parse_document(text, str(path))
    url = location.location
    last_error = ""
    async with new_client(timeout) as http:
        for attempt in range(FETCH_ATTEMPTS):
            try:
                response = await http.get(url, headers={**headers, **trace_headers(trace_id)})
            except httpx.HTTPError as exc:
                # A connection refused right after a deploy often clears within a second.
                last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if attempt + 1 < FETCH_ATTEMPTS:
                    await asyncio.sleep(0.5 * (attempt + 1))
                continue
            if response.status_code != 200:
                raise invalid_spec(
                    f"GET {url} answered HTTP {response.status_code}; expected the OpenAPI document"
                )
            return parse_document(
                response.text, url, content_type=response.headers.get("content-type")
            )
    raise invalid_spec(f"OpenAPI document {url} is unreachable ({last_error})")


def document_problems(schema: Any) -> list[str]:
    """Every place the document breaks the OpenAPI (or Swagger 2.0) schema, as `/json/pointer: problem`."""
    from schemathesis.specs.openapi.definitions import (
        OPENAPI_30_VALIDATOR,
        OPENAPI_31_VALIDATOR,
        OPENAPI_32_VALIDATOR,
        SWAGGER_20_VALIDATOR,
    )
    from schemathesis.specs.openapi.utils import parse_spec_version

    raw = schema.raw_schema
    # The same meta-schema schemathesis' own `validate()` picks for the document's version.
    if "openapi" not in raw:
        validator = SWAGGER_20_VALIDATOR
    else:
        version = parse_spec_version(str(raw.get("openapi", "")))
        if version >= parse_spec_version("3.2"):
            validator = OPENAPI_32_VALIDATOR
        elif version >= parse_spec_version("3.1"):
            validator = OPENAPI_31_VALIDATOR
        else:
            validator = OPENAPI_30_VALIDATOR
    problems = []
    try:
        for error in validator.iter_errors(raw):
            pointer = "/" + "/".join(str(p) for p in error.instance_path)
            problems.append(f"{pointer}: {_first_line(error)}")
    except ValueError:  # keys that are not strings: schemathesis skips validation too
        return []
    return problems


def validate_document(schema: Any, source: str) -> list[str]:
    """Strict mode: the whole document must be valid OpenAPI. Returns every problem (empty: valid)."""
    problems = document_problems(schema)
    if problems:
        log_problems = f"{len(problems)} problem(s)"
        log.info("OpenAPI document %s is invalid: %s", source, log_problems)
    return problems


def effective_base_url(base_url: str, schema_base_path: str) -> str:
    """The stage's base URL, plus the document's server path when the base URL has none."""
    parsed = urlparse(base_url)
    if parsed.path.strip("/") or schema_base_path.strip("/") == "":
        return base_url.rstrip("/")
    return base_url.rstrip("/") + "/" + schema_base_path.strip("/")


@dataclass(frozen=True)
class OperationMatcher:
    """One `include`/`exclude` entry: an operationId, `METHOD /path`, or `/path` (the path may be a regex)."""

    raw: str
    operation_id: str | None = None
    method: str | None = None
    path: re.Pattern[str] | None = None
    path_text: str | None = None

    @classmethod
    def parse(cls, raw: str) -> OperationMatcher:
        text = raw.strip()
        method, _, rest = text.partition(" ")
        if method.upper() in HTTP_METHODS and rest.strip():
            return cls(
                raw,
                method=method.upper(),
                path=_path_pattern(raw, rest.strip()),
                path_text=rest.strip(),
            )
        if text.startswith("/"):
            return cls(raw, path=_path_pattern(raw, text), path_text=text)
        return cls(raw, operation_id=text)

    def matches(self, method: str, path: str, operation_id: str | None) -> bool:
        if self.operation_id is not None:
            return operation_id == self.operation_id
        if self.method is not None and method.upper() != self.method:
            return False
        assert self.path is not None
        return path == self.path_text or self.path.fullmatch(path) is not None


def _path_pattern(raw: str, path: str) -> re.Pattern[str]:
    try:
        return re.compile(path)
    except re.error as exc:
        raise gate_config_error(
            f"contract include/exclude {raw!r}: the path is not a valid regex ({exc})"
        ) from None


def select_operations(schema: Any, include: list[str], exclude: list[str]) -> Any:
    """Narrow the schema to the plan's operations; a filter that matches nothing is a configuration error.

    `include` and `exclude` become schemathesis filters of their own kind, as `--include-...` and
    `--exclude-...` options do for `st run`: only an include names an operation explicitly, so
    the operation serving the document itself stays out unless an include asks for it.
    """
    included = [OperationMatcher.parse(x) for x in include]
    excluded = [OperationMatcher.parse(x) for x in exclude]
    if not included and not excluded:
        return schema
    known = list(_operations(schema))
    for matcher in [*included, *excluded]:
        if not any(matcher.matches(*op) for op in known):
            names = ", ".join(sorted({f"{m} {p}" for m, p, _ in known})[:10])
            raise gate_config_error(
                f"contract include/exclude {matcher.raw!r} matches no operation (known: {names} ...)"
            )

    def matching(matchers: list[OperationMatcher]) -> Any:
        def match(ctx: Any) -> bool:
            operation = ctx.operation
            return any(
                m.matches(operation.method, operation.path, _operation_id(operation))
                for m in matchers
            )

        return match

    selected = schema
    if included:
        selected = selected.include(func=matching(included))
    if excluded:
        selected = selected.exclude(func=matching(excluded))
    if selected.statistic.operations.selected == 0:
        raise gate_config_error("contract include/exclude leave no operation to test")
    return selected


def _operations(schema: Any) -> list[tuple[str, str, str | None]]:
    found = []
    for path, item in (schema.raw_schema.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        for method, operation in item.items():
            if method.upper() in HTTP_METHODS and isinstance(operation, dict):
                found.append((method.upper(), path, operation.get("operationId")))
    return found


def _operation_id(operation: Any) -> str | None:
    definition = getattr(operation, "definition", None)
    raw = getattr(definition, "raw", definition)
    return raw.get("operationId") if isinstance(raw, dict) else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def check_names(spec: ContractSpec) -> tuple[list[str], list[str]]:
    """Included and excluded check names as schemathesis takes them."""
    return list(spec.checks), list(spec.exclude_checks)
