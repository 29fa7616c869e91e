"""The `rayhook` CLI against a running server: apply (create, update in place,
revision + enable), list, executions, parse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.e2e.conftest import Server

ROOT = Path(__file__).resolve().parents[2]


def rayhook(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy.cli", *args, "--url", server.url, "--token", server.token],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_apply_creates_then_updates_in_place_then_revises(server: Server, tmp_path: Path) -> None:
    definition = yaml.safe_load((ROOT / "examples/paid-or-not.yaml").read_text())
    definition["key"] = f"cli{tmp_path.name[-8:]}".replace("_", "-")
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(definition))

    first = rayhook(server, "apply", "-f", str(path), "--json")
    assert first.returncode == 0, first.stderr
    v1 = json.loads(first.stdout)[0]
    server.created.append(v1["id"])
    assert v1["enabled"] and v1["key"] == definition["key"]

    definition["title"] = "edited before any run"
    path.write_text(yaml.safe_dump(definition))
    second = json.loads(rayhook(server, "apply", "-f", str(path), "--json").stdout)[0]
    assert second["id"] == v1["id"] and second["title"] == "edited before any run"

    assert server.hook(definition["key"], {"status": "paid", "order": "1"}).status_code == 200
    definition["title"] = "after a run"
    path.write_text(yaml.safe_dump(definition))
    third = json.loads(rayhook(server, "apply", "-f", str(path), "--json").stdout)[0]
    server.created.append(third["id"])
    assert third["id"] != v1["id"] and third["enabled"] and third["title"] == "after a run"
    old = server.admin.get("/api/workflows:get", params={"filterByTk": v1["id"]}).json()["data"]
    assert old["enabled"] is False

    listing = rayhook(server, "list", "--key", definition["key"])
    assert listing.returncode == 0 and definition["key"] in listing.stdout
    executions = rayhook(server, "executions", definition["key"])
    assert executions.returncode == 0 and "1 executions" in executions.stdout


def test_apply_reports_validation_errors_without_a_server_round_trip(
    server: Server, tmp_path: Path
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(
            {"nodes": [{"key": "a", "type": "end", "config": {"endStatus": 1}}], "colour": "red"}
        )
    )
    result = rayhook(server, "apply", "-f", str(path))
    assert result.returncode == 1
    assert "colour" in result.stderr


def test_apply_reports_server_side_errors(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("sync: false\nnodes:\n  - {key: r, type: response}\n")
    result = rayhook(server, "apply", "-f", str(path))
    assert result.returncode == 1
    assert 'node "r" (response)' in result.stderr


def test_wrong_token_is_reported(server: Server, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "deploy.cli", "list", "--url", server.url, "--token", "wrong"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 1 and "401" in result.stderr


def test_parse_prints_paths() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "deploy.cli", "parse", "?query[0][a]=1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.stdout.split() == ["query", "query[0]", "query[0].a"]


def test_replay_prints_the_new_execution(server: Server) -> None:
    version = server.create(
        {
            "sync": True,
            "enabled": True,
            "nodes": [{"key": "o", "type": "output", "config": {"value": "{{$context.body.n}}"}}],
        }
    )
    first = server.hook(version["key"], {"n": 3}).headers["x-rayhook-execution"]
    result = rayhook(server, "replay", first)
    assert result.returncode == 0, result.stderr
    new_id, status = result.stdout.split()[:2]
    assert new_id != first and status == "RESOLVED"
    assert f"replay of {first}" in result.stdout
