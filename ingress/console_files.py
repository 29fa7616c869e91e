"""`GET /console/` — the execution console (SPEC §10): static files shipped in
the package (`ingress/console/`), served with a strict Content-Security-Policy.

The page is plain ES modules and CSS, no build step. It signs in with the admin
token (kept in the tab's sessionStorage, sent as `Authorization: Bearer`) and
talks only to the admin JSON API and `/metrics`: this module serves files and
nothing else, so it needs no token itself."""

from __future__ import annotations

from importlib import resources

import falcon
import falcon.asgi

CONSOLE_PATH = "/console"

#: No inline script or style, nothing from another origin, no framing, no forms
#: posted anywhere: the page's code is exactly the files below.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _files() -> dict[str, bytes]:
    """Every file of the console, read once: name → bytes."""
    folder = resources.files("ingress").joinpath("console")
    return {
        entry.name: entry.read_bytes()
        for entry in folder.iterdir()
        if entry.is_file() and any(entry.name.endswith(ext) for ext in _TYPES)
    }


class ConsoleResource:
    """`/console/` (the page) and `/console/<file>` (its modules, style, icon)."""

    def __init__(self) -> None:
        self.files = _files()

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str = "index.html"
    ) -> None:
        data = self.files.get(name)
        if data is None:
            raise falcon.HTTPNotFound(description=f"console file {name!r} not found")
        resp.data = data
        resp.content_type = _TYPES[name[name.rindex(".") :]]
        resp.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Referrer-Policy", "no-referrer")
        resp.set_header("Cache-Control", "no-cache")


def add_routes(app: falcon.asgi.App) -> None:
    resource = ConsoleResource()
    app.add_route(CONSOLE_PATH, resource)
    app.add_route(CONSOLE_PATH + "/{name}", resource)
