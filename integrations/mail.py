"""The mailer node's SMTP (aiosmtplib).

The server is reached as the request node reaches a URL: its name is resolved
once, every address is checked by the `OutboundPolicy` (RAYHOOK_REQUEST_ALLOW,
RAYHOOK_REQUEST_DENY_PRIVATE; link-local and metadata addresses always refused)
and the connection is made to a checked address, with TLS still checked against
the name. The AUTH password is sent only over TLS (from the first byte, or after
STARTTLS), unless the host is listed in RAYHOOK_REQUEST_ALLOW.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formataddr, formatdate, getaddresses, make_msgid
from typing import Any

import aiosmtplib

from engine.effects import Effects
from engine.jsvalues import to_display_string
from engine.nodes.mailer import MailFailed
from engine.settings import Settings
from integrations.outbound import AddressBlocked, GuardedBackend, HostNotFound, OutboundPolicy

#: Connecting and each SMTP command (nodemailer's defaults are longer).
SMTP_TIMEOUT_S = 30.0


class MailDelivery:
    """The `engine.effects.MailDelivery` port over aiosmtplib."""

    async def send(self, effects: Effects, config: Mapping[str, Any]) -> dict[str, Any]:
        return await send_mail(config, effects.settings)


async def send_mail(config: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
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
    user = to_display_string(auth.get("user")) or None
    password = to_display_string(auth.get("pass")) or None
    policy = OutboundPolicy.from_settings(settings)
    sock = await _connect(policy, host, port)
    smtp = aiosmtplib.SMTP(
        hostname=host,  # the TLS name; the socket is connected to a checked address
        sock=sock,
        use_tls=secure,
        start_tls=False if secure else None,  # plain: STARTTLS when offered
        timeout=SMTP_TIMEOUT_S,
    )
    try:
        await smtp.connect()
        if user is not None:
            if smtp.get_transport_info("sslcontext") is None and not _listed(policy, host, sock):
                raise MailFailed(
                    f"{host} offers no TLS: the password is not sent in clear; use secure: "
                    "true or a server with STARTTLS, or list the host in RAYHOOK_REQUEST_ALLOW",
                    "ETLS",
                )
            await smtp.login(user, password or "")
        refused, _ = await smtp.send_message(message, sender=sender[0][1], recipients=recipients)
    except aiosmtplib.SMTPException as exc:
        raise _failure(exc) from exc
    except OSError as exc:
        raise MailFailed(str(exc) or type(exc).__name__, "ECONNECTION") from exc
    finally:
        if smtp.is_connected:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()
        sock.close()
    return {
        "messageId": str(message["Message-ID"]),  # a header object otherwise
        "accepted": [r for r in recipients if r not in refused],
        "rejected": [r for r in recipients if r in refused],
    }


async def _connect(policy: OutboundPolicy, host: str, port: int) -> socket.socket:
    """A socket connected to an address of `host` the policy allows (every
    address the name resolves to is checked first, as for the request node)."""
    backend = GuardedBackend(policy)
    try:
        addresses = await backend.resolve(host, port, SMTP_TIMEOUT_S)
    except AddressBlocked as exc:
        message = str(exc).replace("request to", "connection to", 1)
        raise MailFailed(message, "ERR_ADDRESS_BLOCKED") from exc
    except HostNotFound as exc:
        raise MailFailed(str(exc), "ECONNECTION") from exc
    except OSError as exc:
        raise MailFailed(str(exc) or type(exc).__name__, "ECONNECTION") from exc
    loop = asyncio.get_running_loop()
    failure: BaseException | None = None
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (address, port)), SMTP_TIMEOUT_S)
            return sock
        except (OSError, TimeoutError) as exc:
            sock.close()
            failure = exc
    if isinstance(failure, TimeoutError):
        raise MailFailed(f"connecting to {host}:{port} timed out", "ETIMEDOUT")
    raise MailFailed(f"connecting to {host}:{port} failed: {failure}", "ECONNECTION")


def _listed(policy: OutboundPolicy, host: str, sock: socket.socket) -> bool:
    """Whether RAYHOOK_REQUEST_ALLOW names this host or the address it reached:
    only then may a password go out without TLS."""
    if policy.host_allowed(host):
        return True
    address = ipaddress.ip_address(sock.getpeername()[0].split("%")[0])
    return any(address in network for network in policy.networks)


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
