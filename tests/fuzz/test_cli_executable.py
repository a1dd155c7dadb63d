"""The real `warden` executable against a real dev server: bad plan files and bad command lines
exit 2 with `warden:` or `<file>:` lines on stderr, nothing on stdout, and no traceback; bad
decisions on a release waiting for sign-off are refused, audited, and change nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from hypothesis import strategies as st

from tests.fuzz.arguments import COMMANDS, REPORTS_ON_STDOUT, Invocation, invocations
from tests.fuzz.live import (
    MEMBERS,
    WARDEN,
    Live,
    park_release,
    run_all,
    run_process,
    snapshot,
    wait_for,
)
from tests.fuzz.strategies import broken_plans
from tests.fuzz.support import TALLY, assert_clean_failure, draw_cases, examples
from tests.helpers import RecordingServer

EXIT_CODES = {
    0: "succeeded",
    1: "ended unpromoted",
    2: "refused (exit 2)",
    3: "Temporal unreachable (exit 3)",
}
#: Commands that may exit 1 by design (a release or sign-off that ended without success).
MAY_END_UNPROMOTED = {("release", "start"), ("release", "watch"), ("governance", "signoff")}


def write_bad_plans(where: Path, count: int) -> list[str]:
    """Plan files that must be refused, as YAML or JSON."""
    names = []
    for i, broken in enumerate(
        draw_cases(broken_plans().filter(lambda b: b.refuse and b.kind != "deep"), count)
    ):
        text = json.dumps(broken.doc, default=str) if i % 3 == 0 else yaml.safe_dump(broken.doc)
        if "${" in text:
            continue  # read from the environment first; covered in process
        name = f"bad-{i}.{'json' if i % 3 == 0 else 'yaml'}"
        (where / name).write_text(text)
        names.append(name)
    for name, content in [
        ("not-utf8.yaml", b"owner: caf\xe9\n"),
        ("empty.yaml", b""),
        ("list.yaml", b"- 1\n"),
    ]:
        (where / name).write_bytes(content)
        names.append(name)
    return names


def check(invocation: Invocation, code: int, stdout: str, stderr: str) -> None:
    allowed = {0, 2, 3} | ({1} if invocation.command in MAY_END_UNPROMOTED else set())
    assert code in allowed, f"{invocation!r}: exit {code}\n{stderr[-2000:]}"
    if invocation.must_fail:
        assert code == 2, f"{invocation!r}: exit {code}, expected 2\n{stderr[-1000:]}"
    if code not in (0, 1) and invocation.command not in REPORTS_ON_STDOUT:
        prefixes = ("warden:", *(f"{a}:" for a in invocation.argv if a))
        assert_clean_failure(code, stdout, stderr, prefixes, invocation)


async def test_the_warden_executable_refuses_bad_input_cleanly(
    live: Live, target: RecordingServer
) -> None:
    handle = await park_release(live, target.url)
    before = snapshot(await wait_for(handle, lambda s: True))
    files = write_bad_plans(live.workdir, 12)
    paths = [*files, "missing.yaml", ".", "", "x" * 300, "ünïcødé.yaml"]
    # a release id that exists is offered only to commands that cannot change it with these values
    deciding = [
        c
        for c in COMMANDS
        if c[0]
        in {
            ("release", "approve"),
            ("release", "reject"),
            ("release", "resume"),
            ("release", "status"),
        }
    ]
    others = [c for c in COMMANDS if c[0] != ("release", "watch")]
    outsiders = ["alice", "bob", "mallory", "CAROL", "carol ", "Ω"]
    strategy = st.one_of(
        invocations(
            paths,
            {"release_id": [handle.id], "stage": ["pilot", "dev", "nope"], "as_user": outsiders},
            deciding,
        ),
        invocations(
            paths,
            {"release_id": ["release-nope-1", "release-" + "x" * 2000], "as_user": outsiders},
            others,
        ),
        st.sampled_from(files).map(
            lambda f: Invocation(
                ["plan", "validate", f], "bad plan file", True, ("plan", "validate")
            )
        ),
        st.sampled_from(files).map(
            lambda f: Invocation(
                ["release", "start", f, "--wait"], "bad plan file", True, ("release", "start")
            )
        ),
    )
    cases = draw_cases(strategy, examples(40))
    results = await run_all(
        [
            run_process(WARDEN, *c.argv, env=live.warden_env(), cwd=live.workdir, timeout=120)
            for c in cases
        ]
    )
    failures = []
    for invocation, (code, stdout, stderr) in zip(cases, results, strict=True):
        try:
            check(invocation, code, stdout, stderr)
            TALLY.add("command lines (the warden executable)", EXIT_CODES[code])
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n".join(failures[:10])

    # refused decisions are audited on the timeline; nothing else about the release changed
    status = await wait_for(handle, lambda s: True)
    after = snapshot(status)
    added = after.pop("timeline")[len(before["timeline"]) :]
    assert after == {k: v for k, v in before.items() if k != "timeline"}
    assert all(action.endswith(".refused") for action, _ in added), added

    for member in MEMBERS[:2]:
        code, stdout, stderr = await run_process(
            WARDEN,
            "release",
            "approve",
            handle.id,
            "--stage",
            "pilot",
            "--as",
            member,
            env=live.warden_env(),
        )
        assert code == 0, stderr
    final = await wait_for(handle, lambda s: s.state.ended)
    assert final.state.value == "promoted", final.result
