"""Contract gate, part 2: what a schemathesis run found, as a report people and CI can read.

`RunCollector` feeds the engine's events to schemathesis' own `st run` bookkeeping (its
execution context: the statistic that deduplicates and names failures, the warnings, the exit
code) and keeps, beside it, what the gate reports per operation. So a failure is named exactly as
`st run` names it, and the verdict is the one `st run` would give. `write_reports` writes the
full JSON report (with the `st run --report json` document for the same run) and a JUnit XML
file (one test case per operation, one failure per check). The report that goes back into
workflow history is capped; the files on disk are complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from schemathesis.cli.commands.run.context import ExecutionContext
from schemathesis.cli.constants import ExitCode
from schemathesis.cli.events import LoadingFinished
from schemathesis.core.failures import RUN_CHECKS_LABEL
from schemathesis.engine import Status, StopReason, events
from schemathesis.engine.run import PhaseName

from warden.models.contract import STATEFUL_LABEL, ContractFailure, ContractReport

#: Failures kept in the report returned to the workflow; the files on disk keep them all.
HISTORY_FAILURE_CAP = 50
#: Errors kept in the returned report.
HISTORY_ERROR_CAP = 20
MESSAGE_LIMIT = 2000
RUN_LABEL = "(run)"
#: Phases whose cases `st run` counts as tests (sign-up and login calls prepare the run).
TEST_PHASES = {
    PhaseName.EXAMPLES,
    PhaseName.COVERAGE,
    PhaseName.FUZZING,
    PhaseName.STATEFUL_TESTING,
}
#: A reproducing curl carries a request body up to this long inline; a longer one goes into a
#: file beside the report (`bodies/<sha256>.body`) that the curl sends with `--data-binary @`.
CURL_BODY_INLINE_LIMIT = 500


@dataclass
class OperationResult:
    label: str
    test_cases: int = 0
    elapsed_s: float = 0.0
    tested: bool = False
    skip_reasons: set[str] = field(default_factory=set)
    failures: list[ContractFailure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.failures:
            return "failed"
        if self.errors:
            return "errored"
        if self.tested:
            return "passed"
        return "skipped"

    def as_dict(self) -> dict[str, Any]:
        return {
            "operation": self.label,
            "status": self.status,
            "test_cases": self.test_cases,
            "elapsed_s": round(self.elapsed_s, 3),
            "failures": len(self.failures),
            "errors": self.errors,
            "skip_reasons": sorted(self.skip_reasons),
        }


class RunCollector:
    """Folds engine events into results. Call `add` for every event, in order, from one thread.

    Without a schema (the document could not be loaded) it collects nothing and reports no
    operation: the report then carries the reason instead.
    """

    def __init__(
        self,
        schema: Any | None,
        redact: Callable[[str], str],
        *,
        location: str = "",
        operation_labels: list[str] | None = None,
        bodies_dir: Path | None = None,
    ) -> None:
        self.redact = redact
        #: Where `finish` puts request bodies too long for a curl line (None: keep them inline).
        self.bodies_dir = bodies_dir
        self.operations: dict[str, OperationResult] = {
            label: OperationResult(label) for label in operation_labels or []
        }
        self.run_errors: list[str] = []
        self.test_cases = 0
        self.scenarios_finished = 0
        self.phase: str | None = None
        self.stop_reason: StopReason | None = None
        self.finished = False
        self.started_at: float | None = None
        self.fatal_error: events.FatalError | None = None
        self.engine_finished: events.EngineFinished | None = None
        #: Which check, in which phase, raised each failure schemathesis kept (by object identity).
        self._origin: dict[int, tuple[str, str]] = {}
        self._failures: list[ContractFailure] | None = None
        self.context: ExecutionContext | None = None
        if schema is not None:
            self.context = ExecutionContext(config=schema.config)
            self.context.on_event(
                LoadingFinished.from_schema(
                    schema,
                    location=location,
                    start_time=time.time(),
                    base_url=schema.get_base_url(),
                )
            )

    def _operation(self, label: str) -> OperationResult:
        if label not in self.operations:
            self.operations[label] = OperationResult(label)
        return self.operations[label]

    def add(self, event: events.EngineEvent) -> None:
        if self.context is not None:
            self.context.on_event(event)
        self._failures = None
        if isinstance(event, events.EngineStarted):
            self.started_at = event.timestamp
        elif isinstance(event, events.PhaseStarted):
            self.phase = event.phase.name.value
        elif isinstance(event, events.ScenarioFinished):
            self._scenario(event)
        elif isinstance(event, events.NonFatalError):
            message = self.redact(error_text(event.info.title, event.info.message))[:MESSAGE_LIMIT]
            if event.related_to_operation and event.label:
                result = self._operation(event.label)
                if message not in result.errors:
                    result.errors.append(message)
            else:
                entry = f"{event.label}: {message}" if event.label else message
                if entry not in self.run_errors:
                    self.run_errors.append(entry)
        elif isinstance(event, events.FatalError):
            self.fatal_error = event
            self.run_errors.append(
                self.redact(
                    f"schemathesis stopped: {type(event.exception).__name__}: {event.exception}"
                )
            )
        elif isinstance(event, events.EngineFinished):
            self.finished = True
            self.engine_finished = event
            self.stop_reason = event.stop_reason
            for failure in event.failures:
                checks = getattr(failure, "checks", ()) or (type(failure).__name__,)
                self._origin[id(failure)] = (checks[0], "")

    def _scenario(self, event: events.ScenarioFinished) -> None:
        if not event.is_test_scenario or event.phase not in TEST_PHASES:
            return
        self.scenarios_finished += 1
        recorder = event.recorder
        if event.status == Status.SKIP and event.label:
            result = self._operation(event.label)
            if event.skip_reason:
                result.skip_reasons.add(event.skip_reason)
            return
        self.test_cases += len(recorder.cases)
        phase = event.phase.value
        for case_id, node in recorder.cases.items():
            result = self._operation(node.value.operation.label)
            result.test_cases += 1
            interaction = recorder.interactions.get(case_id)
            response = interaction.response if interaction is not None else None
            if response is not None:
                result.tested = True
                result.elapsed_s += response.elapsed
            for check in recorder.checks.get(case_id, []):
                if check.failure_info is not None:
                    self._origin.setdefault(id(check.failure_info.failure), (check.name, phase))

    def finish(self) -> None:
        """After the last event: failures land on the operations schemathesis names, and a
        reproducing curl with a long body reads it from a file."""
        for failure in self.failures:
            if self.bodies_dir is not None:
                failure.curl = body_from_file(failure.curl, self.bodies_dir)
            result = self._operation(failure.operation)
            result.tested = True
            result.failures.append(failure)

    # -- what schemathesis found, named as `st run` names it --------------------------------

    @property
    def failures(self) -> list[ContractFailure]:
        """Every distinct failure, as `st run` lists it: by operation, then case."""
        if self._failures is not None:
            return self._failures
        found: list[ContractFailure] = []
        if self.context is not None:
            statistic = self.context.statistic
            for label in sorted(statistic.failures):
                for group in statistic.failures[label].values():
                    for failure in group.failures:
                        found.append(self._failure(label, group, failure))
        self._failures = found
        return found

    def _failure(self, label: str, group: Any, failure: Any) -> ContractFailure:
        check, phase = self._origin.get(id(failure), (type(failure).__name__, ""))
        title = getattr(failure, "title", "") or type(failure).__name__
        message = getattr(failure, "message", "") or ""
        text = self.redact(f"{title}: {message}".strip().rstrip(":"))[:MESSAGE_LIMIT]
        steps = list(getattr(group, "steps", None) or [])
        stateful = label == STATEFUL_LABEL
        return ContractFailure(
            operation=RUN_LABEL if label == RUN_CHECKS_LABEL else label,
            check=check,
            message=text,
            status_code=group.response.status_code if group.response is not None else None,
            curl=self.redact(group.code_sample or ""),
            phase=phase or None,
            code=getattr(failure, "code", None),
            chain=[step.operation for step in steps] if stateful else [],
        )

    @property
    def exit_code(self) -> int:
        """The exit code `st run` would give this run (0: passed)."""
        if self.context is None:
            return int(ExitCode.ERROR)
        return int(self.context.exit_code)

    def summary(self) -> Any:
        return self.context.summary() if self.context is not None else None

    def st_report(self, *, command: str, seed: int | None) -> dict[str, Any] | None:
        """The document `st run --report json` writes for the same run."""
        if self.context is None:
            return None
        from schemathesis.cli.json_report import build_document

        return build_document(
            summary=self.context.summary(),
            command=command,
            seed=seed,
            started_at=self.started_at,
            finished=self.engine_finished,
            fatal_error=self.fatal_error,
            exit_code=self.exit_code,
        )

    def warnings(self) -> list[str]:
        """Schemathesis' warnings, one line per kind, with the operations it names."""
        if self.context is None:
            return []
        lines = []
        for kind, labels in self.context.warnings.as_labels().items():
            if labels:
                shown = ", ".join(labels[:5]) + (" ..." if len(labels) > 5 else "")
                lines.append(f"{kind}: {shown}")
        return lines

    def locked_out(self) -> list[str]:
        """Operations schemathesis saw answer only 401/403: the run was not let in."""
        if self.context is None:
            return []
        return sorted(
            {label for labels in self.context.warnings.missing_auth.values() for label in labels}
        )

    # -- summary -----------------------------------------------------------------------------

    def progress(self) -> dict[str, Any]:
        """Heartbeat details: small, and enough to see a run move."""
        return {
            "phase": self.phase,
            "scenarios": self.scenarios_finished,
            "test_cases": self.test_cases,
            "operations_tested": sum(1 for r in self.operations.values() if r.tested),
            "failures": len(self.context.statistic.unique_failures_map) if self.context else 0,
        }

    def counts(self) -> tuple[int, int, int, int]:
        """(total, tested, errored, skipped) over the selected operations, as `st run` counts them."""
        summary = self.summary()
        if summary is not None and summary.operations is not None:
            operations = summary.operations
            return operations.selected, operations.tested, operations.errored, operations.skipped
        return 0, 0, 0, 0

    def cases_generated(self) -> int:
        if self.context is None:
            return 0
        return int(self.context.statistic.total_cases)


