"""The console (SPEC §10) in Chromium against a real stack: sign-in, the
workflows, executions appearing live and searched by a body field, one
execution's nodes, replay, a manual approval, a failure's error, the live
charts; each page at 1280 and 390 px, with a screenshot kept for review."""

from __future__ import annotations

import re
import secrets
import threading
import time
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.console.conftest import Console
from tests.e2e.conftest import Server


def orders(key: str) -> dict[str, Any]:
    """An async workflow with a condition: a big order takes the true branch."""
    return {
        "key": key,
        "title": "Orders",
        "type": "webhook",
        "sync": False,
        "enabled": True,
        "nodes": [
            {"key": "amount", "type": "variable", "config": {"value": "{{$context.body.amount}}"}},
            {
                "key": "big",
                "type": "condition",
                "title": "Big order?",
                "config": {
                    "rejectOnFalse": False,
                    "calculation": {
                        "calculator": "gt",
                        "operands": ["{{$jobsMapByNodeKey.amount}}", 100],
                    },
                },
                "branches": {
                    "1": [{"key": "flag", "type": "variable", "config": {"value": "review"}}],
                    "0": [{"key": "pass", "type": "variable", "config": {"value": "ship"}}],
                },
            },
            {
                "key": "out",
                "type": "output",
                "title": "Summary",
                "config": {
                    "value": {
                        "order": "{{$context.body.order.id}}",
                        "total": "{{$jobsMapByNodeKey.amount}}",
                    }
                },
            },
        ],
    }


def routing(key: str) -> dict[str, Any]:
    """Every kind of branch: multi-conditions, a loop inside one, a parallel."""

    def kind_is(value: str) -> dict[str, Any]:
        return {
            "title": value,
            "calculation": {"calculator": "equal", "operands": ["{{$context.body.kind}}", value]},
        }

    def variable(node_key: str, value: Any) -> dict[str, Any]:
        return {"key": node_key, "type": "variable", "config": {"value": value}}

    return {
        "key": key,
        "title": "Routing",
        "sync": False,
        "enabled": True,
        "nodes": [
            {
                "key": "kind",
                "type": "multi-conditions",
                "title": "Kind?",
                "config": {"conditions": [kind_is("order"), kind_is("refund")]},
                "branches": {
                    "1": [
                        {
                            "key": "lines",
                            "type": "loop",
                            "title": "Each line",
                            "config": {"target": "{{$context.body.items}}"},
                            "branches": {"0": [variable("line", "{{$scopes.lines.item.sku}}")]},
                        }
                    ],
                    "2": [variable("refund", "refund")],
                    "0": [variable("other", "other")],
                },
            },
            {
                "key": "fan",
                "type": "parallel",
                "title": "Notify",
                "config": {"mode": "all"},
                "branches": {"1": [variable("mail", "mail")], "2": [variable("chat", "chat")]},
            },
        ],
    }


def refunds(key: str) -> dict[str, Any]:
    return {
        "key": key,
        "title": "Refund approval",
        "sync": False,
        "enabled": True,
        "nodes": [
            {
                "key": "approve",
                "type": "manual",
                "title": "Approve refund",
                "config": {
                    "assignees": ["ann", "bob"],
                    "title": "Refund {{$context.body.amount}}?",
                },
            },
            {"key": "out", "type": "output", "config": {"value": "{{$jobsMapByNodeKey.approve}}"}},
        ],
    }


def charges(key: str) -> dict[str, Any]:
    return {
        "key": key,
        "title": "Charge card",
        "sync": False,
        "enabled": True,
        "nodes": [
            {
                "key": "charge",
                "type": "script",
                "title": "Charge",
                "config": {"content": "throw new Error('card declined: ' + 'insufficient funds');"},
            },
        ],
    }


@pytest.fixture(scope="module")
def workflows(stack: Server) -> dict[str, dict[str, Any]]:
    """The module's workflows, created once (keys unique to this run)."""
    suffix = secrets.token_hex(3)
    made = {
        name: stack.create(build(f"{name}-{suffix}"))
        for name, build in (
            ("orders", orders),
            ("refunds", refunds),
            ("charges", charges),
            ("routing", routing),
        )
    }
    return made


