"""Insights in a real browser: open a version, filter, click a bar into the Explore link, compare, save a
view and reopen it by its link; the SQL page runs a query and refuses a file read. Screenshots go to
tests/artifacts/ (30-*.png)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect
from test_curation_support import make_version
from ui_helpers import act, fill, shot, wait_idle

pytestmark = pytest.mark.browser


def click_first_bar(page) -> str:  # noqa: ANN001
    """Click the top (largest) bar of the class chart until the Explore link shows; return its href."""
    chart = page.locator('[data-testid="stVegaLiteChart"]').first
    chart.scroll_into_view_if_needed()
    box = chart.bounding_box()
    link = page.get_by_role("link", name="Open in Explore")
    for dy in (12, 20, 30, 8, 40):
        act(page, lambda dy=dy: page.mouse.click(box["x"] + box["width"] * 0.45, box["y"] + dy))
        if link.count():
            return link.first.get_attribute("href")
    raise AssertionError("clicking the class chart gave no Explore link")


def test_insights_filter_click_save_reopen(ui, dsgen_server, api, admin):
    page = ui
    vid = make_version(api, admin.id, group="street")
    api.add_tags(admin, vid, 1, "night")
    api.add_tags(admin, vid, 2, "night")

    page.goto(f"{dsgen_server.url}/insights?version={vid}")
    page.get_by_role("heading", name="📊 Insights").wait_for()
    page.get_by_role("heading", name="Class distribution").wait_for()
    fill(page, "Filter (DSL)", "id<=6")
    wait_idle(page)
    shot(page, "30-insights-filtered")

    href = click_first_bar(page)
    target = urlparse(href)
    assert target.path == "/explore"
    q = parse_qs(target.query)
    assert q["version"] == [str(vid)] and q["q"][0].startswith("(id<=6) category:")
    shot(page, "31-insights-clicked")

    act(page, lambda: page.get_by_text("Compare with another subset").click())
    fill(page, "Compare filter (DSL)", "NOT id<=6")
    page.get_by_text("A vs B").first.wait_for()
    page.get_by_text("💾 Saved views").click()
    fill(page, "View name", "first six vs rest")
    act(page, lambda: page.get_by_role("button", name="Save view").click())
    saved = page.get_by_text("Saved “first six vs rest”")
    saved.wait_for()
    link = page.locator('[data-testid="stAlertContentSuccess"] a').first.get_attribute("href")
    assert link.startswith("/insights?view=")
    shot(page, "32-insights-saved-view")

    other = page.context.new_page()  # same session, fresh page: the link alone restores the view
    other.goto(f"{dsgen_server.url}{link}")
    other.get_by_role("heading", name="📊 Insights").wait_for()
    wait_idle(other)
    # a loaded machine may show the first run before the view's values: wait for them, do not sample
    expect(other.get_by_label("Filter (DSL)", exact=True)).to_have_value("id<=6", timeout=30_000)
    expect(other.get_by_label("Compare filter (DSL)", exact=True)).to_have_value("NOT id<=6", timeout=30_000)
    other.get_by_text("A vs B").first.wait_for()
    shot(other, "33-insights-view-reopened")


def test_sql_page_query_and_refusal(ui, dsgen_server, api, admin):
    page = ui
    make_version(api, admin.id, group="street")
    page.goto(f"{dsgen_server.url}/sql")
    page.get_by_role("heading", name="🧮 SQL").wait_for()
    wait_idle(page)
    act(page, lambda: page.get_by_role("button", name="Run").click())
    page.get_by_role("button", name="Download CSV").wait_for()
    shot(page, "34-sql-result")
    box = page.get_by_label("Query", exact=True)
    act(page, lambda: (box.fill("SELECT * FROM read_csv('/etc/passwd')"), box.press("Control+Enter")))
    act(page, lambda: page.get_by_role("button", name="Run").click())
    page.get_by_text("disabled").first.wait_for()
    shot(page, "35-sql-refused")
