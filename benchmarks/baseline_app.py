"""The raw baseline: a bare Falcon ASGI app that reads and decodes the JSON body
and answers `ok`. Every rayhook figure is compared with it, measured in the
same run on the same gunicorn settings (benchmarks/baseline_gunicorn.py)."""

from __future__ import annotations

import falcon
import falcon.asgi
import msgspec

_decode = msgspec.json.Decoder().decode


class Hook:
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, key: str) -> None:
        _decode(await req.stream.read())
        resp.text = "ok"
        resp.content_type = "text/plain; charset=utf-8"


app = falcon.asgi.App()
app.add_route("/api/webhook:trigger/{key}", Hook())
