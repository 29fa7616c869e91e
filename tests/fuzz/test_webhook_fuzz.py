"""The webhook endpoint on hostile requests, in process (falcon's ASGIConductor on
`create_app`, with the session's Ray and the machine's Redis under a fresh
namespace): random methods, keys, header sets (Content-Type with and without
charsets, huge and malformed Authorization, hundreds of headers), bodies
(random bytes, invalid UTF-8, deep and huge JSON, big numbers, NaN-like text)
and query-string bombs.

For every request the status is the one SPEC §2 gives for it, computed here
independently (404, 405 with `Allow: POST`, 401 with the Basic challenge, 415,
413, 400, then the workflow's own reply; 500 only for a sync execution that
did not end RESOLVED, 503 never: Redis and Ray are up), every 4xx/5xx body is
the JSON error envelope, and the process's peak memory stays bounded."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import re
import resource
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from falcon.testing import ASGIConductor, Result
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from engine.settings import Settings
from engine.status import Status
from ingress.app import create_app
from tests.conftest import REDIS_URL, delete_namespace, kill_actors
from tests.fuzz.conftest import examples
from tests.fuzz.test_querystring_fuzz import BOMBS, query_strings

TOKEN = "fuzz-admin-token"
MIB = 1 << 20
MAX_BODY = MIB
MAX_DEPTH = 64
USER, PASSWORD = "shop", "s3cret:pa55"
#: Peak-memory growth (MiB) the whole run may cause in this process.
MEMORY_LIMIT_MIB = 512
METHODS = ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
#: A header value every server takes: visible ASCII, space and Latin-1.
SENDABLE = re.compile(r"[\x20-\x7e\x80-\xff]*")


def sync_workflow(*, basic: bool) -> dict[str, Any]:
    """Resolves for any JSON body: a condition on the body, one Response node per branch."""
    response = {
        "statusCode": 200,
        "headers": [
            {"name": "X-Status", "value": "{{$jobsMapByNodeKey.check}}"},
            {"name": "X-Echo", "value": "{{$context.body.a}}"},  # any text (F11)
        ],
        "body": {"amount": "{{$context.body.amount}}", "query": "{{$context.query}}"},
    }
    return {
        "title": "fuzz sync",
        "sync": True,
        "enabled": True,
        "config": {
            "basicAuthentication": {"username": USER, "password": PASSWORD} if basic else False,
            "request": {"body": [{"key": "data.id", "_var": "id"}], "query": [{"key": "q[0]"}]},
        },
        "nodes": [
            {
                "key": "check",
                "type": "condition",
                "config": {
                    "rejectOnFalse": False,
                    "calculation": {
                        "calculator": "equal",
                        "operands": ["{{$context.body.status}}", "paid"],
                    },
                },
                "branches": {
                    "1": [{"key": "paid", "type": "response", "config": response}],
                    "0": [
                        {
                            "key": "other",
                            "type": "response",
                            "config": {**response, "statusCode": 201},
                        }
                    ],
                },
            }
        ],
    }


ASYNC_WORKFLOW: dict[str, Any] = {
    "title": "fuzz async",
    "sync": False,
    "enabled": True,
    "config": {
        "request": {"body": [{"key": "data.id", "_var": "id"}]},
        "response": {
            "statusCode": 202,
            "headers": [{"name": "X-Echo", "value": "{{$context.body.a}}"}],  # any text (F11)
            "body": {"accepted": "{{$context.body.id}}", "query": "{{$context.query}}"},
        },
    },
    "nodes": [{"key": "keep", "type": "variable", "config": {"value": "{{$context.body}}"}}],
}


@dataclass
class Webhooks:
    """The app under test, driven from synchronous code through one event loop."""

    loop: asyncio.AbstractEventLoop
    conductor: ASGIConductor
    keys: dict[str, str] = field(default_factory=dict)  # role -> workflow key

    def call(self, method: str, path: str, **kwargs: Any) -> Result:
        return self.loop.run_until_complete(self.conductor.simulate_request(method, path, **kwargs))

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        result = self.call(method, path, headers={"Authorization": f"Bearer {TOKEN}"}, **kwargs)
        assert result.status_code == 200, result.text
        return result.json["data"]


@pytest.fixture(scope="module")
def webhooks(ray_driver: None) -> Iterator[Webhooks]:
    """One app for the module, under a fresh namespace (deleted after)."""
    namespace = f"t{secrets.token_hex(4)}"
    settings = Settings(
        redis_url=REDIS_URL,
        namespace=namespace,
        admin_token=TOKEN,
        ray_address=os.environ["RAY_ADDRESS"],
        max_body_bytes=MAX_BODY,
        max_json_depth=MAX_DEPTH,
    )
    loop = asyncio.new_event_loop()
    conductor = ASGIConductor(create_app(settings))
    loop.run_until_complete(conductor.__aenter__())
    hooks = Webhooks(loop, conductor)
    try:
        for role, definition in (
            ("sync", sync_workflow(basic=False)),
            ("basic", sync_workflow(basic=True)),
            ("async", ASYNC_WORKFLOW),
        ):
            hooks.keys[role] = hooks.admin("POST", "/api/workflows:create", json=definition)["key"]
        # As a deployment does before it takes traffic: until every execution
        # actor listens, a sync call to one that does not is a 503 (by design).
        deadline = time.monotonic() + 120
        while hooks.call("GET", "/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the execution actors did not start"
            time.sleep(0.2)
        yield hooks
    finally:
        loop.run_until_complete(conductor.__aexit__(None, None, None))
        loop.close()
        kill_actors(namespace)
        delete_namespace(namespace)


# -- requests -------------------------------------------------------------------------


@dataclass
class Request:
    role: str  # "sync", "basic", "async" or "unknown"
    method: str
    headers: list[tuple[str, str]]
    body: bytes
    query: str

    def header(self, name: str) -> str | None:
        found = [v for n, v in self.headers if n.lower() == name]
        return ", ".join(found) if found else None

    def __repr__(self) -> str:  # short enough for hypothesis's report
        body = self.body if len(self.body) <= 200 else self.body[:200] + b"..."
        return (
            f"Request({self.role} {self.method} ?{self.query[:100]!r} headers="
            f"{[(n, v[:80]) for n, v in self.headers[:12]]} (+{max(0, len(self.headers) - 12)})"
            f" body[{len(self.body)}]={body!r})"
        )


_LATIN1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
_BIG_NUMBERS = st.sampled_from(
    [
        *(2**53 + 1, 2**63 - 1, -(2**63), 2**64 - 1),
        *(2**64, -(2**63) - 1, 10**30, 10**400, -(10**400)),  # beyond msgpack's ints (F10)
        *(1e308, -1e308, 5e-324, 1.7976931348623157e308),
    ]
)
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        _BIG_NUMBERS,
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
        st.sampled_from(["paid", "NaN", "Infinity", "{{$env.X}}", "[redacted]"]),
    ),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.one_of(
                st.sampled_from(["status", "amount", "data", "id", "a"]), st.text(max_size=5)
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)


def _nested(depth: int, open_: bytes = b"[", close: bytes = b"]") -> bytes:
    return open_ * depth + close * depth


def _object_nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


_SPECIAL_BODIES = st.sampled_from(
    [
        b"",
        b"   \n\t ",
        b"{}",
        b"null",
        b'"paid"',
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b"[NaN]",
        b'{"amount": 1e400}',
        b'{"amount": -1e400}',
        b'{"amount": 1' + b"0" * 5000 + b"}",
        b'{"amount": 0.' + b"0" * 5000 + b"1}",
        b'{"a": 1, "a": 2}',
        b"\xef\xbb\xbf{}",  # BOM
        b'{"a": "\xff\xfe"}',  # invalid UTF-8 in a string
        b'{"a": "\\ud800"}',  # lone surrogate escape
        b'{"a": "\\ud83d\\ude00"}',
        b"{",
        b'{"status": "paid", "amount": 5}',
        b'{"data": {"id": "evt_1"}, "status": "paid"}',
        _nested(MAX_DEPTH - 1),
        _nested(MAX_DEPTH),
        _nested(MAX_DEPTH + 1),
        _nested(1000),
        _nested(100_000),
        _object_nested(MAX_DEPTH),
        _object_nested(MAX_DEPTH + 1),
        _object_nested(50_000),
        b'"' + b"x" * (MAX_BODY - 2) + b'"',  # exactly at the limit
        b'"' + b"x" * (MAX_BODY - 1) + b'"',  # one byte over
        b"[" + b"1," * (MAX_BODY // 2 - 1) + b"1]",  # 1 MiB of numbers
        b"[" + b"[]," * 100_000 + b"[]]",
    ]
)
_JSON_BODIES = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
    st.fixed_dictionaries(
        {"status": st.sampled_from(["paid", "refused"])},
        optional={"amount": json_values, "data": json_values, "id": json_values},
    ).map(lambda v: json.dumps(v).encode()),
)
_OTHER_BODIES = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=50).map(lambda t: t.encode("utf-8", "surrogatepass")),
)

_JSON_TYPES = st.sampled_from(
    [
        "application/json",
        "APPLICATION/JSON",
        "application/json; charset=utf-8",
        "application/json; charset=UTF8",
        'application/json; charset="utf-8"',
        "application/json; boundary=x; charset=utf-8",
        "application/vnd.api+json",
        "application/cloudevents+json; charset=utf-8",
        "application/json;",
    ]
)
_OTHER_TYPES = st.one_of(
    st.sampled_from(
        [
            None,
            "application/json;charset=latin-1",
            "application/json; charset=utf-16",
            "application/+json",
            "text/json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "application/jsonx",
            "json",
            "",
            ";",
            "application/json; charset",
        ]
    ),
    st.text(_LATIN1, max_size=40),
)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


_AUTHORIZATIONS = st.one_of(
    st.sampled_from(
        [
            _basic(USER, PASSWORD),
            "basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
            _basic(USER, "wrong"),
            _basic("", ""),
            "Basic " + base64.b64encode(USER.encode()).decode(),  # no colon
            "Basic !!!not-base64!!!",
            "Basic ",
            "Bearer " + TOKEN,
            "Basic " + "A" * 65536,
            _basic(USER, PASSWORD) + " trailing",
        ]
    ),
    st.text(_LATIN1, max_size=100),
)
_NAMES = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-_"), min_size=1, max_size=20)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    role = draw(st.sampled_from(["sync", "basic", "async", "async", "unknown"]))
    method = draw(st.sampled_from(["POST"] * 12 + METHODS))
    headers: list[tuple[str, str]] = []
    content_type = draw(_JSON_TYPES if draw(st.integers(0, 9)) < 7 else _OTHER_TYPES)
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    if draw(st.integers(0, 9)) < 5:
        headers.append(("Authorization", _basic(USER, PASSWORD)))
    elif draw(st.booleans()):
        headers.append(("Authorization", draw(_AUTHORIZATIONS)))
    if draw(st.booleans()):
        headers.append(("Cookie", draw(st.text(_LATIN1, max_size=100))))
    extra = draw(st.sampled_from([0, 0, 3, 50, 500]))
    for i in range(extra):
        headers.append((f"x-{draw(_NAMES)}-{i}", draw(st.text(_LATIN1, max_size=30))))
    if draw(st.integers(0, 9)) == 0:
        headers.append(("x-huge", "v" * draw(st.sampled_from([8192, 65536]))))
    query = draw(
        st.one_of(
            query_strings,
            st.sampled_from(["", "a=1", "q[0]=x&q[1]=y"]),
            st.sampled_from([BOMBS["4 KiB of repeats (fits a request line)"], "a" + "[b]" * 2000]),
        )
    )
    # falcon.testing refuses a query string starting with "?" (parse_query_string's
    # handling of one is fuzzed in test_querystring_fuzz).
    kind = draw(st.integers(0, 9))
    body = draw(_JSON_BODIES if kind < 5 else _SPECIAL_BODIES if kind < 8 else _OTHER_BODIES)
    return Request(role, method, headers, body, query.lstrip("?"))


# -- the oracle -----------------------------------------------------------------------


def is_json_media(content_type: str | None) -> bool:
    """SPEC §2 and docs/behaviour.md, written again apart from the ingress."""
    if content_type is None:
        return False
    media, *params = [p.strip() for p in content_type.split(";")]
    media = media.lower()
    kind, _, subtype = media.partition("/")
    if kind != "application" or not (subtype == "json" or subtype.endswith("+json")):
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            return False
    return True


def basic_ok(authorization: str | None) -> bool:
    if authorization is None or authorization[:6].lower() != "basic ":
        return False
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True)
    except ValueError:
        return False
    return decoded == f"{USER}:{PASSWORD}".encode()


def json_ok(body: bytes) -> bool:
    if not body.strip():
        return True
    try:
        value = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return False
    return depth(value) <= MAX_DEPTH


def depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend(
                (c, level + 1) for c in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


def expected_statuses(request: Request) -> set[int]:
    """The statuses SPEC §2 allows for this request, in the table's order."""
    if request.role == "unknown":
        return {404}
    if request.method != "POST":
        return {405}
    if request.role == "basic" and not basic_ok(request.header("authorization")):
        return {401}
    if request.body and not is_json_media(request.header("content-type")):
        return {415}
    if len(request.body) > MAX_BODY:
        return {413}
    if not json_ok(request.body):
        return {400}
    if request.role == "async":
        return {202}
    return {200, 201, 500}  # 500 only when the execution did not resolve (checked apart)


