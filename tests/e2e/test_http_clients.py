"""The clients of the ingress let idle connections go before the server does
(deploy/http_clients.py): otherwise a request sent as gunicorn's keep-alive
timer closes the connection fails with "Server disconnected without sending a
response" (it failed a CI run that way)."""

from __future__ import annotations

import time

import httpx

from deploy import gunicorn_conf, http_clients
from tests.e2e.conftest import Server


def local_port(reply: httpx.Response) -> int:
    stream = reply.extensions["network_stream"]
    return stream.get_extra_info("socket").getsockname()[1]


def test_the_pool_lets_an_idle_connection_go_before_the_server_keep_alive(server: Server) -> None:
    assert min(gunicorn_conf.keepalive, 2) > http_clients.KEEPALIVE_EXPIRY  # 2: gunicorn's default
    with http_clients.client(server.url) as client:
        first = local_port(client.get("/readyz"))
        assert local_port(client.get("/readyz")) == first  # kept alive while busy
        time.sleep(http_clients.KEEPALIVE_EXPIRY + 0.5)
        assert local_port(client.get("/readyz")) != first  # a new connection after idling
