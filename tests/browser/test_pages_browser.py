"""The spine in a real browser: upload a CVAT zip, check it, import it (worker), browse the result.

Screenshots land in tests/artifacts/ for a person to look at.
"""

from __future__ import annotations

import re

import pytest
from ui_helpers import act, fill, shot, wait_idle

from dsgen_core.sample_data import SampleSpec, generate_cvat_coco_zip

pytestmark = pytest.mark.browser

NUM_IMAGES = 12


def test_upload_check_import_and_browse(ui, dsgen_server, tmp_path):
    page = ui
    zip_path = generate_cvat_coco_zip(tmp_path / "cvat_task.zip", SampleSpec(num_images=NUM_IMAGES, seed=7, workers=2))

    # ----- Import: upload, name, check --------------------------------------------------------
    act(page, lambda: page.get_by_role("link", name="Import").first.click())
    page.get_by_role("heading", name="📥 Import").wait_for()
    uploader = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    act(page, lambda: uploader.set_input_files(str(zip_path)))
    page.get_by_text("Received").wait_for()
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
