"""`rayhook bench` parts that need no server: the Python signer checked by the
providers' own libraries, the open-model arrival shapes, the saturation rule,
option checks, and the report page. (The engines against a real server, wrk's
Lua signer included, are in tests/e2e/test_bench.py.)"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy.bench.arrivals import Burst, Constant, Ramp
from deploy.bench.bodies import FORM_TYPE, JSON_TYPE, Bodies
from deploy.bench.command import add_arguments, plan
from deploy.bench.report import render
from deploy.bench.result import Result
from deploy.bench.signing import Signer
from deploy.bench.timeline import FAILED, Recorder
from deploy.bench.wrk import _lua_bytes
from engine.definition import SignatureConfig, WebhookConfig
from engine.trigger import compile_trigger
from ingress.signatures import verify

ROOT = Path(__file__).resolve().parents[2]
BODY = b'{"id": "evt_1", "amount": 1200}'
NOW = 1_700_000_000


def headers_of(signer: Signer, body: bytes = BODY, now: float = NOW) -> dict[str, str]:
    return dict(signer.headers(body, now))


# -- the signer, checked by each provider's library ------------------------------------


def test_stripe_signature_passes_stripes_own_check() -> None:
    import stripe

    header = headers_of(Signer.parse("stripe:whsec_abc"))["Stripe-Signature"]
    assert stripe.WebhookSignature.verify_header(BODY.decode(), header, "whsec_abc", tolerance=None)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(BODY.decode() + " ", header, "whsec_abc", None)


def test_slack_signature_passes_slack_sdks_check() -> None:
    from slack_sdk.signature import Clock, SignatureVerifier

    class Then(Clock):
        def now(self) -> float:
            return NOW + 5

    headers = headers_of(Signer.parse("slack:s3cret"), b"command=%2Fpay&text=1")
    assert SignatureVerifier("s3cret", Then()).is_valid_request(b"command=%2Fpay&text=1", headers)
    assert not SignatureVerifier("other", Then()).is_valid_request(
        b"command=%2Fpay&text=1", headers
    )


def test_standard_webhooks_signature_passes_the_svix_library_with_fresh_ids() -> None:
    from svix.webhooks import Webhook

    secret = "whsec_" + base64.b64encode(b"a-32-byte-key-for-the-bench-test").decode()
    signer = Signer.parse(f"standard-webhooks:{secret}")
    first, second = headers_of(signer, now=time.time()), headers_of(signer, now=time.time())
    Webhook(secret).verify(BODY, first)  # raises unless valid
    assert first["webhook-id"] != second["webhook-id"]


def test_github_signature_matches_githubs_documented_vector() -> None:
    # docs.github.com "Validating webhook deliveries"
    headers = headers_of(Signer.parse("github:It's a Secret to Everybody"), b"Hello, World!")
    assert headers == {
        "X-Hub-Signature-256": "sha256="
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    }


@pytest.mark.parametrize("scheme", ["stripe", "github", "hmac-sha256", "slack"])
def test_every_scheme_passes_rayhooks_own_verifier(scheme: str) -> None:
    config = {
        "scheme": scheme,
        "secret": "{{$env.S}}",
        "header": "X-Shop" if scheme == "hmac-sha256" else None,
    }
    signature = compile_trigger(WebhookConfig(signature=SignatureConfig(**config))).signature  # type: ignore[arg-type]
    assert signature is not None
    signer = Signer.parse(f"{scheme}:bench-secret", "X-Shop")
    sent = {name.lower(): value for name, value in signer.headers(BODY, NOW)}
    assert verify(signature, sent, BODY, {"S": "bench-secret"}, now=NOW + 1)
    assert not verify(signature, sent, BODY + b"x", {"S": "bench-secret"}, now=NOW + 1)


def test_the_hmac_header_defaults_to_x_signature() -> None:
    digest = hmac.new(b"k", BODY, hashlib.sha256).hexdigest()
    assert headers_of(Signer.parse("hmac-sha256:k")) == {"X-Signature": digest}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("md5:secret", "unknown scheme 'md5'"),
        ("stripe", "give the secret"),
        ("stripe:", "give the secret"),
        ("standard-webhooks:whsec_***", "base64 key"),
    ],
)
def test_bad_sign_options_name_the_fix(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Signer.parse(text)


def test_lua_literal_carries_any_bytes() -> None:
    assert _lua_bytes(b'a"\\\n\x00\xff1') == r'"\097\034\092\010\000\255\049"'


# -- arrivals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape",
    [Constant(50), Ramp(20, 200, 4), Ramp(200, 20, 4), Ramp(0, 100, 2), Burst(10, 60, 1, 1)],
)
def test_the_nth_request_is_due_when_the_count_reaches_n(shape) -> None:  # type: ignore[no-untyped-def]
    for n in (1, 2, 17, 40, 79):
        assert shape.due(shape.time_of(n)) == pytest.approx(n)


def test_burst_offers_base_then_peak_then_base() -> None:
    burst = Burst.within(10, 60, 1, 3)
    assert [burst.rate(t) for t in (0.5, 1.5, 2.5)] == [10, 60, 10]
    assert burst.due(3) == pytest.approx(80)


def test_bodies_are_json_or_form_by_their_first_character(tmp_path: Path) -> None:
    form = tmp_path / "ipn.form"
    form.write_bytes(b"txn={{seq}}&status=Completed\n")
    json_file = tmp_path / "b.json"
    json_file.write_bytes(b' {"n": {{seq}}}\n')
    bodies = Bodies.from_files([str(form), str(json_file)])
    assert bodies.next() == (b"txn=1&status=Completed", FORM_TYPE)
    assert bodies.next() == (b' {"n": 2}\n', JSON_TYPE)
    forced = Bodies.from_files([str(form)], "text/plain")
    assert forced.next()[1] == "text/plain"


# -- saturation ------------------------------------------------------------------------


def ramp_run(bad_from: float | None = None, slow_from: float | None = None) -> Recorder:
    """A 4 s ramp 20 -> 200/s whose replies turn 503 (or take 900 ms) from a time on."""
    ramp, recorder = Ramp(20, 200, 4), Recorder()
    n = 1
    while (when := ramp.time_of(n)) < 4:
        status = 503 if bad_from is not None and when >= bad_from else 200
        latency = 0.9 if slow_from is not None and when >= slow_from else 0.01
        recorder.record(when, when + latency, status)
        n += 1
    return recorder


def test_no_saturation_when_every_second_is_served() -> None:
    saturation = ramp_run().saturation(4, Ramp(20, 200, 4).due, None)
    assert saturation.rate is None and saturation.reason == "not reached up to 178/s"


def test_saturation_is_the_first_second_past_1_percent_non_2xx() -> None:
    saturation = ramp_run(bad_from=2.5).saturation(4, Ramp(20, 200, 4).due, None)
    assert (saturation.second, saturation.rate) == (2, pytest.approx(132.5))
    assert saturation.reason.startswith("non-2xx")


def test_saturation_by_the_p99_bound() -> None:
    recorder = ramp_run(slow_from=1.0)
    assert recorder.saturation(4, Ramp(20, 200, 4).due, None).rate is None
    saturation = recorder.saturation(4, Ramp(20, 200, 4).due, 500)
    assert saturation.second == 1 and saturation.reason == "p99 900 ms > 500 ms"


def test_one_bad_second_alone_is_not_saturation() -> None:
    ramp, recorder = Ramp(20, 200, 4), ramp_run()
    recorder.record(1.5, 1.6, FAILED)  # one blip in second 1, none after
    recorder.record(1.5, 1.6, FAILED)
    assert recorder.saturation(4, ramp.due, None).rate is None


# -- options -------------------------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["http://127.0.0.1:1/api/webhook:trigger/k", *argv])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--header", "NoColon"], "--header takes 'Name: value'"),
        (["--header", "Bad Name: x"], "--header takes 'Name: value'"),
        (["--header", "Content-Length: 5"], "set by the load generator"),
        (["--ramp", "10"], "--ramp takes START:END"),
        (["--ramp", "0:0"], "cannot both be 0"),
        (["--burst", "1:2"], "--burst takes BASE:PEAK:SECONDS"),
        (["--burst", "5:0:1"], "PEAK and SECONDS must be above 0"),
        (["--rate", "10", "--p99-bound", "5"], "--p99-bound applies to --ramp"),
        (["--ramp", "1:9", "--engine", "wrk"], "wrk runs closed loop only"),
        (["--engine", "wrk", "--report", "r.html"], "--report needs the python engine"),
    ],
)
def test_bad_options_name_the_fix(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan(parse(*argv))


def test_headers_and_the_body_content_type() -> None:
    chosen = plan(parse("--header", "X-A: 1 2", "--header", "content-type: text/plain"))
    assert chosen.headers == [("X-A", "1 2")] and chosen.content_type == "text/plain"
    assert plan(parse("--ramp", "5:50", "--report", "r.html")).engine == "python"


def test_a_bad_option_exits_2_with_the_message() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "deploy.cli", "bench", "http://127.0.0.1:1/x", "--sign", "md5:x"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert completed.returncode == 2 and "unknown scheme 'md5'" in completed.stderr


# -- report ----------------------------------------------------------------------------


def test_a_run_without_a_timeline_cannot_be_charted() -> None:
    result = Result(
        engine="wrk",
        mode="concurrency",
        target=4,
        duration=1,
        requests=1,
        errors=0,
        rps=1,
        p50_ms=1,
        p90_ms=1,
        p99_ms=1,
        max_ms=1,
        statuses={"200": 1},
    )
    with pytest.raises(ValueError, match="no timeline"):
        render(result, ["http://x"])


def test_report_escapes_what_it_shows_and_marks_saturation() -> None:
    recorder = ramp_run(bad_from=2.5)
    ramp = Ramp(20, 200, 4)
    result = Result(
        engine="python",
        mode="rate",
        target=200,
        duration=4,
        requests=440,
        errors=0,
        rps=110,
        p50_ms=1,
        p90_ms=1,
        p99_ms=1,
        max_ms=1,
        statuses={"200": 200, "503": 240},
        load=ramp.label(),
        timeline=recorder.timeline(4, ramp.due),
        saturation=recorder.saturation(4, ramp.due, None),
    )
    page = render(result, ["http://127.0.0.1/api/webhook:trigger/<script>"])
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count('class="marker"') == 4  # the saturation line on every chart
    assert "132/s at 2 s (non-2xx 54.1 % &gt; 1 %)" in page
