"""Server paths are resources: who may import (check, register in place, share with CVAT) from where.

Roles: site admin, owner, editor, viewer (of group `g`) and a stranger. Import roots: `open` (everyone),
`acme` (organization acme: the owner), `team` (users editor and viewer). Each server path is tried
through the facade and, with each role's token, through the CLI. A refused path gets one message
whether or not it exists; links and `..` are resolved first; dsgen's data folder is never importable.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from import_world import ALLOWED, ROLES, World, build_world

from dsgen_core.api import ImportRequest
from dsgen_core.errors import InvalidRequest, NotFound, PermissionDenied
from dsgen_core.importing.server_paths import PathRefused

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def world(api, admin, tmp_path, monkeypatch) -> World:
    monkeypatch.setenv("DSGEN_TOKEN_FILE", str(tmp_path / "no-tokens.json"))
    return build_world(api, admin, tmp_path)


CASES = ["open", "acme", "team", "private", "private-missing", "dotdot", "link-out", "home", "blob"]


def outcome(fn) -> str:  # noqa: ANN001
    try:
        fn()
        return "ok"
    except PathRefused as exc:
        assert ("is not inside an import root you may use" in str(exc)
                or "is inside dsgen's data folder, which is never importable" in str(exc)), str(exc)
        return "refused"
    except InvalidRequest as exc:
        assert "no such file or folder" in str(exc)
        return "ok"  # a path one may use that does not exist may say so


def test_server_path_matrix_through_the_facade(world):
    for role in ROLES:  # one installation for all roles: building it is the slow part
        server_path_matrix(world, role)


def server_path_matrix(world: World, role: str) -> None:
    api, actor = world.api, world.actors[role]
    got, want = {}, {}
    for case in CASES:
        req = ImportRequest(path=world.paths[case], group=f"{role}-{case}")
        check = outcome(lambda req=req: api.check_import_path(actor, req))
        start = outcome(lambda req=req: api.start_import(actor, req))
        nas = ImportRequest(path=world.paths[case], group=f"{role}-{case}", split="nas", in_place=True)
        in_place = outcome(lambda nas=nas: api.start_import(actor, nas))
        got[case] = {check, start, in_place}
        want[case] = {"ok" if case in ALLOWED[role] else "refused"}
    wrong = {c: (got[c], want[c]) for c in CASES if got[c] != want[c]}
    assert not wrong, f"{role}: (got, expected) per path: {wrong}"


def test_json_plus_images_folder_needs_both_paths_inside_a_root(world):
    api = world.api
    inside = f"{world.paths['open']}/annotations/instances_default.json"
    for role in ROLES:
        for images, allowed in ((f"{world.paths['open']}/images", True),
                                (f"{world.paths['private']}/images", role == "admin"),
                                (str(world.stored_blob.parent), False)):
            req = ImportRequest(path=inside, images_path=images, group=f"{role}-json")
            got = outcome(lambda req=req, role=role: api.check_import_path(world.actors[role], req))
            assert got == ("ok" if allowed else "refused"), (role, images)


def test_a_link_to_a_stored_image_inside_a_root_does_not_pass(world):
    """The issue's theft: a one-image export in an open folder whose image links into DSGEN_HOME/storage."""
    api = world.api
    for role in ROLES:
        actor = world.actors[role]
        report = api.check_import_path(actor, ImportRequest(path=world.paths["thief"], group=f"{role}-thief"))
        assert report.get("image_outside_root").examples == ["image 1: stolen.jpg"], (role, report.render_text())
        started = api.start_import(actor, ImportRequest(path=world.paths["thief"], group=f"{role}-thief"))
        assert api.run_job_here(actor, started.job_id).status == "FAILED", role
        assert api.get_version(actor, started.version_id).validation_report.get("image_outside_root"), role


def test_refusals_do_not_tell_whether_a_path_exists(world):
    api, stranger = world.api, world.actors["stranger"]
    messages = {}
    for case in ("private", "private-missing", "link-out", "home"):
        with pytest.raises(PathRefused) as exc:
            api.check_import_path(stranger, ImportRequest(path=world.paths[case], group="s"))
        messages[case] = str(exc.value).replace(repr(world.paths[case]), "PATH")
    assert len(set(messages.values())) == 1, messages
    # the images folder of a check is not listed either (no file names from outside one's roots)
    with pytest.raises(PathRefused) as exc:
        api.check_import_path(stranger, ImportRequest(path=f"{world.paths['open']}/annotations/instances_default.json",
                                                      images_path=f"{world.paths['private']}/images", group="s"))
    assert "frame_" not in str(exc.value)


