"""The sample Grafana dashboard and the Prometheus alert rules: they parse, and
every metric they read is one ingress/metrics.py exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
_NAME = re.compile(r"\brayhook_[a-z_]+")


def exposed() -> set[str]:
    """Metric names /metrics serves (families and their sample suffixes)."""
    text = (ROOT / "ingress" / "metrics.py").read_text()
    families = set(re.findall(r'"(rayhook_[a-z_]+)"', text))
    names = set()
    for family in families:
        names |= {family, f"{family}_total", f"{family}_bucket", f"{family}_count", f"{family}_sum"}
    return names


def test_alert_rules_parse_and_read_exposed_metrics() -> None:
    rules = yaml.safe_load((MONITORING / "prometheus-rules.yaml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    assert {"RayhookInboxLagGrowing", "RayhookWebhook5xxRate", "RayhookExecutionsFailing"} <= {
        a["alert"] for a in alerts
    }
    for alert in alerts:
        assert alert["expr"].strip() and alert["annotations"]["summary"]
        for name in _NAME.findall(alert["expr"]):
            assert name in exposed(), f"{alert['alert']} reads {name}, which /metrics lacks"


def test_dashboard_parses_and_reads_exposed_metrics() -> None:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
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
