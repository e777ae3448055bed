"""Browser tests: the real app (``grouper ui``) on a free localhost port, driven by Playwright
through Debian's Chromium.

``.ci/run`` installs Chromium when it is missing and sets ``GROUPER_REQUIRE_BROWSER=1``, so
that in CI a missing browser fails the run instead of skipping it. Playwright's own browser
download is never used: ``executable_path`` points at the system Chromium.

Every page opened here goes through a network guard: requests to anything but the app's own
localhost server are recorded and aborted, and tests assert that none were attempted.
Screenshots go to ``artifacts/screenshots/`` (git-ignored), kept as CI artifacts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("GROUPER_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium phones home at start-up; on a closed
# network those connections are refused and, worse, they are requests leaving localhost.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _missing(reason: str) -> None:
    if os.environ.get("GROUPER_REQUIRE_BROWSER"):
        pytest.fail(f"{reason} (GROUPER_REQUIRE_BROWSER is set: CI must run the browser tests)")
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class AppServer:
    """A running ``grouper ui`` process."""

    url: str
    db: Path
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        """Stop the process group the server started (streamlit is its child)."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@contextlib.contextmanager
def serve(
    db: Path, log_dir: Path, *, env: dict[str, str] | None = None, timeout: float = 90
) -> Iterator[AppServer]:
    """Start ``grouper ui --db DB`` on a free port and wait for Streamlit's health check."""
    port = free_port()
    argv = [sys.executable, "-m", "grouper", "ui", "--db", str(db), "--port", str(port)]
    with serve_command(argv, port, db, log_dir, env=env, timeout=timeout) as server:
        yield server


@contextlib.contextmanager
def serve_command(
    argv: list[str], port: int, db: Path, log_dir: Path, *, env: dict[str, str] | None = None, timeout: float = 90
) -> Iterator[AppServer]:
    """Run a Streamlit server command listening on ``port`` and wait for its health check."""
    log = log_dir / f"streamlit-{port}.log"
    full_env = dict(os.environ, GROUPER_DEVICE="cpu", **(env or {}))
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv,
            cwd=REPO,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # one process group: stop() ends streamlit too
        )
    server = AppServer(f"http://127.0.0.1:{port}", db, process, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{argv[2:4]} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{argv[2:4]} not healthy after {timeout:.0f} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield server
    finally:
        server.stop()


@dataclass
class NetworkGuard:
    """Requests a page attempted to anything but localhost (aborted before they leave)."""

    outside: list[str] = field(default_factory=list)

    def route(self, route, request) -> None:  # playwright Route, Request
        parsed = urlparse(request.url)
        if parsed.scheme in ("data", "blob") or parsed.hostname in _LOCAL_HOSTS:
            route.continue_()
        else:
            self.outside.append(request.url)
            route.abort()

    def websocket(self, ws) -> None:
        if urlparse(ws.url).hostname not in _LOCAL_HOSTS:
            self.outside.append(ws.url)


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium, shared by the session's browser tests."""
    if not Path(CHROMIUM).is_file():
        _missing(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.grouper_failed = report.failed
    return report


@pytest.fixture
def open_page(browser, request) -> Iterator[Callable[[], tuple]]:
    """Factory of (page, guard) pairs, each in its own browser context (its own session,
    cookies and storage: two contexts are two users). A failing test leaves a screenshot of
    each of its pages under artifacts/screenshots/failed-*."""
    contexts = []

    def make():
        guard = NetworkGuard()
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.route("**/*", guard.route)
        page = context.new_page()
        page.on("websocket", guard.websocket)
        page.set_default_timeout(90_000)  # a loaded 2-core machine is slow
        contexts.append(context)
        return page, guard

    yield make
    if getattr(request.node, "grouper_failed", False):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for i, context in enumerate(contexts):
            for j, page in enumerate(context.pages):
                with contextlib.suppress(Exception):
                    page.screenshot(
                        path=str(SCREENSHOTS / f"failed-{request.node.name}-{i}-{j}.png"), full_page=True
                    )
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def screenshots() -> Callable[[object, str], Path]:
    """``shot(page, name)`` saves a full-page PNG under artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def shot(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return shot


# --------------------------------------------------------------------------- page helpers

# Streamlit shows its status widget while a script or fragment runs, and marks elements
# stale while they are being replaced. "Settled" = neither, for a short quiet spell.
_SETTLED_JS = """(quiet) => {
    const busy = document.querySelector('[data-testid="stStatusWidget"]')
        || document.querySelector('[data-stale="true"]');
    const now = performance.now();
    if (busy || window.__grouperBusyAt === undefined) { window.__grouperBusyAt = now; return false; }
    return now - window.__grouperBusyAt > quiet;
}"""


def settle(page, quiet_ms: int = 500, timeout_ms: int = 180_000) -> None:
    """Wait until the app has finished running (no status widget, nothing stale)."""
    page.evaluate("() => { window.__grouperBusyAt = undefined; }")
    page.wait_for_function(_SETTLED_JS, arg=quiet_ms, timeout=timeout_ms, polling=50)


# st.dataframe is a canvas grid (glide-data-grid): rows are clicked by position. These are
# Streamlit's defaults: 35 px header and rows, the row-selection checkboxes in the first column.
ROW_PX = 35


def click_table_row(page, table_index: int, row: int) -> None:
    """Tick the selection checkbox of ``row`` (0-based) in the ``table_index``-th dataframe."""
    table = page.locator("[data-testid='stDataFrame']").nth(table_index)
    # Centred, not just "if needed": a table half scrolled out of view has its first rows out
    # of reach of the click. Streamlit's tables are at most about 400 px high.
    table.evaluate("el => el.scrollIntoView({block: 'center'})")
    box = table.bounding_box()
    assert box is not None, "the table is not visible"
    page.mouse.click(box["x"] + 16, box["y"] + ROW_PX * (row + 1) + ROW_PX / 2)


def sign_in(page, url: str, name: str) -> None:
    """Open the app and sign in with a display name (localhost mode)."""
    page.goto(url)
    settle(page)
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Start").click()
    page.get_by_text(f"Signed in as {name}").wait_for()
    settle(page)


def go_to(page, title: str) -> None:
    """Open a page from the sidebar navigation."""
    page.get_by_role("link", name=title, exact=True).click()
    page.get_by_role("heading", name=title if title != "Import" else "Import answers").wait_for()
    settle(page)


def message(page, text: str, timeout_ms: int = 60_000):
    """Wait for an alert (success, error, info) containing ``text``; returns its locator."""
    alert = page.locator("[data-testid='stAlert']").filter(has_text=text).first
    alert.wait_for(timeout=timeout_ms)
    return alert


def pick_question(page, question_id: str) -> None:
    """Choose the question in the sidebar picker."""
    page.get_by_label("Question", exact=True).click()
    page.get_by_role("option", name=question_id, exact=True).click()
    page.get_by_text("Version ").first.wait_for()
    settle(page)
