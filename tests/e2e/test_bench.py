"""`rayhook bench` against a real running server (gunicorn, Ray, Redis): signed
requests in both engines (wrk's Lua and the asyncio client), extra headers,
form bodies, the open-model ramp with its saturation point, the burst, and the
HTML report. Loads are small (a few hundred requests) and last 1-4 s each."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import delete_namespace, kill_actors
from tests.e2e.conftest import Server, start_server

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "stripe": "whsec_stripe_bench_secret",
    "github": "github-bench-secret",
    "standard-webhooks": "whsec_" + base64.b64encode(b"standard-webhooks-bench-key-0123").decode(),
    "hmac-sha256": "shop-bench-secret",
    "slack": "8f742231b10e8888abcd99yyyzzz85a5",
}
ENV_NAMES = {scheme: scheme.upper().replace("-", "_") for scheme in SECRETS}


@pytest.fixture(scope="module")
def bench_server(
    ray_address: str, ray_driver: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server for the module, with a secret per scheme in its `$env`."""
    env = {f"RAYHOOK_ENV_{ENV_NAMES[s]}": secret for s, secret in SECRETS.items()}
    server = start_server(tmp_path_factory.mktemp("bench"), **env)
    yield server
    server.cleanup()
    server.stop()
    kill_actors(server.namespace)
    delete_namespace(server.namespace)


def bench(*args: str, timeout: float = 120) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-m", "deploy.cli", "bench", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout)


def url(server: Server, key: str) -> str:
    return f"{server.url}/api/webhook:trigger/{key}"


def signed_workflow(scheme: str, **config: Any) -> dict[str, Any]:
    signature = {"scheme": scheme, "secret": f"{{{{$env.{ENV_NAMES[scheme]}}}}}"}
    if scheme == "hmac-sha256":
        signature["header"] = "X-Signature"
    return {
        "sync": False,
        "enabled": True,
        "config": {"signature": signature, **config},
        "options": {"deleteExecutionOnStatus": [1]},
        "nodes": [{"key": "seen", "type": "variable", "config": {"value": "{{$context.body}}"}}],
    }


