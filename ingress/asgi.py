"""The ASGI entry point gunicorn loads: `ingress.asgi:app`."""

from ingress.app import create_app

app = create_app()