def test_a_root_closed_after_the_request_refuses_the_queued_import(world):
    api, stranger, admin = world.api, world.actors["stranger"], world.actors["admin"]
    started = api.start_import(stranger, ImportRequest(path=world.paths["open"], group="late"))
    api.remove_import_root(admin, str(world.server / "open"))
    assert api.run_job_here(stranger, started.job_id).status == "FAILED"
    message = api.get_version(stranger, started.version_id).validation_report.get("bad_source").message
    assert "is not inside an import root you may use" in message


def test_only_site_admins_manage_roots_and_users_see_theirs(world):
    api, admin = world.api, world.actors["admin"]
    for role in ROLES[1:]:
        with pytest.raises(PermissionDenied):
            api.add_import_root(world.actors[role], str(world.server / "private"))
        with pytest.raises(PermissionDenied):
            api.remove_import_root(world.actors[role], str(world.server / "open"))
    seen = {role: sorted(Path(r.path).name for r in api.list_import_roots(world.actors[role])) for role in ROLES}
    assert seen == {"admin": ["acme", "open", "team"], "owner": ["acme", "open"], "editor": ["open", "team"],
                    "viewer": ["open", "team"], "stranger": ["open"]}
    with pytest.raises(InvalidRequest, match="never importable"):
        api.add_import_root(admin, str(api.app.settings.home / "storage"))
    with pytest.raises(InvalidRequest, match="existing folder"):
        api.add_import_root(admin, "relative/path")
    with pytest.raises(NotFound):
        api.add_import_root(admin, str(world.server / "private"), organizations=["nobody"])
    # adding a root again replaces whom it is open to
    api.add_import_root(admin, str(world.server / "open"), users=["owner"])
    assert [Path(r.path).name for r in api.list_import_roots(world.actors["stranger"])] == []
    assert api.list_audit(admin, action="import_root.update")[0].details["users"] == ["owner"]


def test_a_cvat_share_folder_is_a_server_path_too(world):
    api = world.api
    for role in ROLES[1:]:
        with pytest.raises(PathRefused):
            api.add_cvat_connection(world.actors[role], "nas", "http://127.0.0.1:9", secret="x", username="u",
                                    check=False, share_root=world.paths["private"])
        with pytest.raises(PathRefused):  # the same answer for a folder that does not exist
            api.add_cvat_connection(world.actors[role], "nas", "http://127.0.0.1:9", secret="x", username="u",
                                    check=False, share_root=world.paths["private-missing"])
    conn = api.add_cvat_connection(world.actors["stranger"], "nas", "http://127.0.0.1:9", secret="x", username="u",
                                   check=False, share_root=str(world.server / "open"))
    assert conn.share_root == str((world.server / "open").resolve())
    admin_conn = api.add_cvat_connection(world.actors["admin"], "nas", "http://127.0.0.1:9", secret="x",
                                         username="u", check=False, share_root=world.paths["private"])
    assert admin_conn.share_root


# ----- the CLI, with each role's token, and as the operator ---------------------------------------


def dsgen(*args: str, token: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("DSGEN_TOKEN", None)
    if token:
        env["DSGEN_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "dsgen_core.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_server_path_matrix_through_the_cli_with_tokens(world):
    for role in ROLES:
        for case in ("open", "team", "private"):  # the data folder: see the operator's test below
            proc = dsgen("import", world.paths[case], "--group", f"cli-{role}", "--check", token=world.tokens[role])
            if case in ALLOWED[role]:
                assert proc.returncode == 0 and "no problems found" in proc.stdout, (role, case, proc.stderr)
            else:
                assert proc.returncode == 1, (role, case, proc.stdout)
                assert (f"error: server path {world.paths[case]!r} is not inside an import root you may use"
                        in proc.stderr), (role, case, proc.stderr)
                assert "Traceback" not in proc.stderr


def test_the_operator_keeps_full_access_but_never_the_data_folder(world):
    proc = dsgen("import", world.paths["private"], "--group", "op", "--check")
    assert proc.returncode == 0, proc.stderr
    proc = dsgen("import", str(world.stored_blob), "--group", "op", "--check")
    assert proc.returncode == 1 and "is inside dsgen's data folder, which is never importable" in proc.stderr


def test_import_roots_commands(world):
    private = str(world.server / "private")
    proc = dsgen("import-roots", "add", private, "--org", "acme", "--user", "stranger")
    assert proc.returncode == 0 and f"import root {Path(private).resolve()}  (org acme, user stranger)" in proc.stdout
    listed = dsgen("import-roots", "list").stdout
    assert "open" in listed and "private" in listed
    assert "private" in dsgen("import-roots", "list", token=world.tokens["stranger"]).stdout
    assert "private" not in dsgen("import-roots", "list", token=world.tokens["editor"]).stdout
    refused = dsgen("import-roots", "add", "/", token=world.tokens["owner"])
    assert refused.returncode == 1 and "not a site admin" in refused.stderr
    assert dsgen("import-roots", "remove", private).returncode == 0
    assert "private" not in dsgen("import-roots", "list").stdout
