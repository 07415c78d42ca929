"""Two editors at once — two threads, then two processes — on the same and on different images:
every tag and value written is there afterwards, and the search engine of each process sees them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from test_curation_support import curation_api, make_version

N = 12  # edits per editor and kind

EDITOR = f"""
import sys, time
from pathlib import Path
from dsgen_core.api import Dsgen as Api
who, vid, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
api = Api.open()
actor = api.default_actor
api.search_images(actor, vid, "")  # load the engine before the start line
(go.parent / f"ready-{{who}}").touch()
while not go.exists():
    time.sleep(0.01)
for k in range({N}):
    api.add_tags(actor, vid, 1, [f"{{who}}-{{k}}", "shared"])          # same image, both editors
    api.add_tags(actor, vid, 2 if who == "a" else 3, f"{{who}}-{{k}}")  # different images
    api.set_metadata(actor, vid, 1, {{f"{{who}}_{{k}}": k, "last": who}})
assert api.search_images(actor, vid, f"tag:{{who}}-{{{N} - 1}}").total == 2
"""


def edit_as(cur, actor, vid: int, who: str, start: threading.Event) -> None:
    start.wait()
    for k in range(N):
        cur.add_tags(actor, vid, 1, [f"{who}-{k}", "shared"])
        cur.add_tags(actor, vid, 2 if who == "a" else 3, f"{who}-{k}")
        cur.set_metadata(actor, vid, 1, {f"{who}_{k}": k, "last": who})


def check_nothing_lost(cur, actor, vid: int) -> None:
    one = cur.image_curation(actor, vid, 1)
    assert set(one.tags) == {f"{w}-{k}" for w in "ab" for k in range(N)} | {"shared"}
    assert {k: v for k, v in one.metadata.items() if k != "last"} == {f"{w}_{k}": k for w in "ab" for k in range(N)}
    assert one.metadata["last"] in ("a", "b")
    assert set(cur.image_curation(actor, vid, 2).tags) == {f"a-{k}" for k in range(N)}
    assert set(cur.image_curation(actor, vid, 3).tags) == {f"b-{k}" for k in range(N)}
    # the engine of this process agrees with the catalog
    assert cur.search_images(actor, vid, "tag:shared").image_ids == [1]
    assert cur.search_images(actor, vid, f"tag:a-{N - 1} OR tag:b-{N - 1}", order_by="image_id").image_ids == [1, 2, 3]
    assert cur.search_images(actor, vid, f"metadata.a_{N - 1}:{N - 1} metadata.b_0:0").image_ids == [1]
    assert cur.curation_seq(actor, vid) == 3 * N * 2


def test_two_threads_lose_nothing(api, admin):
    cur = curation_api(api)
    vid = make_version(api, admin.id)
    cur.search_images(admin, vid, "")
    start = threading.Event()
    errors: list[BaseException] = []

    def run(who: str) -> None:
        try:
            edit_as(cur, admin, vid, who, start)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in "ab"]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join(60)
    assert errors == []
    check_nothing_lost(cur, admin, vid)


def test_two_processes_lose_nothing(api, admin, tmp_path: Path):
    cur = curation_api(api)
    vid = make_version(api, admin.id)
    cur.search_images(admin, vid, "")  # this process's engine: it must catch up with the others' edits
    assert cur.search_images(admin, vid, "tag:shared").total == 0  # remembered at sequence 0: must not be served later
    go = tmp_path / "go"
    root = Path(__file__).resolve().parent.parent
    procs = [subprocess.Popen([sys.executable, "-c", EDITOR, who, str(vid), str(go)], cwd=root, env=dict(os.environ),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for who in "ab"]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{w}").exists() for w in "ab") and time.monotonic() < deadline:
        time.sleep(0.02)
    go.touch()  # both are loaded: they start editing together
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
    check_nothing_lost(cur, admin, vid)
