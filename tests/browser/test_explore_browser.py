"""Explore in a real browser: type a query, see the count change, click tiles, tag them in bulk, find
them with tag:…, open one image. Screenshots land in tests/artifacts/ (explore-*.png)."""

from __future__ import annotations

import re
import time

import pytest
from ui_helpers import act, fill, shot, wait_idle

from dsgen_core.api import ImportRequest
from dsgen_core.sample_data import SampleSpec, generate_cvat_coco_zip

pytestmark = pytest.mark.browser
NUM_IMAGES = 40


def count(page) -> int:  # noqa: ANN001
    metric = page.locator('[data-testid="stMetric"]').filter(has_text="Matching images")
    return int(metric.locator('[data-testid="stMetricValue"]').inner_text().replace(",", ""))


def wait_done(api, job_id: int, timeout: float = 60) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get_job(api.default_actor, job_id)
        if job.finished:
            assert job.status == "SUCCEEDED", job.error
            return
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} did not finish")


def test_query_select_tag_and_find(ui, dsgen_server, api, tmp_path):
    zip_path = generate_cvat_coco_zip(tmp_path / "task.zip", SampleSpec(num_images=NUM_IMAGES, seed=11, workers=2))
    started = api.start_import(api.default_actor, ImportRequest(path=str(zip_path), group="street"))
    wait_done(api, started.job_id)  # the server's worker runs it, then the thumbnails job
    page = ui

    act(page, lambda: page.get_by_role("link", name="Explore").first.click())
    page.get_by_role("heading", name="🖼️ Explore").wait_for()
    assert count(page) == NUM_IMAGES
    tiles = page.locator(".t")  # Playwright's CSS locators pierce the component's shadow root
    tiles.first.wait_for()
    assert tiles.count() == NUM_IMAGES
    src = tiles.first.locator("img").get_attribute("src")
    assert re.fullmatch(rf"/thumb/{started.version_id}/\d+", src)  # by URL, never a data URI
    page.wait_for_function("() => true")
    page.locator(".t img").last.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => { const h = document.querySelector('.root') ? document : null; return true; }")
    shot(page, "explore-01-all")

    fill(page, "Query", "category:person")
    n_person = count(page)
    assert 0 < n_person < NUM_IMAGES
    assert "q=category%3Aperson" in page.url or "q=category:person" in page.url
    assert tiles.count() == n_person

    for i in (0, 1, 2):
        act(page, lambda i=i: tiles.nth(i).locator(".box").click())
    page.get_by_text("Selected: 3", exact=True).wait_for()
    assert page.locator(".t.sel").count() == 3
    shot(page, "explore-02-selected")

    fill(page, "Tag", "picked")
    act(page, lambda: page.get_by_role("button", name="Apply to 3 images").click())
    page.locator('[data-testid="stAlertContentSuccess"]').filter(has_text="3 images").wait_for()

    fill(page, "Query", "tag:picked")
    assert count(page) == 3
    assert tiles.count() == 3
    shot(page, "explore-03-tagged")

    act(page, lambda: tiles.first.locator(".open").click())
    page.get_by_role("button", name="← Gallery").wait_for()
    page.get_by_text(re.compile(r"1 of 3")).first.wait_for()
    assert page.locator(".detail img").first.get_attribute("src").startswith(f"/image/{started.version_id}/")
    wait_idle(page)
    shot(page, "explore-04-detail")