def error_text(title: str, message: str) -> str:
    """One line for an error schemathesis reports: its title, first line and details, no dumps.

    Schema errors carry the whole problematic definition; the report keeps where and why.
    """
    lines = [line.strip() for line in (message or "").splitlines()]
    parts = [title.strip()] if title and title.strip() else []
    first = next((line for line in lines if line), "")
    if first and first not in parts:
        parts.append(first)
    for marker in ("Location:", "Error details:"):
        if marker in lines:
            detail = next((line for line in lines[lines.index(marker) + 1 :] if line), "")
            if detail:
                parts.append(f"{marker.rstrip(':').lower()} {detail}")
    return ": ".join(parts) or "error"


def body_from_file(curl: str, directory: Path, limit: int = CURL_BODY_INLINE_LIMIT) -> str:
    """`curl ... -d '<thousands of characters>' URL` as `curl ... --data-binary @FILE URL`, the
    body written byte for byte to `directory/<sha256>.body` (the same body, the same file, so a
    retried run writes nothing new). A curl whose body is short, or written in a form this does
    not read back exactly, is returned as it was."""
    words = _shell_words(curl)
    if words is None:
        return curl
    for index, (start, _, value) in enumerate(words[:-1]):
        if value != b"-d":
            continue
        body_start, body_end, body = words[index + 1]
        if body is None or body_end - body_start <= limit:
            return curl
        path = directory / f"{hashlib.sha256(body).hexdigest()[:24]}.body"
        try:
            if not path.exists():
                directory.mkdir(parents=True, exist_ok=True)
                _write_atomic_bytes(path, body)
        except OSError:
            return curl  # the report still has the whole command
        return f"{curl[:start]}--data-binary @{shlex.quote(str(path))}{curl[body_end:]}"
    return curl


