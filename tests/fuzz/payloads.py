"""Update payloads as anyone with the plain `temporal` CLI can send them, all of them refusable.

Nothing generated here may be a request the workflow should accept: approvals come only from
people who are not members of the sign-off, pauses and aborts are always malformed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from pydantic import BaseModel

from warden.models.governance import AccessDecision
from warden.models.release import AbortRequest, ControlRequest, DecisionRequest


@dataclass
class Payload:
    update: str
    args: list[str]  # everything after --name: --input ..., --input-meta ...
    kind: str

    def __repr__(self) -> str:
        shown = [a if len(a) <= 120 else f"{a[:60]}...({len(a)} chars)" for a in self.args]
        return f"Payload({self.update}, {self.kind}: {shown})"


_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
_texts = st.one_of(
    st.text(_CHARS, max_size=20),
    st.sampled_from(["", " ", "pilot ", "PILOT", "Ω", "\u202e", "carol\n", " carol", "😀", "null"]),
)
JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(_CHARS, max_size=15),
    ),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(_CHARS, max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


def _limits(model: type[BaseModel], name: str) -> tuple[int | None, int | None]:
    low = high = None
    for item in model.model_fields[name].metadata:
        low = getattr(item, "min_length", low)
        high = getattr(item, "max_length", high)
    return low, high


@st.composite
def malformed(draw: st.DrawFn, model: type[BaseModel], base: dict[str, Any]) -> tuple[str, Any]:
    """A body the model refuses: not an object, a field missing, unknown, mistyped, too short or long."""
    body = dict(base)
    fields = list(model.model_fields)
    kind = draw(
        st.sampled_from(
            [
                "not-an-object",
                "missing",
                "unknown",
                "wrong-type",
                "too-short",
                "too-long",
                "pattern",
            ]
        )
    )
    if kind == "not-an-object":
        return kind, draw(
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(),
                st.text(_CHARS, max_size=10),
                st.lists(JSON, max_size=3),
            )
        )
    if kind == "missing":
        required = [f for f in fields if model.model_fields[f].is_required()]
        del body[draw(st.sampled_from(required))]
        return kind, body
    if kind == "unknown":
        body[draw(st.text(_CHARS, min_size=1, max_size=12).filter(lambda k: k not in fields))] = (
            draw(JSON)
        )
        return kind, body
    name = draw(st.sampled_from(fields))
    annotation = model.model_fields[name].annotation
    if kind == "wrong-type":
        if annotation is bool:
            body[name] = draw(
                st.one_of(
                    st.lists(JSON, min_size=1, max_size=2),
                    st.dictionaries(st.text(max_size=3), JSON, min_size=1, max_size=2),
                    st.integers(2, 10**6),
                )
            )
        else:  # text fields (some optional: never null)
            body[name] = draw(
                st.one_of(
                    st.integers(),
                    st.booleans(),
                    st.lists(JSON, min_size=1, max_size=2),
                    st.dictionaries(st.text(max_size=3), JSON, min_size=1, max_size=2),
                )
            )
        return kind, body
    low, high = _limits(model, name)
    if kind == "too-short" and low:
        body[name] = ""
        return kind, body
    if kind == "pattern" and model is AccessDecision and name == "user":
        body[name] = draw(st.sampled_from(["bad user", "-x", "a/b", "ü", "x" * 101, ""]))
        return kind, body
    if high is None:  # fall back to a field that has a bound
        name = next(f for f in fields if _limits(model, f)[1] is not None)
        high = _limits(model, name)[1]
    assert high is not None
    body[name] = "x" * draw(st.integers(high + 1, high + 60_000))
    return "too-long", body


def _input(body: Any) -> list[str]:
    return ["--input", json.dumps(body)]


RELEASE_UPDATES = ("approve", "reject", "pause", "resume", "abort")


@st.composite
def release_payloads(draw: st.DrawFn, members: tuple[str, ...], started_by: str) -> Payload:
    """Payloads for a release parked at its pilot sign-off; every one must be refused."""
    update = draw(st.sampled_from([*RELEASE_UPDATES, "unknown", "raw"]))
    if update == "unknown":
        name = draw(
            st.text(_CHARS, min_size=1, max_size=20).filter(lambda n: n not in RELEASE_UPDATES)
        )
        return Payload(name, _input(draw(JSON)), "unknown update")
    if update == "raw":
        # not one JSON value: none, two, or text that is not JSON at all
        update = draw(st.sampled_from(RELEASE_UPDATES))
        args = draw(
            st.sampled_from(
                [
                    [],
                    ["--input", '{"user": "bob"}', "--input", '{"user": "bob"}'],
                    ["--input", "{not json"],
                    ["--input", "'single quotes'"],
                    ["--input", '{"stage": "pilot", "user": "bob"} trailing'],
                ]
            )
        )
        return Payload(update, args, "not one JSON value")
    model = {
        "approve": DecisionRequest,
        "reject": DecisionRequest,
        "pause": ControlRequest,
        "resume": ControlRequest,
        "abort": AbortRequest,
    }[update]
    outsiders = st.one_of(
        st.sampled_from([started_by, "bob", "mallory", *(m.upper() for m in members)]), _texts
    ).filter(lambda u: u not in members)
    if update in ("approve", "reject") and draw(st.booleans()):
        # well-formed, refused by the validator: an outsider, or a stage not waiting
        user = draw(outsiders | st.sampled_from(members))
        stage = (
            draw(st.sampled_from(["dev", "staging", "production", "nope"]) | _texts)
            if user in members
            else draw(st.sampled_from(["pilot"]) | _texts)
        )
        body: dict[str, Any] = {"stage": stage, "user": user}
        if draw(st.booleans()):
            body["comment"] = draw(_texts)
        if stage == "pilot" and user in members:
            body["user"] = "mallory"
        return Payload(update, _input(body), "refused by the validator")
    if update == "resume" and draw(st.booleans()):
        return Payload(
            update,
            _input({"user": draw(outsiders | st.sampled_from(members)), "reason": draw(_texts)}),
            "not paused",
        )
    base = {
        "approve": {"stage": "pilot", "user": "mallory", "comment": "ok"},
        "reject": {"stage": "pilot", "user": "mallory", "comment": "no"},
        "pause": {"user": "bob", "reason": "look"},
        "resume": {"user": "bob", "reason": "go"},
        "abort": {"user": "bob", "reason": "stop"},
    }[update]
    kind, body = draw(malformed(model, base))
    return Payload(update, _input(body), kind)


ACCESS_UPDATES = ("approve", "reject")


@st.composite
def access_payloads(
    draw: st.DrawFn, members: tuple[str, ...], requester: str, subject: str
) -> Payload:
    """Payloads for an access change waiting for its committee; every one must be refused."""
    update = draw(st.sampled_from([*ACCESS_UPDATES, "unknown"]))
    if update == "unknown":
        name = draw(
            st.text(_CHARS, min_size=1, max_size=20).filter(lambda n: n not in ACCESS_UPDATES)
        )
        return Payload(name, _input(draw(JSON)), "unknown update")
    if draw(st.booleans()):
        user = draw(
            st.sampled_from([requester, subject, "bob", "mallory", *(m.upper() for m in members)])
        )
        body = {"user": user, "comment": draw(_texts)}
        return Payload(update, _input(body), "refused by the validator")
    if update == "reject" and draw(st.booleans()):
        return Payload(
            update,
            _input(
                {
                    "user": draw(st.sampled_from(members)),
                    "comment": draw(st.sampled_from(["", "  "])),
                }
            ),
            "rejection without comment",
        )
    kind, body = draw(malformed(AccessDecision, {"user": "mallory", "comment": "ok"}))
    return Payload(update, _input(body), kind)


#: Payload encodings the JSON converter never sees: they reach the handler as None or bytes.
RAW_ENCODINGS = [
    ["--input", "", "--input-meta", "encoding=binary/null"],
    ["--input", "aGVsbG8=", "--input-base64", "--input-meta", "encoding=binary/plain"],
]