def send(stack: Server, key: str, body: Any, **kwargs: Any) -> str:
    reply = stack.hook(key, body, **kwargs)
    assert reply.status_code == 200, reply.text
    return reply.headers["x-rayhook-execution"]


def test_console_files_carry_a_strict_csp(stack: Server) -> None:
    page = stack.http.get("/console/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text), "inline script in index.html"
    module = stack.http.get("/console/main.js")
    assert module.headers["content-type"].startswith("text/javascript")
    assert module.headers["content-security-policy"] == csp
    assert stack.http.get("/console/nope.js").status_code == 404
    assert stack.http.get("/console/../ingress/app.py").status_code == 404
    assert "set-cookie" not in page.headers


def test_a_wrong_token_is_refused_and_the_right_one_signs_in(console: Console) -> None:
    console.allowed.append(re.compile(r"401"))
    console.sign_in("not-the-token")
    expect(console.page.get_by_role("alert")).to_contain_text("Wrong token")
    expect(console.page.get_by_role("navigation", name="Pages")).to_be_hidden()
    expect(console.page.get_by_role("button", name="Sign out")).to_be_hidden()
    console.screenshot("signin-refused")
    console.page.get_by_label("Admin token").fill(console.server.token)
    console.page.get_by_role("button", name="Sign in").click()
    expect(console.page.get_by_role("heading", name="Workflows")).to_be_visible()
    expect(console.page.get_by_role("navigation", name="Pages")).to_be_visible()
    stored = console.page.evaluate("sessionStorage.getItem('rayhook.adminToken')")
    assert stored == console.server.token
    assert console.page.context.cookies() == []
    # A token that stops working (a restart with another one) leads back to sign-in.
    console.page.evaluate("sessionStorage.setItem('rayhook.adminToken', 'stale')")
    console.open("#/executions")
    expect(console.page.get_by_role("alert")).to_contain_text("The token was refused (401)")
    expect(console.page.get_by_label("Admin token")).to_be_visible()
    console.sign_in()
    expect(console.page.get_by_role("heading", name="Workflows")).to_be_visible()
    console.page.get_by_role("button", name="Sign out").click()
    expect(console.page.get_by_label("Admin token")).to_be_visible()
    assert console.page.evaluate("sessionStorage.length") == 0


def test_the_workflows_page_shows_a_workflow(
    console: Console, workflows: dict[str, dict[str, Any]]
) -> None:
    key = workflows["orders"]["key"]
    # The page counts executions once, as it loads: wait until this one is recorded.
    console.server.wait_final(send(console.server, key, {"amount": 5, "order": {"id": "o-0"}}))
    console.sign_in()
    row = console.page.locator(f"tr[data-key='{key}']")
    expect(row).to_contain_text("Orders")
    expect(row).to_contain_text("async")
    expect(row).to_contain_text("enabled")
    expect(row.locator(".webhook-url")).to_have_text(
        f"{console.server.url}/api/webhook:trigger/{key}"
    )
    expect(row.locator(".count")).not_to_have_text("…")
    assert int(row.locator(".count").inner_text()) >= 1
    console.page.context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=console.server.url
    )
    row.get_by_role("button", name=re.compile("^Copy http")).click()
    expect(row.locator("button.copy")).to_have_text("Copied")
    copied = console.page.evaluate("navigator.clipboard.readText()")
    assert copied == f"{console.server.url}/api/webhook:trigger/{key}"
    row.get_by_role("button", name="Versions & definition").click()
    yaml = console.page.get_by_label("Definition as YAML")
    expect(yaml).to_contain_text(f"key: {key}")
    expect(yaml).to_contain_text('"1":')
    console.screenshot("workflows")
    row.get_by_role("button", name=f"Disable {key}").click()
    expect(console.page.locator(f"tr[data-key='{key}'] .pill")).to_have_text("disabled")
    assert console.server.hook(key, {}).status_code == 404
    console.page.get_by_role("button", name=f"Enable {key}").click()
    expect(console.page.locator(f"tr[data-key='{key}'] .pill")).to_have_text("enabled")


