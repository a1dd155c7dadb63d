"""Generated `warden` command lines, read from the CLI's own definition so new commands are covered.

Each `Invocation` says whether it must fail with exit 2 (unknown command or option, a missing
required option, a value its type refuses) or may do anything but fail untidily.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import click
from hypothesis import strategies as st

from warden.cli import cli

#: Commands that run servers or demos until stopped: not for a fuzzer.
LONG_RUNNING = {("demo",), ("worker",), ("api",)}
#: Status reports: their answer is on stdout whatever the exit code.
REPORTS_ON_STDOUT = {("server", "status")}


def _commands() -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []

    def walk(group: click.Group, prefix: tuple[str, ...]) -> None:
        for name, command in sorted(group.commands.items()):
            path = (*prefix, name)
            if path in LONG_RUNNING:
                continue
            found.append((path, command))
            if isinstance(command, click.Group):
                walk(command, path)

    walk(cli, ())
    return found


COMMANDS = _commands()

# Text a person might pass: empty, unicode, right-to-left, very long, option-looking.
# No NUL and no surrogates: a command line cannot carry them.
_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
TEXT_VALUES = st.one_of(
    st.text(_CHARS, max_size=20),
    st.sampled_from(
        [
            "",
            " ",
            "-",
            "--",
            "-x",
            "--json",
            "Ω≈ç√∫",
            "مرحبا",
            "\u202eevil",
            "a\nb",
            "😀",
            "..",
            "/",
            "~",
        ]
    ),
    st.integers(1, 20_000).map(lambda n: "v" * n),
)


@dataclass
class Invocation:
    argv: list[str]
    kind: str
    must_fail: bool
    command: tuple[str, ...] = ()
    files: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        shown = [a if len(a) <= 80 else f"{a[:40]}...({len(a)} chars)" for a in self.argv]
        return f"Invocation({self.kind}: warden {' '.join(repr(a) for a in shown)})"


@st.composite
def _value(
    draw: st.DrawFn, param: click.Parameter, paths: list[str], extra: dict[str, list[str]]
) -> str:
    kind = param.type
    if param.name in extra and draw(st.booleans()):
        return draw(st.sampled_from(extra[param.name]))
    if isinstance(kind, click.Path):
        return draw(st.sampled_from(paths))
    if isinstance(kind, click.IntRange | click.types.IntParamType):
        return str(draw(st.integers(-(10**30), 10**30) | st.integers(-2, 10_000_001)))
    if isinstance(kind, click.FloatRange | click.types.FloatParamType):
        return str(draw(st.floats()))
    if isinstance(kind, click.Choice):
        return draw(st.sampled_from([str(c) for c in kind.choices]) | TEXT_VALUES)
    if isinstance(kind, click.DateTime):
        return draw(
            st.sampled_from(["2026-11-01", "2026-11-01T10:00:00", "yesterday", "2026-13-45", ""])
            | TEXT_VALUES
        )
    return draw(TEXT_VALUES)


def _option_args(draw: st.DrawFn, option: click.Option, value: st.SearchStrategy[str]) -> list[str]:
    name = draw(st.sampled_from(option.opts + option.secondary_opts))
    if option.is_flag:
        return [name]
    return [name, draw(value)]


@st.composite
def invocations(
    draw: st.DrawFn,
    paths: list[str],
    extra: dict[str, list[str]] | None = None,
    commands: list[tuple[tuple[str, ...], click.Command]] | None = None,
) -> Invocation:
    """A command line; `extra` adds likely values for a parameter name (e.g. a real release id)."""
    extra = extra or {}
    path, command = draw(st.sampled_from(commands or COMMANDS))
    argv = list(path)
    kind = draw(
        st.sampled_from(
            [
                "random",
                "random",
                "unknown-option",
                "missing-required",
                "bad-value",
                "unknown-command",
                "help",
            ]
        )
    )
    params = list(command.params)
    arguments = [p for p in params if isinstance(p, click.Argument)]
    options = [p for p in params if isinstance(p, click.Option)]
    required = [p for p in params if p.required]
    typed = [
        p
        for p in params
        if isinstance(p.type, click.IntRange | click.FloatRange | click.Choice | click.DateTime)
    ]

    if kind == "unknown-command":
        group = command if isinstance(command, click.Group) else None
        known = set(group.commands) if group else set()
        name = draw(
            st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12).filter(
                # a name that starts with "-" is an option (`-h` is help), not a command
                lambda n: n not in known and not n.startswith("-")
            )
        )
        argv = (list(path) if group else list(path[:-1])) + [name]
        if not group and len(path) == 1:
            argv = [name]
        return Invocation(argv, kind, True, path)
    if kind == "help":
        return Invocation([*argv, draw(st.sampled_from(["--help", "-h"]))], kind, False, path)

    drop = draw(st.sampled_from(required)) if kind == "missing-required" and required else None
    broken = draw(st.sampled_from(typed)) if kind == "bad-value" and typed else None
    kind = (
        "random"
        if (kind == "missing-required" and drop is None) or (kind == "bad-value" and broken is None)
        else kind
    )

    tail: list[str] = []
    for option in options:
        if option is drop:
            continue
        if option is broken:
            tail += [option.opts[0], draw(_bad_value(option))]
            continue
        include = option.required or draw(st.booleans())
        for _ in range(draw(st.integers(1, 2)) if option.multiple and include else int(include)):
            tail += _option_args(draw, option, _value(option, paths, extra))
    positional = []
    for argument in arguments:
        if argument is drop:
            continue
        if argument.required or draw(st.booleans()):
            positional.append(draw(_value(argument, paths, extra)))
    if kind == "unknown-option":
        known_names = {o for p in options for o in p.opts + p.secondary_opts} | {"--help", "-h"}
        tail.append(
            draw(
                st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)
                .map(lambda t: "--" + t)
                .filter(lambda t: t not in known_names)
            )
        )
    # options before or after the arguments; `--` keeps option-looking arguments positional
    if positional and any(a.startswith("-") for a in positional):
        argv += tail + ["--", *positional]
    else:
        argv += positional + tail if draw(st.booleans()) else tail + positional
    must_fail = kind in ("unknown-option", "missing-required", "bad-value")
    return Invocation(argv, kind, must_fail, path)


def _bad_value(option: click.Option) -> st.SearchStrategy[str]:
    kind = option.type
    if isinstance(kind, click.IntRange):
        below = (kind.min - 1) if kind.min is not None else None
        above = (kind.max + 1) if kind.max is not None else None
        outside = [str(v) for v in (below, above) if v is not None]
        return st.sampled_from([*outside, "abc", "1.5", "", "10**9"])
    if isinstance(kind, click.FloatRange):
        outside = [
            str(v)
            for v in (
                kind.min - 1 if kind.min is not None else None,
                kind.max + 1 if kind.max is not None else None,
            )
            if v is not None
        ]
        return st.sampled_from([*outside, "abc", "", "nan", "inf"])
    if isinstance(kind, click.Choice):
        return st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10).filter(
            lambda t: t not in kind.choices
        )
    return st.sampled_from(["yesterday", "2026-13-45", "", "11/01/2026", "now"])
