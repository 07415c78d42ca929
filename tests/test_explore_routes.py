"""The thumbnail and image routes over real HTTP (uvicorn in a thread, the log-in middleware in front):
no cookie → 401 (or a redirect to the log-in for a browser), no read right → 404 like a missing image,
owner → 200 image/jpeg; an image without bytes gets the placeholder."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware

from dsgen_core.api import ImportRequest
from dsgen_core.auth import SESSION_COOKIE
from dsgen_core.sample_data import SampleSpec, generate_cvat_coco_zip


@pytest.fixture(scope="module")
def sample_zip(tmp_path_factory) -> Path:
    return generate_cvat_coco_zip(tmp_path_factory.mktemp("gen") / "s.zip", SampleSpec(num_images=8, seed=2, workers=1))


@pytest.fixture
def server(dsgen_env) -> Iterator[str]:
    """The web routes of pages/_web_auth.py behind RequireLogin, served for real on a free port."""
    from pages import _web_auth
    from pages._common import _open_api

    _open_api.clear()
    _web_auth._seen.clear()
    app = Starlette(routes=_web_auth.ROUTES, middleware=[Middleware(_web_auth.RequireLogin)])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        _web_auth.api().app.close()
        _open_api.clear()


def imported(api, zip_path: Path) -> tuple[int, list[int]]:
    actor = api.default_actor
    started = api.start_import(actor, ImportRequest(path=str(zip_path), group="private-street"))
    assert api.run_job_here(actor, started.job_id).status == "SUCCEEDED"
    return started.version_id, api.search_images(actor, started.version_id, "", limit=10).image_ids


def cookie(api, user: str, password: str) -> dict[str, str]:
    return {SESSION_COOKIE: api.login(user, password).token}


def test_thumbnail_route_rights(server, api, sample_zip):
    vid, ids = imported(api, sample_zip)
    api.create_user(api.default_actor, "eve", password="eve-password-1")
    url = f"{server}/thumb/{vid}/{ids[0]}"

    r = httpx.get(url)
    assert r.status_code == 401
    r = httpx.get(url, headers={"Accept": "text/html"})
    assert r.status_code == 303 and r.headers["location"].startswith("/auth/login?next=")

    eve, owner = cookie(api, "eve", "eve-password-1"), cookie(api, "admin", "test-admin-pw")
    r = httpx.get(url, cookies=eve)
    assert r.status_code == 404
    missing = httpx.get(f"{server}/thumb/{vid}/99999", cookies=owner)
    assert missing.status_code == 404 and missing.text == r.text  # forbidden looks exactly like missing

    r = httpx.get(url, cookies=owner)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content[:3] == b"\xff\xd8\xff" and "private" in r.headers["cache-control"]
    full = httpx.get(f"{server}/image/{vid}/{ids[0]}", cookies=owner)
    assert full.status_code == 200 and full.headers["content-type"] == "image/jpeg"
    assert len(full.content) > len(r.content)
    assert httpx.get(f"{server}/image/{vid}/{ids[0]}", cookies=eve).status_code == 404

    api.grant(api.default_actor, "private-street", "eve", "viewer")
    assert httpx.get(url, cookies=eve).status_code == 200


def test_placeholder_when_bytes_are_gone(server, api, sample_zip):
    vid, ids = imported(api, sample_zip)
    owner = cookie(api, "admin", "test-admin-pw")
    api.app.storage.local_path(_uri(api, vid, ids[1])).unlink()
    r = httpx.get(f"{server}/thumb/{vid}/{ids[1]}", cookies=owner)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.headers["cache-control"] == "no-store"  # comes back once the bytes are there again


def _uri(api, vid: int, iid: int) -> str:

    return api.app.engines.get(vid).fetchall("SELECT uri FROM images WHERE image_id = $i", {"i": iid})[0][0]
