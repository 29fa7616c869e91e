"""Browser fixtures: one real stack (gunicorn + the session's Ray + Redis, as
tests/e2e start it) and one Chromium per module, a fresh page per test that
fails the test on any browser console error or uncaught exception.

Chromium is Debian's (`apt-get install chromium`): Playwright's own browser
download is not reachable from the CI machines."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import delete_namespace, kill_actors
from tests.e2e.conftest import Server, start_server

CHROMIUM = os.environ.get("RAYHOOK_TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def stack(
    ray_address: str, ray_driver: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("console-stack"))
    yield server
    server.cleanup()
    server.stop()
    kill_actors(server.namespace)
    delete_namespace(server.namespace)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class Console:
    """A browser tab on the console, and what the browser reported."""

    def __init__(self, page: Any, server: Server, shots: Path) -> None:
        self.page = page
        self.server = server
        self.shots = shots
        self.errors: list[str] = []
        #: console errors a test expects (a refused token logs its 401)
        self.allowed: list[re.Pattern[str]] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _console(self, message: Any) -> None:
        if message.type == "error" and not any(p.search(message.text) for p in self.allowed):
            self.errors.append(message.text)

    def open(self, hash_path: str = "") -> None:
        self.page.goto(f"{self.server.url}/console/{hash_path}")

    def sign_in(self, token: str | None = None) -> None:
        self.open("#/workflows")
        self.page.get_by_label("Admin token").fill(token or self.server.token)
        self.page.get_by_role("button", name="Sign in").click()

    def screenshot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Screenshots for review: kept under the test run's temporary directory
    (or RAYHOOK_CONSOLE_SHOTS, which docs/console.md's images come from)."""
    folder = os.environ.get("RAYHOOK_CONSOLE_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return Path(folder)
    return tmp_path_factory.mktemp("console-screenshots")


@pytest.fixture
def console(
    browser: Any, stack: Server, shots: Path, request: pytest.FixtureRequest
) -> Iterator[Console]:
    width = getattr(request, "param", 1280)
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    tab = Console(page, stack, shots)
    yield tab
    context.close()
    assert tab.errors == [], f"browser console errors: {tab.errors}"
