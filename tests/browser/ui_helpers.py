"""What every browser test does with a Streamlit page: wait for runs, act, fill, pick, screenshot."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
RUN_RE = re.compile(r"dsgen · run (\d+)")


def run_count(page) -> int:  # noqa: ANN001
    """The page's run counter (the caption every page ends with); 0 while none is shown."""
    loc = page.get_by_text(RUN_RE)
    if loc.count() == 0:
        return 0
    m = RUN_RE.search(loc.first.inner_text())
    return int(m.group(1)) if m else 0


def wait_idle(page, timeout: float = 20.0) -> int:  # noqa: ANN001
    """Wait until a run has finished: the counter is shown and the app is not running a script."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = run_count(page)
        state = page.locator('[data-testid="stApp"]').get_attribute("data-test-script-state")
        if n and state != "running":
            return n
        time.sleep(0.05)
    raise TimeoutError("the page did not finish a run")


def act(page, action: Callable[[], object], timeout: float = 30.0) -> int:  # noqa: ANN001
    """Do something that triggers a rerun and wait until the run counter moves past its old value."""
    before = wait_idle(page)
    action()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = run_count(page)
        if n > before:
            return wait_idle(page)
        time.sleep(0.05)
    raise TimeoutError(f"no rerun after the action (run counter stayed at {before})")


def shot(page, name: str) -> Path:  # noqa: ANN001
    """The whole page: Streamlit scrolls inside its main section, so grow the viewport to fit it first."""
    path = ARTIFACTS / f"{name}.png"
    size = page.viewport_size
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], [data-testid=\"stMainBlockContainer\"]')]"
        ".map(e => e.scrollHeight), document.body.scrollHeight)"
    )
    page.set_viewport_size({"width": size["width"], "height": min(6000, max(size["height"], int(height) + 40))})
    page.wait_for_timeout(300)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path


def fill(page, label: str, value: str) -> None:  # noqa: ANN001
    box = page.get_by_label(label, exact=True)
    if box.input_value() != value:  # an unchanged value commits nothing and causes no rerun
        act(page, lambda: (box.fill(value), box.press("Enter")))


def pick(page, label: str, option: str, attempts: int = 3) -> None:  # noqa: ANN001
    """Choose an option of a selectbox by its label: type to filter, then Enter takes the first match.
    A rerun landing between the click and the typing closes the list; then try again."""
    box = page.locator('[data-testid="stSelectbox"]').filter(
        has=page.get_by_text(label, exact=True)).locator("input")

    def choose() -> None:
        for attempt in range(attempts):
            wait_idle(page)
            box.click()
            box.fill(option)
            try:
                page.get_by_role("option", name=option, exact=True).wait_for(timeout=5_000)
            except Exception:  # noqa: BLE001 - playwright's TimeoutError: the list was closed by a rerun
                box.press("Escape")
                if attempt == attempts - 1:
                    raise
                continue
            box.press("Enter")
            return

    act(page, choose)


def options(page: Page, label: str, attempts: int = 3) -> list[str]:
    """The options a selectbox offers (opened, read, closed again); retried when a rerun closes the list."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.locator('[data-testid="stSelectbox"]').filter(
        has=page.get_by_text(label, exact=True)).locator("input")
    for attempt in range(attempts):
        wait_idle(page)
        box.click()
        try:
            page.get_by_role("option").first.wait_for(timeout=5_000)
            texts = page.get_by_role("option").all_inner_texts()
        except PlaywrightTimeout:  # the list was closed by a rerun
            if attempt == attempts - 1:
                raise
            continue
        finally:
            box.press("Escape")
        return texts
    return []
