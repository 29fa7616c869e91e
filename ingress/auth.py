"""Credential checks: webhook Basic auth and the admin bearer token, both
compared in constant time."""

from __future__ import annotations

import binascii
import hmac
import logging
from base64 import b64decode
from collections.abc import Mapping

from engine.trigger import BasicCredentials

log = logging.getLogger("rayhook.auth")

BASIC_CHALLENGE = 'Basic realm="rayhook"'
BEARER_CHALLENGE = 'Bearer realm="rayhook-admin"'


def basic_allows(header: str | None, credentials: BasicCredentials, env: Mapping[str, str]) -> bool:
    """`basic_matches` with the workflow's password, read from `$env` if given so."""
    password = credentials.password_value(env)
    if password is None:
        log.error("basic-auth password is not configured (the $env variable is empty or unset)")
        return False
    return basic_matches(header, (credentials.username, password))


def basic_matches(header: str | None, credentials: tuple[bytes, bytes]) -> bool:
    if not header or header[:6].lower() != "basic ":
        return False
    try:
        decoded = b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    user, sep, password = decoded.partition(b":")
    # Both comparisons always run, so timing tells nothing about which failed.
    user_ok = hmac.compare_digest(user, credentials[0])
    password_ok = hmac.compare_digest(password, credentials[1])
    return bool(sep) and user_ok and password_ok


def bearer_matches(header: str | None, token: str | None) -> bool:
    if not token or not header or header[:7].lower() != "bearer ":
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())
