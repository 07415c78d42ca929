"""The spine in a real browser: upload a CVAT zip, check it, import it (worker), browse the result.

Screenshots land in tests/artifacts/ for a person to look at.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dsgen_core.sample_data import SampleSpec, generate_cvat_coco_zip

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
RUN_RE = re.compile(r"dsgen · run (\d+)")
NUM_IMAGES = 12


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


def test_upload_check_import_and_browse(ui, dsgen_server, tmp_path):
    page = ui
    zip_path = generate_cvat_coco_zip(tmp_path / "cvat_task.zip", SampleSpec(num_images=NUM_IMAGES, seed=7, workers=2))

    # ----- Import: upload, name, check --------------------------------------------------------
    act(page, lambda: page.get_by_role("link", name="Import").first.click())
    page.get_by_role("heading", name="📥 Import").wait_for()
    uploader = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    act(page, lambda: uploader.set_input_files(str(zip_path)))
    page.get_by_text("Saved as").wait_for()
    fill(page, "New group name", "street-scenes")
    fill(page, "Split", "train")
    act(page, lambda: page.get_by_role("button", name="Check path").click())
    page.get_by_text("No problems found").wait_for()
    page.get_by_text(re.compile(r"Check of\s+cvat_task\.zip")).first.wait_for()
    assert str(NUM_IMAGES) in page.locator('[data-testid="stMetric"]').filter(has_text="images").first.inner_text()
    shot(page, "01-import-checked")

    # ----- Import: run it on the worker and follow the job ------------------------------------
    act(page, lambda: page.get_by_role("button", name="Import", exact=False).filter(has_text="📥").click())
    page.get_by_text("Import job #1: street-scenes / train v1.0.0").wait_for()
    success = page.locator('[data-testid="stAlertContentSuccess"]').filter(has_text="READY")
    success.wait_for(timeout=60_000)
    assert f"{NUM_IMAGES} images" in success.inner_text()
    wait_idle(page)
    shot(page, "02-import-ready")

    # ----- Datasets: the group is READY with the right image count ----------------------------
    act(page, lambda: page.get_by_role("link", name="Datasets").first.click())
    page.get_by_role("heading", name="🗂️ Datasets").wait_for()
    group = page.locator('[data-testid="stExpander"]').filter(has_text="street-scenes")
    assert "🟢 READY" in group.inner_text() and f"{NUM_IMAGES} images" in group.inner_text()
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.wait_for()
    shot(page, "03-datasets")
    group.locator("summary").click()
    open_link = group.get_by_role("link", name=re.compile(r"Open train v1\.0\.0"))
    open_link.wait_for()
    shot(page, "04-datasets-expanded")

    # ----- Dataset: facts, class counts, thumbnails -------------------------------------------
    act(page, open_link.click)
    page.get_by_role("heading", name="street-scenes / train v1.0.0").wait_for()
    assert re.search(r"[?&]version=\d+", page.url)
    status = page.locator('[data-testid="stMetric"]').filter(has_text="Status")
    assert "READY" in status.inner_text()
    images_metric = page.locator('[data-testid="stMetric"]').filter(has_text="Images").first
    assert images_metric.locator('[data-testid="stMetricValue"]').inner_text().strip() == str(NUM_IMAGES)
    page.get_by_role("heading", name="Classes").wait_for()
    chart = page.locator('[data-testid="stVegaLiteChart"]')
    chart.wait_for()
    tiles = page.locator('[data-testid="stImage"] img')
    tiles.first.wait_for()
    assert tiles.count() == NUM_IMAGES
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=\"stImage\"] img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    page.get_by_role("button", name="Download COCO JSON").wait_for()
    shot(page, "05-dataset")

    # ----- Jobs ------------------------------------------------------------------------------
    act(page, lambda: page.get_by_role("link", name="Jobs").first.click())
    page.get_by_role("heading", name="⚙️ Jobs").wait_for()
    page.locator('[data-testid="stDataFrame"]').first.wait_for()
    assert "live worker" in page.get_by_text("live worker").first.inner_text()
    shot(page, "06-jobs")


def test_server_path_import_failure_shows_report(ui, dsgen_server, tmp_path):
    """A broken export typed as a server path: the check and the failed job both show the findings."""
    from helpers import coco_doc, image_rec, write_export

    page = ui
    doc = coco_doc([image_rec(1, "a.jpg"), image_rec(1, "b.jpg")], [])  # duplicate image id
    bad = write_export(tmp_path / "broken_export", doc, {"a.jpg": (64, 48), "b.jpg": (64, 48)})

    act(page, lambda: page.get_by_role("link", name="Import").first.click())
    act(page, lambda: page.get_by_text("Folder or zip on the server", exact=True).click())
    fill(page, "Server path (folder or zip)", str(bad))
    fill(page, "New group name", "broken")
    act(page, lambda: page.get_by_role("button", name="Check path").click())
    page.locator('[data-testid="stAlertContentError"]').filter(has_text="error(s)").first.wait_for()
    shot(page, "07-import-check-errors")

    act(page, lambda: page.get_by_role("button", name="Import", exact=False).filter(has_text="📥").click())
    failed = page.locator('[data-testid="stAlertContentError"]').filter(has_text="Import failed")
    failed.wait_for(timeout=30_000)
    wait_idle(page)
    assert page.get_by_text("ERROR", exact=True).count() >= 1
    shot(page, "08-import-failed")