_ANSI_C = {"n": b"\n", "t": b"\t", "r": b"\r", "'": b"'", "\\": b"\\", '"': b'"'}


def _shell_words(command: str) -> list[tuple[int, int, bytes | None]] | None:
    """The words of a POSIX shell command as schemathesis writes its curl: (start, end, value),
    the value None where it is written in a way not read here (the word is then left alone);
    None when the command cannot be split at all (an unclosed quote)."""
    words: list[tuple[int, int, bytes | None]] = []
    i, n = 0, len(command)
    while i < n:
        if command[i] == " ":
            i += 1
            continue
        start, value, exact = i, bytearray(), True
        while i < n and command[i] != " ":
            char = command[i]
            if char == "'":
                end = command.find("'", i + 1)
                if end < 0:
                    return None
                value += command[i + 1 : end].encode("utf-8", "surrogatepass")
                i = end + 1
            elif command.startswith("$'", i):
                i += 2
                while i < n and command[i] != "'":
                    if command[i] != "\\":
                        value += command[i].encode("utf-8", "surrogatepass")
                        i += 1
                    elif command[i + 1 : i + 2] == "x" and len(command[i + 2 : i + 4]) == 2:
                        try:
                            value.append(int(command[i + 2 : i + 4], 16))
                        except ValueError:
                            exact = False
                        i += 4
                    else:
                        escaped = _ANSI_C.get(command[i + 1 : i + 2])
                        exact = exact and escaped is not None
                        value += escaped or b""
                        i += 2
                if i >= n:
                    return None
                i += 1
            elif char == '"':  # shlex.quote writes a ' as '"'"'
                i += 1
                while i < n and command[i] != '"':
                    if command[i] == "\\" and command[i + 1 : i + 2] in ('"', "\\", "$", "`"):
                        i += 1
                    elif command[i] in "$`":  # an expansion: not read here
                        exact = False
                    value += command[i].encode("utf-8", "surrogatepass")
                    i += 1
                if i >= n:
                    return None
                i += 1
            elif char == "\\":  # a bare escape (fish's \xHH): this word is not read here
                exact = False
                i += 2
            else:
                value += char.encode("utf-8", "surrogatepass")
                i += 1
        words.append((start, i, bytes(value) if exact else None))
    return words


