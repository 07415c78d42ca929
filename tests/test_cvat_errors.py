"""Each failure the CVAT client must explain clearly, and secrets never leaking into logs or errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from cvat_fake import FakeCvat, free_port
from cvat_fake.fixtures import FAST_RETRY, client_for, fake_cvat, load_doc, make_fake, small_export  # noqa: F401

from dsgen_core.cvat import (
    AttributeSpec,
    Credentials,
    CvatAuthError,
    CvatClient,
    CvatError,
    CvatLabelMismatch,
    CvatNotAcceptable,
    CvatRequestFailed,
    CvatTaskDeleted,
    CvatUnavailable,
    CvatUnsupportedVersion,
    CvatWrongUrl,
    LabelSpec,
    UploadFile,
    flat_names,
    labels_from_coco,
)

CAR = LabelSpec("car", "any", (AttributeSpec("color", "select", ("red", "blue")),))


def test_wrong_url(fake_cvat: FakeCvat) -> None:  # noqa: F811
    creds = Credentials.login(fake_cvat.username, fake_cvat.password)
    with pytest.raises(CvatWrongUrl, match="does not look like a CVAT server.*HTTP 404"):
        CvatClient.connect(fake_cvat.url + "/not-cvat", creds, retry=FAST_RETRY)
    with pytest.raises(CvatWrongUrl, match="not an http"):
        CvatClient.connect("ftp://127.0.0.1/", creds)
    with pytest.raises(CvatWrongUrl, match="not in the URL"):
        CvatClient.connect(f"http://u:{fake_cvat.password}@127.0.0.1:{fake_cvat.port}", creds)


def test_accept_header_and_a_406_reported_as_what_it_is(fake_cvat: FakeCvat) -> None:  # noqa: F811
    """CVAT serves only application/vnd.cvat+json; a 406 is a client problem, never "not a CVAT server"."""
    with client_for(fake_cvat) as client:
        client.list_tasks()
    assert fake_cvat.log and {r.headers.get("Accept") for r in fake_cvat.log} == {"application/vnd.cvat+json"}
    refused = {"detail": "Could not satisfy the request Accept header."}
    fake_cvat.fail(path="/api/server/about", status=406, body=refused)
    with pytest.raises(CvatNotAcceptable, match=r"HTTP 406.*Could not satisfy the request Accept header.*"
                                                r"not a wrong URL") as err:
        client_for(fake_cvat)
    assert err.value.status == 406 and not isinstance(err.value, CvatWrongUrl)
    with client_for(fake_cvat) as client:
        fake_cvat.fail(path="/api/tasks$", status=406, body=refused)
        with pytest.raises(CvatNotAcceptable, match="list tasks.*HTTP 406"):
            client.list_tasks()


def test_cvat_down() -> None:
    port = free_port()
    with pytest.raises(CvatUnavailable, match=r"127.0.0.1:\d+ is unavailable.*cannot connect.*Is CVAT running"):
        CvatClient.connect(f"http://127.0.0.1:{port}", Credentials.login("u", "p"), retry=FAST_RETRY)


def test_cvat_answering_503_forever(fake_cvat: FakeCvat) -> None:  # noqa: F811
    fault = fake_cvat.fail(path="/api/server/about", status=503, times=-1)
    with pytest.raises(CvatUnavailable, match="failed 4 times.*HTTP 503"):
        client_for(fake_cvat)
    assert fault.hits == FAST_RETRY.attempts


def test_bad_credentials(fake_cvat: FakeCvat) -> None:  # noqa: F811
    with pytest.raises(CvatAuthError, match="rejected the login of user 'dsgen-bot': wrong username or password"):
        client_for(fake_cvat, Credentials.login(fake_cvat.username, "wrong-password"))
    with pytest.raises(CvatAuthError, match="refused the credentials"):
        client_for(fake_cvat, Credentials.token("0" * 40))
    with pytest.raises(CvatAuthError):
        client_for(fake_cvat, Credentials.basic(fake_cvat.username, "nope"))


def test_unsupported_version(make_fake) -> None:  # noqa: F811
    with pytest.raises(CvatUnsupportedVersion, match="2.15.3 is too old"):
        client_for(make_fake("2.15.3"))


def test_label_mismatch_with_existing_project(fake_cvat: FakeCvat) -> None:  # noqa: F811
    with client_for(fake_cvat) as client:
        project = client.ensure_project("shared", [CAR, LabelSpec("person", "rectangle")])
        assert client.ensure_project("shared", [CAR]).id == project.id  # a subset fits
        wanted = [
            LabelSpec("car", "any", (AttributeSpec("color", "select", ("red", "green")),
                                     AttributeSpec("parked", "checkbox", ("false",)))),
            LabelSpec("person", "polygon"),
            LabelSpec("dog"),
        ]
        with pytest.raises(CvatLabelMismatch) as err:
            client.ensure_project("shared", wanted)
    assert err.value.problems == [
        "attribute car.color lacks values ['green']",
        "label 'car' has no attribute 'parked'",
        "label 'person' is 'rectangle' in CVAT, we need 'polygon'",
        "label 'dog' is missing",
    ]
    assert "CVAT project 'shared'" in str(err.value)


def _task_with_images(client: CvatClient, export: Path, labels: list[LabelSpec]) -> tuple[int, dict]:
    doc = load_doc(export)
    names = flat_names([im["file_name"] for im in doc["images"]])
    files = [UploadFile(n, export / "images" / im["file_name"]) for n, im in zip(names, doc["images"], strict=True)]
    task = client.create_task("t", labels=labels, segment_size=10)
    client.upload_images(task.id, files, image_quality=70)
    return task.id, dict(doc, images=[dict(im, file_name=n) for im, n in zip(doc["images"], names, strict=True)])


def test_annotations_that_do_not_fit_the_task_labels(fake_cvat: FakeCvat, small_export: Path) -> None:  # noqa: F811
    with client_for(fake_cvat) as client:
        labels = [lab for lab in labels_from_coco(load_doc(small_export)) if lab.name != "dog"]
        labels = [LabelSpec(lab.name, lab.type) if lab.name == "person" else lab for lab in labels]
        task_id, doc = _task_with_images(client, small_export, labels)
        with pytest.raises(CvatLabelMismatch) as err:
            client.upload_annotations(task_id, json.dumps(doc).encode())
        assert "category 'dog' is not a label of the task" in err.value.problems
        assert "attribute 'pose' is not declared on label 'person' (CVAT would drop it)" in err.value.problems
        assert not fake_cvat.requests(path="/annotations")  # refused before sending anything
        # unchecked, CVAT itself fails the import request: a clear CvatRequestFailed
        with pytest.raises(CvatRequestFailed, match="Label 'dog' is not registered for this task"):
            client.upload_annotations(task_id, json.dumps(doc).encode(), check_labels=False)


def test_task_deleted_in_cvat(fake_cvat: FakeCvat, small_export: Path) -> None:  # noqa: F811
    with client_for(fake_cvat) as client:
        task_id, doc = _task_with_images(client, small_export, labels_from_coco(load_doc(small_export)))
        fake_cvat.delete_task(task_id)
        for call in (
            lambda: client.get_task(task_id),
            lambda: client.export_coco(task_id, fake_cvat.root / "x.zip"),
            lambda: client.upload_annotations(task_id, json.dumps(doc).encode()),
            lambda: client.upload_annotations(task_id, json.dumps(doc).encode(), check_labels=False),
            lambda: client.task_status(task_id),
        ):
            with pytest.raises(CvatTaskDeleted, match=f"CVAT task {task_id} does not exist.*deleted in CVAT") as err:
                call()
            assert err.value.task_id == task_id


def test_task_deleted_while_exporting(make_fake, small_export: Path) -> None:  # noqa: F811
    fake = make_fake("2.72.0", request_delay=0.2)
    with client_for(fake) as client:
        task_id, _ = _task_with_images(client, small_export, labels_from_coco(load_doc(small_export)))
        rq_id = client.start_export(task_id)
        fake.delete_task(task_id)
        with pytest.raises(CvatRequestFailed, match="deleted"):
            client.wait(rq_id)


def test_bad_image_fails_the_create_request(fake_cvat: FakeCvat) -> None:  # noqa: F811
    with client_for(fake_cvat) as client:
        task = client.create_task("bad", labels=[CAR], segment_size=10)
        with pytest.raises(CvatRequestFailed, match="Unidentified image file: broken.jpg"):
            client.upload_images(task.id, [UploadFile("broken.jpg", data=b"not a jpeg")], image_quality=70)
        assert client.task_status(task.id)["state"] == "Failed"
        with pytest.raises(ValueError, match="image_quality"):
            client.upload_images(task.id, [UploadFile("a.jpg", data=b"x")], image_quality=0)
        with pytest.raises(ValueError, match="flat file name"):
            client.upload_images(task.id, [UploadFile("a/b.jpg", data=b"x")], image_quality=70)


def test_no_secret_in_logs_errors_or_reprs(fake_cvat: FakeCvat, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    caplog.set_level(logging.DEBUG)  # everything: ours, httpx, httpcore
    secrets = [fake_cvat.password]
    texts: list[str] = []
    creds = Credentials.login(fake_cvat.username, fake_cvat.password)
    texts += [repr(creds), str(creds)]
    with client_for(fake_cvat, creds) as client:
        texts.append(repr(client))
        secrets.append(client._key)  # the token obtained by the login
        fake_cvat.fail(path="/api/tasks", status=503, times=2)
        client.list_tasks()
        fake_cvat.fail(path="/api/projects", status=400, times=1)
        with pytest.raises(CvatError) as err:
            client.create_project("p", [CAR])
        texts += [str(err.value), repr(err.value)]
    pat = fake_cvat.add_access_token()
    secrets.append(pat)
    for creds in (Credentials.login(fake_cvat.username, fake_cvat.password + "x"), Credentials.token(pat),
                  Credentials.basic(fake_cvat.username, fake_cvat.password + "x"), Credentials.access_token(pat)):
        with pytest.raises(CvatError) as err:
            client_for(fake_cvat, creds)
        texts += [str(err.value), repr(err.value), repr(creds), str(creds)]
    texts.append(caplog.text)
    assert "HTTP 503" in caplog.text or "retry" in caplog.text  # the logs did capture our traffic
    for secret in secrets:
        assert secret and len(secret) >= 8
        for text in texts:
            assert secret not in text