# -- the fuzzer -----------------------------------------------------------------------


def check(
    hooks: Webhooks, request: Request, findings: list[str], explain: Callable[[str], None] = note
) -> int:
    key = hooks.keys.get(request.role, "no-such-key")
    result = hooks.call(
        request.method,
        f"/api/webhook:trigger/{key}",
        query_string=request.query or None,
        headers=request.headers,
        body=request.body,
    )
    status = result.status_code
    allowed = expected_statuses(request)
    explain(f"status {status}, allowed {sorted(allowed)}: {result.text[:300]}")
    assert status in allowed, f"{status} not in {sorted(allowed)}: {result.text[:500]}"
    if status >= 400 and request.method != "HEAD":
        assert result.headers.get("content-type") == "application/json", result.headers
        envelope = result.json
        assert isinstance(envelope, dict) and list(envelope) == ["errors"], result.text
        assert envelope["errors"] and all(
            isinstance(e, dict) and list(e) == ["message"] and isinstance(e["message"], str)
            for e in envelope["errors"]
        ), result.text
    if status in (200, 201, 202):  # X-Echo holds request text: only what HTTP can carry
        assert SENDABLE.fullmatch(result.headers.get("x-echo", "")), result.headers
    if status == 405:
        assert result.headers.get("allow") == "POST"
    if status == 401:
        assert result.headers.get("www-authenticate") == 'Basic realm="rayhook"'
    if status == 500:  # allowed only for a sync execution that did not resolve
        execution_id = result.headers.get("x-rayhook-execution")
        assert execution_id, result.headers
        execution = hooks.admin("GET", "/api/executions:get", params={"filterByTk": execution_id})
        assert execution["status"] != Status.RESOLVED, execution
        # The workflows here resolve for any JSON body, but for the documented limit
        # on what a reply may carry (X-Echo of a huge body: RAYHOOK_MAX_REPLY_*_BYTES,
        # ERR_REPLY_TOO_LARGE); any other failure is a finding.
        jobs = [(j["nodeKey"], j["status"], j["result"]) for j in execution["jobs"]]
        failed = [result for _, job_status, result in jobs if job_status < 0]
        if not failed or any(
            not isinstance(r, dict) or r.get("code") != "ERR_REPLY_TOO_LARGE" for r in failed
        ):
            findings.append(f"{request!r} -> sync execution {execution['status']}: {jobs}")
    return status


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def test_webhook_answers_every_request_with_a_documented_status(webhooks: Webhooks) -> None:
    findings: list[str] = []
    seen: Counter[str] = Counter()
    # Warm up (imports, first executions, the route cache) before the baseline.
    check(
        webhooks,
        Request("sync", "POST", [("Content-Type", "application/json")], b"{}", ""),
        [],
        print,
    )
    before = max_rss_mib()

    @settings(
        max_examples=examples(150, cost=20),
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )
    @given(requests())
    def run(request: Request) -> None:
        seen[f"{request.role} {request.method} {check(webhooks, request, findings)}"] += 1

    run()
    print("requests by workflow, method and status:", dict(sorted(seen.items())))
    growth = max_rss_mib() - before
    assert growth < MEMORY_LIMIT_MIB, f"peak memory grew by {growth:.0f} MiB"
    assert not findings, "\n".join(findings[:10])