def capped(report: ContractReport) -> ContractReport:
    """The report as it goes into workflow history: at most `HISTORY_FAILURE_CAP` failures."""
    return report.model_copy(
        update={
            "failures": report.failures[:HISTORY_FAILURE_CAP],
            "errors": report.errors[:HISTORY_ERROR_CAP],
        }
    )


def report_paths(artifacts_dir: Path, release_id: str, stage: str) -> tuple[Path, Path]:
    directory = artifacts_dir / _safe(release_id) / _safe(stage)
    return directory / "contract.json", directory / "contract.junit.xml"


def write_reports(
    report: ContractReport,
    collector: RunCollector,
    *,
    json_path: Path,
    junit_path: Path,
    context: dict[str, Any],
    reproduce: dict[str, Any] | None = None,
) -> None:
    """Both files, whatever the outcome: a run that tested nothing still says why."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    command = (reproduce or {}).get("command", "")
    document = {
        **context,
        **report.model_dump(mode="json"),
        "operations": [
            r.as_dict() for r in sorted(collector.operations.values(), key=lambda r: r.label)
        ],
        # How to run the same test with plain `st run`, and what `st run --report json` says.
        "reproduce": reproduce,
        "schemathesis": collector.st_report(command=command, seed=report.seed),
    }
    _write_atomic(json_path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    _write_atomic(
        junit_path,
        render_junit(
            report, collector, suite=f"contract.{context.get('release_id')}.{context.get('stage')}"
        ),
    )


def render_junit(report: ContractReport, collector: RunCollector, *, suite: str) -> str:
    """One test case per operation; a failure element per failing check, with its curl command."""
    results = sorted(
        (r for r in collector.operations.values() if r.label != RUN_LABEL), key=lambda r: r.label
    )
    run_problems = [report.reason] if report.reason else []
    run_problems += list(report.errors)
    if RUN_LABEL in collector.operations:  # checks over the whole run rather than one operation
        run_problems += [
            f"{f.check}: {f.message}" for f in collector.operations[RUN_LABEL].failures
        ]
    if report.timed_out:
        run_problems.insert(0, "the time budget ran out before every operation was tested")
    failures = sum(1 for r in results if r.failures)
    errors = sum(1 for r in results if r.errors and not r.failures)
    skipped = sum(1 for r in results if r.status == "skipped")
    tests = len(results)
    if run_problems:
        tests += 1
        errors += 1
    counts = {
        "tests": str(tests),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(skipped),
    }
    time_s = f"{report.duration_s:.3f}"
    root = ElementTree.Element(
        "testsuites", {"name": "release-warden contract gate", **counts, "time": time_s}
    )
    testsuite = ElementTree.SubElement(
        root, "testsuite", {"name": suite, "hostname": platform.node(), **counts, "time": time_s}
    )
    properties = ElementTree.SubElement(testsuite, "properties")
    for name, value in (
        ("spec", report.spec),
        ("base_url", report.base_url),
        ("seed", "" if report.seed is None else str(report.seed)),
        ("test_cases", str(report.test_cases)),
        ("timed_out", str(report.timed_out).lower()),
        ("schemathesis_version", _schemathesis_version()),
    ):
        ElementTree.SubElement(properties, "property", {"name": name, "value": value})
    classname = suite
    for result in results:
        case = ElementTree.SubElement(
            testsuite,
            "testcase",
            {"classname": classname, "name": result.label, "time": f"{result.elapsed_s:.3f}"},
        )
        for failure in result.failures:
            element = ElementTree.SubElement(
                case,
                "failure",
                {"type": failure.check, "message": _clean(failure.message.splitlines()[0])},
            )
            lines = [failure.message]
            found = [f"code: {failure.code}"] if failure.code else []
            if failure.phase:
                found.append(f"phase: {failure.phase}")
            if found:
                lines.append(", ".join(found))
            if failure.chain:
                lines.append("Chain: " + " -> ".join(failure.chain))
            if failure.status_code is not None:
                lines.append(f"HTTP status: {failure.status_code}")
            if failure.curl:
                curl = failure.curl.replace("\n", "\n    ")
                lines.append(f"Reproduce with:\n    {curl}")
            element.text = _clean("\n\n".join(lines))
        if result.errors and not result.failures:
            element = ElementTree.SubElement(
                case, "error", {"type": "error", "message": _clean(result.errors[0][:200])}
            )
            element.text = _clean("\n".join(result.errors))
        if result.status == "skipped":
            reason = "; ".join(sorted(result.skip_reasons)) or "not tested"
            ElementTree.SubElement(case, "skipped", {"message": _clean(reason)})
    if run_problems:
        case = ElementTree.SubElement(
            testsuite, "testcase", {"classname": classname, "name": RUN_LABEL, "time": "0"}
        )
        element = ElementTree.SubElement(
            case,
            "error",
            {"type": report.error_type or "run", "message": _clean(run_problems[0][:200])},
        )
        element.text = _clean("\n".join(run_problems))
    ElementTree.indent(root)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        + ElementTree.tostring(root, encoding="unicode")
        + "\n"
    )


def _schemathesis_version() -> str:
    from schemathesis.core.version import SCHEMATHESIS_VERSION

    return str(SCHEMATHESIS_VERSION)


def _clean(text: str) -> str:
    # XML 1.0 cannot carry most control characters, and fuzzed payloads are full of them.
    return "".join(
        c
        if c in "\t\n\r"
        or (ord(c) >= 0x20 and not 0xD800 <= ord(c) <= 0xDFFF and c not in "\ufffe\uffff")
        else f"\\x{ord(c):02x}"
        for c in text
    )


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "_"


def _write_atomic_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # CI jobs and dashboards read the reports
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
