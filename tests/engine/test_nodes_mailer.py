"""The `mailer` node (SPEC §5, reference §5.17) against a local aiosmtpd server
on 127.0.0.1 (plain SMTP, so `secure: false`), with AUTH and a recipient it
refuses."""

from __future__ import annotations

import email
import email.policy
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from engine.settings import Settings
from engine.status import Status
from tests.engine.node_runs import NodeRun, compile_nodes, definition_error, run_node


@dataclass
class Mailbox:
    """What the server received: one (envelope sender, recipients, message) per mail."""

    mails: list[tuple[str, list[str], email.message.EmailMessage]] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted"


#: Logins the server was sent.
attempts: list[bytes] = []


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    if isinstance(data, LoginPassword):
        attempts.append(data.login)
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"robot", b"s3cret")
    return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 itself


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = Mailbox()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    yield mailbox, port
    controller.stop()


@pytest.fixture
def mailbox(smtp: tuple[Mailbox, int]) -> Mailbox:
    smtp[0].mails.clear()
    return smtp[0]


#: The test server is on loopback, which the outbound policy refuses unless listed.
LOOPBACK_ALLOWED = Settings(request_allow=("127.0.0.1",))


async def mail(config: dict[str, Any], **kwargs: Any) -> NodeRun:
    kwargs.setdefault("settings", LOOPBACK_ALLOWED)
    return await run_node("mailer", config, **kwargs)


def config(port: int, **fields: Any) -> dict[str, Any]:
    return {
        "provider": {"host": "127.0.0.1", "port": port, "secure": False},
        "from": "Rayhook <robot@example.com>",
        "to": ["ann@example.com"],
        "subject": "Hello",
        "contentType": "html",
        "html": "<p>Hi</p>",
        **fields,
    }


async def test_an_html_mail_is_sent_and_the_result_names_the_recipients(
    smtp: tuple[Mailbox, int], mailbox: Mailbox
) -> None:
    port = smtp[1]
    run = await mail(
        config(
            port,
            to=["{{$context.to}}", "Bo <bo@example.com>"],
            cc=["cc@example.com"],
            bcc=["hidden@example.com"],
            subject="Order {{$context.id}}",
            html="<b>{{$context.id}}</b>",
        ),
        context={"to": "ann@example.com", "id": 42},
    )
    assert run.job.status == Status.RESOLVED, run.job.result
    (sender, recipients, message) = mailbox.mails[0]
    assert sender == "robot@example.com"
    assert recipients == [
        "ann@example.com",
        "bo@example.com",
        "cc@example.com",
        "hidden@example.com",
    ]
    assert message["From"] == "Rayhook <robot@example.com>"
    assert message["To"] == "ann@example.com, Bo <bo@example.com>"
    assert message["Cc"] == "cc@example.com"
    assert message["Bcc"] is None  # bcc recipients are only in the envelope
    assert message["Subject"] == "Order 42"
    assert message.get_content_type() == "text/html"
    assert message.get_content().strip() == "<b>42</b>"
    assert run.job.result == {
        "messageId": message["Message-ID"],
        "accepted": recipients,
        "rejected": [],
    }
    assert run.job.result["messageId"].endswith("@example.com>")


async def test_a_text_mail_sends_the_text(smtp: tuple[Mailbox, int], mailbox: Mailbox) -> None:
    run = await mail(
        config(smtp[1], contentType="text", text="plain {{$context.x}}", html="<p>no</p>"),
        context={"x": 1},
    )
    assert run.job.status == Status.RESOLVED, run.job.result
    message = mailbox.mails[0][2]
    assert message.get_content_type() == "text/plain"
    assert message.get_content().strip() == "plain 1"


async def test_recipient_lists_from_templates_are_flattened_and_split(
    smtp: tuple[Mailbox, int], mailbox: Mailbox
) -> None:
    run = await mail(
        config(smtp[1], to="{{$context.emails}}", cc=["x@example.com, y@example.com"]),
        context={"emails": ["a@example.com", ["b@example.com"]]},
    )
    assert run.job.status == Status.RESOLVED, run.job.result
    assert mailbox.mails[0][1] == [
        "a@example.com",
        "b@example.com",
        "x@example.com",
        "y@example.com",
    ]


