"""Log-in and permissions in a real browser: every page needs a session; a viewer sees no edit controls
and cannot change anything with their session; an owner grants access and the other user sees the group.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from helpers import open_import_root, simple_export
from ui_helpers import act, fill, options, pick, shot, wait_idle

from dsgen_core.api import Dsgen, ImportRequest
from dsgen_core.auth import SESSION_COOKIE
from dsgen_core.errors import PermissionDenied

pytestmark = pytest.mark.browser
PW = "a-long-test-password"
PAGES = ["", "datasets", "import", "dataset", "jobs", "audit", "account", "admin"]


@pytest.fixture
def team(dsgen_server, tmp_path):
    """olga owns group 'field-data'; vera is granted viewer; dave has no access yet."""
    api = Dsgen.open()
    admin = api.default_actor
    for name in ("olga", "vera", "dave"):
        api.create_user(admin, name, password=PW)
    olga = api.actor("olga")
    open_import_root(api, tmp_path)
    started = api.start_import(olga, ImportRequest(path=str(simple_export(tmp_path / "exp", n=3)), group="field-data"))
    info = api.run_job_here(olga, started.job_id)  # or the server's worker runs it: wait for either
    deadline = time.monotonic() + 60
    while not info.finished and time.monotonic() < deadline:
        time.sleep(0.1)
        info = api.get_job(olga, started.job_id)
    assert info.status == "SUCCEEDED", info.error
    api.grant(olga, "field-data", "vera", "viewer")
    yield api, started
    api.app.close()


def test_every_page_needs_a_login_and_logout_ends_the_session(new_page, dsgen_server):
    page = new_page(None)
    for path in PAGES:
        page.goto(f"{dsgen_server.url}/{path}")
        page.wait_for_url("**/auth/login**")
        assert page.locator("#username").is_visible(), path
    # the app's websocket and non-page requests are refused too
    req = urllib.request.Request(f"{dsgen_server.url}/_stcore/stream", headers={"Accept": "*/*"})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=5)
    assert exc.value.code in (401, 403)
    page.fill("#username", "admin")
    page.fill("#password", "wrong password")
    page.click("button[type=submit]")
    page.get_by_role("alert").wait_for()
    assert "wrong username or password" in page.get_by_role("alert").inner_text()
    shot(page, "20-login-refused")
    page.fill("#password", "test-admin-pw")
    page.click("button[type=submit]")
    wait_idle(page)
    shot(page, "20b-after-login")
    page.get_by_text("Signed in as admin").wait_for()
    cookie = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.get_by_role("link", name="Log out").click()
    page.wait_for_url("**/auth/login**")
    # the old cookie value no longer opens anything
    api = Dsgen.open()
    assert api.actor_for_token(cookie["value"]) is None
    api.app.close()
    page.goto(f"{dsgen_server.url}/datasets")
    page.wait_for_url("**/auth/login**")


def test_viewer_sees_no_edit_controls_and_cannot_change_anything(new_page, dsgen_server, team):
    api, started = team
    page = new_page("vera", PW)
    page.goto(f"{dsgen_server.url}/dataset?version={started.version_id}")
    wait_idle(page)
    page.get_by_role("heading", name="field-data / train v1.0.0").wait_for()
    assert page.get_by_role("heading", name="Permissions").count() == 0
    assert page.get_by_role("button", name="Grant").count() == 0
    assert page.get_by_role("button", name="Delete group").count() == 0
    assert page.get_by_role("link", name="Admin").count() == 0
    shot(page, "21-viewer-dataset")
    # A crafted request with vera's own session gets no further than the core.
    token = next(c["value"] for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    vera = api.actor_for_token(token)
    assert vera.username == "vera"
    for crafted in (lambda: api.grant(vera, "field-data", "vera", "owner"),
                    lambda: api.delete_group(vera, "field-data"),
                    lambda: api.set_visibility(vera, "field-data", "public"),
                    lambda: api.start_import(vera, ImportRequest(path="/tmp", group="field-data"))):
        with pytest.raises(PermissionDenied):
            crafted()
    if hasattr(api, "add_tags"):  # tagging (issue 4) goes through the same check
        with pytest.raises(PermissionDenied):
            api.add_tags(vera, started.version_id, 1, "sneaky")


def test_owner_grants_access_and_the_other_user_then_sees_the_group(new_page, dsgen_server, team):
    api, started = team
    dave = new_page("dave", PW)
    wait_idle(dave)
    assert dave.get_by_text("field-data").count() == 0
    olga = new_page("olga", PW)
    olga.goto(f"{dsgen_server.url}/dataset?version={started.version_id}")
    wait_idle(olga)
    olga.get_by_role("heading", name="Permissions").wait_for()
    # olga shares no organization with dave: the list offers only herself and vera (already granted) ...
    assert sorted(options(olga, "User")) == ["olga", "vera"]
    # ... and anyone else is granted by exact name
    fill(olga, "…or exact username / e-mail", "dave")
    pick(olga, "Role", "editor")
    act(olga, lambda: olga.get_by_role("button", name="Grant").click())
    wait_idle(olga)
    olga.locator('[data-testid="stDataFrame"]').filter(has_text="dave").wait_for(state="attached")
    shot(olga, "22-owner-access")
    assert {(g.username, g.role) for g in api.list_grants(api.actor("olga"), "field-data")} == {
        ("vera", "viewer"), ("dave", "editor")}
    dave.reload()  # a new session: its run counter starts again at 1
    wait_idle(dave)
    dave.get_by_text("field-data").first.wait_for()
    shot(dave, "23-grantee-datasets")
    audit = [e.action for e in api.list_audit(api.default_actor, username="olga")]
    assert "group.grant" in audit and "login" in audit


def test_admin_creates_a_user_who_can_then_log_in(new_page, dsgen_server):
    page = new_page()
    page.goto(f"{dsgen_server.url}/admin")
    wait_idle(page)
    page.get_by_label("Username", exact=True).fill("newbie")
    act(page, lambda: page.get_by_role("button", name="Create user").click())
    text = page.get_by_text("One-time password").inner_text()
    one_time = text.split("`")[1] if "`" in text else page.locator("code").last.inner_text()
    shot(page, "24-admin-users")
    other = new_page("newbie", one_time)
    assert other.get_by_text("Signed in as newbie").is_visible()
    page.goto(f"{dsgen_server.url}/audit")
    wait_idle(page)
    page.locator('[data-testid="stDataFrame"]').filter(has_text="user.create").wait_for(state="attached")
    shot(page, "25-audit")