def test_a_pasted_yaml_definition_is_applied(console: Console) -> None:
    key = f"pasted-{secrets.token_hex(3)}"
    console.sign_in()
    area = console.page.get_by_label(re.compile("Paste a workflow definition"))
    area.fill(
        f"key: {key}\ntitle: Pasted\ntype: webhook\nsync: false\nenabled: true\nnodes:\n"
        "  - key: v\n    type: variable\n    config:\n      value: 1\n"
    )
    console.page.get_by_role("button", name="Apply").click()
    expect(console.page.locator("#apply-message")).to_contain_text(f"Applied {key}: version #")
    expect(console.page.locator(f"tr[data-key='{key}']")).to_contain_text("Pasted")
    # The same key again: a new version, current; the first can be enabled again.
    area.fill(area.input_value().replace("title: Pasted", "title: Pasted again"))
    console.page.get_by_role("button", name="Apply").click()
    row = console.page.locator(f"tr[data-key='{key}']")
    expect(row).to_contain_text("Pasted again")
    expect(row).to_contain_text("(2 in all)")
    versions = console.server.admin.get("/api/workflows:list", params={"filter[key]": key})
    first, second = sorted(v["id"] for v in versions.json()["data"])
    console.server.created.extend([first, second])
    row.get_by_role("button", name="Versions & definition").click()
    expect(console.page.get_by_label("Definition as YAML")).to_contain_text("title: Pasted again")
    console.page.locator("table.versions").get_by_role("button", name="Enable this version").click()
    expect(row).to_contain_text(f"#{first}")
    current = console.server.admin.get("/api/workflows:list", params={"filter[key]": key})
    assert [v["id"] for v in current.json()["data"] if v["current"]] == [first]
    # A bad definition says what is wrong (and its 400 is the only console error).
    console.allowed.append(re.compile(r"400"))
    area.fill(f"key: {key}\nsync: false\nnodes:\n  - key: v\n    type: nosuchnode\n")
    console.page.get_by_role("button", name="Apply").click()
    expect(console.page.locator("#apply-message .error")).to_contain_text("nosuchnode")


def test_the_definition_shown_as_yaml_applies_back_unchanged(
    console: Console, workflows: dict[str, dict[str, Any]]
) -> None:
    original = workflows["routing"]
    console.sign_in()
    row = console.page.locator(f"tr[data-key='{original['key']}']")
    row.get_by_role("button", name="Versions & definition").click()
    yaml = console.page.get_by_label("Definition as YAML")
    expect(yaml).to_contain_text("{{$scopes.lines.item.sku}}")
    console.page.get_by_label(re.compile("Paste a workflow definition")).fill(yaml.inner_text())
    console.page.get_by_role("button", name="Apply").click()
    expect(console.page.locator("#apply-message")).to_contain_text(f"Applied {original['key']}")
    versions = console.server.admin.get(
        "/api/workflows:list", params={"filter[key]": original["key"]}
    ).json()["data"]
    newest = max(versions, key=lambda v: v["id"])
    console.server.created.append(newest["id"])
    assert newest["id"] != original["id"] and newest["current"]
    for field in ("title", "sync", "config", "options", "nodes"):
        assert newest[field] == original[field], field


def test_webhooks_appear_live_and_a_body_field_finds_one(
    console: Console, workflows: dict[str, dict[str, Any]]
) -> None:
    key = workflows["orders"]["key"]
    console.sign_in()
    console.open(f"#/executions?workflow={key}")
    rows = console.page.locator("#executions tbody tr")
    expect(rows.first).to_be_visible()
    before = rows.count()
    tag = secrets.token_hex(3)
    ids = [
        send(console.server, key, {"amount": 50 * i, "order": {"id": f"{tag}-{i}"}})
        for i in range(3)
    ]
    expect(rows).to_have_count(before + 3, timeout=15_000)  # the live refresh
    expect(console.page.locator(f"tr[data-id='{ids[-1]}']")).to_be_visible()
    assert rows.first.get_attribute("data-id") == ids[-1]  # newest first
    console.page.get_by_label("Context path").fill("body.order.id")
    console.page.get_by_label("= value").fill(f"{tag}-1")
    console.page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-id", ids[1])
    expect(console.page.locator("#exec-summary")).to_contain_text("1 execution")
    assert "path=body.order.id" in console.page.url
    console.page.get_by_label("Status").select_option(label="failed")
    console.page.get_by_role("button", name="Search").click()
    expect(console.page.locator("#executions")).to_contain_text("No executions match")
    console.page.get_by_label("Status").select_option(label="resolved")
    console.page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    console.page.get_by_label("Created from").fill("2099-01-01T00:00:00")
    console.page.get_by_role("button", name="Search").click()
    expect(console.page.locator("#executions")).to_contain_text("No executions match")
    console.open(f"#/executions?workflow={key}")
    expect(rows.first).to_be_visible()
    console.screenshot("executions")


