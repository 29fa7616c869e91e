"""`rayhook bench --sign SCHEME:SECRET`: each request signed as the provider
would sign it, with a fresh timestamp, so a workflow that checks signatures can
be load-tested. The same schemes are implemented in Lua for wrk (`lua/`);
both are checked against the servers' verifiers and the providers' libraries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import time
from dataclasses import dataclass, field

SCHEMES = ("stripe", "github", "standard-webhooks", "hmac-sha256", "slack")
#: The header `hmac-sha256` puts its hex digest in, unless --sign-header names another.
DEFAULT_HMAC_HEADER = "X-Signature"


@dataclass
class Signer:
    """Attributes: the scheme, the secret (for `standard-webhooks` a `whsec_`
    base64 key), the header `hmac-sha256` writes (`header`)."""

    scheme: str
    secret: str
    header: str = DEFAULT_HMAC_HEADER
    key: bytes = b""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"--sign: unknown scheme {self.scheme!r}; one of {', '.join(SCHEMES)}")
        if not self.secret:
            raise ValueError("--sign: give the secret after the scheme, e.g. stripe:whsec_...")
        if self.scheme == "standard-webhooks":
            text = self.secret.removeprefix("whsec_")
            try:
                self.key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
            except ValueError:
                self.key = b""
            if not self.key:
                raise ValueError("--sign standard-webhooks: the secret is a base64 key (whsec_...)")
        else:
            self.key = self.secret.encode()

    @classmethod
    def parse(cls, text: str, header: str | None = None) -> Signer:
        scheme, _, secret = text.partition(":")
        return cls(scheme, secret, header or DEFAULT_HMAC_HEADER)

    def headers(self, body: bytes, now: float | None = None) -> list[tuple[str, str]]:
        """The signature headers for one request with this body."""
        timestamp = str(int(time.time() if now is None else now))
        if self.scheme == "stripe":
            digest = self._hex(timestamp.encode() + b"." + body)
            return [("Stripe-Signature", f"t={timestamp},v1={digest}")]
        if self.scheme == "github":
            return [("X-Hub-Signature-256", "sha256=" + self._hex(body))]
        if self.scheme == "hmac-sha256":
            return [(self.header, self._hex(body))]
        if self.scheme == "slack":
            digest = self._hex(b"v0:" + timestamp.encode() + b":" + body)
            return [("X-Slack-Request-Timestamp", timestamp), ("X-Slack-Signature", "v0=" + digest)]
        message_id = f"msg_bench_{next(self._ids)}"
        signed = f"{message_id}.{timestamp}.".encode() + body
        mac = base64.b64encode(hmac.new(self.key, signed, hashlib.sha256).digest()).decode()
        return [
            ("webhook-id", message_id),
            ("webhook-timestamp", timestamp),
            ("webhook-signature", "v1," + mac),
        ]

    def _hex(self, data: bytes) -> str:
        return hmac.new(self.key, data, hashlib.sha256).hexdigest()
