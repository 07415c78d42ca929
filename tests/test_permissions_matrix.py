"""The permission matrix through the facade: role x visibility x action, allowed or refused.

Roles: site admin, owner, editor (grant), viewer (grant), member of the group's organization,
stranger. Refusals: a group one may not read is NotFound (its name does not leak); a group one may
read but not change is PermissionDenied with a message naming the role needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from helpers import open_import_root, simple_export

from dsgen_core.api import ImportRequest
from dsgen_core.errors import NotFound, PermissionDenied

PW = "a-long-test-password"
ROLES = ["admin", "owner", "editor", "viewer", "member", "stranger"]
READ_ACTIONS = ["list", "open", "query", "insight", "sql", "export"]
EDIT_ACTIONS = ["import", "tag"]
OWNER_ACTIONS = ["grant", "visibility", "delete"]


@dataclass
class World:
    api: object
    actors: dict
    group_id: int
    version_id: int
    export: object
    out: object


@pytest.fixture
def world(api, admin, tmp_path) -> World:
    actors = {"admin": admin}
    for name in ["owner", "editor", "viewer", "member", "stranger", "zed"]:
        api.create_user(admin, name, password=PW)
        actors[name] = api.actor(name)
    api.create_org(admin, "acme")
    api.add_member(admin, "acme", "member")
    api.add_member(admin, "acme", "owner")
    export = simple_export(tmp_path / "exp", n=2)
    open_import_root(api, tmp_path)
    started = api.start_import(actors["owner"], ImportRequest(path=str(export), group="g"))
    assert api.run_job_here(actors["owner"], started.job_id).status == "SUCCEEDED"
    api.grant(actors["owner"], "g", "editor", "editor")
    api.grant(actors["owner"], "g", "viewer", "viewer")
    return World(api, actors, started.group_id, started.version_id, export, tmp_path / "out")


def attempt(w: World, role: str, action: str) -> str:
    """Run one action as one role; 'ok', 'notfound' or 'denied'. Undo what changed state."""
    api, actor, admin = w.api, w.actors[role], w.actors["admin"]
    try:
        if action == "list":
            names = [g.name for g in api.list_groups(actor)]
            return "ok" if "g" in names else "notfound"
        if action == "open":
            api.get_group(actor, w.group_id)
            api.get_version(actor, w.version_id)
        elif action == "query":
            assert api.sample_images(actor, w.version_id, limit=5)
            assert api.search_images(actor, w.version_id, "boxes>0").total == 2
        elif action == "insight":
            assert api.class_counts(actor, w.version_id)
            assert api.insight(actor, w.version_id, "classes") is not None
        elif action == "sql":
            result = api.run_sql(actor, "SELECT count(*) AS n FROM images", version_ids=[w.version_id])
            assert result.table.column("n").to_pylist() == [2]
            assert api.run_sql(actor, "SELECT count(*) AS n FROM images").table.column("n").to_pylist() == [2]
        elif action == "tag":
            api.add_tags(actor, w.version_id, 1, f"by-{role}")
            api.remove_tags(actor, w.version_id, 1, f"by-{role}")
        elif action == "export":
            api.export_coco(actor, w.version_id, w.out / f"{role}.json")
        elif action == "import":
            api.start_import(actor, ImportRequest(path=str(w.export), group="g", split=f"s-{role}"))
        elif action == "grant":
            api.grant(actor, w.group_id, "zed", "viewer")
            api.revoke(actor, w.group_id, "zed")
        elif action == "visibility":
            before = api.get_group(admin, w.group_id)
            api.set_visibility(actor, w.group_id, "private")
            api.set_visibility(admin, w.group_id, before.visibility, before.organization)
        elif action == "delete":
            api.delete_group(actor, w.group_id)
            api.restore_group(admin, w.group_id)
        else:
            raise AssertionError(action)
        return "ok"
    except NotFound:
        return "notfound"
    except PermissionDenied as exc:
        assert ("needs" in str(exc) and role in str(exc)) or "is taken" in str(exc) or actor.username in str(exc)
        return "denied"


def expected(role: str, visibility: str, action: str) -> str:
    reads = role in ("admin", "owner", "editor", "viewer") or (
        role == "member" and visibility in ("organization", "public")) or (
        role == "stranger" and visibility == "public")
    if not reads:
        return "denied" if action == "import" else "notfound"  # import: "the name is taken"
    needed = "viewer" if action in READ_ACTIONS else "editor" if action in EDIT_ACTIONS else "owner"
    rank = {"admin": 3, "owner": 3, "editor": 2, "viewer": 1, "member": 1, "stranger": 1}[role]
    return "ok" if rank >= {"viewer": 1, "editor": 2, "owner": 3}[needed] else "denied"


@pytest.mark.parametrize("visibility", ["private", "organization", "public"])
def test_permission_matrix(world, visibility):
    api = world.api
    api.set_visibility(world.actors["owner"], "g", visibility, "acme" if visibility == "organization" else None)
    got, want = {}, {}
    for role in ROLES:
        for action in READ_ACTIONS + EDIT_ACTIONS + OWNER_ACTIONS:
            got[(role, action)] = attempt(world, role, action)
            want[(role, action)] = expected(role, visibility, action)
    wrong = {k: (got[k], want[k]) for k in got if got[k] != want[k]}
    assert not wrong, f"visibility={visibility}: (got, expected) per (role, action): {wrong}"


def test_refusals_do_not_leak_private_names(world):
    api, stranger = world.api, world.actors["stranger"]
    with pytest.raises(NotFound) as exc:
        api.get_group(stranger, "g")
    assert str(exc.value) == "dataset group 'g' not found"  # as for a group that does not exist
    with pytest.raises(NotFound) as exc:
        api.get_version(stranger, world.version_id)
    assert str(exc.value) == f"dataset version {world.version_id} not found"
    assert api.counts(stranger) == {"groups": 0, "versions": 0}
    assert api.counts(world.actors["viewer"])["groups"] == 1


def test_viewer_is_told_which_role_is_needed(world):
    with pytest.raises(PermissionDenied) as exc:
        world.api.start_import(world.actors["viewer"], ImportRequest(path=str(world.export), group="g"))
    assert "viewer" in str(exc.value) and "editor" in str(exc.value)


def test_a_grant_of_owner_gives_owner_rights_and_revoke_takes_them_back(world):
    api, owner = world.api, world.actors["owner"]
    api.grant(owner, "g", "stranger", "owner")
    assert [g.role for g in api.list_groups(world.actors["stranger"])] == ["owner"]
    api.grant(world.actors["stranger"], "g", "zed", "editor")  # an owner by grant may grant
    api.revoke(owner, "g", "stranger")
    assert api.list_groups(world.actors["stranger"]) == []
    assert {(g.username, g.role) for g in api.list_grants(owner, "g")} == {
        ("editor", "editor"), ("viewer", "viewer"), ("zed", "editor")}


def test_organization_visibility_needs_membership_of_the_owner(world, api):
    api.create_org(world.actors["admin"], "other")
    with pytest.raises(PermissionDenied, match="not a member"):
        api.set_visibility(world.actors["owner"], "g", "organization", "other")
    with pytest.raises(Exception, match="needs the organization"):
        api.set_visibility(world.actors["owner"], "g", "organization")


def test_sql_sees_nothing_of_a_group_one_may_not_read(world):
    api, stranger = world.api, world.actors["stranger"]
    assert api.run_sql(stranger, "SELECT count(*) AS n FROM images").table.column("n").to_pylist() == [0]
    assert api.run_sql(stranger, "SELECT count(*) AS n FROM versions").table.column("n").to_pylist() == [0]
    with pytest.raises(NotFound):
        api.run_sql(stranger, "SELECT * FROM images", version_ids=[world.version_id])
