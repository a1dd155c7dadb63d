"""The shell commands a page of docs/ (or the README) shows, read from its fenced ```sh blocks,
so a test can run them exactly as a reader would paste them."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
_DECLARATION = re.compile(r"^([A-Z][A-Z0-9_]*)=(\S+)\s*(#.*)?$")
_EXITS = re.compile(r"\bexits? (\d+)\b")


@dataclass
class ShBlock:
    section: str  # the `## ` heading the block is under ("" before the first heading)
    text: str  # the block's lines, without the fence's indentation

    def commands(self) -> list[str]:
        """One entry per command: comment-only and blank lines dropped, `\\` continuations joined."""
        found: list[str] = []
        pending = ""
        for line in self.text.splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            found.append(pending + line)
            pending = ""
        assert not pending, f"a command in {self.section!r} ends with a line continuation"
        return found

    def declarations(self) -> dict[str, str]:
        """`NAME=value   # what it is` lines: the placeholders the page declares, with its values."""
        return {
            m.group(1): m.group(2)
            for line in self.text.splitlines()
            if (m := _DECLARATION.match(line.strip()))
        }

    def with_values(self, values: dict[str, str]) -> str:
        """The block with its declared placeholders set to `values` (and nothing else changed)."""
        unknown = set(values) - set(self.declarations())
        assert not unknown, f"not placeholders the block declares: {sorted(unknown)}"
        lines = []
        for line in self.text.splitlines():
            match = _DECLARATION.match(line.strip())
            if match and match.group(1) in values:
                line = f"{match.group(1)}={shlex.quote(values[match.group(1)])}"
            lines.append(line)
        return "\n".join(lines)


def sh_blocks(path: Path) -> list[ShBlock]:
    blocks: list[ShBlock] = []
    section = ""
    fence_indent: str | None = None
    lines: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fence = _FENCE.match(line)
        if fence_indent is None:
            if line.startswith("## "):
                section = line[3:].strip()
            elif fence and fence.group(2) == "sh":
                fence_indent, lines = fence.group(1), []
        elif fence and not fence.group(2):
            blocks.append(ShBlock(section, "\n".join(lines)))
            fence_indent = None
        else:
            lines.append(line[len(fence_indent) :] if line.startswith(fence_indent) else line)
    assert fence_indent is None, f"{path}: a ```sh block is not closed"
    return blocks


def comment(command: str) -> str:
    """The trailing `# ...` comment of a command line (outside quotes), or ""."""
    quote = ""
    for i, char in enumerate(command):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or command[i - 1].isspace()):
            return command[i:]
    return ""


def expected_exit(command: str) -> int:
    """0, unless the command's comment says `exits N`."""
    match = _EXITS.search(comment(command))
    return int(match.group(1)) if match else 0
