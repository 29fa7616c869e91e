"""`request`: send an HTTP request; the response is the job result.

Config fields are NocoBase's (`plugin-workflow-request`) and the whole config
is templated. Outbound connections go through `OutboundPolicy`: every address a
host name resolves to is checked before anything is sent, and the connection
is made to the checked address (the TLS name and `Host` header stay the URL's),
so a DNS answer that changes between the check and the connection (DNS
rebinding) cannot reach a refused address. Redirects are followed (at most
`MAX_REDIRECTS`) and every hop is checked the same way.

Result on success: `{status, statusText, headers, data}` (`data` parsed as JSON
when the response says it is JSON), or `data` alone with `onlyData`. On
failure: `{message, code?, status?, statusText?, data?}`, with status RESOLVED
when `ignoreFail`, else ABORTED for a timeout, else FAILED.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import json
import re
import secrets
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpcore
import httpx

from engine.definition import NameValue
from engine.jsvalues import to_display_string
from engine.nodes.base import (
    CompiledNode,
    Instruction,
    NodeConfig,
    NodeError,
    RunContext,
    WorkflowFacts,
)
from engine.records import Job
from engine.settings import Settings
from engine.status import Status

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CONTENT_TYPES = (
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "application/xml",
    "text/plain",
)
DEFAULT_TIMEOUT_MS = 5000
MAX_REDIRECTS = 5
#: A larger response body fails the job instead of filling the worker's memory
#: (and the execution log) with it.
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
USER_AGENT = "rayhook"
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

#: Cloud metadata endpoints: refused unless listed in RAYHOOK_REQUEST_ALLOW,
#: even with RAYHOOK_REQUEST_DENY_PRIVATE=false.
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog"})
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Config(NodeConfig):
    method: str = "POST"
    url: str = ""
    headers: list[NameValue] = []
    params: list[NameValue] = []
    contentType: str = "application/json"
    data: Any = None
    timeout: int | str = DEFAULT_TIMEOUT_MS
    ignoreFail: bool = False
    onlyData: bool = False


# -- where requests may go --------------------------------------------------------


class AddressBlocked(Exception):
    """The target resolved to an address the outbound policy refuses."""


class HostNotFound(Exception):
    """The target's name did not resolve."""


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Which addresses the request node may connect to (RAYHOOK_REQUEST_ALLOW,
    RAYHOOK_REQUEST_DENY_PRIVATE).

    Public addresses are allowed. Private, loopback and other non-public ranges
    are refused unless `deny_private` is off; link-local ranges and the cloud
    metadata endpoints are refused even then. An allow-list entry (a host name,
    `*.domain`, an address or a CIDR) lifts every refusal for what it matches.

    Example::

        policy = OutboundPolicy.from_settings(Settings(request_allow=("10.0.0.0/8",)))
        policy.refusal("db.internal", ip_address("10.1.2.3"))  # None: allowed
    """

    hosts: frozenset[str] = frozenset()
    domains: tuple[str, ...] = ()  # from `*.example.com`: ".example.com"
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    deny_private: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboundPolicy:
        hosts: set[str] = set()
        domains: list[str] = []
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in settings.request_allow:
            entry = entry.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if entry.startswith("*."):
                domains.append(entry[1:])
            else:
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(domains), tuple(networks), settings.request_deny_private)

    def host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.hosts or any(host.endswith(d) for d in self.domains)

    def refusal(self, host: str, address: IPAddress | None) -> str | None:
        """Why `host`, resolved to `address`, may not be reached; None if it may.

        Without an address, only the name is judged (before looking it up)."""
        if self.host_allowed(host):
            return None
        if host.lower().rstrip(".") in METADATA_HOSTS:
            return f"{host} is a cloud metadata endpoint"
        if address is None:
            return None
        target = _embedded_ipv4(address)
        if any(target in net or address in net for net in self.networks):
            return None
        if target in METADATA_ADDRESSES:
            return f"{address} is a cloud metadata address"
        if target.is_link_local:
            return f"{address} is a link-local address"
        if self.deny_private and not _is_public(target):
            return f"{address} is not a public address"
        return None


def _embedded_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64), if any."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _is_public(address: IPAddress) -> bool:
    return address.is_global and not (
        address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address.is_loopback
        or address.is_private
    )


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving names itself: it checks every
    address of the host and connects to a checked one, never to a second lookup."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def resolve(self, host: str, port: int, timeout: float | None) -> list[str]:
        """The host's addresses, all allowed; `AddressBlocked` if any is not."""
        self._check(host, None)  # a refused name is not even looked up
        try:
            addresses = [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            try:
                addresses = await asyncio.wait_for(self.lookup(host, port), timeout)
            except TimeoutError as exc:
                raise httpcore.ConnectTimeout(f"looking up {host} timed out") from exc
        for address in addresses:
            self._check(host, address)
        return [str(a) for a in addresses]

    def _check(self, host: str, address: IPAddress | None) -> None:
        reason = self.policy.refusal(host, address)
        if reason is not None:
            raise AddressBlocked(
                f"request to {host} refused: {reason}; allow it with RAYHOOK_REQUEST_ALLOW"
            )

    async def lookup(self, host: str, port: int) -> list[IPAddress]:
        """Every address the name resolves to (one lookup, whose answer is used)."""
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise HostNotFound(f"getaddrinfo ENOTFOUND {host}") from exc
        found = (ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
        return list(dict.fromkeys(found))

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.resolve(host, port, timeout)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise AddressBlocked("unix sockets are not reachable from the request node")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a `GuardedBackend` (no proxies: a proxy would make
    the connection, and the check, on the wrong host)."""

    def __init__(self, policy: OutboundPolicy) -> None:
        super().__init__(trust_env=False)
        # httpx builds its pool without a way to pass a backend: replace it with
        # the same pool over ours (`_pool` is httpx's, pinned by pyproject).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(policy),
        )


async def open_http_client(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=GuardedTransport(OutboundPolicy.from_settings(settings)),
        trust_env=False,
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        headers={"User-Agent": USER_AGENT},
    )


async def close_http_client(client: httpx.AsyncClient) -> None:
    await client.aclose()


# -- the node ----------------------------------------------------------------------


class RequestFailed(Exception):
    """A request that did not succeed; `result` is the job result."""

    def __init__(self, message: str, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.result: dict[str, Any] = {"message": message}
        if code is not None:
            self.result["code"] = code
        self.result.update(extra)
        self.timeout = code == "ECONNABORTED"


class Request(Instruction):
    node_type = "request"
    config_type = Config
    retries_on_fail = True
    ignore_fail_field = "ignoreFail"

    def prepare(self, config: Config, facts: WorkflowFacts, branches: frozenset[str]) -> None:
        if not _templated(config.method) and config.method.upper() not in METHODS:
            raise NodeError("method", f"{config.method!r} is not one of {', '.join(METHODS)}")
        if not config.url.strip():
            raise NodeError("url", "a URL is required")
        static = config.url.split("{{", 1)[0].strip()
        if "{{" not in config.url:
            try:
                _url(config.url, [])
            except RequestFailed as exc:
                raise NodeError("url", f"ERR_INVALID_URL: {exc}") from exc
        elif "://" in static and static.split("://", 1)[0].lower() not in ("http", "https"):
            raise NodeError("url", f"ERR_INVALID_URL: {config.url!r} is not an http(s) URL")
        if not _templated(config.contentType) and config.contentType not in CONTENT_TYPES:
            raise NodeError(
                "contentType", f"{config.contentType!r} is not one of {', '.join(CONTENT_TYPES)}"
            )
        for i, header in enumerate(config.headers):
            name = header.name.strip()
            if name and not _templated(name) and not HEADER_NAME.match(name):
                raise NodeError(f"headers[{i}].name", f"{header.name!r} is not a header name")
        if isinstance(config.timeout, str) and not _templated(config.timeout):
            raise NodeError("timeout", "must be a number of milliseconds")
        if isinstance(config.timeout, int) and config.timeout < 0:
            raise NodeError("timeout", "must be a positive number of milliseconds (0: 5000)")
        try:
            _check_data(config.contentType, config.data)
        except RequestFailed as exc:
            raise NodeError("data", str(exc)) from exc

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        config = run.render(node)
        ignore_fail = bool(config.get("ignoreFail", False))
        try:
            client = await run.effects.client("http", open_http_client, close_http_client)
            result = await send(client, config)
        except RequestFailed as failed:
            job.result = failed.result
            if ignore_fail:
                job.status = Status.RESOLVED
            else:
                job.status = Status.ABORTED if failed.timeout else Status.FAILED
            return
        job.result = result["data"] if config.get("onlyData") else result
        job.status = Status.RESOLVED


async def send(client: httpx.AsyncClient, config: Mapping[str, Any]) -> dict[str, Any]:
    """Send the request a rendered config describes; the success result, or
    `RequestFailed` with the failure result."""
    method = str(config.get("method") or "POST").upper()
    if method not in METHODS:
        raise RequestFailed(f"method {method!r} is not one of {', '.join(METHODS)}")
    url = _url(config.get("url"), config.get("params") or [])
    headers = _headers(config.get("headers") or [])
    content_type = str(config.get("contentType") or "application/json")
    if content_type not in CONTENT_TYPES:
        raise RequestFailed(f"contentType {content_type!r} is not supported")
    content: bytes | None = None
    data = config.get("data")
    if method != "GET" and data is not None:
        content, headers["Content-Type"] = _body(content_type, data)
    timeout_ms = _timeout_ms(config.get("timeout"))
    seconds = timeout_ms / 1000
    try:
        async with asyncio.timeout(seconds):
            async with client.stream(
                method, url, headers=headers, content=content, timeout=seconds
            ) as response:
                body = await _read_capped(response)
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise RequestFailed(f"timeout of {timeout_ms}ms exceeded", "ECONNABORTED") from exc
    except AddressBlocked as exc:
        raise RequestFailed(str(exc), "ERR_ADDRESS_BLOCKED") from exc
    except HostNotFound as exc:
        raise RequestFailed(str(exc), "ENOTFOUND") from exc
    except httpx.TooManyRedirects as exc:
        raise RequestFailed(
            "Maximum number of redirects exceeded", "ERR_FR_TOO_MANY_REDIRECTS"
        ) from exc
    except httpx.UnsupportedProtocol as exc:
        raise RequestFailed(f"Invalid URL: {exc}", "ERR_INVALID_URL") from exc
    except httpx.HTTPError as exc:
        raise RequestFailed(str(exc) or type(exc).__name__, _network_code(exc)) from exc
    result = {
        "status": response.status_code,
        "statusText": response.reason_phrase,
        "headers": {name: ", ".join(response.headers.get_list(name)) for name in response.headers},
        "data": _decode(response, body),
    }
    if not 200 <= response.status_code < 300:
        code = "ERR_BAD_REQUEST" if response.status_code < 500 else "ERR_BAD_RESPONSE"
        raise RequestFailed(
            f"Request failed with status code {response.status_code}",
            code,
            status=result["status"],
            statusText=result["statusText"],
            data=result["data"],
        )
    return result


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def _url(value: Any, params: Any) -> httpx.URL:
    text = to_display_string(value).strip()
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise RequestFailed(f"Invalid URL: {text!r}", "ERR_INVALID_URL") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise RequestFailed(f"Invalid URL: {text!r} is not an http(s) URL", "ERR_INVALID_URL")
    pairs = [
        (str(p.get("name", "")).strip(), to_display_string(p.get("value")))
        for p in _name_values(params, "params")
    ]
    pairs = [(name, value) for name, value in pairs if name]
    if pairs:
        # Appended to the URL's own query, as axios does.
        query = "&".join(q for q in (url.query.decode(), urlencode(pairs)) if q)
        url = url.copy_with(query=query.encode())
    return url


def _headers(items: Any) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in _name_values(items, "headers"):
        name = str(item.get("name", "")).strip()
        if not name or name.lower() == "content-type":
            continue  # the content type comes from contentType, as in NocoBase
        if not HEADER_NAME.match(name):
            raise RequestFailed(f"{name!r} is not a valid header name", "ERR_INVALID_HEADER")
        value = to_display_string(item.get("value")).strip()
        if "\r" in value or "\n" in value or "\0" in value:
            raise RequestFailed(
                f"the value of header {name!r} has a line break", "ERR_INVALID_HEADER"
            )
        headers[name] = value
    return headers


def _name_values(items: Any, field: str) -> list[Mapping[str, Any]]:
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise RequestFailed(f"{field} must be a list of {{name, value}}")
    return items


def _check_data(content_type: str, data: Any) -> None:
    """Definition-time shape checks of `data` for the content types with one."""
    if _templated(data) or data is None:
        return
    if content_type == "application/x-www-form-urlencoded":
        _name_values(data, "data")
    elif content_type == "multipart/form-data":
        for i, part in enumerate(_name_values(data, "data")):
            _check_part(i, part)


def _check_part(i: int, part: Mapping[str, Any]) -> None:
    if part.get("valueType", "text") == "file":
        raise RequestFailed(
            f"data[{i}]: file parts (attachments) are not supported; send text parts "
            "({name, valueType: 'text', text})"
        )
    if part.get("valueType", "text") != "text":
        raise RequestFailed(f"data[{i}].valueType must be 'text'")


def _body(content_type: str, data: Any) -> tuple[bytes, str]:
    if content_type == "application/json":
        text = data if isinstance(data, str) else to_display_string(data)
        return text.encode(), content_type
    if content_type == "application/x-www-form-urlencoded":
        if isinstance(data, str):
            return data.encode(), content_type
        pairs = [
            (str(p.get("name", "")), to_display_string(p.get("value")))
            for p in _name_values(data, "data")
        ]
        return urlencode(pairs).encode(), content_type
    if content_type == "multipart/form-data":
        return _multipart(_name_values(data, "data"))
    # application/xml, text/plain: the text as given.
    return to_display_string(data).encode(), content_type


def _multipart(parts: list[Mapping[str, Any]]) -> tuple[bytes, str]:
    boundary = f"----rayhook{secrets.token_hex(12)}"
    chunks: list[bytes] = []
    for i, part in enumerate(parts):
        _check_part(i, part)
        # HTML's rule for names in form-data: quote, CR and LF percent-encoded.
        name = quote(str(part.get("name", "")), safe=" !#$&'()*+,-./:;<=>?@[\\]^_`{|}~")
        value = to_display_string(part.get("text", part.get("value")))
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def _timeout_ms(value: Any) -> int:
    if value is None or value == "":
        return DEFAULT_TIMEOUT_MS
    try:
        ms = int(float(value))
    except (TypeError, ValueError) as exc:
        raise RequestFailed(f"timeout must be a number of milliseconds, got {value!r}") from exc
    return ms if ms > 0 else DEFAULT_TIMEOUT_MS


async def _read_capped(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise RequestFailed(
                f"the response is larger than {MAX_RESPONSE_BYTES} bytes",
                "ERR_RESPONSE_TOO_LARGE",
                status=response.status_code,
                statusText=response.reason_phrase,
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(response: httpx.Response, body: bytes) -> Any:
    text = body.decode(response.encoding or "utf-8", errors="replace")
    media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if text and (media == "application/json" or media.endswith("+json")):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _network_code(exc: BaseException) -> str:
    """Node's error code for a network failure (ECONNREFUSED, ECONNRESET, ...)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLError):
            return "ERR_TLS"
        if isinstance(cause, OSError) and cause.errno is not None:
            return errno.errorcode.get(cause.errno, "ERR_NETWORK")
        cause = cause.__cause__ or cause.__context__
    return "ERR_NETWORK"
