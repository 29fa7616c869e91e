"""A lean Ray head for `rayhook up`: `ray start` with only what rayhook uses.

Run as `python -m deploy.ray_head <ray start options>`. It is `ray start` itself
(the same CLI, in this process) with three parts left out that a single local
node never needs and that cost ~1 GB of resident memory on an idle stack:
- the Ray Client server (rayhook's processes are Ray nodes' drivers, never clients),
- the autoscaler monitor (a local head has nothing to scale),
- all dashboard modules but the state API (what `ray list actors` reads) and
  the node view it relies on.
Ray is pinned to 2.60.x in pyproject.toml; the e2e tests run `ray list actors`
against this head, so a Ray upgrade that breaks the patch fails loudly.
"""

from __future__ import annotations

import sys

DASHBOARD_MODULES = "StateHead,NodeHead,UsageStatsHead"


def _patch() -> None:
    from ray._private import node, ray_constants, services

    node.Node.start_ray_client_server = lambda self: None  # type: ignore[method-assign]
    node.Node.start_monitor = lambda self: None  # type: ignore[method-assign]
    start_ray_process = services.start_ray_process

    def lean(command: list[str], process_type: str, *args: object, **kwargs: object) -> object:
        if process_type == ray_constants.PROCESS_TYPE_DASHBOARD:
            command = [c for c in command if not c.startswith("--modules-to-load")]
            command.append(f"--modules-to-load={DASHBOARD_MODULES}")
        return start_ray_process(command, process_type, *args, **kwargs)

    services.start_ray_process = lean


def main() -> None:
    _patch()
    from ray.scripts.scripts import cli

    cli.main(args=["start", *sys.argv[1:]], prog_name="ray")


if __name__ == "__main__":
    main()
