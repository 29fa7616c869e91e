"""gunicorn settings for the ingress (`gunicorn -c python:deploy.gunicorn_conf`).

Each worker is its own Ray driver: it connects after the fork (`post_fork`),
never in the master — Ray's core worker is multi-threaded and does not survive
a fork."""

from __future__ import annotations

import multiprocessing
import os

worker_class = "asgi"
bind = f"{os.environ.get('RAYHOOK_HOST', '127.0.0.1')}:{os.environ.get('RAYHOOK_PORT', '13000')}"
workers = int(os.environ.get("RAYHOOK_WORKERS") or multiprocessing.cpu_count())
keepalive = 75
timeout = 30
graceful_timeout = int(os.environ.get("RAYHOOK_GRACEFUL_TIMEOUT", "30"))
control_socket_disable = True
accesslog = None
loglevel = os.environ.get("RAYHOOK_LOG_LEVEL", "info")


def post_fork(server, worker):  # type: ignore[no-untyped-def]
    import ray

    ray.init(
        address=os.environ.get("RAY_ADDRESS") or "auto",
        namespace=os.environ.get("RAYHOOK_NAMESPACE") or "rayhook",
        log_to_driver=False,
    )


def worker_exit(server, worker):  # type: ignore[no-untyped-def]
    import ray

    if ray.is_initialized():
        ray.shutdown()
