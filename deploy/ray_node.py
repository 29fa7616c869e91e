"""`ray start` for rayhook's own launches: `python -m deploy.ray_node <ray start options>`.

It is `ray start` itself (the same CLI, in this process) with two adjustments:
- **A lean head** (with `--head`): three parts a rayhook head never needs are left
  out, ~1 GB of resident memory on an idle stack: the Ray Client server
  (rayhook's processes are drivers on Ray nodes, never clients), the autoscaler
  monitor (`rayhook up` has nothing to scale; on Kubernetes KubeRay starts the
  head its own way), and every dashboard module but the state API (what
  `ray list actors` reads) and the node view it relies on.
- **Loopback clusters**: with `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` (what keeps
  every Ray socket on 127.0.0.1) the CLI refuses to join a node to a cluster.
  Tests and `deploy/ray-node-start.sh` run several nodes on one machine, so the
  refusal is lifted while the addresses stay on loopback.
Ray is pinned to 2.60.x in pyproject.toml; the tests run `ray list actors` and a
multi-node cluster through this module, so a Ray upgrade that breaks it fails
loudly.
"""

from __future__ import annotations

import sys
from typing import Any

DASHBOARD_MODULES = "StateHead,NodeHead,UsageStatsHead"


def _lean_head() -> None:
    from ray._private import node, ray_constants, services

    node.Node.start_ray_client_server = lambda self: None  # type: ignore[method-assign]
    node.Node.start_monitor = lambda self: None  # type: ignore[method-assign]
    start_ray_process = services.start_ray_process

    def lean(command: list[str], process_type: str, *args: Any, **kwargs: Any) -> Any:
        if process_type == ray_constants.PROCESS_TYPE_DASHBOARD:
            command = [c for c in command if not c.startswith("--modules-to-load")]
            command.append(f"--modules-to-load={DASHBOARD_MODULES}")
        return start_ray_process(command, process_type, *args, **kwargs)

    services.start_ray_process = lean


def _loopback_join() -> None:
    import ray
    from ray._private import ray_constants, services

    if ray_constants.ENABLE_RAY_CLUSTER:
        return  # a normal multi-host cluster: nothing to lift
    localhost = services.get_localhost_ip()

    def loopback(address: str | None = None) -> str:
        node = ray._private.worker._global_node
        return node.node_ip_address if node is not None else localhost

    # The CLI's join check reads the flag; the address helpers that read it too
    # are replaced by ones that keep every address on loopback.
    services.get_node_ip_address = loopback
    services.resolve_ip_for_localhost = lambda host: host
    ray_constants.ENABLE_RAY_CLUSTER = True


def main() -> None:
    args = sys.argv[1:]
    if "--head" in args:
        _lean_head()
    else:
        _loopback_join()
    from ray.scripts.scripts import cli

    cli.main(args=["start", *args], prog_name="ray")


if __name__ == "__main__":
    main()
