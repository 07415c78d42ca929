"""Pure parts of the CVAT client: exact multipart sizes, the batch bound, frame names, version switches."""

from __future__ import annotations

import random

import pytest

from dsgen_core.cvat import CvatUnsupportedVersion, Features, ServerVersion, UploadFile, flat_names
from dsgen_core.cvat.multipart import MultipartBody
from dsgen_core.cvat.upload import plan_batches


def test_multipart_size_is_exact_and_bodies_respect_the_bound() -> None:
    rng = random.Random(5)
    files = [UploadFile(f'img "{i}".jpg', data=rng.randbytes(rng.randint(0, 5000))) for i in range(60)]
    body = MultipartBody([("image_quality", "70")], [(f"client_files[{i}]", f) for i, f in enumerate(files)])
    assert len(b"".join(body.chunks())) == body.size
    for bound in (6000, 20_000, 1 << 20):
        batches, too_big = plan_batches(files, bound, max_files=7)
        assert not too_big
        assert [f for b in batches for _, f in b.files] == files  # order kept, nothing lost
        for b in batches:
            real = MultipartBody([], [(f"client_files[{k}]", f) for k, (_, f) in enumerate(b.files)])
            assert real.size == b.size == len(b"".join(real.chunks())) <= bound
            assert len(b.files) <= 7
    batches, too_big = plan_batches([*files, UploadFile("big", data=b"x" * 7000)], 6000, 100)
    assert [f.name for f in too_big] == ["big"]
    # every batch carries the data fields (CVAT checks image_quality on each): the bound counts them
    fields = [("image_quality", "70"), ("sorting_method", "predefined"), ("use_cache", "true")]
    for bound in (6000, 20_000):
        batches, too_big = plan_batches(files, bound, max_files=7, fields=fields)
        assert not too_big and [f for b in batches for _, f in b.files] == files
        for b in batches:
            real = MultipartBody(fields, [(f"client_files[{k}]", f) for k, (_, f) in enumerate(b.files)])
            assert real.size == b.size == len(b"".join(real.chunks())) <= bound
    tight = MultipartBody([], [("client_files[0]", files[0])]).size  # fits alone without fields, not with
    assert [f.name for f in plan_batches(files[:1], tight, 100, fields=fields)[1]] == [files[0].name]


def test_flat_names() -> None:
    assert flat_names(["a/b/c.jpg", "a__b/c.jpg", "c.jpg", "./c.jpg"]) == [
        "a__b__c.jpg", "a__b__c~1.jpg", "c.jpg", "c~1.jpg"]
    with pytest.raises(ValueError):
        flat_names(["/"])


def test_version_switches() -> None:
    def f(v: str) -> Features:
        return Features.of(ServerVersion.parse(v))

    assert f("v2.16.0").annotations_import_method == "PUT" and f("2.38.0").annotations_import_method == "POST"
    assert f("2.31.9").legacy_export_get and not f("2.32.0").legacy_export_get
    assert not f("2.47.3").personal_access_tokens and f("2.48.0-dev").personal_access_tokens
    assert ServerVersion.parse("2.100.1") > ServerVersion.parse("2.72.0")
    with pytest.raises(CvatUnsupportedVersion):
        f("2.15.9")
    with pytest.raises(CvatUnsupportedVersion):
        ServerVersion.parse("latest")


def test_object_and_list_attributes_are_declared_and_sent_as_json_text() -> None:
    import json

    import pyarrow as pa

    from dsgen_core.cvat import labels_from_coco
    from dsgen_core.cvat_sync.outgoing import json_text_attributes

    doc = {"categories": [{"id": 1, "name": "car"}], "annotations": [
        {"category_id": 1, "attributes": {"meta": {"a": [1, 2]}, "flag": True, "tags": ["x"]}},
        {"category_id": 1, "attributes": {"meta": "plain", "flag": False, "tags": ["y", "z"]}}]}
    (car,) = labels_from_coco(doc)
    assert {a.name: a.input_type for a in car.attributes} == {"flag": "checkbox", "meta": "text", "tags": "text"}
    rows = ['{"meta":{"a":[1,2]},"flag":true}', '{"note":"a: {b}","n":1}', None, '{"tags":["é"]}']
    out = json_text_attributes(pa.table({"attributes": pa.array(rows, pa.string())})).column("attributes")
    assert [json.loads(v) if v else v for v in out.to_pylist()] == [
        {"meta": '{"a":[1,2]}', "flag": True}, {"note": "a: {b}", "n": 1}, None, {"tags": '["é"]'}]
    assert out.to_pylist()[1] == rows[1]  # a false hit (inside a string) is left as it was
