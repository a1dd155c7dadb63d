"""What every fuzz test shares: how many cases to run, the tally printed at the end, clean refusals.

`WARDEN_FUZZ_PROFILE=ci` (default) keeps the suite within a few minutes; `long` runs ten times
as many cases with fresh randomness. `WARDEN_FUZZ_EXAMPLES=N` sets the number of cases of every
fuzz test outright (e.g. `WARDEN_FUZZ_EXAMPLES=2000` for a long CLI run).
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from warden.models.plan import MAX_PROBLEM_LENGTH

T = TypeVar("T")

PROFILE = os.environ.get("WARDEN_FUZZ_PROFILE", "ci")
if PROFILE not in ("ci", "long"):
    raise RuntimeError(f"WARDEN_FUZZ_PROFILE must be ci or long, not {PROFILE!r}")

_HEALTH = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
    HealthCheck.large_base_example,
    HealthCheck.function_scoped_fixture,
]


def examples(ci: int) -> int:
    """How many cases a test runs: `ci` by default, ten times that in the long profile."""
    explicit = os.environ.get("WARDEN_FUZZ_EXAMPLES")
    if explicit:
        return int(explicit)
    return ci * 10 if PROFILE == "long" else ci


def fuzz(ci: int) -> settings:
    """Hypothesis settings for an in-process property test (shrinks a failure to its smallest case)."""
    return settings(
        max_examples=examples(ci),
        deadline=None,
        derandomize=PROFILE == "ci",  # CI sees the same cases every run; `long` explores
        database=None,
        suppress_health_check=_HEALTH,
        print_blob=True,
        # shrinking a many-stage plan can take minutes; a long run reports the case as found
        phases=list(Phase) if PROFILE == "ci" else [Phase.explicit, Phase.generate, Phase.target],
    )


def draw_cases(strategy: st.SearchStrategy[T], count: int) -> list[T]:
    """`count` generated cases, for tests that run them concurrently (subprocesses, Temporal).

    These cases are not shrunk: a failure names the exact case that failed instead.
    """
    cases: list[T] = []

    @settings(
        max_examples=count,
        deadline=None,
        derandomize=PROFILE == "ci",
        database=None,
        suppress_health_check=_HEALTH,
        phases=[Phase.explicit, Phase.generate],
    )
    @given(strategy)
    def collect(case: T) -> None:
        cases.append(case)

    collect()
    return cases


class Tally:
    """Counts of generated cases and how they ended, printed in pytest's terminal summary."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(self, what: str, outcome: str, n: int = 1) -> None:
        self.counts[what][outcome] += n

    def lines(self) -> list[str]:
        out = []
        for what, outcomes in sorted(self.counts.items()):
            total = sum(outcomes.values())
            parts = ", ".join(
                f"{n:,} {outcome}" for outcome, n in sorted(outcomes.items(), key=lambda kv: -kv[1])
            )
            out.append(f"{total:,} {what}: {parts}")
        return out


TALLY = Tally()

_LOCATED = re.compile(r"^(?P<where>\S[^\n]*?): \S")


def assert_clean_problems(problems: Iterable[Any], context: object = "") -> None:
    """Problems a user reads: one line each, no traceback, bounded, `where: what`."""
    problems = list(problems)
    assert problems, f"refused without saying why: {context!r}"
    for line in problems:
        assert isinstance(line, str) and line.strip(), f"empty problem for {context!r}"
        assert len(line.splitlines()) == 1, f"problem spans lines: {line!r}"
        assert "Traceback" not in line and 'File "' not in line, f"traceback in problem: {line!r}"
        assert len(line) <= MAX_PROBLEM_LENGTH, (
            f"problem of {len(line)} characters: {line[:200]!r}..."
        )
        assert _LOCATED.match(line), f"problem names no field path or line: {line!r}"


def assert_clean_failure(
    code: int, stdout: str, stderr: str, prefixes: tuple[str, ...], context: object
) -> None:
    """A CLI failure: stdout empty, every stderr line starts with `warden:` or `<file>:`, no traceback."""
    assert stdout == "", f"{context!r}: a failure printed to stdout: {stdout[:300]!r}"
    assert "Traceback" not in stderr, f"{context!r} (exit {code}): traceback:\n{stderr[-2000:]}"
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, f"{context!r}: exit {code} without a word on stderr"
    for line in lines:
        assert line.startswith(prefixes), (
            f"{context!r} (exit {code}): stray stderr line {line[:300]!r}"
        )


def first_failure(checks: Iterable[tuple[Any, Callable[[], None]]]) -> list[str]:
    """Run every check; return one message per failing case (so one run reports them all)."""
    failures = []
    for case, check in checks:
        try:
            check()
        except AssertionError as exc:
            failures.append(f"{case!r}: {exc}")
    return failures
