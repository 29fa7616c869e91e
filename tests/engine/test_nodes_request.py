"""The `request` node (SPEC §5, reference §5.13) against a local HTTP server on
127.0.0.1, allowed through RAYHOOK_REQUEST_ALLOW; and the outbound policy that
keeps it from private, loopback, link-local and metadata addresses."""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpcore
import pytest

from engine.effects import Effects
from engine.settings import Settings
from engine.status import Status
from integrations import http as request_http
from integrations.http import _timeout_ms
from integrations.outbound import GuardedBackend, OutboundPolicy
from tests.engine.node_runs import definition_error, run_node

LOCAL = Settings(request_allow=("127.0.0.1",))


class Handler(BaseHTTPRequestHandler):
    """Answers by path: /echo (the request as JSON), /text, /status/<n>,
    /slow, /redirect?to=<url>, /loop, /badjson, /big."""

    server: RecordingServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        seen = {
            "method": self.command,
            "path": url.path,
            "query": url.query,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
        }
        self.server.seen.append(seen)
        if url.path == "/echo":
            self._send(200, json.dumps(seen).encode(), "application/json; charset=utf-8")
        elif url.path == "/text":
            self._send(200, b'{"looks": "like json"}', "text/plain")
        elif url.path.startswith("/status/"):
            self._send(int(url.path.split("/")[2]), b'{"error":"nope"}', "application/json")
        elif url.path == "/slow":
            time.sleep(1.5)
            self._send(200, b"late", "text/plain")
        elif url.path == "/redirect":
            self._send(302, b"", "text/plain", Location=parse_qs(url.query)["to"][0])
        elif url.path == "/loop":
            self._send(302, b"", "text/plain", Location="/loop")
        elif url.path == "/badjson":
            self._send(200, b"{not json", "application/json")
        elif url.path == "/big":
            self._send(200, b"x" * 4096, "text/plain")
        else:
            self._send(404, b"no such path", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Served-By", "test")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


class RecordingServer(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[dict[str, Any]]


@pytest.fixture(scope="module")
def http_server() -> Iterator[RecordingServer]:
    server = RecordingServer(("127.0.0.1", 0), Handler)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A safety net: whatever the policy says, these tests never open a
    connection to anything but the loopback interface."""
    connect = httpcore.AnyIOBackend.connect_tcp

    async def guarded(self: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        assert ipaddress.ip_address(host).is_loopback, f"a test tried to reach {host}"
        return await connect(self, host, port, *args, **kwargs)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", guarded)


@pytest.fixture
def base(http_server: RecordingServer) -> str:
    http_server.seen.clear()
    return f"http://127.0.0.1:{http_server.server_address[1]}"


async def request(config: dict[str, Any], settings: Settings = LOCAL, **kwargs: Any) -> Any:
    return await run_node("request", config, settings=settings, **kwargs)


# -- what is sent ------------------------------------------------------------------


async def test_default_is_a_json_post_with_the_templated_data(
    base: str, http_server: RecordingServer
) -> None:
    run = await request(
        {"url": f"{base}/echo", "data": {"id": "{{$context.body.id}}", "n": 2}},
        context={"body": {"id": 7}},
    )
    assert run.job.status == Status.RESOLVED, run.job.result
    (seen,) = http_server.seen
    assert seen["method"] == "POST"
    assert seen["headers"]["content-type"] == "application/json"
    assert json.loads(seen["body"]) == {"id": 7, "n": 2}


async def test_success_result_has_status_status_text_headers_and_parsed_json(base: str) -> None:
    run = await request({"url": f"{base}/echo", "method": "GET"})
    result = run.job.result
    assert set(result) == {"status", "statusText", "headers", "data"}
    assert result["status"] == 200
    assert result["statusText"] == "OK"
    assert result["headers"]["x-served-by"] == "test"
    assert result["data"]["method"] == "GET"  # parsed, not text


async def test_get_sends_params_and_trimmed_headers_but_no_body(
    base: str, http_server: RecordingServer
) -> None:
    run = await request(
        {
            "method": "GET",
            "url": f"{base}/echo?fixed=1",
            "headers": [
                {"name": " X-Token ", "value": " {{$env.TOKEN}} "},
                {"name": "Content-Type", "value": "text/evil"},
                {"name": "  ", "value": "dropped"},
            ],
            "params": [{"name": "q", "value": "{{$context.q}}"}, {"name": "n", "value": 3}],
            "data": {"never": "sent"},
        },
        context={"q": "a b&c"},
        env={"TOKEN": "s3cret"},
    )
    assert run.job.status == Status.RESOLVED, run.job.result
    (seen,) = http_server.seen
    assert seen["headers"]["x-token"] == "s3cret"
    assert "content-type" not in seen["headers"]
    assert seen["body"] == ""
    assert parse_qs(seen["query"]) == {"fixed": ["1"], "q": ["a b&c"], "n": ["3"]}


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "post"])
async def test_every_method_is_sent_with_its_body(
    base: str, http_server: RecordingServer, method: str
) -> None:
    run = await request({"method": method, "url": f"{base}/echo", "data": [1, 2]})
    assert run.job.status == Status.RESOLVED, run.job.result
    assert http_server.seen[0]["method"] == method.upper()
    assert json.loads(http_server.seen[0]["body"]) == [1, 2]


async def test_form_urlencoded_body_from_name_value_pairs(
    base: str, http_server: RecordingServer
) -> None:
    run = await request(
        {
            "url": f"{base}/echo",
            "contentType": "application/x-www-form-urlencoded",
            "data": [{"name": "a", "value": "1 2"}, {"name": "b", "value": "{{$context.b}}"}],
        },
        context={"b": "x&y"},
    )
    assert run.job.status == Status.RESOLVED, run.job.result
    seen = http_server.seen[0]
    assert seen["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(seen["body"]) == {"a": ["1 2"], "b": ["x&y"]}


async def test_multipart_text_parts(base: str, http_server: RecordingServer) -> None:
    run = await request(
        {
            "url": f"{base}/echo",
            "contentType": "multipart/form-data",
            "data": [
                {"name": "title", "valueType": "text", "text": "{{$context.t}}"},
                {"name": 'odd"name', "valueType": "text", "text": "line1\nline2"},
            ],
        },
        context={"t": "hello"},
    )
    assert run.job.status == Status.RESOLVED, run.job.result
    seen = http_server.seen[0]
    content_type = seen["headers"]["content-type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    boundary = content_type.split("boundary=")[1]
    body = seen["body"]
    assert f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nhello\r\n' in body
    assert 'name="odd%22name"\r\n\r\nline1\nline2\r\n' in body
    assert body.endswith(f"--{boundary}--\r\n")


def test_multipart_file_parts_are_refused_at_definition_time() -> None:
    message = definition_error(
        "request",
        {
            "url": "https://example.com",
            "contentType": "multipart/form-data",
            "data": [{"name": "f", "valueType": "file", "file": {"id": 1}}],
        },
    )
    assert "config.data" in message
    assert "attachments" in message and "not supported" in message


async def test_multipart_file_parts_from_a_template_fail_the_job(base: str) -> None:
    run = await request(
        {"url": f"{base}/echo", "contentType": "multipart/form-data", "data": "{{$context.parts}}"},
        context={"parts": [{"name": "f", "valueType": "file", "file": {"id": 1}}]},
    )
    assert run.job.status == Status.FAILED
    assert "attachments" in run.job.result["message"]


@pytest.mark.parametrize("content_type", ["application/xml", "text/plain"])
async def test_xml_and_text_bodies_are_sent_as_given(
    base: str, http_server: RecordingServer, content_type: str
) -> None:
    run = await request(
        {"url": f"{base}/echo", "contentType": content_type, "data": "<a>{{$context.v}}</a>"},
        context={"v": 5},
    )
    assert run.job.status == Status.RESOLVED, run.job.result
    assert http_server.seen[0]["headers"]["content-type"] == content_type
    assert http_server.seen[0]["body"] == "<a>5</a>"


async def test_only_data_makes_the_body_the_result(base: str) -> None:
    run = await request({"url": f"{base}/echo", "method": "GET", "onlyData": True})
    assert run.job.status == Status.RESOLVED
    assert run.job.result["path"] == "/echo"


async def test_text_responses_stay_text_and_bad_json_stays_text(base: str) -> None:
    text = await request({"url": f"{base}/text", "method": "GET", "onlyData": True})
    assert text.job.result == '{"looks": "like json"}'
    bad = await request({"url": f"{base}/badjson", "method": "GET", "onlyData": True})
    assert bad.job.result == "{not json"


async def test_redirects_are_followed(base: str) -> None:
    run = await request({"url": f"{base}/redirect?to=/echo", "method": "GET", "onlyData": True})
    assert run.job.status == Status.RESOLVED
    assert run.job.result["path"] == "/echo"


async def test_the_result_feeds_later_nodes(base: str) -> None:
    from tests.engine.node_runs import run_nodes

    run = await run_nodes(
        [
            {"key": "r", "type": "request", "config": {"url": f"{base}/echo", "data": {"a": 1}}},
            {
                "key": "c",
                "type": "calculation",
                "config": {"engine": "string", "expression": "{{$jobsMapByNodeKey.r.status}}"},
            },
        ],
        settings=LOCAL,
    )
    assert run.status == Status.RESOLVED
    assert run.jobs[1].result == "200"


# -- failures ----------------------------------------------------------------------


async def test_an_error_status_fails_with_the_response_in_the_result(base: str) -> None:
    run = await request({"url": f"{base}/status/404"})
    assert run.status == Status.FAILED
    assert run.job.status == Status.FAILED
    assert run.job.result == {
        "message": "Request failed with status code 404",
        "code": "ERR_BAD_REQUEST",
        "status": 404,
        "statusText": "Not Found",
        "data": {"error": "nope"},
    }
    server_error = await request({"url": f"{base}/status/503"})
    assert server_error.job.result["code"] == "ERR_BAD_RESPONSE"


async def test_ignore_fail_resolves_with_the_failure_as_result(base: str) -> None:
    run = await request({"url": f"{base}/status/500", "ignoreFail": True})
    assert run.status == Status.RESOLVED
    assert run.job.status == Status.RESOLVED
    assert run.job.result["status"] == 500


async def test_a_timeout_aborts_the_job(base: str) -> None:
    started = time.monotonic()
    run = await request({"url": f"{base}/slow", "timeout": 200})
    assert time.monotonic() - started < 1.2
    assert run.status == Status.ABORTED
    assert run.job.status == Status.ABORTED
    assert run.job.result == {"message": "timeout of 200ms exceeded", "code": "ECONNABORTED"}


async def test_a_timeout_with_ignore_fail_resolves(base: str) -> None:
    run = await request(
        {"url": f"{base}/slow", "timeout": "{{$env.T}}", "ignoreFail": True}, env={"T": "150"}
    )
    assert run.job.status == Status.RESOLVED
    assert run.job.result["code"] == "ECONNABORTED"


def test_timeout_defaults_to_5000_ms() -> None:
    assert _timeout_ms(None) == 5000
    assert _timeout_ms(0) == 5000
    assert _timeout_ms("250") == 250


async def test_a_templated_url_that_is_not_http_fails_with_err_invalid_url() -> None:
    for url in ("ftp://example.com/x", "not a url", ""):
        run = await request({"url": "{{$context.url}}"}, context={"url": url})
        assert run.job.status == Status.FAILED
        assert run.job.result["code"] == "ERR_INVALID_URL", run.job.result


async def test_a_refused_connection_fails_with_econnrefused(http_server: RecordingServer) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = await request({"url": f"http://127.0.0.1:{port}/"})
    assert run.job.status == Status.FAILED
    assert run.job.result["code"] == "ECONNREFUSED"


async def test_too_many_redirects_fail(base: str) -> None:
    run = await request({"url": f"{base}/loop", "method": "GET"})
    assert run.job.status == Status.FAILED
    assert run.job.result["code"] == "ERR_FR_TOO_MANY_REDIRECTS"


async def test_a_response_over_the_size_limit_fails(
    base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(request_http, "MAX_RESPONSE_BYTES", 1000)
    run = await request({"url": f"{base}/big", "method": "GET"})
    assert run.job.status == Status.FAILED
    assert run.job.result["code"] == "ERR_RESPONSE_TOO_LARGE"


async def test_a_header_value_with_a_line_break_fails(base: str) -> None:
    run = await request(
        {"url": f"{base}/echo", "headers": [{"name": "X-A", "value": "{{$context.v}}"}]},
        context={"v": "a\r\nX-Injected: 1"},
    )
    assert run.job.status == Status.FAILED
    assert run.job.result["code"] == "ERR_INVALID_HEADER"


# -- definition-time checks --------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "field", "words"),
    [
        ({"url": "https://x.io", "method": "TRACE"}, "config.method", "not one of"),
        ({"url": ""}, "config.url", "required"),
        ({"url": "ftp://x.io/file"}, "config.url", "ERR_INVALID_URL"),
        ({"url": "file:///etc/passwd"}, "config.url", "ERR_INVALID_URL"),
        ({"url": "gopher://{{$context.h}}"}, "config.url", "ERR_INVALID_URL"),
        ({"url": "https://x.io", "contentType": "image/png"}, "config.contentType", "not one of"),
        ({"url": "https://x.io", "headers": [{"name": "a b", "value": 1}]}, "headers[0].name", ""),
        ({"url": "https://x.io", "timeout": -1}, "config.timeout", "milliseconds"),
        ({"url": "https://x.io", "timeout": "soon"}, "config.timeout", "milliseconds"),
        (
            {"url": "https://x.io", "contentType": "application/x-www-form-urlencoded", "data": 1},
            "config.data",
            "name, value",
        ),
        ({"url": "https://x.io", "retries": 3}, "retries", "unknown field"),
    ],
)
def test_bad_configs_are_refused_at_definition_time(
    config: dict[str, Any], field: str, words: str
) -> None:
    message = definition_error("request", config)
    assert field in message and words in message, message
    assert 'node "n"' in message or "n" in message


def test_templated_fields_pass_definition_time_checks() -> None:
    from tests.engine.node_runs import compile_nodes

    compile_nodes(
        [
            {
                "key": "n",
                "type": "request",
                "config": {
                    "method": "{{$context.method}}",
                    "url": "{{$env.BASE}}/hook",
                    "contentType": "{{$context.type}}",
                    "timeout": "{{$env.T}}",
                    "data": "{{$context.body}}",
                },
            }
        ]
    )


# -- where requests may go ---------------------------------------------------------


async def test_loopback_is_refused_without_an_allow_list(
    base: str, http_server: RecordingServer
) -> None:
    run = await request({"url": f"{base}/echo"}, settings=Settings())
    assert run.job.status == Status.FAILED
    assert run.job.result["code"] == "ERR_ADDRESS_BLOCKED"
    assert "127.0.0.1 is not a public address" in run.job.result["message"]
    assert http_server.seen == []  # nothing was sent


async def test_a_blocked_address_with_ignore_fail_resolves() -> None:
    run = await request({"url": "http://10.1.2.3/", "ignoreFail": True})
    assert run.job.status == Status.RESOLVED
    assert run.job.result["code"] == "ERR_ADDRESS_BLOCKED"


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://192.168.1.1:8080/",
        "http://172.16.0.1/",
        "http://[::1]:9/",
        "http://[::ffff:10.0.0.1]:9/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://0.0.0.0:9/",
        "http://127.0.0.2:9/",
    ],
)
async def test_private_loopback_link_local_and_metadata_targets_are_refused(url: str) -> None:
    run = await request({"url": url, "timeout": 500})
    assert run.job.status == Status.FAILED
    assert run.job.result["code"] == "ERR_ADDRESS_BLOCKED", run.job.result


async def test_metadata_stays_refused_when_private_addresses_are_allowed() -> None:
    settings = Settings(request_deny_private=False)
    for url in ("http://169.254.169.254/", "http://metadata.google.internal/"):
        run = await request({"url": url, "timeout": 500}, settings=settings)
        assert run.job.result["code"] == "ERR_ADDRESS_BLOCKED", run.job.result


async def test_private_targets_are_reachable_when_not_denied(base: str) -> None:
    run = await request({"url": f"{base}/echo"}, settings=Settings(request_deny_private=False))
    assert run.job.status == Status.RESOLVED, run.job.result


async def test_a_redirect_to_a_refused_address_is_refused(
    base: str, http_server: RecordingServer
) -> None:
    run = await request({"url": f"{base}/redirect?to=http://169.254.169.254/", "method": "GET"})
    assert run.job.status == Status.FAILED
    assert run.job.result["code"] == "ERR_ADDRESS_BLOCKED"
    assert [s["path"] for s in http_server.seen] == ["/redirect"]


async def test_a_name_is_checked_on_every_address_and_connected_to_the_checked_one(
    base: str, http_server: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = {
        "pinned.test": ["127.0.0.1"],
        "mixed.test": ["127.0.0.1", "10.9.9.9"],
    }
    lookups: list[str] = []

    async def lookup(self: GuardedBackend, host: str, port: int) -> list[Any]:
        lookups.append(host)
        return [ipaddress.ip_address(a) for a in answers[host]]

    monkeypatch.setattr(GuardedBackend, "lookup", lookup)
    port = http_server.server_address[1]
    run = await request({"url": f"http://pinned.test:{port}/echo", "method": "GET"})
    assert run.job.status == Status.RESOLVED, run.job.result
    # The connection went to the looked-up address; the Host header kept the name.
    assert http_server.seen[0]["headers"]["host"] == f"pinned.test:{port}"
    assert lookups == ["pinned.test"]  # one lookup: no second answer to rebind with

    mixed = await request({"url": f"http://mixed.test:{port}/echo", "method": "GET"})
    assert mixed.job.result["code"] == "ERR_ADDRESS_BLOCKED"
    assert "10.9.9.9" in mixed.job.result["message"]
    assert len(http_server.seen) == 1


async def test_an_allow_listed_name_may_resolve_to_private_addresses(
    base: str, http_server: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def lookup(self: GuardedBackend, host: str, port: int) -> list[Any]:
        return [ipaddress.ip_address("127.0.0.1")]

    monkeypatch.setattr(GuardedBackend, "lookup", lookup)
    port = http_server.server_address[1]
    settings = Settings(request_allow=("*.corp.test",))
    run = await request({"url": f"http://api.corp.test:{port}/echo"}, settings=settings)
    assert run.job.status == Status.RESOLVED, run.job.result
    other = await request({"url": f"http://api.other.test:{port}/echo"}, settings=settings)
    assert other.job.result["code"] == "ERR_ADDRESS_BLOCKED"


@pytest.mark.parametrize(
    ("allow", "deny_private", "host", "address", "allowed"),
    [
        ((), True, "example.com", "93.184.216.34", True),
        ((), True, "example.com", "2606:2800:220:1::1", True),
        ((), True, "x", "10.0.0.1", False),
        ((), True, "x", "100.64.0.1", False),  # carrier-grade NAT
        ((), True, "x", "224.0.0.1", False),  # multicast
        ((), True, "x", "fc00::1", False),
        ((), True, "x", "fe80::1", False),
        ((), True, "x", "2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ((), True, "x", "64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ((), True, "x", "::7f00:1", False),  # IPv4-compatible (reserved)
        ((), False, "x", "10.0.0.1", True),
        ((), False, "x", "127.0.0.1", True),
        ((), False, "x", "169.254.1.1", False),
        ((), False, "x", "100.100.100.200", False),
        (("10.0.0.0/8",), True, "x", "10.20.30.40", True),
        (("10.0.0.0/8",), True, "x", "11.0.0.1", True),  # public stays allowed
        (("10.0.0.0/8",), True, "x", "192.168.0.1", False),
        (("169.254.169.254",), True, "x", "169.254.169.254", True),
        (("metadata.google.internal",), True, "metadata.google.internal", "169.254.169.254", True),
        (("db.internal",), True, "DB.internal.", "10.0.0.7", True),
        (("*.corp",), True, "corp", "10.0.0.7", False),
        (("fd00::/8",), True, "x", "fd12::1", True),
    ],
)
def test_outbound_policy(
    allow: tuple[str, ...], deny_private: bool, host: str, address: str, allowed: bool
) -> None:
    policy = OutboundPolicy.from_settings(
        Settings(request_allow=allow, request_deny_private=deny_private)
    )
    reason = policy.refusal(host, ipaddress.ip_address(address))
    assert (reason is None) is allowed, reason


# -- the client --------------------------------------------------------------------


async def test_one_client_per_effects_closed_by_aclose(base: str) -> None:
    effects = Effects(LOCAL)
    first = await request({"url": f"{base}/echo"}, effects=effects)
    client = await effects.client(
        "http", request_http.open_http_client, request_http.close_http_client
    )
    second = await request({"url": f"{base}/echo"}, effects=effects)
    assert first.job.status == second.job.status == Status.RESOLVED
    assert not client.is_closed
    assert client is await effects.client(
        "http", request_http.open_http_client, request_http.close_http_client
    )
    await effects.aclose()
    assert client.is_closed


def test_settings_read_the_allow_list_and_the_private_switch() -> None:
    settings = Settings.from_env(
        {"RAYHOOK_REQUEST_ALLOW": " 127.0.0.1, API.corp.test ,,10.0.0.0/8 "}
    )
    assert settings.request_allow == ("127.0.0.1", "api.corp.test", "10.0.0.0/8")
    assert settings.request_deny_private is True
    assert Settings.from_env({}).request_allow == ()
    for off in ("0", "false", "No", "OFF"):
        assert not Settings.from_env({"RAYHOOK_REQUEST_DENY_PRIVATE": off}).request_deny_private
    assert Settings.from_env({"RAYHOOK_REQUEST_DENY_PRIVATE": "1"}).request_deny_private