ENGINES = {
    "python": ["--engine", "python", "--rate", "40", "--duration", "1.5"],
    "wrk": ["--engine", "wrk", "--concurrency", "2", "--threads", "1", "--duration", "1"],
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("scheme", SECRETS)
def test_every_request_is_signed_in_both_engines(
    bench_server: Server, scheme: str, engine: str
) -> None:
    version = bench_server.create(signed_workflow(scheme))
    result = bench(
        url(bench_server, version["key"]), "--sign", f"{scheme}:{SECRETS[scheme]}", *ENGINES[engine]
    )
    assert result["requests"] > 10 and result["errors"] == 0
    assert result["statuses"] == {"200": result["requests"]}, result["statuses"]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_wrong_secret_is_refused_so_the_check_is_real(bench_server: Server, engine: str) -> None:
    version = bench_server.create(signed_workflow("stripe"))
    result = bench(
        url(bench_server, version["key"]), "--sign", "stripe:not-the-secret", *ENGINES[engine]
    )
    assert result["requests"] > 10
    assert result["statuses"] == {"401": result["requests"]}


@pytest.mark.parametrize("engine", ENGINES)
def test_headers_are_sent_with_every_request_in_both_engines(
    bench_server: Server, engine: str
) -> None:
    version = bench_server.create(
        {
            "sync": True,
            "enabled": True,
            "nodes": [
                {
                    "key": "tenant",
                    "type": "condition",
                    "config": {
                        "rejectOnFalse": False,
                        "calculation": {
                            "calculator": "equal",
                            "operands": ["{{$context.headers.x-tenant}}", "acme shop"],
                        },
                    },
                    "branches": {
                        "1": [{"key": "yes", "type": "response", "config": {"statusCode": 200}}],
                        "0": [{"key": "no", "type": "response", "config": {"statusCode": 403}}],
                    },
                }
            ],
        }
    )
    target = url(bench_server, version["key"])
    sent = bench(
        target, "--header", "X-Tenant: acme shop", "--header", "X-Other:1", *ENGINES[engine]
    )
    assert sent["statuses"] == {"200": sent["requests"]}
    missing = bench(target, *ENGINES[engine])
    assert missing["statuses"] == {"403": missing["requests"]}


@pytest.mark.parametrize("engine", ENGINES)
def test_a_form_body_file_is_sent_as_a_form_and_signed(
    bench_server: Server, engine: str, tmp_path: Path
) -> None:
    form = tmp_path / "ipn.form"
    form.write_text("txn_id=T{{seq}}&payment_status=Completed&item[0][sku]=A-1&mc_gross=19.95\n")
    workflow = signed_workflow("slack", request={"bodyTypes": ["form"], "rawBody": True})
    workflow["options"] = {}
    version = bench_server.create(workflow)
    result = bench(
        url(bench_server, version["key"]),
        "--sign",
        f"slack:{SECRETS['slack']}",
        "--body",
        str(form),
        *ENGINES[engine],
    )
    assert result["statuses"] == {"200": result["requests"]}
    listing = bench_server.admin.get(
        "/api/executions:list", params={"filter[workflowKey]": version["key"], "pageSize": 1}
    ).json()["data"]
    execution = bench_server.wait_final(listing[0]["id"])
    body = execution["context"]["body"]
    assert body["payment_status"] == "Completed" and body["item"] == [{"sku": "A-1"}]
    assert body["txn_id"].startswith("T") and body["txn_id"][1:].isdigit()
    assert execution["context"]["rawBody"] == f"txn_id={body['txn_id']}&payment_status=" + (
        "Completed&item[0][sku]=A-1&mc_gross=19.95"
    )


def test_ramp_reports_the_rate_where_the_server_saturated(bench_server: Server) -> None:
    # A workflow that refuses every event past the 150th: with the rate climbing
    # 20 -> 200/s over 4 s, request 150 is due 2.18 s in, so second 2 (132.5
    # requests due in it) is the first with more than 1 % non-2xx.
    version = bench_server.create(
        {
            "sync": True,
            "enabled": True,
            "nodes": [
                {
                    "key": "full",
                    "type": "condition",
                    "config": {
                        "rejectOnFalse": False,
                        "calculation": {
                            "calculator": "gt",
                            "operands": ["{{$context.body.n}}", 150],
                        },
                    },
                    "branches": {
                        "1": [{"key": "busy", "type": "response", "config": {"statusCode": 503}}],
                        "0": [{"key": "ok", "type": "response", "config": {"statusCode": 200}}],
                    },
                }
            ],
        }
    )
    body = Path(bench_server.log).parent / "n.json"
    body.write_text('{"n": {{seq}}}')
    result = bench(
        url(bench_server, version["key"]),
        "--ramp",
        "20:200",
        "--duration",
        "4",
        "--body",
        str(body),
    )
    saturation = result["saturation"]
    assert saturation["second"] == 2 and saturation["rate"] == pytest.approx(132.5)
    assert saturation["reason"].startswith("non-2xx")
    # Requests due in each second: 20 s + 22.5 s^2 between its ends.
    assert result["timeline"]["offered"] == pytest.approx([42.5, 87.5, 132.5, 177.5])
    assert result["requests"] == 440 and result["errors"] == 0
    assert result["statuses"] == {"200": 150, "503": 290}


def test_burst_and_report_with_the_server_backlog(bench_server: Server, tmp_path: Path) -> None:
    workflow = signed_workflow("github")
    workflow["options"] = {}  # executions kept: the loss check counts them
    version = bench_server.create(workflow)
    page = tmp_path / "run.html"
    result = bench(
        url(bench_server, version["key"]),
        "--burst",
        "10:60:1",
        "--duration",
        "3",
        "--sign",
        f"github:{SECRETS['github']}",
        "--report",
        str(page),
        "--check-loss",
        "--token",
        bench_server.token,
    )
    timeline = result["timeline"]
    assert timeline["offered"] == pytest.approx([10, 60, 10])  # the burst starts a third in
    assert result["requests"] == 80 and result["statuses"] == {"200": 80}
    assert result["loss"]["lost"] == 0
    assert timeline["server_backlog"], "the backlog was sampled during the run"
    html = page.read_text()
    assert html.startswith("<!doctype html>") and html.count("<svg") == 4
    for title in ("Throughput", "Latency percentiles", "Replies by status", "Backlog"):
        assert f">{title} (" in html
    assert "server: accepted, not final" in html and "burst 10→60/s for 1 s" in html
    # One self-contained file: nothing to fetch, nothing to run.
    for fetch in ("<script", "src=", "href=", "@import", "url("):
        assert fetch not in html
