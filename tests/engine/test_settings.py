"""engine/settings.py: the caps of issue 10 read from the environment, with
their defaults, and a clear error for a value that is not one."""

from __future__ import annotations

import pytest

from engine.settings import DEFAULT_REDACTED_HEADERS, Settings


def test_the_caps_have_safe_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.script_sandbox == "process"
    assert settings.script_sandboxes == 4 and settings.script_share == 3
    assert settings.script_heap_bytes == settings.script_buffer_bytes == 128 * 1024 * 1024
    assert settings.script_output_bytes == settings.max_result_bytes == 1024 * 1024
    assert settings.script_cpu_per_execution == 30.0
    assert settings.max_reply_header_bytes == 8192
    assert settings.max_reply_body_bytes == 1024 * 1024
    assert settings.redact_headers == DEFAULT_REDACTED_HEADERS
    assert {"x-api-key", "set-cookie", "stripe-signature", "svix-signature"} <= set(
        settings.redact_headers
    )
    assert settings.metrics_token is None


def test_the_caps_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "RAYHOOK_SCRIPT_SANDBOX": "inline",
            "RAYHOOK_SCRIPT_SANDBOXES": "2",
            "RAYHOOK_SCRIPT_WORKFLOW_SLOTS": "5",
            "RAYHOOK_SCRIPT_HEAP_BYTES": "1000000",
            "RAYHOOK_SCRIPT_CPU_PER_EXECUTION": "1.5s",
            "RAYHOOK_MAX_RESULT_BYTES": "2048",
            "RAYHOOK_REDACT_HEADERS": "X-Custom-Token, x-other",
            "RAYHOOK_METRICS_TOKEN": "scrape-me",
        }
    )
    assert settings.script_sandbox == "inline"
    assert settings.script_share == 2  # never above the sandboxes there are
    assert settings.script_heap_bytes == 1_000_000
    assert settings.script_cpu_per_execution == 1.5
    assert settings.max_result_bytes == 2048
    # The SPEC's two stay redacted whatever the list says.
    assert settings.redact_headers == ("authorization", "cookie", "x-custom-token", "x-other")
    assert settings.metrics_token == "scrape-me"


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("RAYHOOK_SCRIPT_SANDBOX", "docker", "process, inline"),
        ("RAYHOOK_SCRIPT_HEAP_BYTES", "128MiB", "number of bytes"),
        ("RAYHOOK_MAX_REPLY_BODY_BYTES", "0", "number of bytes"),
        ("RAYHOOK_SCRIPT_CPU_PER_EXECUTION", "forever", "duration"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(name: str, value: str, words: str) -> None:
    with pytest.raises(ValueError) as info:
        Settings.from_env({name: value})
    assert name in str(info.value) and words in str(info.value)
