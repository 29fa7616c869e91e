"""The form-bodied examples for real, applied with `rayhook apply -f` as they are:
`examples/paypal-ipn.yaml` (async, its postback to a local stand-in for
PayPal's verification endpoint, since this machine reaches no outside host)
and `examples/slack-fee-command.yaml` (sync, signed by slack_sdk)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier

from tests.conftest import delete_namespace, kill_actors
from tests.e2e.conftest import Server, start_server

ROOT = Path(__file__).resolve().parents[2]
RECEIVER = "payments@example.com"
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
FORM = {"content-type": "application/x-www-form-urlencoded"}


class PayPal:
    """PayPal's IPN verification endpoint as documented: VERIFIED when the
    postback is `cmd=_notify-validate&` + a message PayPal sent, byte for byte."""

    def __init__(self) -> None:
        self.sent: set[bytes] = set()
        self.postbacks: list[tuple[str, bytes]] = []
        paypal = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                paypal.postbacks.append((self.headers.get("Content-Type", ""), body))
                prefix = b"cmd=_notify-validate&"
                known = body.startswith(prefix) and body[len(prefix) :] in paypal.sent
                answer = b"VERIFIED" if known else b"INVALID"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=UTF-8")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cgi-bin/webscr"

    def message(self, **fields: str) -> bytes:
        """An IPN as PayPal sends it (and will vouch for)."""
        raw = urlencode(fields).encode()
        self.sent.add(raw)
        return raw


@pytest.fixture(scope="module")
def paypal() -> Iterator[PayPal]:
    paypal = PayPal()
    threading.Thread(target=paypal.server.serve_forever, daemon=True).start()
    yield paypal
    paypal.server.shutdown()
    paypal.server.server_close()


@pytest.fixture(scope="module")
def examples_server(
    paypal: PayPal, ray_address: str, ray_driver: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    server = start_server(
        tmp_path_factory.mktemp("form-examples"),
        RAYHOOK_REQUEST_ALLOW="127.0.0.1",
        RAYHOOK_ENV_PAYPAL_IPN_URL=paypal.url,
        RAYHOOK_ENV_PAYPAL_RECEIVER_EMAIL=RECEIVER,
        RAYHOOK_ENV_SLACK_SIGNING_SECRET=SLACK_SECRET,
    )
    for example in ("paypal-ipn.yaml", "slack-fee-command.yaml"):
        command = ["apply", "-f", f"examples/{example}", "--url", server.url, "--json"]
        applied = subprocess.run(
            [sys.executable, "-m", "deploy.cli", *command, "--token", server.token],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert applied.returncode == 0, applied.stderr
        assert json.loads(applied.stdout)[0]["enabled"] is True
    yield server
    server.stop()
    kill_actors(server.namespace)
    delete_namespace(server.namespace)


def ipn(server: Server, raw: bytes) -> dict[str, Any]:
    reply = server.hook("paypal-ipn", content=raw, headers=FORM)
    assert (reply.status_code, reply.text) == (200, "")
    return server.wait_final(reply.headers["x-rayhook-execution"])


def test_a_verified_completed_ipn_records_the_payment(
    examples_server: Server, paypal: PayPal
) -> None:
    raw = paypal.message(
        mc_gross="19.95",
        invoice="A-17",
        payment_status="Completed",
        receiver_email=RECEIVER,
        payer_email="buyer@example.net",
        txn_id="61E67681CH3238416",
        mc_currency="USD",
        item_name1="Café crème",  # percent-escaped UTF-8, echoed back exactly
    )
    execution = ipn(examples_server, raw)
    assert execution["status"] == 1
    assert execution["output"] == {
        "txn": "61E67681CH3238416",
        "invoice": "A-17",
        "amount": "19.95",
        "currency": "USD",
        "payer": "buyer@example.net",
    }
    assert execution["context"]["body"]["item_name1"] == "Café crème"
    assert (FORM["content-type"], b"cmd=_notify-validate&" + raw) in paypal.postbacks


def test_a_verified_ipn_of_another_status_is_ignored(
    examples_server: Server, paypal: PayPal
) -> None:
    raw = paypal.message(txn_id="T-2", payment_status="Pending", receiver_email=RECEIVER)
    execution = ipn(examples_server, raw)
    assert execution["status"] == 1
    assert execution["output"] == {"txn": "T-2", "ignored": "Pending"}


def test_a_forged_or_altered_ipn_fails_at_the_postback(
    examples_server: Server, paypal: PayPal
) -> None:
    genuine = paypal.message(
        txn_id="T-3", payment_status="Completed", mc_gross="5.00", receiver_email=RECEIVER
    )
    altered = genuine.replace(b"mc_gross=5.00", b"mc_gross=500.00")
    execution = ipn(examples_server, altered)
    assert execution["status"] == -1  # the `genuine` condition rejects it
    assert execution["output"] is None


def slack_command(server: Server, text: str, secret: str = SLACK_SECRET) -> Any:
    body = urlencode(
        {
            "token": "gIkuvaNzQIHg97ATvDxqgjtO",
            "team_id": "T0001",
            "channel_name": "payments",
            "user_id": "U2147483697",
            "command": "/fee",
            "text": text,
            "response_url": "https://hooks.slack.com/commands/1234/5678",
        }
    ).encode()
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    assert signature is not None
    headers = {**FORM, "X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}
    return server.hook("slack-fee-command", content=body, headers=headers)


def test_the_slack_command_answers_in_the_channel(examples_server: Server) -> None:
    reply = slack_command(examples_server, "40.00")
    assert reply.status_code == 200
    assert reply.json() == {
        "response_type": "in_channel",
        "text": "A card payment of 40.00 costs 1.46 in fees (2.9 % + 0.30).",
    }


@pytest.mark.parametrize("text", ["", "forty", "0"])
def test_the_slack_command_shows_its_usage_to_the_user(examples_server: Server, text: str) -> None:
    reply = slack_command(examples_server, text)
    assert reply.status_code == 200
    assert reply.json() == {
        "response_type": "ephemeral",
        "text": "Usage: /fee <amount>, e.g. /fee 40.00",
    }


def test_the_slack_command_refuses_an_unsigned_caller(examples_server: Server) -> None:
    reply = slack_command(examples_server, "40.00", secret="not-the-apps-secret")
    assert reply.status_code == 401
