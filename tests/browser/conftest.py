"""Browser fixtures: a streamlit server + a job worker on a fresh installation, and headless Chromium.

Chromium is the Debian package at /usr/bin/chromium, driven by Playwright's Python API (no `playwright
install`). Subprocess output goes to files under the test's tmp folder and is printed when a test fails.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@dataclass
class Server:
    url: str
    env: dict[str, str]
    logs: list[Path]


@pytest.fixture
def dsgen_server(dsgen_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    """`streamlit run server.py` (app + log-in routes) and a worker on the fresh installation of this test."""
    env = {**os.environ, **dsgen_env, "PYTHONUNBUFFERED": "1"}
    port = free_port()
    logs = [tmp_path / "streamlit.log", tmp_path / "worker.log"]
    procs: list[subprocess.Popen] = []
    files = [open(p, "wb") for p in logs]  # noqa: SIM115 - closed at teardown
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "server.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=files[0], stderr=subprocess.STDOUT,
        ))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "dsgen_core.cli", "worker"],
            cwd=ROOT, env=env, stdout=files[1], stderr=subprocess.STDOUT,
        ))
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/_stcore/health", procs[0])
        yield Server(url=url, env=env, logs=logs)
    finally:
        for p in procs:
            stop(p)
        for f in files:
            f.close()
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            for p in logs:
                print(f"----- {p.name} -----\n{p.read_text(errors='replace')[-4000:]}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


@pytest.fixture(scope="session")
def chromium():  # noqa: ANN201
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed")
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()
        pw.stop()


def log_in(page, url: str, username: str, password: str) -> None:  # noqa: ANN001
    """Through the real log-in form: every page redirects there first without a session cookie."""
    page.goto(url)
    page.wait_for_url("**/auth/login**")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.get_by_text("dsgen · run").wait_for(timeout=30_000)


@pytest.fixture
def new_page(chromium, dsgen_server: Server):  # noqa: ANN001, ANN201
    """Factory: a fresh browser context (own cookies) per call, logged in when given credentials."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    contexts = []

    def make(username: str | None = "admin", password: str = "test-admin-pw"):  # noqa: ANN202
        context = chromium.new_context(viewport={"width": 1440, "height": 1000})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(45_000)  # a 2-core machine running two test workers can be slow; waits, not limits
        if username:
            log_in(page, dsgen_server.url, username, password)
        return page

    try:
        yield make
    finally:
        for c in contexts:
            c.close()


@pytest.fixture
def ui(new_page):  # noqa: ANN001, ANN201
    """A browser page logged in as the installation's admin."""
    return new_page()
