"""engine/redaction.py and the masking log formatter (issue 10, finding 6): an
`$env` value is masked in whatever is stored or logged, the run keeps it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import msgspec
import pytest

from engine.logs import configure
from engine.records import Execution, Job
from engine.redaction import MASK, SecretMask

SECRET = 'sk_live_"quoted"\\x'
NOW = datetime.now(UTC)


def job(result: object, log: str | None = None) -> Job:
    return Job(
        id="e-1",
        executionId="e",
        nodeKey="n",
        nodeType="request",
        status=1,
        result=result,
        log=log,
        startedAt=NOW,
        updatedAt=NOW,
    )


def test_a_secret_is_masked_in_every_string_of_a_result_keys_too() -> None:
    mask = SecretMask([SECRET, "short"])
    stored = mask.job(
        job(
            {"headers": {"authorization": f"Bearer {SECRET}"}, SECRET: [1, f"a{SECRET}b"]},
            log=f"[log] {SECRET}",
        )
    )
    assert stored.result == {
        "headers": {"authorization": f"Bearer {MASK}"},
        MASK: [1, f"a{MASK}b"],
    }
    assert stored.log == f"[log] {MASK}"


def test_what_holds_no_secret_is_stored_as_it_is() -> None:
    mask = SecretMask([SECRET])
    plain = job({"a": [1, "two"]}, log="fine")
    assert mask.job(plain) is plain
    assert SecretMask([]).job(plain) is plain
    assert not SecretMask(["true", "443"])  # too short to be told from ordinary text


def test_an_execution_is_stored_with_its_context_output_and_error_masked() -> None:
    mask = SecretMask([SECRET])
    execution = Execution(
        id="e",
        key="k",
        workflowId=1,
        context={"body": {"token": SECRET}},
        output={"echo": SECRET},
        error=f"internal error: {SECRET}",
        createdAt=NOW,
    )
    stored = mask.execution(execution)
    assert stored.context == {"body": {"token": MASK}}
    assert stored.output == {"echo": MASK}
    assert stored.error == f"internal error: {MASK}"
    assert execution.context == {"body": {"token": SECRET}}  # the run's own copy


def test_found_in_tells_whether_json_text_holds_a_secret_as_json_escapes_it() -> None:
    """The recorder encodes an execution once and walks it only when its JSON
    holds a secret: the search must see the secret through JSON's escaping."""
    mask = SecretMask([SECRET])
    execution = Execution(
        id="e", key="k", workflowId=1, context={"body": {"t": SECRET}}, createdAt=NOW
    )
    assert mask.found_in(msgspec.json.encode(execution))
    assert not mask.found_in(msgspec.json.encode({"body": {"t": "sk_live_other"}}))
    assert not SecretMask([]).found_in(msgspec.json.encode(execution))


def test_log_lines_mask_the_env_values(capsys: pytest.CaptureFixture[str]) -> None:
    configure(level="info", fmt="json", secrets=[SECRET])
    try:
        logging.getLogger("rayhook.test").error("failed with %s", SECRET)
    finally:
        configure(level="info", fmt="text", secrets=[])
    line = capsys.readouterr().err
    assert "failed with" in line and "sk_live" not in line and MASK in line