def test_every_failed_match_is_replayed_at_once(
    console: Console, workflows: dict[str, dict[str, Any]]
) -> None:
    key = workflows["charges"]["key"]
    for _ in range(2):
        console.server.wait_final(send(console.server, key, {"card": "0000"}))
    matching = console.server.admin.get(
        "/api/executions:list", params={"filter[workflowKey]": key, "filter[status]": "-2"}
    ).json()["meta"]["count"]
    console.sign_in()
    console.open("#/executions")
    expect(console.page.locator("#replay-all")).to_be_hidden()  # no filter: nothing to replay
    console.open(f"#/executions?workflow={key}&status=-2")
    expect(console.page.locator("#exec-summary")).to_contain_text(f"{matching} execution")
    button = console.page.get_by_role("button", name="Replay all matching")
    button.click()
    expect(button).to_have_text("Confirm: replay all matching")
    button.click()
    expect(console.page.locator("#bulk-message")).to_have_text(f"Replayed {matching} executions.")
    rows = console.page.locator("#executions tbody tr")
    expect(console.page.locator("#exec-summary")).to_contain_text(
        f"{2 * matching} executions", timeout=20_000
    )  # the replays fail too, and the live list shows them
    expect(rows.first.locator("td[data-label='Note']")).to_contain_text("replay of")
    console.page.get_by_label("Retries").select_option(label="Exhausted (retries used up)")
    console.page.get_by_role("button", name="Search").click()
    expect(console.page.locator("#executions")).to_contain_text("No executions match")
    assert "exhausted=true" in console.page.url


def test_executions_page_by_page(console: Console, workflows: dict[str, dict[str, Any]]) -> None:
    key = workflows["orders"]["key"]
    for i in range(21):
        send(console.server, key, {"amount": i, "order": {"id": f"page-{i}"}})
    console.sign_in()
    console.open(f"#/executions?workflow={key}")
    rows = console.page.locator("#executions tbody tr")
    expect(rows).to_have_count(20)
    expect(console.page.locator("#exec-summary")).to_contain_text("page 1 of")
    newest = rows.first.get_attribute("data-id")
    console.page.get_by_role("link", name="Older →").click()
    expect(console.page.locator("#exec-summary")).to_contain_text("page 2 of")
    expect(rows.first).not_to_have_attribute("data-id", newest or "")
    assert (rows.first.get_attribute("data-id") or "") < (newest or "")
    console.page.get_by_role("link", name="← Newer").click()
    expect(rows.first).to_have_attribute("data-id", newest or "")


def test_an_execution_shows_its_nodes_and_replays(
    console: Console, workflows: dict[str, dict[str, Any]]
) -> None:
    key = workflows["orders"]["key"]
    execution_id = send(
        console.server,
        key,
        {"amount": 250, "order": {"id": "o-big"}},
        headers={"Authorization": "Bearer s3cret"},
    )
    console.server.wait_final(execution_id)
    console.sign_in()
    console.open(f"#/execution/{execution_id}")
    expect(console.page.locator("#execution-head .badge")).to_have_text("resolved")
    graph = console.page.get_by_role("group", name="Node graph")
    expect(graph.locator("[data-node='flag']")).to_have_class(re.compile("st-resolved"))
    expect(graph.locator("[data-node='pass']")).to_have_class(re.compile("st-not-run"))
    expect(graph.locator(".branch-label")).to_have_text(["true", "false"])
    graph.locator("[data-node='out']").click()
    detail = console.page.locator("#node-detail")
    expect(detail.locator(".job-result")).to_contain_text('"order": "o-big"')
    expect(detail.locator(".job-result")).to_contain_text('"total": 250')
    expect(detail.locator(".node-config")).to_contain_text("{{$context.body.order.id}}")
    expect(detail).to_contain_text("Duration")
    context = console.page.get_by_label("Trigger context")
    expect(context).to_contain_text('"authorization": "[redacted]"')
    assert "s3cret" not in context.inner_text()
    expect(console.page.locator("#cancel")).to_be_disabled()
    console.screenshot("execution")
    console.page.get_by_role("button", name="Replay").click()
    expect(console.page.locator("#execution-head")).to_contain_text("Replay of")
    expect(console.page.locator("#execution-head .badge")).to_have_text("resolved")
    new_id = console.page.url.rsplit("/", 1)[1]
    assert new_id != execution_id
    assert console.server.execution(new_id)["replayOf"] == execution_id  # type: ignore[index]


