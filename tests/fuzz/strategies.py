"""Generated plan documents: valid by construction, and broken on purpose in every way we know.

`valid_plans()` builds plans a release manager could write. `broken_plans()` takes one and breaks
it once (unknown key, missing key, wrong type, huge value, bad duration, bad URL, duplicate
name, or an arbitrary value), saying whether the result must be refused and where the problem
must be reported. `plan_files()` works on the text: YAML oddities, encodings, aliases, tags.
"""

from __future__ import annotations

import copy
import enum
import json
import math
import types
import typing
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, get_args, get_origin

import yaml
from annotated_types import Ge, Gt, Le, Lt, MaxLen
from hypothesis import strategies as st
from pydantic import BaseModel

from warden.models.common import format_duration, short_repr
from warden.models.contract import CONTRACT_CHECKS, ContractSpec, HeaderValue
from warden.models.flags import FlagRamp
from warden.models.metrics import HttpJsonQuery, MetricCheck, PrometheusQuery, ScrapeQuery
from warden.models.plan import Contact, ReleasePlan, RollbackSpec, Stage
from warden.models.signoff import SignoffSpec
from warden.models.smoke import SmokeCheck

Path = tuple[str | int, ...]

# -- valid plans ------------------------------------------------------------------------------

_LOWER = "abcdefghijklmnopqrstuvwxyz"
_DIGITS = "0123456789"
_ALNUM = _LOWER + _LOWER.upper() + _DIGITS


def _word(first: str, rest: str, max_size: int) -> st.SearchStrategy[str]:
    """`first` char then up to `max_size` of `rest` (faster to draw than st.from_regex)."""
    return st.builds(
        lambda a, b: a + b, st.sampled_from(first), st.text(alphabet=rest, max_size=max_size)
    )


names = _word(_LOWER + _DIGITS, _LOWER + _DIGITS + "-", 20)
versions = st.one_of(
    _word(_ALNUM, _ALNUM + ".-_+", 20),
    st.integers(0, 10**6),  # `version: 2` is read as "2"
)
flag_keys = _word(_ALNUM, _ALNUM + "_.-*", 30)
users = _word(_LOWER, _LOWER + _DIGITS + ".-", 12)
check_names = _word(_ALNUM, _ALNUM + "_.-", 20)
metric_names = _word(_LOWER + "_:", _ALNUM + "_:", 20)
label_names = _word(_LOWER + "_", _ALNUM + "_", 10)
emails = st.builds(
    lambda a, b: f"{a}@{b}",
    st.text(_ALNUM + "._%+-", min_size=1, max_size=10),
    st.text(_ALNUM + ".-", min_size=1, max_size=10),
)
# any text a person may type (no surrogates: they cannot be written to a file)
texts = st.text(max_size=40)
nonempty_texts = st.text(min_size=1, max_size=40)


def durations(min_seconds: float = 0, max_seconds: float = 7 * 86400) -> st.SearchStrategy[Any]:
    """A duration the way plans write it: seconds, '30s', '1h30m', '250ms', ISO 'PT30S'."""
    low = math.ceil(min_seconds)
    seconds = st.integers(max(low, 1) if min_seconds > 0 else low, int(max_seconds))
    return st.one_of(
        seconds,
        seconds.map(lambda n: format_duration(timedelta(seconds=n))),
        seconds.map(lambda n: f"{n}s"),
        seconds.map(lambda n: f"PT{n}S"),
        st.integers(max(1, math.ceil(min_seconds * 1000)), int(max_seconds * 1000)).map(
            lambda ms: f"{ms}ms"
        ),
        st.floats(min_seconds, max_seconds, allow_nan=False, allow_infinity=False)
        .map(lambda f: round(f, 3))
        .filter(lambda f: f >= min_seconds and (f > 0 or min_seconds == 0)),
    )


DURATION_DAY = durations(0, 86400)
DURATION_HOUR = durations(0, 3600)
DURATION_1S_HOUR = durations(1, 3600)
DURATION_DEADLINE = durations(1, 30 * 86400)
POSITIVE_HOUR = durations(0.001, 3600)

base_urls = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{f':{port}' if port else ''}{path}",
    st.sampled_from(["http", "https"]),
    st.sampled_from(["127.0.0.1", "localhost", "svc.example.internal", "[::1]", "10.0.0.7"]),
    st.none() | st.integers(1, 65535),
    st.sampled_from(["", "/", "/api", "/v1/support-desk/"]),
)
_coin = st.booleans()


def maybe(draw: st.DrawFn, doc: dict[str, Any], key: str, strategy: st.SearchStrategy[Any]) -> None:
    """Set an optional key, or leave it out so that defaults are exercised too."""
    if draw(_coin):
        doc[key] = draw(strategy)


