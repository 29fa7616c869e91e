"""gunicorn settings for the baseline: rayhook's own settings, minus Ray."""

from deploy.gunicorn_conf import (  # noqa: F401 - gunicorn reads these names
    accesslog,
    bind,
    control_socket_disable,
    graceful_timeout,
    keepalive,
    loglevel,
    timeout,
    worker_class,
    workers,
)
