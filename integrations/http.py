"""The request node's HTTP (httpx): one client per process, over the outbound
policy's guarded transport (`integrations/outbound.py`).

Redirects are followed (at most `MAX_REDIRECTS`) and every hop is checked the
same way. A response larger than `MAX_RESPONSE_BYTES` fails the job.
"""

from __future__ import annotations

import asyncio
import errno
import json
import secrets
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import httpcore
import httpx

from engine.effects import Effects
from engine.jsvalues import to_display_string
from engine.nodes.request import (
    CONTENT_TYPES,
    DEFAULT_TIMEOUT_MS,
    HEADER_NAME,
    METHODS,
    RequestFailed,
    check_part,
    name_values,
)
from engine.settings import Settings
from integrations.outbound import AddressBlocked, GuardedBackend, HostNotFound, OutboundPolicy

MAX_REDIRECTS = 5
#: A larger response body fails the job instead of filling the worker's memory
#: (and the execution log) with it.
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
USER_AGENT = "rayhook"


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


class HttpRequests:
    """The `engine.effects.HttpRequests` port over httpx."""

    def url_problem(self, url: str) -> str | None:
        try:
            _url(url, [])
        except RequestFailed as exc:
            return str(exc)
        return None

    async def send(self, effects: Effects, config: Mapping[str, Any]) -> dict[str, Any]:
        client = await effects.client("http", open_http_client, close_http_client)
        return await send(client, config)


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
        for p in name_values(params, "params")
    ]
    pairs = [(name, value) for name, value in pairs if name]
    if pairs:
        # Appended to the URL's own query, as axios does.
        query = "&".join(q for q in (url.query.decode(), urlencode(pairs)) if q)
        url = url.copy_with(query=query.encode())
    return url


def _headers(items: Any) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in name_values(items, "headers"):
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


def _body(content_type: str, data: Any) -> tuple[bytes, str]:
    if content_type == "application/json":
        text = data if isinstance(data, str) else to_display_string(data)
        return text.encode(), content_type
    if content_type == "application/x-www-form-urlencoded":
        if isinstance(data, str):
            return data.encode(), content_type
        pairs = [
            (str(p.get("name", "")), to_display_string(p.get("value")))
            for p in name_values(data, "data")
        ]
        return urlencode(pairs).encode(), content_type
    if content_type == "multipart/form-data":
        return _multipart(name_values(data, "data"))
    # application/xml, text/plain: the text as given.
    return to_display_string(data).encode(), content_type


def _multipart(parts: list[Mapping[str, Any]]) -> tuple[bytes, str]:
    boundary = f"----rayhook{secrets.token_hex(12)}"
    chunks: list[bytes] = []
    for i, part in enumerate(parts):
        check_part(i, part)
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
