"""The CVAT page in headless Chromium: save a connection, export a version to the fake CVAT, see the task link."""

from __future__ import annotations

from cvat_fake.fixtures import make_fake  # noqa: F401
from test_cvat_sync_support import capi, import_on_share, import_version, oriented_export, sample_export  # noqa: F401
from ui_helpers import act, shot, wait_idle


def test_export_from_the_page_shows_task_link(capi, make_fake, sample_export, ui):  # noqa: F811
    admin = capi.default_actor
    import_version(capi, admin, sample_export, group="street")
    fake = make_fake()
    page = ui
    act(page, lambda: page.get_by_role("link", name="CVAT").first.click())
    page.get_by_role("heading", name="🔁 CVAT").wait_for()

    page.get_by_role("tab", name="Connections", exact=True).click()
    page.get_by_label("CVAT URL", exact=True).fill(fake.url)
    page.get_by_label("CVAT username", exact=True).fill(fake.username)
    page.get_by_label("Password or token", exact=True).fill(fake.password)
    act(page, lambda: page.get_by_role("button", name="Save connection").click())
    page.get_by_role("tab", name="Export", exact=True).click()
    page.get_by_role("button", name="Export to CVAT").wait_for()
    assert page.get_by_text(fake.password).count() == 0
    page.get_by_label("Filter (search DSL, empty = all images)", exact=True).fill("width>0")
    page.get_by_label("Task name", exact=True).fill("street-relabel")
    act(page, lambda: page.get_by_role("button", name="Preview").click())
    page.get_by_text("Preview: 12 images in 1 task(s) (street-relabel) as image bytes").wait_for()
    assert fake.tasks() == []  # a preview sends nothing
    shot(page, "cvat_export_form")
    act(page, lambda: page.get_by_role("button", name="Export to CVAT").click())
    page.get_by_text("queued: 12 images in 1 task(s)").wait_for()
    assert page.get_by_text("Unexpected error").count() == 0  # following a queued job is no error
    link = page.get_by_role("link", name="street-relabel (#1)")
    link.wait_for(timeout=60_000)
    assert link.get_attribute("href") == f"{fake.url}/tasks/1"
    wait_idle(page)
    shot(page, "cvat_export_done")
    assert [t["size"] for t in fake.tasks()] == [12]

    page.get_by_role("tab", name="Pull back", exact=True).click()
    page.get_by_label("CVAT task id(s) or link(s)", exact=True).fill(f"{fake.url}/tasks/1")
    act(page, lambda: page.get_by_role("button", name="Preview pull").click())
    page.get_by_text("Nothing changed: CVAT has the annotations as they were exported").wait_for()
    assert page.get_by_role("heading", name="Diff of task(s) 1 against street / train v1.0.0 (#1)").count() == 1
    create = page.get_by_role("button", name="Create new version of street / train")
    assert create.is_disabled()  # a zero diff creates nothing unless asked
    shot(page, "cvat_pull_preview")
    act(page, lambda: page.get_by_text("Create an identical version anyway").click())
    act(page, lambda: create.click(), timeout=60)
    page.get_by_text("v1.1.0 is READY").wait_for(timeout=60_000)
    page.get_by_role("tab", name="Exports", exact=True).click()
    picker = page.get_by_role("combobox", name="Export", exact=True)
    assert picker.input_value() == "#1 · street-relabel · width>0 · DONE"  # the picker names each export
    assert page.get_by_role("link", name="task #1").get_attribute("href") == f"{fake.url}/tasks/1"
    shot(page, "cvat_exports_list")


def test_export_by_reference_from_the_page(capi, make_fake, sample_export, ui, tmp_path):  # noqa: F811
    """A connection with a share folder, an export that sends references: CVAT builds the task from its share."""
    admin = capi.default_actor
    nas = tmp_path / "nas"
    import_on_share(capi, admin, sample_export, nas)
    fake = make_fake("2.72.0", share_root=nas)
    page = ui
    act(page, lambda: page.get_by_role("link", name="CVAT").first.click())
    page.get_by_role("tab", name="Connections", exact=True).click()
    page.get_by_label("CVAT URL", exact=True).fill(fake.url)
    page.get_by_label("CVAT username", exact=True).fill(fake.username)
    page.get_by_label("Password or token", exact=True).fill(fake.password)
    page.get_by_label("Share folder (optional)", exact=True).fill(str(nas))
    act(page, lambda: page.get_by_role("button", name="Save connection").click())
    page.get_by_role("tab", name="Export", exact=True).click()
    page.get_by_text("Send file references, not bytes").click()
    page.get_by_label("Task name", exact=True).fill("nas-by-ref")
    act(page, lambda: page.get_by_role("button", name="Export to CVAT").click())
    link = page.get_by_role("link", name="nas-by-ref (#1)")
    link.wait_for(timeout=60_000)
    assert link.get_attribute("href") == f"{fake.url}/tasks/1"
    task = fake.tasks()[0]
    assert task["size"] == 12 and all(f.startswith("cam3/") for f in task["frames"])  # read from the share
    wait_idle(page)
    shot(page, "cvat_export_by_reference")


def test_exif_oriented_images_need_a_choice_on_the_page(capi, make_fake, oriented_export, ui):  # noqa: F811
    """The preview warns about images CVAT would show turned; the export is refused until a remedy is chosen."""
    admin = capi.default_actor
    import_version(capi, admin, oriented_export, group="phone")
    fake = make_fake()
    capi.add_cvat_connection(admin, "cvat", fake.url, username=fake.username, secret=fake.password)
    page = ui
    act(page, lambda: page.get_by_role("link", name="CVAT").first.click())
    page.get_by_role("tab", name="Export", exact=True).click()
    page.get_by_label("Task name", exact=True).fill("phone")
    act(page, lambda: page.get_by_role("button", name="Preview").click())
    page.get_by_text("3 image(s) carry an EXIF orientation, so CVAT shows them turned").wait_for()
    assert page.get_by_text("turned 90° clockwise").count() >= 1
    act(page, lambda: page.get_by_role("button", name="Export to CVAT").click())
    page.get_by_text("3 of the 12 images carry an EXIF orientation").wait_for()
    assert fake.tasks() == []
    shot(page, "cvat_export_exif_refused")
    page.get_by_label("Images with an EXIF orientation", exact=True).click()
    page.get_by_role("option", name="rotate: send upright, turn shapes").click()
    act(page, lambda: page.get_by_role("button", name="Export to CVAT").click())
    page.get_by_role("link", name="phone (#1)").wait_for(timeout=60_000)
    assert [t["size"] for t in fake.tasks()] == [12]
    wait_idle(page)
    shot(page, "cvat_export_exif_rotated")
