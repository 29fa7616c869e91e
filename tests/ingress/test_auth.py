"""ingress.auth: webhook Basic authentication and the admin bearer token."""

from __future__ import annotations

from base64 import b64encode

import pytest

from engine.templates import compile_template
from engine.trigger import BasicCredentials
from ingress.auth import BASIC_CHALLENGE, basic_allows, basic_matches, bearer_matches

CREDENTIALS = (b"user", b"p:ss")


def basic(raw: bytes, scheme: str = "Basic") -> str:
    return f"{scheme} {b64encode(raw).decode()}"


# -- basic_matches -----------------------------------------------------------------


def test_basic_right_credentials_match():
    assert basic_matches(basic(b"user:p:ss"), CREDENTIALS) is True


def test_basic_scheme_is_case_insensitive():
    assert basic_matches(basic(b"user:p:ss", "basic"), CREDENTIALS) is True
    assert basic_matches(basic(b"user:p:ss", "BASIC"), CREDENTIALS) is True


def test_basic_extra_spaces_before_token_are_tolerated():
    assert basic_matches("Basic   " + b64encode(b"user:p:ss").decode(), CREDENTIALS) is True


def test_basic_wrong_password_does_not_match():
    assert basic_matches(basic(b"user:wrong"), CREDENTIALS) is False


def test_basic_password_prefix_does_not_match():
    assert basic_matches(basic(b"user:p"), CREDENTIALS) is False


def test_basic_wrong_user_does_not_match():
    assert basic_matches(basic(b"other:p:ss"), CREDENTIALS) is False


def test_basic_user_is_case_sensitive():
    assert basic_matches(basic(b"USER:p:ss"), CREDENTIALS) is False


@pytest.mark.parametrize("header", [None, ""])
def test_basic_missing_header_does_not_match(header):
    assert basic_matches(header, CREDENTIALS) is False


@pytest.mark.parametrize(
    "header",
    [
        "Bearer " + b64encode(b"user:p:ss").decode(),
        "Digest " + b64encode(b"user:p:ss").decode(),
        b64encode(b"user:p:ss").decode(),
        "Basic",
    ],
)
def test_basic_other_scheme_does_not_match(header):
    assert basic_matches(header, CREDENTIALS) is False


@pytest.mark.parametrize(
    "header",
    ["Basic !!!", "Basic dXNlcjpwOnN", "Basic ü", "Basic " + "a" * 5],
)
def test_basic_bad_base64_does_not_match(header):
    assert basic_matches(header, CREDENTIALS) is False


def test_basic_without_colon_does_not_match():
    assert basic_matches(basic(b"userpss"), CREDENTIALS) is False
    # even when user + "" would equal the configured pair
    assert basic_matches(basic(b"user"), (b"user", b"")) is False


def test_basic_empty_password_matches_when_configured_empty():
    assert basic_matches(basic(b"user:"), (b"user", b"")) is True


def test_basic_utf8_credentials():
    creds = ("jürgen".encode(), "pässword".encode())
    assert basic_matches(basic("jürgen:pässword".encode()), creds) is True
    assert basic_matches(basic("jurgen:pässword".encode()), creds) is False


def test_basic_password_from_env_matches_the_variable():
    credentials = BasicCredentials(b"user", compile_template("{{$env.PW}}"))
    assert basic_allows(basic(b"user:p:ss"), credentials, {"PW": "p:ss"}) is True
    assert basic_allows(basic(b"user:other"), credentials, {"PW": "p:ss"}) is False


@pytest.mark.parametrize("env", [{}, {"PW": ""}])
def test_basic_password_from_an_unset_env_lets_nobody_in(env, caplog):
    credentials = BasicCredentials(b"user", compile_template("{{$env.PW}}"))
    assert basic_allows(basic(b"user:"), credentials, env) is False
    assert "not configured" in caplog.text


def test_basic_challenge_names_the_realm():
    assert BASIC_CHALLENGE == 'Basic realm="rayhook"'


# -- bearer_matches -----------------------------------------------------------------


def test_bearer_right_token_matches():
    assert bearer_matches("Bearer abc123", "abc123") is True


def test_bearer_scheme_is_case_insensitive():
    assert bearer_matches("bearer abc123", "abc123") is True


def test_bearer_surrounding_spaces_are_tolerated():
    assert bearer_matches("Bearer  abc123 ", "abc123") is True


@pytest.mark.parametrize("header", ["Bearer abc124", "Bearer abc12", "Bearer abc1234", "Bearer "])
def test_bearer_wrong_token_does_not_match(header):
    assert bearer_matches(header, "abc123") is False


@pytest.mark.parametrize("header", [None, "", "Basic abc123", "abc123", "Token abc123"])
def test_bearer_missing_or_other_scheme_does_not_match(header):
    assert bearer_matches(header, "abc123") is False


@pytest.mark.parametrize("token", [None, ""])
def test_bearer_without_configured_token_never_matches(token):
    assert bearer_matches("Bearer ", token) is False
    assert bearer_matches("Bearer abc", token) is False


def test_bearer_non_ascii_header_does_not_match_or_raise():
    assert bearer_matches("Bearer ü", "abc") is False
