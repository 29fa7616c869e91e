"""`mailer`: send an email over SMTP (aiosmtplib).

Config fields are NocoBase's (reference §5.17), all templated: `provider`
`{host, port (465), secure (true: TLS from the first byte; false: plain, upgraded
with STARTTLS when the server offers it), auth {user, pass}}`, `from`, `to`,
`cc`, `bcc` (lists of addresses; an entry may hold several, comma-separated, or
be a template giving a list), `subject`, `contentType` (`html` sends `html`,
`text` sends `text`) and `ignoreFail`. `attachments` are not supported.

Result: `{messageId, accepted, rejected}` (the recipients the server took and
refused). A failure gives `{message, code, responseCode?}` (codes as nodemailer's:
EAUTH, ECONNECTION, ETIMEDOUT, EENVELOPE, EMESSAGE) with status FAILED, or
RESOLVED with `ignoreFail`.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formataddr, formatdate, getaddresses, make_msgid
from typing import Any

import aiosmtplib
import msgspec

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
from engine.status import Status

#: Connecting and each SMTP command (nodemailer's defaults are longer).
SMTP_TIMEOUT_S = 30.0
CONTENT_TYPES = ("html", "text")


class Auth(NodeConfig):
    user: str = ""
    pass_: str = msgspec.field(name="pass", default="")


class Provider(NodeConfig):
    host: str = ""
    port: int | str = 465
    secure: bool | str = True
    auth: Auth | None = None


class Config(NodeConfig):
    provider: Provider = msgspec.field(default_factory=Provider)
    from_: str = msgspec.field(name="from", default="")
    to: list[Any] | str = []
    cc: list[Any] | str = []
    bcc: list[Any] | str = []
    subject: str = ""
    contentType: str = "html"
    html: str = ""
    text: str = ""
    attachments: list[Any] = []
    ignoreFail: bool = False


class MailFailed(Exception):
    def __init__(self, message: str, code: str, response_code: int | None = None) -> None:
        super().__init__(message)
        self.result: dict[str, Any] = {"message": message, "code": code}
        if response_code is not None:
            self.result["responseCode"] = response_code


class Mailer(Instruction):
    node_type = "mailer"
    config_type = Config
    retries_on_fail = True
    ignore_fail_field = "ignoreFail"

    def prepare(self, config: Config, facts: WorkflowFacts, branches: frozenset[str]) -> None:
        if not config.provider.host.strip():
            raise NodeError("provider.host", "the SMTP server's host name is required")
        port = config.provider.port
        if isinstance(port, int) and not 0 < port < 65536:
            raise NodeError("provider.port", f"{port} is not a TCP port")
        if isinstance(port, str) and "{{" not in port and not port.strip().isdigit():
            raise NodeError("provider.port", "must be a port number")
        if config.contentType not in CONTENT_TYPES:
            raise NodeError("contentType", f"{config.contentType!r} is not html or text")
        if not config.from_.strip():
            raise NodeError("from", "a sender address is required")
        if not (config.to or config.cc or config.bcc):
            raise NodeError("to", "at least one recipient (to, cc or bcc) is required")
        if config.attachments:
            raise NodeError("attachments", "attachments are not supported")

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        config = run.render(node)
        try:
            job.result = await send_mail(config)
        except MailFailed as failed:
            job.result = failed.result
            job.status = Status.RESOLVED if config.get("ignoreFail") else Status.FAILED
            return
        job.status = Status.RESOLVED


async def send_mail(config: dict[str, Any]) -> dict[str, Any]:
    """Send the email a rendered config describes; the result, or `MailFailed`."""
    provider = config.get("provider") or {}
    auth = provider.get("auth") or {}
    host = to_display_string(provider.get("host")).strip()
    try:
        port = int(provider.get("port") or 465)
    except (TypeError, ValueError) as exc:
        raise MailFailed(
            f"provider.port {provider.get('port')!r} is not a port", "ECONFIG"
        ) from exc
    secure = _flag(provider.get("secure", True))
    sender = _addresses(config.get("from"))
    to, cc, bcc = (_addresses(config.get(f)) for f in ("to", "cc", "bcc"))
    if not sender:
        raise MailFailed("no sender address", "EENVELOPE")
    if not (to or cc or bcc):
        raise MailFailed("no recipients", "EENVELOPE")
    message = EmailMessage()
    try:
        message["From"] = sender[0][0]
        if to:
            message["To"] = ", ".join(formatted for formatted, _ in to)
        if cc:
            message["Cc"] = ", ".join(formatted for formatted, _ in cc)
        message["Subject"] = to_display_string(config.get("subject"))
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = make_msgid(domain=sender[0][1].rpartition("@")[2] or None)
        if config.get("contentType", "html") == "text":
            message.set_content(to_display_string(config.get("text")))
        else:
            message.set_content(to_display_string(config.get("html")), subtype="html")
    except ValueError as exc:  # a line break in a header, for one
        raise MailFailed(str(exc), "EMESSAGE") from exc
    recipients = [address for _, address in (*to, *cc, *bcc)]
    try:
        refused, _ = await aiosmtplib.send(
            message,
            sender=sender[0][1],
            recipients=recipients,
            hostname=host,
            port=port,
            use_tls=secure,
            start_tls=False if secure else None,
            username=to_display_string(auth.get("user")) or None,
            password=to_display_string(auth.get("pass")) or None,
            timeout=SMTP_TIMEOUT_S,
        )
    except aiosmtplib.SMTPException as exc:
        raise _failure(exc) from exc
    except OSError as exc:
        raise MailFailed(str(exc) or type(exc).__name__, "ECONNECTION") from exc
    return {
        "messageId": str(message["Message-ID"]),  # a header object otherwise
        "accepted": [r for r in recipients if r not in refused],
        "rejected": [r for r in recipients if r in refused],
    }


def _addresses(value: Any) -> list[tuple[str, str]]:
    """(header form, bare address) of every address in a field: a string, or a
    list of strings (nested lists from templates are flattened)."""
    entries: list[str] = []

    def collect(v: Any) -> None:
        if isinstance(v, list):
            for item in v:
                collect(item)
        elif v is not None and v != "":
            entries.append(to_display_string(v))

    collect(value)
    found: list[tuple[str, str]] = []
    for name, address in getaddresses(entries):
        if address:
            found.append((formataddr((name, address)), address))
    return found


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return bool(value)


def _failure(exc: aiosmtplib.SMTPException) -> MailFailed:
    response_code = getattr(exc, "code", None)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        code = "EAUTH"
    elif isinstance(exc, aiosmtplib.SMTPTimeoutError):
        code = "ETIMEDOUT"
    elif isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPServerDisconnected):
        code = "ECONNECTION"
    elif isinstance(exc, aiosmtplib.SMTPRecipientsRefused | aiosmtplib.SMTPSenderRefused):
        code = "EENVELOPE"
    else:
        code = "EMESSAGE"
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        response_code = exc.recipients[0].code
    message = str(exc) or type(exc).__name__
    return MailFailed(message, code, response_code if isinstance(response_code, int) else None)
