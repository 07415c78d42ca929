"""A server with import roots and one user per role, shared by the facade, CLI and browser tests of server paths.

Import roots: `open` (everyone), `acme` (organization acme: the owner), `team` (users editor and viewer);
`private` is no root. The owner's dataset `g` is stored in the data folder; `thief` is an export in the
open root whose image is a link to one of the owner's stored images.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from helpers import image_rec, simple_export, write_export

from dsgen_core.api import ImportRequest

PW = "a-long-test-password"
ROLES = ["admin", "owner", "editor", "viewer", "stranger"]
ALLOWED = {  # role -> path cases accepted; every other case is refused with the one message
    "admin": {"open", "acme", "team", "private", "private-missing", "dotdot", "link-out"},
    "owner": {"open", "acme"},
    "editor": {"open", "team"},
    "viewer": {"open", "team"},
    "stranger": {"open"},
}


def finish(api, actor, job_id: int):  # noqa: ANN001, ANN201
    """Run the job here, or wait for the worker that took it first."""
    info = api.run_job_here(actor, job_id)
    deadline = time.monotonic() + 60
    while not info.finished and time.monotonic() < deadline:
        time.sleep(0.1)
        info = api.get_job(actor, job_id)
    return info


@dataclass
class World:
    api: object
    actors: dict
    tokens: dict
    paths: dict  # case -> path
    server: Path
    stored_blob: Path  # the owner's image in DSGEN_HOME/storage


def build_world(api, admin, tmp_path: Path) -> World:  # noqa: ANN001
    actors, tokens = {"admin": admin}, {"admin": api.login("admin", "test-admin-pw", kind="api").token}
    for name in ROLES[1:]:
        api.create_user(admin, name, password=PW)
        actors[name] = api.actor(name)
        tokens[name] = api.login(name, PW, kind="api").token
    api.create_org(admin, "acme")
    api.add_member(admin, "acme", "owner")
    server = tmp_path / "server"
    for folder in ("open", "acme", "team", "private"):
        simple_export(server / folder / "exp", n=2)
    api.add_import_root(admin, str(server / "open"))
    api.add_import_root(admin, str(server / "acme"), organizations=["acme"])
    api.add_import_root(admin, str(server / "team"), users=["editor", "viewer"])
    # the owner's private dataset, stored in dsgen's data folder
    started = api.start_import(actors["owner"], ImportRequest(path=str(server / "acme" / "exp"), group="g"))
    assert finish(api, actors["owner"], started.job_id).status == "SUCCEEDED"
    api.grant(actors["owner"], "g", "editor", "editor")
    api.grant(actors["owner"], "g", "viewer", "viewer")
    blob = next((api.app.settings.storage_root / "blobs").rglob("*.jpg"))
    # an export inside the open root whose one image is a link to that stored image
    thief = write_export(server / "open" / "thief", json.dumps({
        "images": [image_rec(1, "stolen.jpg", 64, 48)], "annotations": [],
        "categories": [{"id": 1, "name": "car", "supercategory": ""}]}))
    (thief / "images" / "stolen.jpg").symlink_to(blob)
    (server / "open" / "link").symlink_to(server / "private" / "exp")
    paths = {
        "open": server / "open" / "exp",
        "acme": server / "acme" / "exp",
        "team": server / "team" / "exp",
        "private": server / "private" / "exp",
        "private-missing": server / "private" / "nothing-here",
        "dotdot": Path(f"{server}/open/../private/exp"),
        "link-out": server / "open" / "link",
        "home": api.app.settings.home,
        "blob": blob,
        "thief": thief,
    }
    return World(api, actors, tokens, {k: str(v) for k, v in paths.items()}, server, blob)