def test_the_graph_draws_every_kind_of_branch(
    console: Console, workflows: dict[str, dict[str, Any]]
) -> None:
    items = [{"sku": "A"}, {"sku": "B"}, {"sku": "C"}]
    execution_id = send(
        console.server, workflows["routing"]["key"], {"kind": "order", "items": items}
    )
    console.server.wait_final(execution_id)
    console.sign_in()
    console.open(f"#/execution/{execution_id}")
    graph = console.page.get_by_role("group", name="Node graph")
    expect(graph.locator(".branch-label")).to_have_text(
        ["1: order", "each item", "2: refund", "otherwise", "branch 1", "branch 2"]
    )
    expect(graph.locator("[data-node='refund']")).to_have_class(re.compile("st-not-run"))
    expect(graph.locator("[data-node='chat']")).to_have_class(re.compile("st-resolved"))
    # three runs of the loop body ("\u00d7" is the multiplication sign)
    expect(graph.locator("[data-node='line'] .node-status")).to_have_text("resolved \u00d73")
    graph.locator("[data-node='line']").click()
    detail = console.page.locator("#node-detail")
    expect(detail.locator("section.job h3")).to_have_text(
        [re.compile(f"^Run {n}") for n in (1, 2, 3)]
    )
    expect(detail.locator(".job-result")).to_have_text(['"A"', '"B"', '"C"'])
    console.screenshot("branches")


def test_a_waiting_manual_node_is_approved_from_its_form(
    console: Console, workflows: dict[str, dict[str, Any]]
) -> None:
    key = workflows["refunds"]["key"]
    execution_id = send(console.server, key, {"amount": 40})
    console.sign_in()
    console.open(f"#/execution/{execution_id}")
    expect(console.page.locator("#waiting")).to_contain_text("Waiting for a person at node approve")
    console.page.get_by_role("button", name="Open its form").click()
    form = console.page.locator("form.manual")
    expect(form).to_contain_text("Refund 40?")
    form.get_by_label("Submit as").select_option("bob")
    form.get_by_label("Result (JSON)").fill('{"approved": true}')
    console.screenshot("manual")
    form.get_by_role("button", name="Approve").click()
    expect(console.page.locator("#execution-head .badge")).to_have_text("resolved", timeout=20_000)
    expect(console.page.get_by_label("Output")).to_contain_text('"approved": true')
    done = console.server.execution(execution_id)
    assert done is not None and done["status"] == 1


def test_a_waiting_execution_is_canceled_after_a_confirmation(
    console: Console, workflows: dict[str, dict[str, Any]]
) -> None:
    execution_id = send(console.server, workflows["refunds"]["key"], {"amount": 7})
    console.sign_in()
    console.open(f"#/execution/{execution_id}")
    expect(console.page.locator("#execution-head .badge")).to_have_text("started")
    cancel = console.page.locator("#cancel")
    cancel.click()
    expect(cancel).to_have_text("Confirm cancel")
    assert console.server.execution(execution_id)["status"] == 0  # type: ignore[index]
    cancel.click()
    expect(console.page.locator("#execution-head .badge")).to_have_text("aborted")
    expect(console.page.locator("#execution-head")).to_contain_text("manual_cancel")
    expect(cancel).to_be_disabled()
    done = console.server.execution(execution_id)
    assert done is not None and done["status"] == -3 and done["reason"] == "manual_cancel"


