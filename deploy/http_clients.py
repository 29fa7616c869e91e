"""HTTP clients of a rayhook ingress: the CLI's, the benchmarks' and the tests'.

An idle kept-alive connection is reused only while it is clearly younger than
the server's keep-alive (gunicorn's `keepalive`: 5 s in deploy/gunicorn_conf.py,
2 s in gunicorn's own default). When both sides wait the same time, the server
closes the connection just as the client sends on it, and a request that was
never read fails with "Server disconnected without sending a response" — not
safe to retry for a POST. So the client lets its idle connections go first."""

from __future__ import annotations

import httpx

#: Seconds an idle connection stays in the pool (below every server keep-alive
#: rayhook ships with).
KEEPALIVE_EXPIRY = 1.0


def client(base_url: str, *, token: str | None = None, timeout: float = 30) -> httpx.Client:
    """A client of one ingress; `token` goes in as the admin bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.Client(
        base_url=base_url.rstrip("/"),
        headers=headers,
        timeout=timeout,
        limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY),
    )
