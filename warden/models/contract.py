"""Contract tests: schemathesis runs against a stage's OpenAPI document."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator

from warden.models.common import Duration, Record, StrictModel

#: Checks schemathesis 4 knows by name; `all` selects every one of them.
CONTRACT_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "use_after_free",
    "ensure_resource_availability",
    "ignored_auth",
    "object_level_authorization",
)


class HeaderValue(StrictModel):
    """A request header. Secrets come from the worker's environment or a file, never the plan."""

    value: str | None = None
    from_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    from_file: str | None = None
    prefix: str = Field(default="", description="Prepended to the secret, e.g. 'Bearer '.")

    @model_validator(mode="after")
    def _exactly_one_source(self) -> HeaderValue:
        sources = [s for s in (self.value, self.from_env, self.from_file) if s is not None]
        if len(sources) != 1:
            raise ValueError("set exactly one of value, from_env, from_file")
        return self


class ContractSpec(StrictModel):
    """The contract gate of a stage (checklist item 1)."""

    openapi: str = Field(
        default="/openapi.json",
        min_length=1,
        description="OpenAPI document: a path relative to the stage's base_url, an absolute URL, or a file path (file: or ./...).",
    )
    max_examples: int = Field(default=25, ge=1, le=10_000)
    checks: list[str] = Field(default_factory=lambda: ["all"], min_length=1)
    exclude_checks: list[str] = Field(default_factory=list)
    include: list[str] = Field(
        default_factory=list,
        description="Only these operations: operationId, or 'METHOD /path' (path may be a regex).",
    )
    exclude: list[str] = Field(default_factory=list)
    headers: dict[str, HeaderValue] = Field(default_factory=dict)
    time_budget: Duration = Field(default=timedelta(minutes=10))
    request_timeout: Duration = Field(default=timedelta(seconds=10))
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    strict_document: bool = Field(
        default=False,
        description="Refuse a document that does not validate against the OpenAPI schema, listing every problem. By default the gate loads what schemathesis loads and reports problems per operation tested.",
    )

    @model_validator(mode="after")
    def _known_checks(self) -> ContractSpec:
        for name in [*self.checks, *self.exclude_checks]:
            if name != "all" and name not in CONTRACT_CHECKS:
                raise ValueError(
                    f"unknown check {name!r}; known checks: all, {', '.join(CONTRACT_CHECKS)}"
                )
        if self.time_budget <= timedelta(0):
            raise ValueError("time_budget must be greater than zero")
        return self


#: Schemathesis' phases that generate test cases, in the order they run.
CONTRACT_PHASES = ("examples", "coverage", "fuzzing", "stateful")
#: The operation name schemathesis gives findings of its stateful phase.
STATEFUL_LABEL = "Stateful tests"


class ContractFailure(Record):
    """One distinct failure, named as schemathesis names it."""

    #: `METHOD /path` of the request that failed (an undeclared method is named by the method
    #: sent, e.g. `TRACE /status`); `Stateful tests` for a finding of the stateful phase.
    operation: str
    check: str
    message: str
    status_code: int | None = None
    curl: str = ""
    #: Schemathesis' phase that found it: examples, coverage, fuzzing or stateful.
    phase: str | None = None
    #: Schemathesis' failure code, e.g. ST101 (`st explain ST101`).
    code: str | None = None
    #: Stateful findings: the operations of the chain that produced it, in order.
    chain: list[str] = Field(default_factory=list)


class ContractReport(Record):
    """What the contract gate found; also written as JSON and JUnit XML to the artifacts directory."""

    passed: bool
    spec: str
    base_url: str
    seed: int | None = None
    operations_total: int = 0
    operations_tested: int = 0
    operations_errored: int = 0
    operations_skipped: int = 0
    test_cases: int = 0
    failures: list[ContractFailure] = Field(default_factory=list)
    failures_total: int = 0
    errors: list[str] = Field(default_factory=list)
    duration_s: float = 0.0
    timed_out: bool = False
    json_report: str | None = None
    junit_report: str | None = None
    #: Why the run tested nothing: the document could not be fetched, parsed or (strict mode)
    #: validated, or the plan's contract section cannot be used on this worker.
    reason: str | None = None
    #: The kind of `reason`: `InvalidSpec`, `GateConfigError` or `GateError`.
    error_type: str | None = None
    #: Problems schemathesis warned about (operations it could not get past authentication with...).
    warnings: list[str] = Field(default_factory=list)

    def summary(self) -> str:
        if self.reason is not None:
            return f"failed: {self.reason}"
        head = (
            f"{self.operations_tested}/{self.operations_total} operations tested, "
            f"{self.test_cases} cases, {self.duration_s:.1f}s"
        )
        if self.passed:
            return f"passed: {head}"
        if not self.failures_total:
            if self.timed_out:
                first = "the time budget ran out"
            else:
                first = self.errors[0] if self.errors else "nothing was tested"
            more = f" (+{len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
            return f"failed: {first[:300]}{more} ({head})"
        by_op = sorted({f"{f.operation} [{f.check}]" for f in self.failures})
        problems = ", ".join(by_op[:5]) + (" ..." if len(by_op) > 5 else "")
        errors = f"; {len(self.errors)} error(s)" if self.errors else ""
        return f"failed: {self.failures_total} failure(s) in {problems}{errors} ({head})"


class ContractInput(Record):
    release_id: str
    stage: str
    base_url: str
    spec: ContractSpec
    trace_id: str
