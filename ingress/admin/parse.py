"""`POST /api/webhook:parse` — the paths a sample URL or JSON body offers for
the trigger's request mapping (SPEC §2.2)."""

from __future__ import annotations

from urllib.parse import urlsplit

import falcon
import falcon.asgi
import msgspec

from engine.paths import list_paths
from ingress.admin.body import json_body
from ingress.admin.envelope import reply
from ingress.admin.resource import AdminResource
from ingress.querystring import parse_query_string
from ingress.services import Services


def paths_of_url(url: str) -> list[str]:
    """`http://h/x?query[0][a]=1` (or just `?query[0][a]=1`) → query, query[0], query[0].a."""
    text = url.strip()
    query = urlsplit(text).query if "://" in text or text.startswith("/") else text
    return list_paths(parse_query_string(query.lstrip("?")))


class Parse(AdminResource):
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        raw = await json_body(req, self.services.settings.max_body_bytes)
        if isinstance(raw, dict) and isinstance(raw.get("url"), str):
            reply(resp, {"paths": paths_of_url(raw["url"])})
        elif isinstance(raw, dict) and "json" in raw:
            sample = raw["json"]
            if isinstance(sample, str):  # a JSON document pasted as text
                try:
                    sample = msgspec.json.decode(sample)
                except msgspec.DecodeError:
                    raise falcon.HTTPBadRequest(description="json: not valid JSON text") from None
            reply(resp, {"paths": list_paths(sample)})
        else:
            raise falcon.HTTPBadRequest(description='send {"url": "..."} or {"json": ...}')


def routes(services: Services) -> list[tuple[str, object]]:
    return [("/api/webhook:parse", Parse(services))]
