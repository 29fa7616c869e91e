"""`mailer`: send an email over SMTP.

Config fields are NocoBase's (reference §5.17), all templated: `provider`
`{host, port (465), secure (true: TLS from the first byte; false: plain, upgraded
with STARTTLS when the server offers it), auth {user, pass}}`, `from`, `to`,
`cc`, `bcc` (lists of addresses; an entry may hold several, comma-separated, or
be a template giving a list), `subject`, `contentType` (`html` sends `html`,
`text` sends `text`) and `ignoreFail`. `attachments` are not supported.

Result: `{messageId, accepted, rejected}` (the recipients the server took and
refused). A failure gives `{message, code, responseCode?}` (codes as nodemailer's:
EAUTH, ECONNECTION, ETIMEDOUT, EENVELOPE, EMESSAGE, ETLS; ERR_ADDRESS_BLOCKED as
the request node's) with status FAILED, or RESOLVED with `ignoreFail`.

The `MailDelivery` integration (`integrations/mail.py`) sends it: the server is
reached as the request node reaches a URL (every address checked by the outbound
policy), and the AUTH password is sent only over TLS unless the host is listed
in RAYHOOK_REQUEST_ALLOW.
"""

from __future__ import annotations

from typing import Any

import msgspec

from engine.effects import EffectFailed
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


class MailFailed(EffectFailed):
    """An email that was not sent; `result` is the job result."""

    def __init__(self, message: str, code: str, response_code: int | None = None) -> None:
        result: dict[str, Any] = {"message": message, "code": code}
        if response_code is not None:
            result["responseCode"] = response_code
        super().__init__(result)


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
            job.result = await run.effects.integrations.mail.send(run.effects, config)
        except EffectFailed as failed:
            job.result = failed.result
            job.status = Status.RESOLVED if config.get("ignoreFail") else Status.FAILED
            return
        job.status = Status.RESOLVED
