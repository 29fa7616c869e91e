"""gunicorn settings for the ingress (`gunicorn -c python:deploy.gunicorn_conf`).

A worker is a Ray driver only while a request needs Ray (actors/ray_session.py):
it connects after the fork, never in the master — Ray's core worker is
multi-threaded and does not survive a fork."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile

from actors import heap

worker_class = "asgi"
bind = f"{os.environ.get('RAYHOOK_HOST', '127.0.0.1')}:{os.environ.get('RAYHOOK_PORT', '13000')}"
workers = int(os.environ.get("RAYHOOK_WORKERS") or multiprocessing.cpu_count())
# Behind a load balancer, keep this above its idle timeout (the Kubernetes
# ConfigMap sets 75). gunicorn's ASGI worker waits for idle kept-alive
# connections on shutdown, up to graceful_timeout, so a short default keeps a
# local stop quick.
keepalive = int(os.environ.get("RAYHOOK_KEEPALIVE", "5"))
timeout = 30
graceful_timeout = int(os.environ.get("RAYHOOK_GRACEFUL_TIMEOUT", "30"))
control_socket_disable = True
accesslog = None
loglevel = os.environ.get("RAYHOOK_LOG_LEVEL", "info")


#: The metrics folder this master made itself (removed again when it exits).
_made_metrics_dir: str | None = None


def on_starting(server):  # type: ignore[no-untyped-def]
    # /metrics adds up every worker's counters through files in this folder
    # (prometheus_client's multiprocess mode): set in the master, before any
    # worker is forked and imports prometheus_client.
    global _made_metrics_dir
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        folder = _made_metrics_dir = tempfile.mkdtemp(prefix="rayhook-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):  # counts of a previous run are not ours
        if name.endswith(".db"):
            os.remove(os.path.join(folder, name))


def on_exit(server):  # type: ignore[no-untyped-def]
    if _made_metrics_dir is not None:
        shutil.rmtree(_made_metrics_dir, ignore_errors=True)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_fork(server, worker):  # type: ignore[no-untyped-def]
    import ray  # noqa: F401  (its modules are part of the long-lived heap)

    from engine.logs import configure

    configure()
    heap.freeze()


def worker_exit(server, worker):  # type: ignore[no-untyped-def]
    import ray

    if ray.is_initialized():
        ray.shutdown()
