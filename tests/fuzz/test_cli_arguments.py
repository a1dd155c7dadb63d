"""`warden` command lines by the thousand, in process: bad arguments exit 2 with one `warden:` line.

Temporal is pointed at a closed port on 127.0.0.1, so a command that gets as far as connecting
exits 3; nothing here needs a server.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.arguments import REPORTS_ON_STDOUT, Invocation, invocations
from tests.fuzz.support import TALLY, assert_clean_failure, fuzz
from tests.helpers import plan_dict
from warden.cli import run_cli

EXIT_CODES = {
    0: "succeeded",
    1: "ended unpromoted",
    2: "refused (exit 2)",
    3: "Temporal unreachable (exit 3)",
}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working directory with plan files to point at, and settings that reach no Temporal."""
    for key in ("WARDEN_GOVERNANCE_FILE", "WARDEN_TOKEN", "WARDEN_AUDIT_DB_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("WARDEN_TEMPORAL_ADDRESS", f"127.0.0.1:{closed_port()}")
    monkeypatch.setenv("WARDEN_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("WARDEN_AUTOSTART_WORKER", "false")
    monkeypatch.setenv("WARDEN_USER", "fuzzer")
    monkeypatch.chdir(tmp_path)
    write_sample_files(tmp_path)
    yield tmp_path


SAMPLE_PATHS = [
    "valid.yaml",
    "broken.yaml",
    "plan.json",
    "not-utf8.yaml",
    "empty.yaml",
    "missing.yaml",
    ".",
    "plans",
    "",
    "x" * 300,
    "ünïcødé.yaml",
    "nodir/out.xml",
    "out.xml",
    "-",
]


def write_sample_files(where: Path) -> None:
    valid = plan_dict("http://127.0.0.1:9", version="1.0.0")
    (where / "valid.yaml").write_text(yaml.safe_dump(valid))
    broken = dict(valid, colour="blue", stages=[dict(valid["stages"][0], base_url="ftp://x")])
    (where / "broken.yaml").write_text(yaml.safe_dump(broken))
    (where / "plan.json").write_text(json.dumps(dict(valid, version=1.5)))
    (where / "not-utf8.yaml").write_bytes(b"service: caf\xe9\n")
    (where / "empty.yaml").write_text("")
    (where / "ünïcødé.yaml").write_text("- a list\n")
    (where / "plans").mkdir(exist_ok=True)


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = run_cli(argv)
        except BaseException as exc:  # anything escaping run_cli is a traceback for the user
            raise AssertionError(f"warden {argv!r} raised {type(exc).__name__}: {exc}") from exc
    return code, out.getvalue(), err.getvalue()


def check(invocation: Invocation, code: int, stdout: str, stderr: str) -> None:
    assert code in EXIT_CODES, f"{invocation!r}: exit {code}\n{stderr[-2000:]}"
    if invocation.must_fail:
        assert code == 2, f"{invocation!r}: exit {code}, expected 2 (refused)\n{stderr[-1000:]}"
    if code != 0 and invocation.command not in REPORTS_ON_STDOUT:
        prefixes = ("warden:", *(f"{a}:" for a in invocation.argv if a))
        assert_clean_failure(code, stdout, stderr, prefixes, invocation)


@fuzz(ci=1500)
@given(invocations(SAMPLE_PATHS))
def test_command_lines_fail_with_exit_2_and_one_line_or_run(
    workdir: Path, invocation: Invocation
) -> None:
    code, stdout, stderr = run(invocation.argv)
    check(invocation, code, stdout, stderr)
    TALLY.add("command lines (in process)", EXIT_CODES[code])


@fuzz(ci=300)
@given(
    command=st.sampled_from(
        [
            ["release", "approve", "r", "--stage"],
            ["release", "reject", "r", "--comment", "c", "--stage"],
            ["release", "pause", "r", "--reason"],
            ["release", "abort", "r", "--reason"],
            ["release", "resume", "r", "--as"],
            ["release", "approve", "r", "--stage", "pilot", "--comment"],
            ["access", "approve", "c", "--as"],
            ["access", "reject", "c", "--comment"],
            ["governance", "signoff", "--reason"],
            ["flags", "disable", "x", "--env", "dev", "--reason"],
            ["flags", "set", "ai.solutions", "--percent", "5", "--reason", "r", "--env"],
            ["flags", "show", "--env"],
            ["flags", "init", "--env"],
            ["flags", "init", "--flag"],
            ["release", "start", "valid.yaml", "--trace-id"],
        ]
    ),
    value=st.one_of(
        st.sampled_from(["", " ", "a b", "../x", "x\ny", "Ω", "bad flag", "=5"]),
        st.integers(101, 20_000).map(lambda n: "v" * n),
        st.text(max_size=3).map(lambda t: t + "\t"),
    ),
)
def test_values_a_request_refuses_are_refused_before_connecting(
    workdir: Path, command: list[str], value: str
) -> None:
    """Values the models refuse (empty, too long, not a name) are exit 2 even with Temporal down."""
    invocation = Invocation([*command, value], "refused value", False, tuple(command[:2]))
    code, stdout, stderr = run(invocation.argv)
    check(invocation, code, stdout, stderr)
    TALLY.add("command lines with values a request refuses", EXIT_CODES[code])


@pytest.mark.parametrize(
    "argv",
    [
        ["release", "approve", "r", "--stage", ""],
        ["release", "approve", "r", "--stage", "s" * 101],
        ["release", "approve", "r", "--stage", "pilot", "--comment", "c" * 5001],
        ["release", "reject", "r", "--stage", "pilot", "--comment", "c" * 5001],
        ["release", "pause", "r", "--as", "u" * 201],
        ["release", "abort", "r", "--reason", "r" * 5001],
        ["release", "status", ""],
        ["release", "watch", " "],
        ["release", "watch", "r", "--interval", "nan"],
        ["release", "start", "valid.yaml", "--trace-id", "a b"],
        ["access", "status", ""],
        ["access", "approve", "c", "--as", "bad user"],
        ["governance", "signoff", "--reason", ""],
        ["flags", "disable", "bad flag", "--env", "dev", "--reason", "r"],
        ["flags", "enable", "ai.solutions", "--env", "../x", "--reason", "r"],
        ["flags", "init", "--env", "../../outside"],
        ["flags", "init", "--flag", "=5"],
        ["flags", "show", "--env", "../../etc"],
        ["audit", "export", "-o", "."],
        ["audit", "export", "-o", "nodir/out.csv"],
    ],
)
def test_known_bad_values_exit_2_with_one_line(workdir: Path, argv: list[str]) -> None:
    code, stdout, stderr = run(argv)
    invocation = Invocation(argv, "known bad value", True, tuple(argv[:2]))
    check(invocation, code, stdout, stderr)
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert not (workdir / "outside.flagd.json").exists()


@pytest.mark.parametrize("value", ["!!float abc", "!!timestamp x", "9" * 5000])
def test_a_governance_file_with_an_unreadable_value_is_refused(workdir: Path, value: str) -> None:
    (workdir / "governance.yaml").write_text(f"version: {value}\n")
    code, stdout, stderr = run(["governance", "validate", "governance.yaml"])
    check(
        Invocation(["governance", "validate", "governance.yaml"], "bad file", True),
        code,
        stdout,
        stderr,
    )
