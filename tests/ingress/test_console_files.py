"""`/console/` serves the console's files from the package, each with the
strict Content-Security-Policy, and nothing else (SPEC §10)."""

from __future__ import annotations

import re
from importlib import resources

import falcon.asgi
import falcon.testing
import pytest

from ingress import console_files


@pytest.fixture
def client() -> falcon.testing.TestClient:
    app = falcon.asgi.App()
    app.req_options.strip_url_path_trailing_slash = True
    console_files.add_routes(app)
    return falcon.testing.TestClient(app)


def test_the_page_and_every_file_it_loads_are_served_with_the_csp(
    client: falcon.testing.TestClient,
) -> None:
    page = client.simulate_get("/console/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == console_files.CONTENT_SECURITY_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    loaded = re.findall(r'(?:src|href)="/console/([^"]+)"', page.text)
    assert {"main.js", "console.css", "favicon.svg"} <= set(loaded)
    folder = resources.files("ingress").joinpath("console")
    for name in sorted(e.name for e in folder.iterdir()):
        reply = client.simulate_get(f"/console/{name}")
        assert reply.status_code == 200, name
        assert reply.headers["content-security-policy"] == console_files.CONTENT_SECURITY_POLICY
    assert (
        client.simulate_get("/console/main.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )


def test_the_modules_import_only_files_that_exist() -> None:
    folder = resources.files("ingress").joinpath("console")
    names = {e.name for e in folder.iterdir()}
    for name in names:
        if name.endswith(".js"):
            text = folder.joinpath(name).read_text()
            for imported in re.findall(r'from "\./([^"]+)"', text):
                assert imported in names, f"{name} imports missing {imported}"


def test_the_policy_allows_no_inline_code_and_no_other_origin() -> None:
    policy = dict(
        part.strip().split(" ", 1) for part in console_files.CONTENT_SECURITY_POLICY.split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'" and policy["frame-ancestors"] == "'none'"


def test_unknown_files_and_paths_below_are_404(client: falcon.testing.TestClient) -> None:
    assert client.simulate_get("/console/nope.js").status_code == 404
    assert client.simulate_get("/console/../ingress/app.py").status_code == 404
    assert client.simulate_get("/console/a/main.js").status_code == 404
    assert client.simulate_post("/console/").status_code == 405
