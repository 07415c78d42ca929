"""Retries with backoff on 429/5xx/dropped connections/slow answers, and no blind retry of creates."""

from __future__ import annotations

from pathlib import Path

import pytest
from cvat_fake import FakeCvat
from cvat_fake.fixtures import client_for, fake_cvat, load_doc, make_fake, small_export  # noqa: F401

from dsgen_core.cvat import CvatUnavailable, LabelSpec, UploadFile, flat_names

LABELS = [LabelSpec("car")]


def _files(export: Path) -> list[UploadFile]:
    doc = load_doc(export)
    names = flat_names([im["file_name"] for im in doc["images"]])
    return [UploadFile(n, export / "images" / im["file_name"]) for n, im in zip(names, doc["images"], strict=True)]


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_reads_retry_transient_statuses(fake_cvat: FakeCvat, status: int) -> None:  # noqa: F811
    with client_for(fake_cvat) as client:
        task = client.create_task("t", labels=LABELS, segment_size=5)
        fault = fake_cvat.fail(method="GET", path=r"^/api/tasks/\d+$", status=status, times=2, retry_after=0)
        assert client.get_task(task.id).id == task.id
    assert fault.hits == 2


def test_dropped_connection_and_slow_answer_are_retried(fake_cvat: FakeCvat) -> None:  # noqa: F811
    with client_for(fake_cvat, timeout=0.5) as client:
        task = client.create_task("t", labels=LABELS, segment_size=5)
        drop = fake_cvat.fail(method="GET", path=r"^/api/tasks/\d+$", drop=True, times=1)
        assert client.get_task(task.id).id == task.id
        slow = fake_cvat.fail(method="GET", path=r"^/api/tasks/\d+$", delay=1.0, times=1)
        assert client.get_task(task.id).id == task.id
    assert drop.hits == 1 and slow.hits == 1
    assert len(fake_cvat.requests("GET", r"^/api/tasks/\d+$")) >= 4  # each failure was followed by a retry


def test_create_is_retried_only_when_it_surely_did_not_happen(fake_cvat: FakeCvat) -> None:  # noqa: F811
    with client_for(fake_cvat) as client:
        fake_cvat.fail(method="POST", path="^/api/tasks$", status=429, times=1, retry_after=0)
        client.create_task("after-429", labels=LABELS, segment_size=5)  # 429: refused unprocessed, retried
        fake_cvat.fail(method="POST", path="^/api/tasks$", status=502, times=1)
        with pytest.raises(CvatUnavailable, match="HTTP 502"):
            client.create_task("after-502", labels=LABELS, segment_size=5)
        fake_cvat.fail(method="POST", path="^/api/tasks$", drop=True, after=True, times=1)
        with pytest.raises(CvatUnavailable, match="outcome is unknown.*look the object up"):
            client.create_task("lost-answer", labels=LABELS, segment_size=5)
        # the job layer resumes by looking the task up by name instead of creating a second one
        assert [t.name for t in client.list_tasks(name="lost-answer")] == ["lost-answer"]
    assert [t["name"] for t in fake_cvat.tasks()] == ["after-429", "lost-answer"]
    assert len(fake_cvat.requests("POST", "^/api/tasks$")) == 4


def test_upload_survives_failures_mid_way(fake_cvat: FakeCvat, small_export: Path) -> None:  # noqa: F811
    files = _files(small_export)
    with client_for(fake_cvat, max_request_bytes=2 * max(f.size for f in files), tus_chunk_bytes=2048) as client:
        task = client.create_task("t", labels=LABELS, segment_size=5)
        batch = fake_cvat.fail(method="POST", path=r"/data/$", drop=True, times=1)  # Upload-Start lost
        fake_cvat.fail(method="POST", path=r"/data/$", status=503, times=1)
        fake_cvat.fail(method="GET", path=r"^/api/requests/", status=502, times=2)
        big = UploadFile("big.jpg", data=files[0].path.read_bytes() * 3)
        patch = fake_cvat.fail(method="PATCH", drop=True, after=True, times=1)  # applied, answer lost → 409 → HEAD
        client.upload_images(task.id, [*files, big], image_quality=70)
    assert batch.hits == 1 and patch.hits == 1
    assert fake_cvat.requests("HEAD")
    got = fake_cvat.uploaded_files(task.id)
    assert list(got) == [f.name for f in files] + ["big.jpg"]
    assert got["big.jpg"] == big.data


def test_gives_up_after_the_configured_attempts(fake_cvat: FakeCvat) -> None:  # noqa: F811
    with client_for(fake_cvat) as client:
        fault = fake_cvat.fail(method="GET", path="^/api/tasks$", drop=True, times=-1)
        with pytest.raises(CvatUnavailable, match=r"failed 4 times \(connection lost"):
            client.list_tasks()
    assert fault.hits == 4