async def test_auth_with_the_right_password_sends(
    smtp: tuple[Mailbox, int], mailbox: Mailbox
) -> None:
    provider = {
        "host": "127.0.0.1",
        "port": str(smtp[1]),
        "secure": False,
        "auth": {"user": "robot", "pass": "{{$env.SMTP_PASS}}"},
    }
    run = await mail(config(smtp[1], provider=provider), env={"SMTP_PASS": "s3cret"})
    assert run.job.status == Status.RESOLVED, run.job.result
    assert len(mailbox.mails) == 1


async def test_a_wrong_password_fails_with_eauth(
    smtp: tuple[Mailbox, int], mailbox: Mailbox
) -> None:
    provider = {
        "host": "127.0.0.1",
        "port": smtp[1],
        "secure": False,
        "auth": {"user": "robot", "pass": "wrong"},
    }
    run = await mail(config(smtp[1], provider=provider))
    assert run.status == Status.FAILED
    assert run.job.status == Status.FAILED
    assert run.job.result["code"] == "EAUTH"
    assert run.job.result["responseCode"] == 535
    assert mailbox.mails == []


async def test_a_refused_recipient_is_reported_as_rejected(
    smtp: tuple[Mailbox, int], mailbox: Mailbox
) -> None:
    run = await mail(config(smtp[1], to=["ann@example.com", "nobody@example.com"]))
    assert run.job.status == Status.RESOLVED, run.job.result
    assert run.job.result["accepted"] == ["ann@example.com"]
    assert run.job.result["rejected"] == ["nobody@example.com"]


async def test_all_recipients_refused_fails(smtp: tuple[Mailbox, int], mailbox: Mailbox) -> None:
    run = await mail(config(smtp[1], to=["nobody@example.com"]))
    assert run.job.status == Status.FAILED
    assert run.job.result["code"] == "EENVELOPE"
    assert run.job.result["responseCode"] == 550


async def test_ignore_fail_resolves_with_the_failure(smtp: tuple[Mailbox, int]) -> None:
    run = await mail(config(smtp[1], to=["nobody@example.com"], ignoreFail=True))
    assert run.status == Status.RESOLVED
    assert run.job.status == Status.RESOLVED
    assert run.job.result["code"] == "EENVELOPE"


async def test_a_server_that_is_not_there_fails_with_econnection() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = await mail(config(port))
    assert run.job.status == Status.FAILED
    assert run.job.result["code"] == "ECONNECTION"


async def test_secure_against_a_plain_server_fails(smtp: tuple[Mailbox, int]) -> None:
    provider = {"host": "127.0.0.1", "port": smtp[1], "secure": True}
    run = await mail(config(smtp[1], provider=provider))
    assert run.job.status == Status.FAILED
    assert run.job.result["code"] in {"ECONNECTION", "ETIMEDOUT"}


async def test_a_line_break_in_a_header_fails_the_job(
    smtp: tuple[Mailbox, int], mailbox: Mailbox
) -> None:
    run = await mail(
        config(smtp[1], subject="{{$context.s}}"), context={"s": "Hi\r\nBcc: evil@x.io"}
    )
    assert run.job.status == Status.FAILED
    assert run.job.result["code"] == "EMESSAGE"
    assert mailbox.mails == []


async def test_templated_recipients_that_render_empty_fail(smtp: tuple[Mailbox, int]) -> None:
    run = await mail(config(smtp[1], to=["{{$context.none}}"]))
    assert run.job.status == Status.FAILED
    assert run.job.result == {"message": "no recipients", "code": "EENVELOPE"}


# -- the outbound policy (issue 10, finding 4) -------------------------------------