_PATHS = st.sampled_from(["/", "/healthz"]) | texts.map(lambda t: "/" + t)
_METHODS = st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"])
_STATUS = st.integers(100, 599) | st.lists(st.integers(100, 599), min_size=1, max_size=3)
_STEPS = st.lists(st.integers(0, 100), min_size=1, max_size=4).map(sorted)


@st.composite
def smoke_checks(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": draw(nonempty_texts)}
    maybe(draw, doc, "path", _PATHS)
    maybe(draw, doc, "method", _METHODS)
    maybe(draw, doc, "expect_status", _STATUS)
    maybe(draw, doc, "contains", texts)
    maybe(draw, doc, "timeout", POSITIVE_HOUR)
    return doc


_APPROVERS = st.lists(users, min_size=1, max_size=5, unique=True)
_MORE_APPROVERS = st.lists(users, max_size=3, unique=True)
_ROLES = st.lists(names, max_size=3)


@st.composite
def signoffs(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if draw(_coin):
        approvers = draw(_APPROVERS)
        doc["approvers"] = approvers
        doc["quorum"] = draw(st.integers(1, len(approvers)))
    else:
        doc["committee"] = draw(names)
        maybe(draw, doc, "approvers", _MORE_APPROVERS)
        maybe(draw, doc, "quorum", st.integers(1, 100))
    maybe(draw, doc, "required_roles", _ROLES)
    maybe(draw, doc, "deadline", DURATION_DEADLINE)
    maybe(draw, doc, "escalate_before", DURATION_DAY)
    maybe(draw, doc, "rejections_to_fail", st.integers(1, 5))
    return doc


_label_values = texts.filter(lambda t: not t.startswith(("=~", "!=", "!~", "~")))
queries = st.one_of(
    st.builds(lambda q: {"provider": "prometheus", "query": q}, nonempty_texts),
    st.builds(
        lambda kind, metric, labels: {
            "provider": "scrape",
            "kind": kind,
            "metric": metric,
            "labels": labels,
        },
        st.sampled_from(["gauge", "counter", "age"]),
        metric_names,
        st.dictionaries(label_names, _label_values, max_size=2),
    ),
    st.builds(
        lambda url, path: {"provider": "http-json", "url": url, "json_path": path},
        st.sampled_from(["/metrics.json", "/api/health", "http://127.0.0.1:9/x"]),
        st.sampled_from(["value", "data.error_rate", "items.0.value"]),
    ),
)
_BOUNDS = st.lists(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
    min_size=1,
    max_size=2,
)
_ACTIONS = st.sampled_from(["rollback", "pause", "notify"])
_PHASES = st.lists(st.sampled_from(["pre", "guard"]), min_size=1, max_size=2)


@st.composite
def metric_checks(draw: st.DrawFn, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": name, "query": draw(queries)}
    bounds = sorted(draw(_BOUNDS))
    if len(bounds) == 2:
        doc["min"], doc["max"] = bounds
    else:
        doc["max" if draw(_coin) else "min"] = bounds[0]
    maybe(draw, doc, "for", DURATION_HOUR)
    maybe(draw, doc, "interval", DURATION_1S_HOUR)
    maybe(draw, doc, "action", _ACTIONS)
    maybe(draw, doc, "phases", _PHASES)
    maybe(draw, doc, "failure_limit", st.integers(0, 10))
    return doc


_OPENAPI = st.sampled_from(["/openapi.json", "http://127.0.0.1:9/openapi.json", "./spec.yaml"])
_CONTRACT_CHECKS = st.just(["all"]) | st.lists(
    st.sampled_from(CONTRACT_CHECKS), min_size=1, max_size=3
)
_HEADERS = st.dictionaries(
    st.builds(lambda n: f"X-{n}", st.text(alphabet=_LOWER, min_size=1, max_size=10)),
    st.one_of(
        st.builds(lambda v: {"value": v}, texts),
        st.just({"from_env": "SERVICE_TOKEN", "prefix": "Bearer "}),
    ),
    max_size=2,
)


@st.composite
def contracts(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    maybe(draw, doc, "openapi", _OPENAPI)
    maybe(draw, doc, "max_examples", st.integers(1, 10_000))
    maybe(draw, doc, "checks", _CONTRACT_CHECKS)
    maybe(draw, doc, "time_budget", DURATION_1S_HOUR)
    maybe(draw, doc, "seed", st.integers(0, 2**63 - 1))
    maybe(draw, doc, "headers", _HEADERS)
    return doc


_GATES = st.sets(st.sampled_from(["smoke", "contract", "checks", "flags", "signoff"]), min_size=1)
_SMOKES = st.lists(smoke_checks(), min_size=1, max_size=3)
_CHECK_NAMES = st.lists(check_names, min_size=1, max_size=3, unique=True)


@st.composite
def stages(draw: st.DrawFn, name: str, declared_flags: list[str]) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": name, "base_url": draw(base_urls)}
    maybe(draw, doc, "environment", names)
    gates = draw(_GATES)
    if "flags" in gates and not declared_flags:
        gates = (gates - {"flags"}) or {"smoke"}
    if "smoke" in gates:
        doc["smoke"] = draw(_SMOKES)
    if "contract" in gates:
        doc["contract"] = draw(contracts())
    if "checks" in gates:
        doc["checks"] = [draw(metric_checks(n)) for n in draw(_CHECK_NAMES)]
    if "flags" in gates:
        ramped = draw(
            st.lists(st.sampled_from(declared_flags), min_size=1, max_size=3, unique=True)
        )
        doc["flags"] = []
        for flag in ramped:
            ramp: dict[str, Any] = {"flag": flag}
            maybe(draw, ramp, "steps", _STEPS)
            maybe(draw, ramp, "bake", DURATION_DAY)
            doc["flags"].append(ramp)
    if "signoff" in gates:
        doc["signoff"] = draw(signoffs())
    maybe(draw, doc, "bake", DURATION_DAY)
    return doc


@st.composite
def contacts(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": draw(nonempty_texts)}
    maybe(draw, doc, "role", texts)
    maybe(draw, doc, "email", emails)
    maybe(draw, doc, "phone", st.text(max_size=20))
    maybe(draw, doc, "im", texts)
    maybe(draw, doc, "emergency", _coin)
    return doc


_FLAGS = st.lists(flag_keys, max_size=4, unique=True)
_STAGE_NAMES = st.lists(names, min_size=1, max_size=4, unique=True)
_CONTACTS = st.lists(contacts(), max_size=2)
_CHANNELS = st.lists(texts, max_size=3)
_ROLLBACK = st.builds(lambda s: {"scope": s}, st.sampled_from(["release", "stage"]))


@st.composite
def valid_plans(draw: st.DrawFn) -> dict[str, Any]:
    """A plan document (what YAML gives) that must validate."""
    declared = draw(_FLAGS)
    doc: dict[str, Any] = {
        "service": draw(names),
        "version": draw(versions),
        "owner": draw(nonempty_texts),
    }
    maybe(draw, doc, "description", st.text(max_size=200))
    if declared or draw(_coin):
        doc["flags"] = declared
    maybe(draw, doc, "contacts", _CONTACTS)
    maybe(draw, doc, "im_channels", _CHANNELS)
    maybe(draw, doc, "rollback", _ROLLBACK)
    doc["stages"] = [draw(stages(n, declared)) for n in draw(_STAGE_NAMES)]
    return doc


# -- where a document's mappings are, and what a field accepts ----------------------------------

QUERY_MODELS: dict[str, type[BaseModel]] = {
    "prometheus": PrometheusQuery,
    "scrape": ScrapeQuery,
    "http-json": HttpJsonQuery,
}


def model_mappings(doc: dict[str, Any]) -> list[tuple[Path, type[BaseModel]]]:
    """Every mapping in a valid document that a model reads, with that model."""
    found: list[tuple[Path, type[BaseModel]]] = [((), ReleasePlan)]
    for i, _ in enumerate(doc.get("contacts", [])):
        found.append((("contacts", i), Contact))
    if "rollback" in doc:
        found.append((("rollback",), RollbackSpec))
    for i, stage in enumerate(doc["stages"]):
        base: Path = ("stages", i)
        found.append((base, Stage))
        found += [((*base, "smoke", j), SmokeCheck) for j, _ in enumerate(stage.get("smoke", []))]
        found += [((*base, "flags", j), FlagRamp) for j, _ in enumerate(stage.get("flags", []))]
        if "contract" in stage:
            found.append(((*base, "contract"), ContractSpec))
            found += [
                ((*base, "contract", "headers", k), HeaderValue)
                for k in stage["contract"].get("headers", {})
            ]
        for j, check in enumerate(stage.get("checks", [])):
            found.append(((*base, "checks", j), MetricCheck))
            found.append(((*base, "checks", j, "query"), QUERY_MODELS[check["query"]["provider"]]))
        if "signoff" in stage:
            found.append(((*base, "signoff"), SignoffSpec))
    return found


def keys_of(model: type[BaseModel]) -> dict[str, str]:
    """Accepted keys (aliases and names: models populate by name too) -> field name."""
    keys = {}
    for name, info in model.model_fields.items():
        keys[name] = name
        if info.alias:
            keys[info.alias] = name
    return keys


def get(doc: Any, path: Path) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def loc_text(doc: dict[str, Any], path: Path) -> str:
    """How a problem at `path` is reported: `stages.1 (pilot).smoke.0.timeout`."""
    parts = [str(p) for p in path]
    if len(path) >= 2 and path[0] == "stages" and isinstance(path[1], int):
        stage = doc["stages"][path[1]] if isinstance(doc.get("stages"), list) else None
        name = stage.get("name") if isinstance(stage, dict) else None
        if isinstance(name, str):  # long or odd names are quoted and cut, as the report does
            label = name if name.isprintable() and len(name) <= 60 else short_repr(name)
            parts[1] = f"{path[1]} ({label})"
    return ".".join(parts)


def _unwrap(annotation: Any) -> tuple[Any, dict[str, Any]]:
    """Strip Optional and Annotated; report whether None was allowed and Annotated's metadata."""
    info: dict[str, Any] = {"nullable": False, "metadata": []}
    while True:
        origin = get_origin(annotation)
        if origin is typing.Annotated:
            args = get_args(annotation)
            info["metadata"] += list(args[1:])
            annotation = args[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            info["nullable"] |= len(args) < len(get_args(annotation))
            if len(args) == 1:
                annotation = args[0]
            else:
                return annotation, info
        else:
            return annotation, info


def field_kind(model: type[BaseModel], name: str) -> str:
    """What a field holds, coarsely: str, int, float, bool, duration, literal, list, dict, model, union."""
    annotation, _ = _unwrap(model.model_fields[name].annotation)
    origin = get_origin(annotation)
    if annotation is timedelta:
        return "duration"
    if annotation is bool:
        return "bool"
    if annotation is int:
        return "int"
    if annotation is float:
        return "float"
    if annotation is str:
        return "str"
    if origin is Literal or (isinstance(annotation, type) and issubclass(annotation, enum.Enum)):
        return "literal"
    if origin is list:
        return "list"
    if origin is dict:
        return "dict"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "model"
    return "union"


def literal_values(model: type[BaseModel], name: str) -> set[str]:
    annotation, _ = _unwrap(model.model_fields[name].annotation)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {str(m.value) for m in annotation}
    return {str(a) for a in get_args(annotation)}


def limits(model: type[BaseModel], name: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in model.model_fields[name].metadata:
        for attr, cls in (("max_length", MaxLen), ("le", Le), ("lt", Lt), ("ge", Ge), ("gt", Gt)):
            if isinstance(item, cls):
                found[attr] = getattr(item, attr)
    return found


_letters = st.text(alphabet="abcdefghijklmnopqrstuvwxyzQXZ _-", min_size=1, max_size=12)
_BOOL_WORDS = {"0", "1", "t", "f", "y", "n", "on", "off", "yes", "no", "true", "false"}
_NOT_A_NUMBER = _letters.filter(
    lambda t: t.strip().lower() not in {"inf", "infinity", "nan", "-inf", "+inf"}
)


def wrong_values(model: type[BaseModel], name: str) -> st.SearchStrategy[Any]:
    """Values of a type the field can never accept."""
    kind = field_kind(model, name)
    lists = st.lists(st.integers(), min_size=1, max_size=3)
    dicts = st.dictionaries(_letters, st.integers(), min_size=1, max_size=2)
    ints = st.integers().filter(lambda n: n not in (0, 1))
    if (model, name) == (ReleasePlan, "version"):
        return st.one_of(
            lists, dicts, st.floats(allow_nan=False).filter(lambda f: not f.is_integer())
        )
    if (model, name) == (SmokeCheck, "expect_status"):
        return st.one_of(_NOT_A_NUMBER, dicts, st.lists(_NOT_A_NUMBER, min_size=1, max_size=2))
    return {
        "str": st.one_of(ints, st.floats(allow_nan=False), lists, dicts),
        "int": st.one_of(_NOT_A_NUMBER, lists, dicts, st.floats(0.1, 0.9)),
        "float": st.one_of(_NOT_A_NUMBER, lists, dicts),
        "bool": st.one_of(
            _letters.filter(lambda t: t.strip().lower() not in _BOOL_WORDS), lists, dicts
        ),
        "duration": st.one_of(
            st.booleans(),
            lists,
            dicts,
            _letters.filter(lambda t: not t.strip().upper().startswith("P")),
        ),
        "literal": _letters.filter(lambda t: t not in literal_values(model, name)),
        "list": st.one_of(_letters, ints, dicts),
        "dict": st.one_of(_letters, ints, lists),
        "model": st.one_of(_letters, ints, lists),
        "union": st.one_of(_letters, ints, lists),
    }[kind]


def huge_values(model: type[BaseModel], name: str) -> st.SearchStrategy[Any] | None:
    """Values too big for the field (None when the field has no bound we can overstep)."""
    kind = field_kind(model, name)
    bound = limits(model, name)
    info = model.model_fields[name]
    if kind == "str":
        # a pattern with a length bound ({0,62}) refuses long text; `^[A-Z_]*$` would not
        has_pattern = any("{" in str(getattr(m, "pattern", None) or "") for m in info.metadata)
        if "max_length" in bound:
            return st.integers(bound["max_length"] + 1, bound["max_length"] + 20_000).map(
                lambda n: "x" * n
            )
        if has_pattern or (model, name) == (ReleasePlan, "version"):
            return st.integers(300, 20_000).map(lambda n: "x" * n)
        return None
    if kind == "int" and ("le" in bound or "lt" in bound):
        top = bound.get("le", bound.get("lt", 0))
        return st.one_of(st.integers(top + 1, top + 10**6), st.just(10**400))
    if kind == "duration":
        return st.sampled_from([10**400, 1e300, "99999999999d", 366 * 86400 + 1, "P400D", "53w"])
    if kind == "list":
        # many items of the wrong type: every one is a problem, the report stays short
        return st.integers(1000, 20_000).map(lambda n: [{"wrong": i} for i in range(n)])
    return None


def deep(depth: int, kind: str) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


BAD_DURATIONS = [
    "5 minutes",
    "-5s",
    "1y",
    "",
    " ",
    "s",
    "ms",
    "5",
    "1.5.3s",
    "5m30",
    "P",
    "P1X",
    "-P1D",
    "PT-5S",
    "1e3s",
    "٥m",
    "５s",
    "30 s x",
    "∞",
    "NaN",
    "inf",
    -1,
    -0.001,
    float("inf"),
    float("-inf"),
    float("nan"),
    True,
    False,
    [],
    {},
    None,
    10**400,
    366 * 86400 + 1,
    "367d",
    "P999999999D",
]
BAD_URLS = [
    "ftp://x",
    "http://",
    "https://",
    "not a url",
    "http://[::1",
    "http://host:99999",
    "http://host:-1",
    "javascript:alert(1)",
    "//host/x",
    "http:///x",
    "",
    " ",
    "http://host:port",
    "file:///etc/passwd",
    "http\n://x",
    "mailto:ops@example.com",
    "127.0.0.1:8080",
    42,
    None,
    [],
    {"url": "http://x"},
]
_ANY_JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=10**20),
        st.floats(),
        st.text(max_size=30),
    ),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@dataclass
class Broken:
    """A plan document broken once; `refuse` says whether it must be refused, `where` where."""

    doc: dict[str, Any]
    kind: str
    refuse: bool
    where: str | None = None
    says: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        text = json.dumps(self.doc, default=repr)
        return f"Broken({self.kind}, where={self.where!r}, says={self.says!r}, doc={text[:1500]})"


#: Fields left out of the mutations because of a known bug, each shown by its own xfail test.
KNOWN_BUGS: set[tuple[type[BaseModel], str]] = set()


def _field_choices(doc: dict[str, Any]) -> list[tuple[Path, type[BaseModel], str]]:
    """Every (mapping, model, key) a mutation may touch: present keys and absent optional ones."""
    out = []
    for path, model in model_mappings(doc):
        mapping = get(doc, path)
        for name, info in model.model_fields.items():
            if (model, name) in KNOWN_BUGS:
                continue
            key = name if name in mapping or not info.alias else info.alias
            out.append((path, model, key))
    return out


@st.composite
def broken_plans(draw: st.DrawFn) -> Broken:
    doc = copy.deepcopy(draw(valid_plans()))
    kind = draw(
        st.sampled_from(
            [
                "unknown-key",
                "missing-key",
                "wrong-type",
                "huge",
                "deep",
                "duration",
                "url",
                "duplicate",
                "any-value",
            ]
        )
    )
    if kind == "unknown-key":
        path, model = draw(st.sampled_from(model_mappings(doc)))
        known = keys_of(model)
        key = draw(
            st.one_of(st.text(min_size=1, max_size=30), st.integers(), st.just("x" * 5000)).filter(
                lambda k: k not in known
            )
        )
        get(doc, path)[key] = draw(_ANY_JSON)
        return Broken(doc, kind, True, loc_text(doc, path), "unknown key", {"key": key})
    if kind == "missing-key":
        choices = [
            (path, model, name)
            for path, model in model_mappings(doc)
            for name, info in model.model_fields.items()
            if info.is_required() and name in get(doc, path)
        ]
        path, model, name = draw(st.sampled_from(choices))
        del get(doc, path)[name]
        return Broken(doc, kind, True, loc_text(doc, (*path, name)), "Field required")
    if kind in ("wrong-type", "huge", "deep", "any-value"):
        path, model, key = draw(st.sampled_from(_field_choices(doc)))
        name = keys_of(model)[key]
        if kind == "wrong-type":
            value = draw(wrong_values(model, name))
        elif kind == "huge":
            strategy = huge_values(model, name)
            if strategy is None:
                value = draw(wrong_values(model, name))
                kind = "wrong-type"
            else:
                value = draw(strategy)
        elif kind == "deep":
            depth = draw(st.integers(50, 3000))
            shape = draw(st.sampled_from(["list", "dict"]))
            value = deep(depth, shape)
            if field_kind(model, name) == "dict":  # a deep value inside a mapping field
                value = {"k": value}
        else:
            value = draw(_ANY_JSON)
        get(doc, path)[key] = value
        # a model-level check may report at the mapping; a discriminator at the query itself
        where = loc_text(doc, path) if path else str(key)
        return Broken(doc, kind, kind != "any-value", where, None, {"field": key})
    if kind == "duration":
        duration_fields = [
            (p, m, k)
            for p, m, k in _field_choices(doc)
            if field_kind(m, keys_of(m)[k]) == "duration"
        ]
        path, model, key = draw(st.sampled_from(duration_fields))
        get(doc, path)[key] = draw(st.sampled_from(BAD_DURATIONS))
        return Broken(doc, kind, True, loc_text(doc, path), None, {"field": key})
    if kind == "url":
        index = draw(st.integers(0, len(doc["stages"]) - 1))
        doc["stages"][index]["base_url"] = draw(st.sampled_from(BAD_URLS))
        return Broken(doc, kind, True, loc_text(doc, ("stages", index, "base_url")), None)
    return _duplicate(draw, doc)


def _duplicate(draw: st.DrawFn, doc: dict[str, Any]) -> Broken:
    options = ["stage"]
    stage_with = {
        what: [i for i, s in enumerate(doc["stages"]) if s.get(what)]
        for what in ("checks", "flags", "signoff")
    }
    if stage_with["checks"]:
        options.append("check")
    if stage_with["flags"]:
        options.append("ramp")
    if doc.get("flags"):
        options.append("flag")
    if any(doc["stages"][i]["signoff"].get("approvers") for i in stage_with["signoff"]):
        options.append("approver")
    what = draw(st.sampled_from(options))
    if what == "stage":
        source = draw(st.sampled_from(doc["stages"]))
        doc["stages"].insert(draw(st.integers(0, len(doc["stages"]))), copy.deepcopy(source))
        return Broken(
            doc, "duplicate", True, "stages", f"duplicate stage name(s): {source['name']}"
        )
    if what == "flag":
        doc["flags"].append(draw(st.sampled_from(doc["flags"])))
        return Broken(doc, "duplicate", True, "flags", "a flag is listed twice")
    if what == "approver":
        index = draw(
            st.sampled_from(
                [i for i in stage_with["signoff"] if doc["stages"][i]["signoff"].get("approvers")]
            )
        )
        approvers = doc["stages"][index]["signoff"]["approvers"]
        approvers.append(draw(st.sampled_from(approvers)))
        return Broken(
            doc,
            "duplicate",
            True,
            loc_text(doc, ("stages", index, "signoff")),
            "'approvers' lists someone twice",
        )
    key = {"check": "checks", "ramp": "flags"}[what]
    index = draw(st.sampled_from(stage_with[key]))
    items = doc["stages"][index][key]
    items.append(copy.deepcopy(draw(st.sampled_from(items))))
    says = "check name(s) used twice" if what == "check" else "flag(s) ramped twice in one stage"
    return Broken(doc, "duplicate", True, loc_text(doc, ("stages", index)), says)


# -- plan files: the text and the bytes -------------------------------------------------------


@dataclass
class PlanFile:
    """Bytes of a plan file; `expect` is 'valid' (equal to `doc`), 'refused' or 'either'."""

    content: bytes
    kind: str
    expect: str
    doc: dict[str, Any] | None = None
    says: str | None = None
    environ: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"PlanFile({self.kind}, expect={self.expect}, says={self.says!r}, content={self.content[:1500]!r})"


SENTINEL_NAME = "yaml-code-ran"
#: Integers and floats YAML 1.1 reads, written so that they do not read back as written.
AMBIGUOUS_NUMBERS = st.one_of(
    st.builds(lambda a, b: f"{a}:{b:02d}", st.integers(1, 999), st.integers(0, 59)),  # base 60
    st.integers(1, 7**6).map(lambda n: f"0{n:o}"),  # octal
    st.integers(0, 10**6).map(lambda n: f"0x{n:X}"),
    st.integers(0, 10**6).map(lambda n: f"0b{n:b}"),
    st.integers(1000, 10**6).map(lambda n: f"{n:_}"),
    st.integers(0, 10**6).map(lambda n: f"+{n}"),
    st.builds(lambda a, b: f"{a}:{b:02d}.5", st.integers(1, 99), st.integers(0, 59)),
)


def dump(doc: Any, style: str) -> str:
    if style == "json":
        return json.dumps(doc, indent=2)
    if style == "flow":
        return yaml.safe_dump(doc, default_flow_style=True, width=80)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=style == "unicode")


def _env_free(text: str) -> bool:
    return "${" not in text  # `${...}` is read from the environment before YAML is parsed


def _alias_bomb(levels: int, width: int) -> bytes:
    """Nine levels of ten aliases each: a billion values from a 1 KB file."""
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    lines += ["service: x", "version: '1'", "owner: o", f"stages: *a{levels}"]
    return "\n".join(lines).encode()


TAGS = [
    ("refused", "!!python/object/apply:os.system ['touch {sentinel}']"),
    ("refused", "!!python/object/new:os.system ['touch {sentinel}']"),
    ("refused", "!!python/name:os.system"),
    ("refused", "!!python/object:builtins.dict {}"),
    ("refused", "!custom value"),
    ("refused", "!!float abc"),
    ("refused", "!!int abc"),
    ("refused", "!!timestamp not-a-time"),
    ("refused", "!!bool maybe"),
    ("either", "!!binary aGVsbG8="),
    ("either", "!!set {a: null}"),
    ("either", "!!str 5"),
    ("either", "!!int 0x1F"),
    ("either", "!!null ''"),
    ("either", "!!omap [{a: 1}]"),
]
ODD_DOCUMENTS = [
    ("refused", "empty", b""),
    ("refused", "whitespace", b"   \n\n\t\n"),
    ("refused", "comment only", b"# nothing here\n"),
    ("refused", "document markers", b"---\n...\n"),
    ("refused", "bare number", b"42\n"),
    ("refused", "bare text", b"hello world\n"),
    ("refused", "bare null", b"~\n"),
    ("refused", "bare true", b"true\n"),
    ("refused", "a list", b"- service: x\n- version: y\n"),
    ("refused", "a JSON array", b'[{"service": "x"}]'),
    ("refused", "two documents", b"service: a\n---\nservice: b\n"),
    ("refused", "utf-16", "service: x\n".encode("utf-16")),
    ("refused", "latin-1", "service: caf\xe9\n".encode("latin-1")),
    ("refused", "nul bytes", b"service: x\x00\n"),
    ("refused", "deep lists", b"[" * 5000 + b"]" * 5000),
    ("refused", "deep mappings", b"{a: " * 3000 + b"1" + b"}" * 3000),
    ("refused", "huge integer", b"service: x\nversion: " + b"9" * 5000 + b"\n"),
    ("refused", "cyclic alias", b"service: &a [*a]\n"),
    ("refused", "alias bomb", _alias_bomb(levels=9, width=10)),
    ("refused", "tab indentation", b"service: x\nstages:\n\t- name: dev\n"),
    ("refused", "unclosed quote", b"service: 'x\nversion: 1\n"),
    ("refused", "unclosed flow", b"stages: [{name: dev\n"),
    ("refused", "undefined alias", b"service: *nope\n"),
    ("refused", "long line", b"description: " + b"x" * 2_000_000 + b"\n"),
    ("refused", "JSON NaN", b'{"service": NaN, "version": Infinity}'),
    ("refused", "merge of a scalar", b"a: &a 1\nservice: {<<: *a}\n"),
]


def _key_lines(text: str) -> list[tuple[int, bool]]:
    """(line, whether it is a whole top-level entry on one line) for every mapping key."""
    found: list[tuple[int, bool]] = []
    pending = [(yaml.compose(text), True)]
    while pending:
        node, top = pending.pop()
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                one_line = (
                    isinstance(value, yaml.ScalarNode)
                    and value.start_mark.line == value.end_mark.line
                )
                found.append((key.start_mark.line, top and key.start_mark.column == 0 and one_line))
                pending.append((value, False))
        elif isinstance(node, yaml.SequenceNode):
            pending.extend((item, False) for item in node.value)
    return found


@st.composite
def plan_files(draw: st.DrawFn) -> PlanFile:
    kind = draw(
        st.sampled_from(
            [
                "valid",
                "bom",
                "anchors",
                "tag",
                "duplicate-key",
                "env",
                "env-default",
                "truncated",
                "inserted",
                "bytes",
                "odd",
                "broken",
                "number",
            ]
        )
    )
    if kind == "odd":
        expect, name, content = draw(st.sampled_from(ODD_DOCUMENTS))
        return PlanFile(content, f"odd: {name}", expect)
    if kind == "broken":
        broken = draw(broken_plans())
        try:
            text = (
                json.dumps(broken.doc, default=str)
                if draw(st.booleans())
                else yaml.safe_dump(broken.doc)
            )
        except RecursionError:  # too deep to write out: the odd documents cover deep files
            return PlanFile(b"[" * 5000 + b"]" * 5000, "odd: deep lists", "refused")
        expect = "refused" if broken.refuse and _env_free(text) else "either"
        return PlanFile(text.encode(), f"broken: {broken.kind}", expect, says=broken.says)
    doc = draw(valid_plans())
    style = draw(st.sampled_from(["block", "unicode", "flow", "json"]))
    text = dump(doc, style)
    if not _env_free(text):
        return PlanFile(text.encode(), "valid with ${", "either")
    if style == "unicode" and any(c in text for c in "\x85\u2028\u2029"):
        # written raw by PyYAML, these are line breaks to YAML: the text changes on the way back
        return PlanFile(text.encode(), "valid with raw line-break characters", "either")
    if kind == "valid":
        return PlanFile(text.encode(), f"valid {style}", "valid", doc)
    if kind == "bom":
        return PlanFile(b"\xef\xbb\xbf" + text.encode(), f"valid {style} with BOM", "valid", doc)
    if kind == "anchors":
        # the first stage's smoke checks reused by the others through an alias
        plain = copy.deepcopy(doc)
        smoke = [{"name": "health", "path": "/healthz"}]
        for stage in plain["stages"]:
            stage["smoke"] = smoke
        return PlanFile(
            yaml.safe_dump(plain, sort_keys=False).encode(), "valid with aliases", "valid", plain
        )
    lines = text.splitlines()
    if kind == "tag":
        expect, tag = draw(st.sampled_from(TAGS))
        dumped = yaml.safe_dump(doc, sort_keys=False)
        block = dumped.splitlines()
        # a line where a key starts, never one inside a multi-line quoted text (it would be text)
        index = draw(st.sampled_from(sorted({line for line, _ in _key_lines(dumped)})))
        line = block[index]
        if ": " not in line:
            block.insert(index, f"x-tagged: {tag}")
        else:
            block[index] = line.split(": ", 1)[0] + ": " + tag
        return PlanFile(
            "\n".join(block).encode(),
            f"tag {tag.split()[0]}",
            expect if expect == "refused" else "either",
        )
    if kind == "number":
        # a value YAML 1.1 reads as a number other than written (`010` is 8, `1:20` is 80)
        block = yaml.safe_dump(doc, sort_keys=False).splitlines()
        index = next(i for i, line in enumerate(block) if line.startswith("version:"))
        block[index] = "version: " + draw(AMBIGUOUS_NUMBERS)
        return PlanFile("\n".join(block).encode(), "ambiguous number", "refused", says="quote it")
    if kind == "duplicate-key":
        dumped = yaml.safe_dump(doc, sort_keys=False)
        block = dumped.splitlines()
        # a top-level key whose value is on its own line, so that the copy is the whole entry
        candidates = [line for line, whole in _key_lines(dumped) if whole]
        index = draw(st.sampled_from(candidates))
        block.insert(index + 1, block[index])
        return PlanFile("\n".join(block).encode(), "duplicate key", "refused", says="written twice")
    if kind in ("env", "env-default"):
        variable = draw(st.from_regex(r"WARDEN_FUZZ_[A-Z]{1,8}", fullmatch=True))
        reference = (
            f"${{{variable}}}"
            if kind == "env"
            else f"${{{variable}:-{draw(st.from_regex(r'[a-z0-9]{0,8}', fullmatch=True))}}}"
        )
        index = draw(st.integers(0, len(lines)))
        lines.insert(index, f"# {reference}" if draw(st.booleans()) else reference)
        expect = "refused" if kind == "env" else "either"
        return PlanFile(
            "\n".join(lines).encode(),
            kind,
            expect,
            says="environment variable" if kind == "env" else None,
        )
    if kind == "truncated":
        cut = draw(st.integers(0, max(0, len(text) - 1)))
        return PlanFile(text[:cut].encode(), "truncated", "either")
    if kind == "inserted":
        position = draw(st.integers(0, len(text)))
        junk = draw(
            st.text(
                alphabet=":-{}[]&*!%@`'\"#|>\t\n\x00\x85\ufeff\u2028 ,?", min_size=1, max_size=5
            )
            | st.text(max_size=5)
        )
        return PlanFile((text[:position] + junk + text[position:]).encode(), "inserted", "either")
    # bytes that are not UTF-8, somewhere in an otherwise valid file
    raw = text.encode()
    position = draw(st.integers(0, len(raw)))
    junk = draw(
        st.sampled_from(
            [b"\xff", b"\xfe\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80", b"\xf8\x88\x80\x80\x80"]
        )
    )
    return PlanFile(
        raw[:position] + junk + raw[position:], "not UTF-8", "refused", says="not UTF-8"
    )
