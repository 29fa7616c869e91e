"""The HTTP edge: a Falcon ASGI app served by gunicorn (`-k asgi`). Webhooks,
the admin API, health probes; limits, auth, parsing, one error format."""
