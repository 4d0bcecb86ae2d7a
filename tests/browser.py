"""Shared Playwright fixtures for the browser tests: Debian's Chromium, the built site
served with the signup service on one loopback port, and a request recorder.

Import the fixtures into a test module: `from tests.browser import browser, served_site`.
Under CI=true a missing Chromium fails the run instead of skipping it.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium calls Google's hosts on its own.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-default-apps", "--disable-domain-reliability",
]
# The secret the served service signs links with, so tests can make valid tokens.
TEST_SECRET = "browser-tests-secret-0123456789"


def missing(what: str):
    """Skip locally, fail under CI: a browser suite that silently skips proves nothing."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what} (CI=true: the browser tests must run)", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session."""
    if not Path(CHROMIUM).exists():
        missing(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def served_site(site, tmp_path_factory) -> str:
    """Base URL (http://127.0.0.1:PORT) of the session's build served as `make serve` does:
    the app sitebuild.devserver runs (create_app with static_dir: the site, its 404.html and
    the signup service on one port), in-process, minus the file watcher, with a throwaway
    store and outbox and TEST_SECRET as the signing key."""
    from newsletter.app import create_app
    from newsletter.config import Config
    from newsletter.ratelimit import NO_LIMITS
    from newsletter.serving import serve_in_thread

    var = tmp_path_factory.mktemp("browser-var")
    config = Config.from_env(environ={
        "NEWSLETTER_DB": str(var / "subscribers.sqlite3"),
        "NEWSLETTER_OUTBOX": str(var / "outbox"),
        "NEWSLETTER_SECRET": TEST_SECRET,
    })
    # The suite opens the service's pages many times from one client: no rate limits.
    with serve_in_thread(create_app(config, limits=NO_LIMITS, static_dir=site)) as base_url:
        yield base_url


@dataclass
class Recorded:
    """Every request a page made, and every response it got."""

    requests: list = field(default_factory=list)
    responses: list = field(default_factory=list)
    websockets: list = field(default_factory=list)

    def foreign(self, base_url: str) -> list[str]:
        """URLs of requests to any origin but the served one (data: and blob: are local)."""
        origin = urlsplit(base_url)[:2]
        return [r.url for r in self.requests
                if urlsplit(r.url).scheme not in ("data", "blob") and urlsplit(r.url)[:2] != origin] \
            + list(self.websockets)

    def cookies_set(self) -> list[str]:
        """Set-Cookie headers received, as 'URL: header'."""
        found = []
        for response in self.responses:
            for header in response.headers_array():
                if header["name"].lower() == "set-cookie":
                    found.append(f"{response.url}: {header['value']}")
        return found


def record_requests(page) -> Recorded:
    """Start recording what `page` asks for (requests, responses, websockets); returns the live record."""
    recorded = Recorded()
    page.on("request", lambda request: recorded.requests.append(request))
    page.on("response", lambda response: recorded.responses.append(response))
    page.on("websocket", lambda ws: recorded.websockets.append(ws.url))
    return recorded
