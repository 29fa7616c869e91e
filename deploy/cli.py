"""The `rayhook` command (SPEC §1): up, apply, list, executions, replay, migrate,
parse, bench."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from deploy import http_clients
from engine.definition import DefinitionError, decode_definitions, load_document
from engine.durations import DurationError, parse_duration
from engine.paths import list_paths
from engine.status import NAMES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rayhook", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run the local stack in the foreground")
    up.add_argument("--host", default=os.environ.get("RAYHOOK_HOST", "127.0.0.1"))
    up.add_argument("--port", type=int, default=int(os.environ.get("RAYHOOK_PORT", "13000")))
    up.add_argument("--workers", type=int, default=int(os.environ.get("RAYHOOK_WORKERS", "2")))
    up.add_argument("--data-dir", default=os.environ.get("RAYHOOK_DATA_DIR", ".rayhook"))

    apply = commands.add_parser("apply", help="create or update workflows from a file")
    apply.add_argument("-f", "--file", required=True, help="JSON or YAML: one workflow or a list")
    _server_args(apply)

    listing = commands.add_parser("list", help="list workflow versions")
    listing.add_argument("--key", help="only versions of this workflow key")
    _server_args(listing)

    execs = commands.add_parser("executions", help="list executions of a workflow")
    execs.add_argument("key")
    execs.add_argument("--status", help="a status number, or null for queued")
    execs.add_argument("--page", type=int, default=1)
    execs.add_argument("--page-size", type=int, default=20)
    _server_args(execs)

    supervisors = commands.add_parser(
        "supervisors", help="the workflow supervisors awake, with their backlog"
    )
    _server_args(supervisors)

    replay = commands.add_parser(
        "replay",
        help="run executions' contexts again (current version): one by id, or every "
        "final one matching --workflow/--status/--since",
    )
    replay.add_argument("execution_id", nargs="?")
    replay.add_argument("--workflow", help="only executions of this workflow key")
    replay.add_argument(
        "--status", action="append", help="only executions in this status (repeatable)"
    )
    replay.add_argument("--since", help="only executions created since this long ago (1h, 2d)")
    _server_args(replay)

    migrate = commands.add_parser(
        "migrate", help="bring the history database's schema up to date (SPEC §9)"
    )
    migrate.add_argument(
        "--url", help="the history database (default: RAYHOOK_HISTORY_URL or the data folder's)"
    )
    migrate.add_argument("--data-dir", default=os.environ.get("RAYHOOK_DATA_DIR", ".rayhook"))

    parse = commands.add_parser("parse", help="paths of a sample URL query or JSON body")
    parse.add_argument("sample", help="a URL / query string, or JSON text")

    from deploy.bench.command import add_arguments

    add_arguments(commands.add_parser("bench", help="load-test a webhook URL (SPEC §8)"))

    args = parser.parse_args(argv)
    handler = {
        "up": _up,
        "apply": _apply,
        "list": _list,
        "executions": _executions,
        "parse": _parse,
        "bench": _bench,
        "replay": _replay,
        "migrate": _migrate,
        "supervisors": _supervisors,
    }
    try:
        return handler[args.command](args)
    except AdminError as exc:
        print(f"rayhook: {exc}", file=sys.stderr)
        return 1


def _server_args(parser: argparse.ArgumentParser) -> None:
    port = os.environ.get("RAYHOOK_PORT", "13000")
    parser.add_argument("--url", default=os.environ.get("RAYHOOK_URL", f"http://127.0.0.1:{port}"))
    parser.add_argument("--token", default=None, help="admin token (default: env or data dir)")
    parser.add_argument("--data-dir", default=os.environ.get("RAYHOOK_DATA_DIR", ".rayhook"))
    parser.add_argument("--json", action="store_true", help="print the raw JSON reply")


class AdminError(Exception):
    pass


class AdminClient:
    """A small client of the admin API (SPEC §6)."""

    def __init__(self, url: str, token: str) -> None:
        self.http = http_clients.client(url, token=token, timeout=60)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AdminClient:
        token = args.token or os.environ.get("RAYHOOK_ADMIN_TOKEN")
        token_file = Path(args.data_dir) / "admin-token"
        if not token and token_file.exists():
            token = token_file.read_text().strip()
        if not token:
            raise AdminError("no admin token: set RAYHOOK_ADMIN_TOKEN or pass --token")
        return cls(args.url, token)

    def call(self, method: str, action: str, *, params: Any = None, body: Any = None) -> Any:
        try:
            reply = self.http.request(method, f"/api/{action}", params=params, json=body)
        except httpx.HTTPError as exc:
            raise AdminError(f"cannot reach {self.http.base_url}: {exc}") from None
        try:
            payload = reply.json()
        except ValueError:
            payload = {"errors": [{"message": reply.text}]}
        if reply.status_code >= 400:
            messages = [e.get("message", "") for e in payload.get("errors", [])]
            raise AdminError(f"{action} → {reply.status_code}: " + "; ".join(messages))
        return payload


def _up(args: argparse.Namespace) -> int:
    from deploy.launcher import LocalStack, run

    stack = LocalStack(
        data_dir=Path(args.data_dir).resolve(), host=args.host, port=args.port, workers=args.workers
    )
    return run(stack)


def apply_definition(client: AdminClient, raw: dict[str, Any]) -> dict[str, Any]:
    """Create, or for an existing key: update its latest version in place if it
    never ran, else make a revision, update it and enable it. The reply
    envelope: `data` (the version) and `warnings`."""
    key = raw.get("key")
    if not key:
        return client.call("POST", "workflows:create", body={"enabled": True, **raw})
    versions = client.call(
        "GET", "workflows:list", params={"filter[key]": key, "paginate": "false"}
    )["data"]
    if not versions:
        return client.call("POST", "workflows:create", body={"enabled": True, **raw})
    target = next((v for v in versions if v["current"]), versions[0])
    patch = {
        k: v for k, v in raw.items() if k in ("title", "description", "config", "options", "nodes")
    }
    patch["enabled"] = raw.get("enabled", True)
    if target["executed"] > 0:
        target = client.call("POST", "workflows:revision", params={"filterByTk": target["id"]})[
            "data"
        ]
    return client.call("POST", "workflows:update", params={"filterByTk": target["id"]}, body=patch)


def _apply(args: argparse.Namespace) -> int:
    path = Path(args.file)
    text = path.read_text()
    try:
        definitions = decode_definitions(text, filename=path.name)  # fail early, locally
    except DefinitionError as exc:
        for message in exc.messages:
            print(f"rayhook: {path}: {message}", file=sys.stderr)
        return 1
    raws = load_document(text, filename=path.name)
    raws = raws if isinstance(raws, list) else [raws]
    client = AdminClient.from_args(args)
    results = []
    for raw, _definition in zip(raws, definitions, strict=True):
        applied = apply_definition(client, raw)
        version = applied["data"]
        results.append(version)
        for warning in applied.get("warnings") or []:
            print(f"rayhook: warning: {path}: {version['key']}: {warning}", file=sys.stderr)
        if not args.json:
            state = "enabled" if version["enabled"] else "disabled"
            print(f"{version['key']}  version {version['id']}  {state}  {version['webhookUrl']}")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def _list(args: argparse.Namespace) -> int:
    client = AdminClient.from_args(args)
    params = {"paginate": "false"}
    if args.key:
        params["filter[key]"] = args.key
    payload = client.call("GET", "workflows:list", params=params)
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    print(f"{'KEY':<14}{'VERSION':>8}  {'MODE':<6}{'STATE':<10}{'RUNS':>6}  TITLE")
    for v in payload["data"]:
        state = "enabled" if v["enabled"] else ("current" if v["current"] else "-")
        mode = "sync" if v["sync"] else "async"
        print(f"{v['key']:<14}{v['id']:>8}  {mode:<6}{state:<10}{v['executed']:>6}  {v['title']}")
    return 0


def _executions(args: argparse.Namespace) -> int:
    client = AdminClient.from_args(args)
    params: dict[str, Any] = {
        "filter[workflowKey]": args.key,
        "page": args.page,
        "pageSize": args.page_size,
    }
    if args.status is not None:
        params["filter[status]"] = args.status
    payload = client.call("GET", "executions:list", params=params)
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    meta = payload["meta"]
    print(f"{meta['count']} executions (page {meta['page']}, {meta['pageSize']} per page)")
    print(f"{'ID':<34}{'VERSION':>8}  {'STATUS':<14}CREATED")
    for e in payload["data"]:
        status = NAMES.get(e["status"], str(e["status"]))
        if e.get("reason"):
            status += f" ({e['reason']})"
        print(f"{e['id']:<34}{e['workflowId']:>8}  {status:<14}{e['createdAt']}")
    return 0


def _replay_many(client: AdminClient, args: argparse.Namespace) -> int:
    params: list[tuple[str, str]] = []
    if args.workflow:
        params.append(("filter[workflowKey]", args.workflow))
    for status in args.status or []:
        params.append(("filter[status]", status))
    if args.since:
        try:
            seconds = parse_duration(args.since)
        except DurationError as exc:
            raise AdminError(f"--since: {exc}") from None
        since = datetime.now(UTC) - timedelta(seconds=seconds)
        params.append(("filter[createdAt][$gte]", since.isoformat()))
    if not params:
        raise AdminError("give an execution id, or --workflow, --status and/or --since")
    payload = client.call("POST", "executions:replay", params=params)
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    data = payload["data"]
    print(f"{data['count']} executions replayed", end="")
    print(f" ({data['skipped']} skipped: no enabled version)" if data.get("skipped") else "")
    return 0


def _supervisors(args: argparse.Namespace) -> int:
    client = AdminClient.from_args(args)
    payload = client.call("GET", "supervisors:list")
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    print(f"{'SUPERVISOR':<28}{'RUNNING':>8}{'BACKLOG':>9}{'FINISHED':>10}{'IDLE S':>8}  EXECUTORS")
    for row in payload["data"]:
        print(
            f"{row['name']:<28}{row['inflight']:>8}{row['backlog']:>9}{row['finished']:>10}"
            f"{row['idleSeconds']:>8}  {','.join(row['executors'])}"
        )
    return 0


def _replay(args: argparse.Namespace) -> int:
    client = AdminClient.from_args(args)
    if args.execution_id is None:
        return _replay_many(client, args)
    payload = client.call("POST", "executions:replay", params={"filterByTk": args.execution_id})
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    run = payload["data"]["execution"]
    print(
        f"{run['id']}  {NAMES.get(run['status'], run['status'])}  (replay of {args.execution_id})"
    )
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from engine.settings import Settings
    from store import migrate
    from store.history import redacted_url

    url = (
        args.url
        or Settings.from_env({**os.environ, "RAYHOOK_DATA_DIR": args.data_dir}).history_database
    )
    try:
        revision = migrate.upgrade(url)
    except Exception as exc:
        print(f"rayhook: migrate {redacted_url(url)}: {exc}", file=sys.stderr)
        return 1
    print(f"{redacted_url(url)}: schema at revision {revision} (newest)")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from deploy.bench.command import run

    return run(args)


def _parse(args: argparse.Namespace) -> int:
    from ingress.admin.parse import paths_of_url

    sample = args.sample.strip()
    if sample.startswith(("{", "[")):
        paths = list_paths(json.loads(sample))
    else:
        paths = paths_of_url(sample)
    print("\n".join(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
