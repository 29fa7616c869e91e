"""ingress.admin.passwords: a Basic-auth password in clear is never shown by the
admin API, and the mask sent back stands for the stored password."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from engine.definition import WebhookConfig, WorkflowVersion
from ingress.admin.passwords import PASSWORD_MASK, masked, unmasked
from ingress.errors import HTTPErrors


def config(password: str | None) -> WebhookConfig:
    auth = {"username": "u", "password": password} if password is not None else False
    return msgspec.convert({"basicAuthentication": auth}, WebhookConfig)


def version(password: str | None) -> WorkflowVersion:
    stamp = datetime.now(UTC)
    return WorkflowVersion(id=1, key="k", config=config(password), createdAt=stamp, updatedAt=stamp)


def password_of(value: WebhookConfig) -> str:
    auth = value.basicAuthentication
    assert not isinstance(auth, bool) and auth is not None
    return auth.password


def test_a_password_in_clear_is_shown_masked_and_the_stored_copy_is_kept():
    stored = version("s3cret")
    shown = masked(stored)
    assert password_of(shown.config) == PASSWORD_MASK
    assert password_of(stored.config) == "s3cret"


def test_an_env_password_is_shown_as_it_is():
    assert password_of(masked(version("{{$env.PW}}")).config) == "{{$env.PW}}"


def test_a_version_without_basic_auth_is_shown_as_it_is():
    assert masked(version(None)).config == config(None)


def test_the_mask_sent_back_stands_for_the_stored_password():
    assert password_of(unmasked(config(PASSWORD_MASK), config("s3cret"))) == "s3cret"


@pytest.mark.parametrize("password", ["new", "{{$env.PW}}"])
def test_another_password_replaces_the_stored_one(password):
    assert password_of(unmasked(config(password), config("s3cret"))) == password


@pytest.mark.parametrize("stored", [None, config(None)])
def test_the_mask_with_no_stored_password_is_a_400(stored):
    with pytest.raises(HTTPErrors) as caught:
        unmasked(config(PASSWORD_MASK), stored)
    assert caught.value.messages[0].startswith("config.basicAuthentication.password")