async def test_an_smtp_host_from_the_body_cannot_reach_the_metadata_address() -> None:
    """The issue's attack: host and port templated from the request body made
    the mailer connect to 169.254.169.254:80 and send the SMTP password there."""
    provider = {
        "host": "{{$context.host}}",
        "port": "{{$context.port}}",
        "secure": False,
        "auth": {"user": "robot", "pass": "{{$env.SMTP_PASS}}"},
    }
    for settings in (Settings(), Settings(request_deny_private=False)):
        started = time.monotonic()
        run = await mail(
            config(80, provider=provider),
            context={"host": "169.254.169.254", "port": 80},
            env={"SMTP_PASS": "s3cret"},
            settings=settings,
        )
        assert time.monotonic() - started < 2  # refused before any connection
        assert run.job.status == Status.FAILED
        assert run.job.result["code"] == "ERR_ADDRESS_BLOCKED"
        assert "169.254.169.254" in run.job.result["message"]
        assert "RAYHOOK_REQUEST_ALLOW" in run.job.result["message"]


async def test_a_private_smtp_host_needs_to_be_listed(
    smtp: tuple[Mailbox, int], mailbox: Mailbox
) -> None:
    run = await mail(config(smtp[1]), settings=Settings())
    assert run.job.status == Status.FAILED
    assert run.job.result["code"] == "ERR_ADDRESS_BLOCKED"
    assert mailbox.mails == []
    allowed = await mail(config(smtp[1]), settings=LOOPBACK_ALLOWED)
    assert allowed.job.status == Status.RESOLVED, allowed.job.result


async def test_the_password_is_not_sent_in_clear_to_a_host_that_is_not_listed(
    smtp: tuple[Mailbox, int], mailbox: Mailbox
) -> None:
    """Loopback reachable (private addresses allowed) but not listed: the server
    offers no STARTTLS, so the password never leaves."""
    attempts.clear()
    provider = {
        "host": "127.0.0.1",
        "port": smtp[1],
        "secure": False,
        "auth": {"user": "robot", "pass": "s3cret"},
    }
    run = await mail(
        config(smtp[1], provider=provider), settings=Settings(request_deny_private=False)
    )
    assert run.job.status == Status.FAILED
    assert run.job.result["code"] == "ETLS"
    assert "RAYHOOK_REQUEST_ALLOW" in run.job.result["message"]
    assert attempts == []  # no AUTH reached the server
    assert mailbox.mails == []
    # Listed: the operator vouches for the host, the password goes.
    listed = await mail(config(smtp[1], provider=provider), settings=LOOPBACK_ALLOWED)
    assert listed.job.status == Status.RESOLVED, listed.job.result
    assert attempts == [b"robot"]


# -- definition-time checks --------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field_name", "words"),
    [
        ({"provider": {"host": ""}}, "config.provider.host", "required"),
        ({"provider": {"host": "smtp.x.io", "port": 70000}}, "config.provider.port", "port"),
        ({"provider": {"host": "smtp.x.io", "port": "abc"}}, "config.provider.port", "port"),
        ({"contentType": "markdown"}, "config.contentType", "html or text"),
        ({"from": ""}, "config.from", "sender"),
        ({"to": [], "cc": [], "bcc": []}, "config.to", "recipient"),
        ({"attachments": [{"id": 1}]}, "config.attachments", "not supported"),
        ({"provider": {"host": "smtp.x.io", "tls": {}}}, "tls", "unknown field"),
        (
            {"provider": {"host": "smtp.x.io", "auth": {"user": "u", "password": "p"}}},
            "password",
            "unknown field",
        ),
    ],
)
def test_bad_configs_are_refused_at_definition_time(
    fields: dict[str, Any], field_name: str, words: str
) -> None:
    message = definition_error("mailer", config(25, **fields))
    assert field_name in message and words in message, message


def test_nocobase_defaults_compile() -> None:
    compile_nodes(
        [
            {
                "key": "m",
                "type": "mailer",
                "config": {
                    "provider": {"host": "smtp.example.com", "auth": {"user": "u", "pass": "p"}},
                    "from": "a@example.com",
                    "to": ["{{$context.body.email}}"],
                    "subject": "s",
                    "html": "<p>{{$context.body.name}}</p>",
                },
            }
        ]
    )
