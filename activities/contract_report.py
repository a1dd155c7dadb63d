"""Contract gate, part 2: what a schemathesis run found, as a report people and CI can read.

`RunCollector` folds the engine's events into per-operation results; `write_reports` writes the
full JSON report and a JUnit XML file (one test case per operation, one failure per check).
The report that goes back into workflow history is capped; the files on disk are complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from schemathesis.engine import Status, StopReason, events

from warden.models.contract import ContractFailure, ContractReport

#: Failures kept in the report returned to the workflow; the files on disk keep them all.
HISTORY_FAILURE_CAP = 50
#: Errors kept in the returned report.
HISTORY_ERROR_CAP = 20
MESSAGE_LIMIT = 2000
RUN_LABEL = "(run)"
#: A reproducing curl carries a request body up to this long inline; a longer one goes into a
#: file beside the report (`bodies/<sha256>.body`) that the curl sends with `--data-binary @`.
CURL_BODY_INLINE_LIMIT = 500


@dataclass
class OperationResult:
    label: str
    test_cases: int = 0
    elapsed_s: float = 0.0
    tested: bool = False
    #: Responses by status class: an operation that only ever answered 401/403 was not really tested.
    auth_refusals: int = 0
    successes: int = 0
    responses: int = 0
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
    """Folds engine events into results. Call `add` for every event, in order, from one thread."""

    def __init__(
        self,
        operation_labels: list[str],
        redact: Callable[[str], str],
        *,
        bodies_dir: Path | None = None,
    ) -> None:
        self.operations: dict[str, OperationResult] = {
            label: OperationResult(label) for label in operation_labels
        }
        self.redact = redact
        #: Where `finish` puts request bodies too long for a curl line (None: keep them inline).
        self.bodies_dir = bodies_dir
        self.failures: list[ContractFailure] = []
        self.run_errors: list[str] = []
        self._seen: dict[tuple[str, str, Any], ContractFailure] = {}
        self._errored_scenarios: set[str] = set()
        self.test_cases = 0
        self.scenarios_finished = 0
        self.phase: str | None = None
        self.stop_reason: StopReason | None = None
        self.finished = False

    def _operation(self, label: str) -> OperationResult:
        if label not in self.operations:
            self.operations[label] = OperationResult(label)
        return self.operations[label]

    def add(self, event: events.EngineEvent) -> None:
        if isinstance(event, events.PhaseStarted):
            self.phase = event.phase.name.value
        elif isinstance(event, events.ScenarioFinished):
            self._scenario(event)
        elif isinstance(event, events.NonFatalError):
            text = f"{event.info.title}: {event.info.message}".strip()
            message = self.redact(text)[:MESSAGE_LIMIT]
            if event.related_to_operation and event.label:
                self._operation(event.label).errors.append(message)
            else:
                self.run_errors.append(f"{event.label}: {message}" if event.label else message)
        elif isinstance(event, events.FatalError):
            self.run_errors.append(
                self.redact(
                    f"schemathesis stopped: {type(event.exception).__name__}: {event.exception}"
                )
            )
        elif isinstance(event, events.EngineFinished):
            self.finished = True
            self.stop_reason = event.stop_reason
            for failure in event.failures:
                self._record(RUN_LABEL, type(failure).__name__, failure, None, "")

    def _scenario(self, event: events.ScenarioFinished) -> None:
        if not event.is_test_scenario:
            return
        self.scenarios_finished += 1
        recorder = event.recorder
        if event.status == Status.SKIP and event.label:
            result = self._operation(event.label)
            if event.skip_reason:
                result.skip_reasons.add(event.skip_reason)
            return
        self.test_cases += len(recorder.cases)
        for case_id, node in recorder.cases.items():
            label = node.value.operation.label
            result = self._operation(label)
            result.test_cases += 1
            interaction = recorder.interactions.get(case_id)
            response = interaction.response if interaction is not None else None
            if response is not None:
                result.tested = True
                result.elapsed_s += response.elapsed
                result.responses += 1
                result.auth_refusals += response.status_code in (401, 403)
                result.successes += 200 <= response.status_code < 300
            for check in recorder.checks.get(case_id, []):
                info = check.failure_info
                if info is None:
                    continue
                self._record(
                    label,
                    check.name,
                    info.failure,
                    response.status_code if response else None,
                    info.code_sample,
                )
        if event.status == Status.ERROR and event.label:
            self._errored_scenarios.add(event.label)

    def finish(self) -> None:
        """After the last event: an operation whose scenario errored without saying why gets a
        reason, and a reproducing curl with a long body reads it from a file."""
        for label in self._errored_scenarios:
            result = self._operation(label)
            if not result.failures and not result.errors:
                result.errors.append("schemathesis reported an error on this operation")
        if self.bodies_dir is not None:
            for failure in self.failures:
                failure.curl = body_from_file(failure.curl, self.bodies_dir)

    def _record(
        self, label: str, check: str, failure: Any, status_code: int | None, curl: str
    ) -> None:
        title = getattr(failure, "title", "") or type(failure).__name__
        message = getattr(failure, "message", "") or ""
        text = self.redact(f"{title}: {message}".strip().rstrip(":"))[:MESSAGE_LIMIT]
        curl = self.redact(curl)
        # Schemathesis failures compare by kind and operation, so repeats of one problem collapse;
        # the shortest reproduction of each is kept (shrinking finds it last, coverage first).
        key = (label, check, failure)
        known = self._seen.get(key)
        if known is not None:
            if curl and len(curl) < len(known.curl):
                known.curl, known.message, known.status_code = curl, text, status_code
            return
        record = ContractFailure(
            operation=label, check=check, message=text, status_code=status_code, curl=curl
        )
        self._seen[key] = record
        self.failures.append(record)
        self._operation(label).failures.append(record)

    # -- summary -----------------------------------------------------------------------------

    def progress(self) -> dict[str, Any]:
        """Heartbeat details: small, and enough to see a run move."""
        return {
            "phase": self.phase,
            "scenarios": self.scenarios_finished,
            "test_cases": self.test_cases,
            "operations_tested": sum(1 for r in self.operations.values() if r.tested),
            "failures": len(self.failures),
        }

    def locked_out(self) -> list[str]:
        """Operations that never answered 2xx and mostly answered 401/403: the run was not let in."""
        return sorted(
            r.label
            for r in self.operations.values()
            if r.responses and not r.successes and r.auth_refusals * 2 >= r.responses
        )

    def counts(self) -> tuple[int, int, int, int]:
        """(total, tested, errored, skipped) over the selected operations."""
        results = [r for label, r in self.operations.items() if label != RUN_LABEL]
        tested = sum(1 for r in results if r.tested)
        errored = sum(1 for r in results if r.errors and not r.tested)
        skipped = len(results) - tested - errored
        return len(results), tested, errored, skipped


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
) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        **context,
        **report.model_dump(mode="json"),
        "operations": [
            r.as_dict() for r in sorted(collector.operations.values(), key=lambda r: r.label)
        ],
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
    run_problems = list(report.errors)
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
            if failure.status_code is not None:
                lines.append(f"HTTP status: {failure.status_code}")
            if failure.curl:
                lines.append(f"Reproduce with:\n    {failure.curl}")
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
            case, "error", {"type": "run", "message": _clean(run_problems[0][:200])}
        )
        element.text = _clean("\n".join(run_problems))
    ElementTree.indent(root)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        + ElementTree.tostring(root, encoding="unicode")
        + "\n"
    )


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