def test_a_failing_execution_shows_its_error(
    console: Console, workflows: dict[str, dict[str, Any]]
) -> None:
    key = workflows["charges"]["key"]
    # A body that would be markup if the page built HTML from strings.
    trap = "<img src=x onerror=window.pwned=1>"
    execution_id = send(console.server, key, {"card": trap})
    console.server.wait_final(execution_id)
    console.sign_in()
    console.open(f"#/execution/{execution_id}")
    # A script that throws ends its job (and the execution) ERROR.
    expect(console.page.locator("#execution-head .badge")).to_have_text("error")
    node = console.page.locator("[data-node='charge']")
    expect(node).to_have_class(re.compile("st-error"))
    expect(node).to_have_attribute("aria-pressed", "true")  # the failed node is opened
    expect(console.page.locator("#node-detail")).to_contain_text("Error")
    expect(console.page.locator("#node-detail .job-error")).to_have_text(
        "Error: card declined: insufficient funds"
    )
    expect(console.page.locator("#failed-node")).to_have_text(
        "Node Charge (charge) ended error: Error: card declined: insufficient funds"
    )
    expect(console.page.get_by_label("Trigger context")).to_contain_text(trap)
    assert console.page.evaluate("window.pwned") is None
    assert console.page.locator("main img").count() == 0
    console.screenshot("failed")


def test_the_live_page_charts_throughput_and_latency(
    console: Console, workflows: dict[str, dict[str, Any]]
) -> None:
    key = workflows["orders"]["key"]
    console.sign_in()
    console.open("#/live")
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            console.server.hook(key, {"amount": 1, "order": {"id": "live"}})
            time.sleep(0.05)

    sender = threading.Thread(target=load, daemon=True)
    sender.start()
    try:
        charts = console.page.locator("#charts figure")
        expect(charts).to_have_count(5, timeout=15_000)
        accepted = charts.nth(0)
        expect(accepted.locator("path")).to_have_count(1)
        expect(accepted.locator("strong")).to_have_text(
            re.compile(r"^[1-9][0-9.]*/s$"), timeout=15_000
        )
        expect(charts.nth(2).locator("strong").first).to_have_text(
            re.compile(r"\d+(\.\d+)? (ms|s)")
        )
        expect(charts.nth(4)).to_contain_text(key)
        time.sleep(4)  # a few more points on the charts
        console.screenshot("live")
    finally:
        stop.set()
        sender.join()


@pytest.mark.parametrize("console", [390], indirect=True)
def test_pages_fit_a_phone_screen_and_work_by_keyboard(
    console: Console, workflows: dict[str, dict[str, Any]]
) -> None:
    key = workflows["orders"]["key"]
    execution_id = send(console.server, key, {"amount": 500, "order": {"id": "phone"}})
    console.server.wait_final(execution_id)
    page = console.page
    console.open("#/workflows")
    field = page.get_by_label("Admin token")
    expect(field).to_be_focused()  # the sign-in page puts the cursor there
    page.keyboard.type(console.server.token)
    page.keyboard.press("Enter")
    expect(page.locator(f"tr[data-key='{key}']")).to_be_visible()
    for hash_path, name, ready in (
        ("#/workflows", "workflows-390", f"tr[data-key='{key}']"),
        (f"#/executions?workflow={key}", "executions-390", "#executions tbody tr"),
        (f"#/execution/{execution_id}", "execution-390", "[data-node='out']"),
        ("#/live", "live-390", "#charts figure"),
    ):
        console.open(hash_path)
        expect(page.locator(ready).first).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{hash_path} is {width} px wide"
        console.screenshot(name)
    # Keyboard only: the skip link jumps to the page's content, staying on it;
    # tab to a node of the graph, open it with Enter.
    console.open(f"#/execution/{execution_id}")
    page.reload()  # focus starts at the top of a freshly loaded page
    expect(page.locator("[data-node='out']")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    assert page.url.endswith(f"#/execution/{execution_id}")
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.node") == "out":
            break
    else:
        pytest.fail("the node 'out' is not reachable with Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#node-detail .job-result")).to_contain_text('"order": "phone"')
