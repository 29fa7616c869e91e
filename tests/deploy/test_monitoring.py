"""The sample Grafana dashboard and the Prometheus alert rules: they parse (PromQL
included), every metric they read is one ingress/metrics.py exposes, every metric
it exposes is on the dashboard and in docs/deploy.md, and the alerts of SPEC §9
(history down, history queue growing, refusals, Redis memory) agree with the code
and the Kubernetes settings."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
_NAME = re.compile(r"\brayhook_[a-z_]+")


def counter_families() -> set[str]:
    """Counters /metrics builds from a Redis hash the actors add to
    (`_counters("rayhook_history", ..., <hash "history">)` → one family per field the
    actors count, e.g. `metrics.count("history", "moved", n)`)."""
    metrics = (ROOT / "ingress" / "metrics.py").read_text()
    actors = "\n".join(p.read_text() for p in (ROOT / "actors").glob("*.py"))
    families = set()
    for prefix in re.findall(r'_counters\(\s*"(rayhook_[a-z_]+)"', metrics):
        hash_name = prefix.removeprefix("rayhook_")
        for field in re.findall(rf'metrics\.count\(\s*"{hash_name}",\s*"([a-z_]+)"', actors):
            families.add(f"{prefix}_{field}")
    return families


def families() -> set[str]:
    """The metric families /metrics serves."""
    text = (ROOT / "ingress" / "metrics.py").read_text()
    prefixes = set(re.findall(r'_counters\(\s*"(rayhook_[a-z_]+)"', text))
    return (set(re.findall(r'"(rayhook_[a-z_]+)"', text)) - prefixes) | counter_families()


def exposed() -> set[str]:
    """Metric names /metrics serves (families and their sample suffixes)."""
    names = set()
    for family in families():
        names |= {family, f"{family}_total", f"{family}_bucket", f"{family}_count", f"{family}_sum"}
    return names


def alerts() -> list[dict[str, Any]]:
    rules = yaml.safe_load((MONITORING / "prometheus-rules.yaml").read_text())
    return [r for g in rules["groups"] for r in g["rules"]]


def alert(name: str) -> dict[str, Any]:
    (found,) = [a for a in alerts() if a["alert"] == name]
    return found


def dashboard() -> dict[str, Any]:
    return json.loads((MONITORING / "grafana-dashboard.json").read_text())


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]


def test_extraction_finds_the_history_counters() -> None:
    assert {"rayhook_history_moved", "rayhook_history_pruned"} <= counter_families()
    assert "rayhook_history" not in families()
    assert {"rayhook_webhook_refused", "rayhook_history_up", "rayhook_redis_memory_max_bytes"} <= (
        families()
    )


def test_alert_rules_parse_and_read_exposed_metrics() -> None:
    names = {a["alert"] for a in alerts()}
    assert {"RayhookInboxLagGrowing", "RayhookWebhook5xxRate", "RayhookExecutionsFailing"} <= names
    for rule in alerts():
        assert rule["expr"].strip() and rule["annotations"]["summary"]
        for name in _NAME.findall(rule["expr"]):
            assert name in exposed(), f"{rule['alert']} reads {name}, which /metrics lacks"


def test_dashboard_parses_and_reads_exposed_metrics() -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 8
    for expr in exprs:
        for name in _NAME.findall(expr):
            assert name in exposed(), f"the dashboard reads {name}, which /metrics lacks"


def test_the_scrape_job_sends_the_metrics_token_and_keeps_the_ingress_pods() -> None:
    """Per-workflow series need the token (ingress/metrics.py); the job name is
    the one the RayhookNotReady alert reads."""
    (job,) = yaml.safe_load((MONITORING / "prometheus-scrape.yaml").read_text())
    assert job["job_name"] == "rayhook"
    assert job["authorization"]["type"] == "Bearer"
    assert job["authorization"]["credentials_file"].endswith("RAYHOOK_METRICS_TOKEN")
    rules = yaml.safe_load((MONITORING / "prometheus-rules.yaml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert any('job="rayhook"' in e for e in exprs)


@pytest.mark.parametrize("where", ["alerts", "dashboard"])
def test_every_query_is_valid_promql(where: str) -> None:
    exprs = [a["expr"] for a in alerts()] if where == "alerts" else dashboard_exprs()
    for expr in exprs:
        try:
            promql_parser.parse(expr)
        except ValueError as exc:
            pytest.fail(f"{where}: {expr!r} is not PromQL: {exc}")


def test_the_promql_check_rejects_a_broken_query() -> None:
    with pytest.raises(ValueError):
        promql_parser.parse("max(rate(rayhook_history_moved_total[1m])")


def test_every_exposed_metric_is_on_the_dashboard_and_in_the_runbook() -> None:
    graphed = {name for expr in dashboard_exprs() for name in _NAME.findall(expr)}
    runbook = (ROOT / "docs" / "deploy.md").read_text()
    for family in sorted(families()):
        samples = {family, f"{family}_total", f"{family}_bucket"}
        assert samples & graphed, f"no dashboard panel shows {family}"
        assert family in runbook, f"docs/deploy.md does not describe {family}"


def test_dashboard_panels_have_unique_ids_and_do_not_overlap() -> None:
    panels = dashboard()["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], int] = {}
    for p in panels:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, f"panel {p['id']} is wider than the grid"
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panels {cells[(x, y)]} and {p['id']} overlap"
                cells[(x, y)] = p["id"]


def test_history_and_backpressure_alerts_exist() -> None:
    """SPEC §9 on Kubernetes: the history database down, final executions not moving
    out of Redis, webhooks refused, Redis filling up or without a limit."""
    down = alert("RayhookHistoryDown")
    assert "rayhook_history_up" in down["expr"] and down["labels"]["severity"] == "critical"
    growing = alert("RayhookHistoryQueueGrowing")["expr"]
    assert "rayhook_history_queue_oldest_seconds" in growing
    assert "rayhook_history_queue" in growing.replace("rayhook_history_queue_oldest_seconds", "")
    assert "rayhook_webhook_refused_total" in alert("RayhookWebhooksRefused")["expr"]
    assert "rayhook_redis_memory_used_bytes" in alert("RayhookRedisMemoryHigh")["expr"]
    assert "rayhook_redis_memory_max_bytes" in alert("RayhookRedisWithoutMaxmemory")["expr"]


def test_refusal_alert_names_causes_the_ingress_gives() -> None:
    causes = set(re.findall(r'cause="([a-z_]+)"', (ROOT / "ingress" / "refusals.py").read_text()))
    assert {"redis_memory", "backlog"} <= causes
    selector = re.search(r'reason=~"([^"]+)"', alert("RayhookWebhooksRefused")["expr"])
    assert selector, "the alert selects its causes"
    assert set(selector.group(1).split("|")) <= causes


def test_redis_memory_alert_fires_below_the_refusal_watermark() -> None:
    """The warning comes before async webhooks are refused."""
    configmap = yaml.safe_load((ROOT / "deploy" / "kubernetes" / "configmap.yaml").read_text())
    watermark = float(configmap["data"]["RAYHOOK_REDIS_HIGH_WATERMARK"])
    threshold = re.search(r">\s*([0-9.]+)\s*$", alert("RayhookRedisMemoryHigh")["expr"].strip())
    assert threshold, "the alert compares with a share of maxmemory"
    assert 0 < float(threshold.group(1)) < watermark