# -- fixed findings (docs/reliability.md, "Fuzzing") -----------------------------------


@pytest.mark.parametrize("role", ["sync", "async"])
@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 10**400])
def test_a_body_with_an_integer_beyond_64_bits_is_read_as_a_double(
    webhooks: Webhooks, role: str, number: int
) -> None:
    # F10: msgpack holds no such integer; Node.js reads every JSON number as a double.
    result = webhooks.call(
        "POST",
        f"/api/webhook:trigger/{webhooks.keys[role]}",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"amount": number, "data": {"id": number}}).encode(),
    )
    assert result.status_code in ({200, 201} if role == "sync" else {202}), result.text
    # JSON has no Infinity: JSON.stringify writes null.
    expected = float(number) if number < 10**300 else None
    if role == "sync":
        assert result.json["amount"] == expected
    else:
        execution = wait_for_execution(webhooks, result.headers["x-rayhook-execution"])
        assert execution["status"] == Status.RESOLVED, execution
        assert execution["context"]["body"]["amount"] == expected


def wait_for_execution(hooks: Webhooks, execution_id: str) -> dict[str, Any]:
    for _ in range(200):
        result = hooks.call(
            "GET",
            "/api/executions:get",
            params={"filterByTk": execution_id},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        if result.status_code == 200 and result.json["data"]["status"] not in (None, 0):
            return dict(result.json["data"])
        hooks.loop.run_until_complete(asyncio.sleep(0.05))
    raise AssertionError(f"execution {execution_id} did not end")


@pytest.mark.parametrize("role", ["sync", "async"])
def test_a_reply_header_rendered_from_the_request_keeps_only_what_http_carries(
    webhooks: Webhooks, role: str
) -> None:
    # F11: the characters HTTP cannot carry are dropped, the reply is sent.
    header = {"name": "X-Echo", "value": "{{$context.body.echo}}"}
    if role == "sync":
        definition = sync_workflow(basic=False)
        for chain in definition["nodes"][0]["branches"].values():
            chain[0]["config"]["headers"] = [header]
    else:
        definition = copy.deepcopy(ASYNC_WORKFLOW)
        definition["config"]["response"]["headers"] = [header]
    key = webhooks.admin("POST", "/api/workflows:create", json=definition)["key"]
    cases = {
        "\u0100": "",
        "a\x1fb\x7f": "ab",
        "x\r\nSet-Cookie: y=1": "xSet-Cookie: y=1",
        "café au lait ½": "café au lait ½",
        "tab\there": "tabhere",
        "prix: 5 € HT": "prix: 5  HT",
    }
    for value, sent in cases.items():
        result = webhooks.call(
            "POST",
            f"/api/webhook:trigger/{key}",
            headers={"Content-Type": "application/json"},
            body=json.dumps({"echo": value}).encode(),
        )
        assert result.status_code in {200, 201, 202}, result.text
        assert result.headers.get("x-echo") == sent
        assert "set-cookie" not in result.headers
