"""Server paths in the browser: each role checks a path inside and outside its import roots on the Import
page, and a site admin manages the roots on the Admin page. The core refuses; the page shows the message.
"""

from __future__ import annotations

import pytest
from import_world import ALLOWED, PW, ROLES, build_world
from ui_helpers import act, fill, shot, wait_idle

from dsgen_core.api import Dsgen

pytestmark = pytest.mark.browser
REFUSAL = "is not inside an import root you may use"
DATA_FOLDER = "is inside dsgen's data folder, which is never importable"


@pytest.fixture
def world(dsgen_server, tmp_path):  # noqa: ANN001, ANN201
    api = Dsgen.open()
    yield build_world(api, api.default_actor, tmp_path)
    api.app.close()


def check_path(page, path: str) -> None:  # noqa: ANN001
    fill(page, "Server path (folder or zip)", path)
    act(page, lambda: page.get_by_role("button", name="Check path").click())


def test_import_page_server_paths_per_role(new_page, world):
    for role in ROLES:  # one server and installation for all roles, a browser context (cookies) each
        check_as(new_page, world, role)


def check_as(new_page, world, role: str) -> None:  # noqa: ANN001
    page = new_page(role, "test-admin-pw" if role == "admin" else PW)
    act(page, lambda: page.get_by_role("link", name="Import").first.click())
    act(page, lambda: page.get_by_text("Folder or zip on the server", exact=True).click())
    hint = "any server path except dsgen's data folder" if role == "admin" else "Server folders open to you"
    page.get_by_text(hint).first.wait_for()
    fill(page, "New group name", f"web-{role}")
    own = {"admin": "private", "owner": "acme", "editor": "team", "viewer": "team", "stranger": "open"}[role]
    check_path(page, world.paths[own])
    page.get_by_text("No problems found").wait_for()
    assert page.locator('[data-testid="stMetric"]').filter(has_text="images").first.inner_text().endswith("2")
    for case in ("private", "team", "blob"):
        check_path(page, world.paths[case])
        if case in ALLOWED[role]:
            page.get_by_text("No problems found").wait_for()
            continue
        refusal = DATA_FOLDER if role == "admin" else REFUSAL
        error = page.locator('[data-testid="stAlertContentError"]').filter(has_text=refusal)
        error.first.wait_for()
        assert world.paths[case] in error.first.inner_text()
        assert "frame_" not in page.content()  # nothing of the refused folder is shown
    wait_idle(page)
    shot(page, f"30-import-server-path-{role}")


def test_admin_manages_import_roots_and_the_user_sees_the_change(new_page, world):
    admin = new_page()
    act(admin, lambda: admin.get_by_role("link", name="Admin").first.click())
    admin.get_by_role("tab", name="Import roots").click()  # tabs switch in the browser, without a rerun
    admin.get_by_label("Server folder", exact=True).fill(str(world.server / "private"))  # in a form: no Enter
    act(admin, lambda: admin.get_by_role("button", name="Add import root").click())
    admin.get_by_role("tab", name="Import roots").click()
    wait_idle(admin)
    roots = [r.path for r in world.api.list_import_roots(world.actors["admin"])]
    assert str((world.server / "private").resolve()) in roots
    shot(admin, "31-admin-import-roots")
    stranger = new_page("stranger", PW)
    act(stranger, lambda: stranger.get_by_role("link", name="Import").first.click())
    act(stranger, lambda: stranger.get_by_text("Folder or zip on the server", exact=True).click())
    stranger.get_by_text(str((world.server / "private").resolve())).first.wait_for()
    fill(stranger, "New group name", "web-new-root")
    check_path(stranger, world.paths["private"])
    stranger.get_by_text("No problems found").wait_for()
