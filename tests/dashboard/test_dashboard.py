"""The dashboard as a person sees it: the page rendered by headless Chromium over a live server.

Chromium is Debian's ``chromium`` package; without it the browser tests are skipped. Set
``TRUCE_DASHBOARD_SCREENSHOT=1`` to also write ``docs/dashboard.png`` for the README.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.app import create_app
from service.dashboard import router as dashboard_router
from service.settings import Settings
from tests.conftest import ADMIN_KEY
from tests.dashboard import world

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def mount_dashboard(app: FastAPI) -> FastAPI:
    """Include the dashboard router unless the app factory already does."""
    if "/" not in {getattr(route, "path", "") for route in app.routes}:
        app.include_router(dashboard_router)
    return app


def dashboard_app(settings: Settings, engine: Engine) -> FastAPI:
    """The service's app with the dashboard and stand-ins for endpoints it lacks."""
    app = mount_dashboard(create_app(settings, engine=engine))
    world.stand_ins(app)
    return app


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run the app with uvicorn on a free 127.0.0.1 port in a background thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def chromium(url: str, tmp_path: Path, *extra: str) -> str:
    """Load the page headless, let 10 s of virtual time pass, and answer stdout."""
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    command = [CHROMIUM or "chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
               "--virtual-time-budget=10000", *extra, url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90,
                          env={**os.environ, "TZ": "UTC"}, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class DomTexts(HTMLParser):
    """Text of every element carrying a ``data-testid``, by id, plus each panel's text."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: dict[str, list[str]] = defaultdict(list)
        self.panels: dict[str, str] = defaultdict(str)
        self._open: list[tuple[str, str | None, str | None]] = []  # tag, testid, panel id

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("input", "link", "meta", "br", "img", "path", "line", "circle"):
            return
        self._open.append((tag, found.get("data-testid"), found.get("id")))
        if found.get("data-testid"):
            self.texts[found["data-testid"] or ""].append("")

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, testid, _ in self._open:
            if testid:
                self.texts[testid][-1] += data
        for _, _, element_id in self._open:
            if element_id:
                self.panels[element_id] += data


def read_dom(html: str) -> DomTexts:
    parser = DomTexts()
    parser.feed(html)
    return parser


@dataclass(frozen=True)
class Site:
    base: str
    stand_ins: list[str]  # endpoints answered by the world's stand-ins, not the service


@pytest.fixture()
def site(settings: Settings, engine: Engine) -> Iterator[Site]:
    world.seed(engine)
    app = create_app(settings, engine=engine)
    mount_dashboard(app)
    stand_ins = world.stand_ins(app)
    with serving(app) as base:
        yield Site(base, stand_ins)


def test_shell_is_open_and_assets_are_served(settings: Settings, engine: Engine) -> None:
    with TestClient(dashboard_app(settings, engine)) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        for panel in ("funnel", "sla-board", "headlines", "alignment"):
            assert f'id="{panel}"' in page.text
        assert "connect-src 'self'" in page.headers["content-security-policy"]
        for name, kind, marker in (("app.js", "javascript", "/api/v1/alignment"),
                                   ("app.css", "text/css", ".gauge")):
            asset = client.get(f"/dashboard/static/{name}")
            assert asset.status_code == 200
            assert kind in asset.headers["content-type"]
            assert marker in asset.text
        assert client.get("/dashboard/static/missing.js").status_code == 404
        assert client.get("/dashboard/static/..%2Froutes.py").status_code == 404
        assert client.get("/api/v1/handoffs").status_code == 401  # the data stays closed


@needs_chromium
def test_page_shows_the_world(site: Site, tmp_path: Path) -> None:
    dom = read_dom(chromium(f"{site.base}/#key={ADMIN_KEY}", tmp_path, "--dump-dom"))
    api = httpx.Client(base_url=site.base, headers={"Authorization": f"Bearer {ADMIN_KEY}"})

    placement = api.get("/api/v1/alignment").json()
    assert dom.texts["alignment-stage"] == [placement["stage"]]
    assert len(dom.texts["next-step"]) == len(placement["next_steps"])

    assert world.BREACHED_OWNER in dom.texts["sla-owner"]
    breached = dom.texts["sla-state"].count("breached")
    assert dom.texts["sla-count-breached"] == [str(breached)] and breached >= 1
    assert dom.texts["sla-count-warning"] == ["1"] and dom.texts["sla-count-running"] == ["1"]
    owners = dict(zip(dom.texts["breach-owner"], dom.texts["breach-count"], strict=True))
    assert owners[world.BREACHED_OWNER] == "1" and owners[world.LATE_OWNER] == "1"

    funnel = api.get("/api/v1/metrics/funnel-conversion",
                     params={"start": "2000-01-01", "end": "2100-01-01"}).json()
    assert funnel["count"] > 0
    assert dom.texts["funnel-count-mqls"] == [str(funnel["stats"].get("mqls", funnel["count"]))]
    if "metrics" in site.stand_ins:  # no real metrics in this build: the world's numbers
        assert dom.texts["funnel-count-won"] == [str(world.FUNNEL["won"])]

    assert len(dom.texts["headline-value"]) >= 1
    assert "error" not in dom.texts, dom.texts["error"]
    assert "#key=" not in dom.texts.get("status", [""])[0]


@needs_chromium
def test_rejected_key_is_said_in_every_panel(site: Site, tmp_path: Path) -> None:
    dom = read_dom(chromium(f"{site.base}/#key=not-a-real-key", tmp_path, "--dump-dom"))
    for panel in ("funnel", "sla-board", "headlines", "alignment"):
        assert "key rejected" in dom.panels[panel], panel


@needs_chromium
def test_one_failing_endpoint_leaves_the_other_panels(settings: Settings, engine: Engine,
                                                      tmp_path: Path) -> None:
    world.seed(engine)
    app = dashboard_app(settings, engine)

    @app.middleware("http")
    async def alignment_down(request: Request, call_next: Callable) -> object:
        if request.url.path == "/api/v1/alignment":
            return JSONResponse({"detail": "alignment is being rebuilt"}, status_code=503)
        return await call_next(request)

    with serving(app) as base:
        dom = read_dom(chromium(f"{base}/#key={ADMIN_KEY}", tmp_path, "--dump-dom"))
    assert "503" in dom.panels["alignment"] and "alignment-stage" not in dom.texts
    assert world.BREACHED_OWNER in dom.texts["breach-owner"]
    assert dom.texts["funnel-count-mqls"]


@needs_chromium
def test_empty_database_says_no_data_yet(settings: Settings, engine: Engine,
                                         tmp_path: Path) -> None:
    with serving(mount_dashboard(create_app(settings, engine=engine))) as base:
        dom = read_dom(chromium(f"{base}/#key={ADMIN_KEY}", tmp_path, "--dump-dom"))
    assert "no data yet" in dom.panels["sla-board"]
    for panel in ("funnel", "headlines"):  # empty, or not built in this app yet
        assert "no data yet" in dom.panels[panel] or "Error:" in dom.panels[panel], panel
    # with nothing agreed yet, the honest reading is Undefined, with the first steps up
    assert dom.texts["alignment-stage"] == ["Undefined"]
    assert any("what a lead is" in step for step in dom.texts["next-step"])


@needs_chromium
@pytest.mark.skipif(os.environ.get("TRUCE_DASHBOARD_SCREENSHOT") != "1",
                    reason="set TRUCE_DASHBOARD_SCREENSHOT=1 to write docs/dashboard.png")
def test_screenshot_for_the_readme(site: Site, tmp_path: Path) -> None:
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    chromium(f"{site.base}/#key={ADMIN_KEY}", tmp_path, f"--screenshot={SCREENSHOT}",
             "--window-size=1400,1000", "--hide-scrollbars")
    assert SCREENSHOT.stat().st_size > 10_000
