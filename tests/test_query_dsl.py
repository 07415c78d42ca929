"""The search DSL end to end: every form runs on a small DuckDB and matches a plain-Python reference."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from dsgen_core.lake.schema import ANNOTATIONS_SCHEMA, CATEGORIES_SCHEMA, IMAGES_SCHEMA
from dsgen_core.query import Compiler, QueryError, compile_query, images_sql, parse
from dsgen_core.query.ast import And, AnnGroup, MatchAll, Not, Or, Term

# -- the data: version 1 is what the tests query; version 2 reuses image and category ids ----
CATEGORIES = {
    1: ("person", "human"),
    2: ("car", "vehicle"),
    3: ("traffic light", "outdoor"),
    4: ("bicycle", "vehicle"),
}
V2_CATEGORIES = {1: ("dog", "animal")}
IMAGES = [  # image_id, file_name, width, height, split, sha256
    (1, "train/day_001.jpg", 1920, 1080, "train", "abc123" + "0" * 58),
    (2, "train/night_002.jpg", 640, 480, "train", "abc999" + "1" * 58),
    (3, "val/night_003.png", 1280, 720, "val", "ff0000" + "2" * 58),
    (4, "val/rain_004.jpg", 800, 600, "val", "123456" + "3" * 58),
    (5, "test/a_b%5.jpg", 1024, 768, "test", "deadbe" + "4" * 58),
    (6, "test/a-b-6.jpg", 2048, 1536, "test", "0badf0" + "5" * 58),
    (7, "train/Night_007.JPG", 1280, 1280, "train", "777777" + "6" * 58),
    (8, "train/label_008.jpg", 300, 300, "train", None),
    (9, "unknown/009.jpg", None, None, None, None),
    (10, "train/mixed_010.jpg", 1024, 1024, "train", "101010" + "7" * 58),
]
ANNS = [  # annotation_id, image_id, category_id, type, bbox, area, iscrowd, attributes, score, is_machine
    (101, 1, 1, "BBOX", (10, 10, 50, 100), 5000.0, False, {"occluded": False}, None, False),
    (102, 1, 1, "BBOX", (100, 10, 40, 80), 3200.0, False, None, None, False),
    (103, 1, 1, "BBOX", (200, 10, 30, 60), 1800.0, False, None, None, False),
    (
        104,
        1,
        2,
        "BBOX",
        (0, 500, 600, 400),
        240000.0,
        False,
        {"occluded": False, "rotation": 0.0, "color": "red"},
        None,
        False,
    ),
    (201, 2, 2, "BBOX", (-5, 3, 20, 10), 200.0, False, {"occluded": True, "color": "blue"}, None, False),
    (202, 2, 1, "BBOX", (300, 200, 40, 120), 4800.0, False, {"occluded": False}, None, False),
    (301, 3, 1, "BBOX", (0, 0, 400, 300), 120000.0, True, None, None, False),
    (302, 3, 2, "BBOX", (50, 50, 30, 0), 0.0, False, {"occluded": False}, None, False),
    (501, 5, 4, "BBOX", (5, 5, 100, 80), 8000.0, False, None, 0.9, True),
    (502, 5, 2, "BBOX", (300, 300, 200, 100), 20000.0, False, None, 0.3, True),
    (601, 6, 3, "BBOX", (10, 10, 10, 30), 300.0, False, {"color": "green", "rotation": 90.0}, None, False),
    (602, 6, 3, "BBOX", (40, 10, 10, 30), 300.0, False, {"color": "red", "rotation": 45.0}, None, False),
    (701, 7, 2, "BBOX", (0, 0, 300, 50), 15000.0, False, {"occluded": "true"}, None, False),
    (801, 8, 1, "LABEL", None, None, None, None, None, False),
    (802, 8, None, "LABEL", None, None, None, None, None, False),  # no category
    (1001, 10, 2, "BBOX", (0, 0, 500, 400), 200000.0, False, {"occluded": False}, None, False),
    (1002, 10, 1, "BBOX", (10, 10, 20, 30), 600.0, False, {"occluded": True}, None, False),
]
V2_ANNS = [(9001, 4, 1, "BBOX", (0, 0, 10, 10), 100.0, False, {"occluded": True}, None, False)]
TAGS = [
    (1, "car"),
    (1, "rainy day"),
    (2, "car"),
    (2, "night"),
    (3, "night"),
    (6, "review"),
    (9, "car"),
    (10, "Car"),
]
V2_TAGS = [(4, "car"), (1, "v2only")]
META = [  # image_id, key, value (typed as in Python)
    (1, "color", "red"),
    (1, "speed", 55.0),
    (1, "weather", "rain"),
    (2, "color", "blue"),
    (2, "speed", 30),
    (2, "reviewed", True),
    (3, "speed", 40.0),
    (3, "reviewed", False),
    (5, "color", "Red"),
    (6, "code", "42"),
    (7, "weather", "sun"),
    (7, "Camera", "cam-1"),
]
V2_META = [(4, "color", "red"), (4, "speed", 99.0)]
METADATA_KEYS = ["color", "speed", "weather", "reviewed", "code", "Camera"]


def _image_rows(version: int, anns: list[tuple]) -> list[dict[str, Any]]:
    ids = IMAGES if version == 1 else IMAGES[:4]
    return [
        {
            "image_id": i,
            "file_name": f,
            "width": w,
            "height": h,
            "sha256": s,
            "num_annotations": sum(1 for a in anns if a[1] == i),
            "version_id": version,
            "split": sp,
        }
        for i, f, w, h, sp, s in ids
    ]


def _ann_rows(version: int, anns: list[tuple]) -> list[dict[str, Any]]:
    rows = []
    for aid, img, cat, typ, bbox, area, crowd, attrs, score, machine in anns:
        x, y, w, h = bbox or (None,) * 4
        rows.append(
            {
                "annotation_id": aid,
                "image_id": img,
                "category_id": cat,
                "annotation_type": typ,
                "bbox_x": x,
                "bbox_y": y,
                "bbox_w": w,
                "bbox_h": h,
                "area": area,
                "iscrowd": crowd,
                "attributes": None if attrs is None else json.dumps(attrs),
                "score": score,
                "is_machine": machine,
                "version_id": version,
            }
        )
    return rows


def _meta_rows(version: int, meta: list[tuple]) -> list[dict[str, Any]]:
    rows = []
    for img, key, value in meta:
        kind = (
            "boolean" if isinstance(value, bool) else "number" if isinstance(value, int | float) else "string"
        )
        rows.append(
            {
                "version_id": version,
                "image_id": img,
                "key": key,
                "value_type": kind,
                "value_str": value if kind == "string" else None,
                "value_num": float(value) if kind == "number" else None,
                "value_bool": value if kind == "boolean" else None,
            }
        )
    return rows


def _with_version(schema: pa.Schema, *extra: pa.Field) -> pa.Schema:
    for field in (pa.field("version_id", pa.int64()), *extra):
        schema = schema.append(field)
    return schema


def build_db() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding the five relations the compiled SQL runs against."""
    con = duckdb.connect()
    tables: dict[str, tuple[pa.Schema, list[dict[str, Any]]]] = {
        "images": (
            _with_version(IMAGES_SCHEMA, pa.field("split", pa.string())),
            _image_rows(1, ANNS) + _image_rows(2, V2_ANNS),
        ),
        "annotations": (_with_version(ANNOTATIONS_SCHEMA), _ann_rows(1, ANNS) + _ann_rows(2, V2_ANNS)),
        "categories": (
            _with_version(CATEGORIES_SCHEMA),
            [
                {"category_id": cid, "name": n, "supercategory": s, "version_id": v}
                for v, cats in ((1, CATEGORIES), (2, V2_CATEGORIES))
                for cid, (n, s) in cats.items()
            ],
        ),
        "tags": (
            pa.schema([("version_id", pa.int64()), ("image_id", pa.int64()), ("tag", pa.string())]),
            [
                {"version_id": v, "image_id": i, "tag": t}
                for v, ts in ((1, TAGS), (2, V2_TAGS))
                for i, t in ts
            ],
        ),
        "metadata": (
            pa.schema(
                [
                    ("version_id", pa.int64()),
                    ("image_id", pa.int64()),
                    ("key", pa.string()),
                    ("value_type", pa.string()),
                    ("value_str", pa.string()),
                    ("value_num", pa.float64()),
                    ("value_bool", pa.bool_()),
                ]
            ),
            _meta_rows(1, META) + _meta_rows(2, V2_META),
        ),
    }
    for name, (schema, rows) in tables.items():
        con.register(f"{name}_src", pa.Table.from_pylist(rows, schema=schema))
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_src")  # noqa: S608 - fixed test names
        con.unregister(f"{name}_src")
    return con


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return build_db()


def run(con: duckdb.DuckDBPyConnection, query: str, keys: tuple[str, ...] | list[str] = ()) -> set[int]:
    sql, params = images_sql(compile_query(query, keys), "image_id", version_id=1)
    return {row[0] for row in con.execute(sql, params).fetchall()}


# -- the plain-Python reference ----------------------------------------------------------------
def _ref_images() -> list[dict[str, Any]]:
    out = []
    for i, f, w, h, sp, s in IMAGES:
        anns = []
        for aid, img, cat, typ, bbox, area, crowd, attrs, score, machine in ANNS:
            if img != i:
                continue
            x, y, bw, bh = bbox or (None,) * 4
            name, sup = CATEGORIES.get(cat, (None, None))
            anns.append(dict(id=aid, cat=name, sup=sup, type=typ, x=x, y=y, w=bw, h=bh, area=area,
                             crowd=crowd, attrs=attrs or {}, score=score, machine=machine))  # fmt: skip
        tags = {t for img, t in TAGS if img == i}
        meta = {k: v for img, k, v in META if img == i}
        out.append(dict(id=i, file=f, width=w, height=h, split=sp, sha=s, anns=anns, tags=tags, meta=meta))
    return out


REF = _ref_images()
ALL = {im["id"] for im in REF}


def where(pred: Callable[[dict[str, Any]], bool]) -> set[int]:
    return {im["id"] for im in REF if pred(im)}


def any_ann(pred: Callable[[dict[str, Any]], bool]) -> Callable[[dict[str, Any]], bool]:
    return lambda im: any(pred(a) for a in im["anns"])


def count(im: dict[str, Any], name: str) -> int:
    return sum(1 for a in im["anns"] if a["cat"] == name)


def gt(value: Any, bound: float) -> bool:
    return value is not None and value > bound


def lt(value: Any, bound: float) -> bool:
    return value is not None and value < bound


def is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def attr_true(a: dict[str, Any], key: str) -> bool:
    return str(a["attrs"].get(key)).lower() == "true"


CASES: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
    # tags
    ("tag:car", lambda im: "car" in im["tags"]),
    ("tags:car", lambda im: "car" in im["tags"]),
    ("TAG:car", lambda im: "car" in im["tags"]),
    ("-tag:car", lambda im: "car" not in im["tags"]),
    ("tag!=car", lambda im: "car" not in im["tags"]),
    ('tag:"rainy day"', lambda im: "rainy day" in im["tags"]),
    ("tags:none", lambda im: not im["tags"]),
    ("tags:NONE", lambda im: not im["tags"]),
    ("tags:any", lambda im: bool(im["tags"])),
    ("-tags:none", lambda im: bool(im["tags"])),
    ("has:tags", lambda im: bool(im["tags"])),
    ("tag:v2only", lambda im: False),
    # categories
    ("category:person", lambda im: count(im, "person") >= 1),
    ("CATEGORY:person", lambda im: count(im, "person") >= 1),
    ("categories:person", lambda im: count(im, "person") >= 1),
    ("category:person>=3", lambda im: count(im, "person") >= 3),
    ("category:person>1", lambda im: count(im, "person") > 1),
    ("category:person<1", lambda im: count(im, "person") < 1),
    ("category:person<=1", lambda im: count(im, "person") <= 1),
    ("category:person=1", lambda im: count(im, "person") == 1),
    ("category:person!=1", lambda im: count(im, "person") != 1),
    ("category:person >= 2", lambda im: count(im, "person") >= 2),
    ('category:"traffic light"', lambda im: count(im, "traffic light") >= 1),
    ('category:"traffic light">=2', lambda im: count(im, "traffic light") >= 2),
    ("category!=car", lambda im: count(im, "car") == 0),
    ("-category:car", lambda im: count(im, "car") == 0),
    ("category:dog", lambda im: False),
    ("categories:none", lambda im: not im["anns"]),
    ("categories:any", lambda im: bool(im["anns"])),
    ("has:annotations", lambda im: bool(im["anns"])),
    ("supercategory:vehicle", any_ann(lambda a: a["sup"] == "vehicle")),
    ("supercategory:vehicle>=2", lambda im: sum(a["sup"] == "vehicle" for a in im["anns"]) >= 2),
    # metadata
    ("metadata.color:red", lambda im: im["meta"].get("color") == "red"),
    ("Metadata.color:red", lambda im: im["meta"].get("color") == "red"),
    ("metadata.color=red", lambda im: im["meta"].get("color") == "red"),
    ("metadata.color!=red", lambda im: "color" in im["meta"] and im["meta"]["color"] != "red"),
    ("-metadata.color:red", lambda im: im["meta"].get("color") != "red"),
    ("metadata.speed>40", lambda im: is_num(im["meta"].get("speed")) and im["meta"]["speed"] > 40),
    ("metadata.speed>=40", lambda im: is_num(im["meta"].get("speed")) and im["meta"]["speed"] >= 40),
    ("metadata.speed<40.5", lambda im: is_num(im["meta"].get("speed")) and im["meta"]["speed"] < 40.5),
    ("metadata.speed:30..50", lambda im: is_num(im["meta"].get("speed")) and 30 <= im["meta"]["speed"] <= 50),
    ("metadata.speed:55", lambda im: im["meta"].get("speed") == 55),
    ("metadata.reviewed:true", lambda im: im["meta"].get("reviewed") is True),
    ("metadata.reviewed:FALSE", lambda im: im["meta"].get("reviewed") is False),
    ("metadata.reviewed!=true", lambda im: im["meta"].get("reviewed") is False),
    ('metadata.code:"42"', lambda im: im["meta"].get("code") == "42"),
    ("metadata.code:42", lambda im: False),  # numbers compare value_num; the stored value is text
    ("metadata.weather>rain", lambda im: str(im["meta"].get("weather", "")) > "rain"),
    ("has:metadata.weather", lambda im: "weather" in im["meta"]),
    ("-has:metadata.weather", lambda im: "weather" not in im["meta"]),
    ("metadata.Camera:cam-1", lambda im: im["meta"].get("Camera") == "cam-1"),
    # image fields
    ("width>1024", lambda im: gt(im["width"], 1024)),
    ("WIDTH>1024", lambda im: gt(im["width"], 1024)),
    ("width > 1024", lambda im: gt(im["width"], 1024)),
    ("-width>1024", lambda im: not gt(im["width"], 1024)),
    ("height<=720", lambda im: im["height"] is not None and im["height"] <= 720),
    ("width:640..1280", lambda im: im["width"] is not None and 640 <= im["width"] <= 1280),
    ("width:..800", lambda im: im["width"] is not None and im["width"] <= 800),
    ("width:1500..", lambda im: im["width"] is not None and im["width"] >= 1500),
    ("width!=640..1280", lambda im: im["width"] is not None and not 640 <= im["width"] <= 1280),
    ("width!=640", lambda im: im["width"] is not None and im["width"] != 640),
    ("width=1024", lambda im: im["width"] == 1024),
    ("width>-1", lambda im: im["width"] is not None),
    ("width>1023.5", lambda im: gt(im["width"], 1023.5)),
    ("file:*night*", lambda im: "night" in im["file"]),
    ("file:train/*", lambda im: im["file"].startswith("train/")),
    ("file:*.JPG", lambda im: im["file"].endswith(".JPG")),
    ('file:"test/a_b%5.jpg"', lambda im: im["file"] == "test/a_b%5.jpg"),
    ("file:test/a?b*", lambda im: im["file"].startswith("test/a") and im["file"][7] == "b"),
    ("file:test/a_b*", lambda im: im["file"].startswith("test/a_b")),
    ("file:day_001.jpg", lambda im: False),  # a glob matches the whole path
    ("file!=train/*", lambda im: not im["file"].startswith("train/")),
    ("split:train", lambda im: im["split"] == "train"),
    ("split!=train", lambda im: im["split"] is not None and im["split"] != "train"),
    ("-split:train", lambda im: im["split"] != "train"),
    ("boxes>2", lambda im: len(im["anns"]) > 2),
    ("boxes:0", lambda im: not im["anns"]),
    ("boxes:1..2", lambda im: 1 <= len(im["anns"]) <= 2),
    ("sha:abc", lambda im: (im["sha"] or "").startswith("abc")),
    ("sha:ABC1", lambda im: (im["sha"] or "").startswith("abc1")),
    ("sha:123456", lambda im: (im["sha"] or "").startswith("123456")),
    ("id:3", lambda im: im["id"] == 3),
    ("id:1..3", lambda im: 1 <= im["id"] <= 3),
    ("id:..2", lambda im: im["id"] <= 2),
    ("id:9..", lambda im: im["id"] >= 9),
    ("image_id>8", lambda im: im["id"] > 8),
    # annotation fields (some annotation matches)
    ("bbox.area<1024", any_ann(lambda a: a["w"] is not None and a["w"] * a["h"] < 1024)),
    ("bbox.w>100", any_ann(lambda a: gt(a["w"], 100))),
    ("bbox.h<20", any_ann(lambda a: lt(a["h"], 20))),
    ("bbox.aspect>3", any_ann(lambda a: a["h"] not in (None, 0) and a["w"] / a["h"] > 3)),
    ("bbox.aspect<1", any_ann(lambda a: a["h"] not in (None, 0) and a["w"] / a["h"] < 1)),
    ("bbox.x<0", any_ann(lambda a: lt(a["x"], 0))),
    ("bbox.x>=-5", any_ann(lambda a: a["x"] is not None and a["x"] >= -5)),
    (
        "-bbox.area<1024",
        lambda im: not any(a["w"] is not None and a["w"] * a["h"] < 1024 for a in im["anns"]),
    ),
    ("area>100000", any_ann(lambda a: gt(a["area"], 100000))),
    ("iscrowd:true", any_ann(lambda a: a["crowd"] is True)),
    ("iscrowd:false", any_ann(lambda a: a["crowd"] is False)),
    ("attr.occluded:true", any_ann(lambda a: attr_true(a, "occluded"))),
    ("attr.occluded:false", any_ann(lambda a: a["attrs"].get("occluded") is False)),
    ("attr.color:red", any_ann(lambda a: a["attrs"].get("color") == "red")),
    ("attr.rotation:90", any_ann(lambda a: a["attrs"].get("rotation") == 90)),
    ("attr.rotation>45", any_ann(lambda a: gt(a["attrs"].get("rotation"), 45))),
    (
        "attr.rotation:0..45",
        any_ann(lambda a: a["attrs"].get("rotation") is not None and 0 <= a["attrs"]["rotation"] <= 45),
    ),
    ("has:attr.rotation", any_ann(lambda a: "rotation" in a["attrs"])),
    ("is_machine:true", any_ann(lambda a: a["machine"])),
    ("score>0.5", any_ann(lambda a: gt(a["score"], 0.5))),
    ("score>.25", any_ann(lambda a: gt(a["score"], 0.25))),
    ("type:label", any_ann(lambda a: a["type"] == "LABEL")),
    ("type:BBOX", any_ann(lambda a: a["type"] == "BBOX")),
    # annotation groups: all conditions on the same annotation
    (
        "ann:(category:car attr.occluded:true)",
        any_ann(lambda a: a["cat"] == "car" and attr_true(a, "occluded")),
    ),
    (
        "ann:(category:car bbox.area<1024 attr.occluded:true)",
        any_ann(lambda a: a["cat"] == "car" and a["w"] * a["h"] < 1024 and attr_true(a, "occluded")),
    ),
    ("ann:(category:car OR category:bicycle)", any_ann(lambda a: a["cat"] in ("car", "bicycle"))),
    (
        "ann:(category:person -attr.occluded:true)",
        any_ann(lambda a: a["cat"] == "person" and not attr_true(a, "occluded")),
    ),
    ("ann:(NOT category:person)", any_ann(lambda a: a["cat"] != "person")),
    ("ann:(category!=person)", any_ann(lambda a: a["cat"] != "person")),
    ("ann:(-category:person -category:car)", any_ann(lambda a: a["cat"] not in ("person", "car"))),
    ("ann:(type:label)>=2", lambda im: sum(a["type"] == "LABEL" for a in im["anns"]) >= 2),
    (
        "ann:(supercategory:vehicle is_machine:true)",
        any_ann(lambda a: a["sup"] == "vehicle" and a["machine"]),
    ),
    (
        "ann:(has:attr.rotation attr.color:red)",
        any_ann(lambda a: "rotation" in a["attrs"] and a["attrs"].get("color") == "red"),
    ),
    ("ann:(category:person)>=2", lambda im: count(im, "person") >= 2),
    (
        "ann:(category:person bbox.w<45)>=2",
        lambda im: sum(a["cat"] == "person" and lt(a["w"], 45) for a in im["anns"]) >= 2,
    ),
    ("-ann:(category:car)", lambda im: count(im, "car") == 0),
    (
        "ann:((category:car OR category:person) bbox.h>=100)",
        any_ann(lambda a: a["cat"] in ("car", "person") and gt(a["h"], 99)),
    ),
    # boolean logic and precedence (NOT > AND > OR)
    ("tag:car OR tag:night", lambda im: bool(im["tags"] & {"car", "night"})),
    ("tag:car tag:night", lambda im: {"car", "night"} <= im["tags"]),
    ("tag:car AND NOT tag:night", lambda im: "car" in im["tags"] and "night" not in im["tags"]),
    ("tag:car and not tag:night", lambda im: "car" in im["tags"] and "night" not in im["tags"]),
    ("tag:car And Not tag:night", lambda im: "car" in im["tags"] and "night" not in im["tags"]),
    (
        "tag:night OR tag:car width>1000",
        lambda im: "night" in im["tags"] or ("car" in im["tags"] and gt(im["width"], 1000)),
    ),
    (
        "(tag:night OR tag:car) width>1000",
        lambda im: bool(im["tags"] & {"car", "night"}) and gt(im["width"], 1000),
    ),
    ("NOT tag:car OR tag:night", lambda im: "car" not in im["tags"] or "night" in im["tags"]),
    ("-(tag:car OR tag:night)", lambda im: not im["tags"] & {"car", "night"}),
    ("NOT NOT tag:car", lambda im: "car" in im["tags"]),
    ("--tag:car", lambda im: "car" in im["tags"]),
    ("tag:car or tag:night OR tag:review", lambda im: bool(im["tags"] & {"car", "night", "review"})),
    ("((tag:car))", lambda im: "car" in im["tags"]),
    ("", lambda im: True),
    ("   ", lambda im: True),
    # the example from the brief
    (
        "tag:car width>1024 metadata.color:red category:person>=3",
        lambda im: (
            "car" in im["tags"]
            and gt(im["width"], 1024)
            and im["meta"].get("color") == "red"
            and count(im, "person") >= 3
        ),
    ),
]


@pytest.mark.parametrize(("query", "pred"), CASES, ids=[c[0] or "<empty>" for c in CASES])
def test_matches_reference(
    con: duckdb.DuckDBPyConnection, query: str, pred: Callable[[dict[str, Any]], bool]
) -> None:
    assert run(con, query) == where(pred)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("tag:car", {1, 2, 9}),
        ("category:person>=3", {1}),
        ("categories:none", {4, 9}),
        ("tags:none", {4, 5, 7, 8}),
        ("file:*night*", {2, 3}),
        ("bbox.area<1024", {2, 3, 6, 10}),
        ("attr.occluded:true", {2, 7, 10}),
        ("category:car attr.occluded:true", {2, 7, 10}),
        ("ann:(category:car attr.occluded:true)", {2, 7}),
        ("ann:(category:car bbox.area<1024 attr.occluded:true)", {2}),
        ("metadata.speed>40", {1}),
        ("-width>1024", {2, 4, 5, 8, 9, 10}),
        ("tag:night OR tag:car width>1000", {1, 2, 3}),
        ("tag:car width>1024 metadata.color:red category:person>=3", {1}),
    ],
)
def test_known_answers(con: duckdb.DuckDBPyConnection, query: str, expected: set[int]) -> None:
    """Hand-checked answers, in case the reference and the compiler were wrong the same way."""
    assert run(con, query) == expected


@pytest.mark.parametrize(
    ("query", "pred"),
    [
        ("color:red", lambda im: im["meta"].get("color") == "red"),
        ("COLOR:red", lambda im: im["meta"].get("color") == "red"),
        ("speed:30..50", lambda im: is_num(im["meta"].get("speed")) and 30 <= im["meta"]["speed"] <= 50),
        ("camera:cam-1", lambda im: im["meta"].get("Camera") == "cam-1"),
        ("has:weather", lambda im: "weather" in im["meta"]),
        (
            "color:red OR weather:sun",
            lambda im: im["meta"].get("color") == "red" or im["meta"].get("weather") == "sun",
        ),
    ],
)
def test_bare_metadata_keys(
    con: duckdb.DuckDBPyConnection, query: str, pred: Callable[[dict[str, Any]], bool]
) -> None:
    assert run(con, query, METADATA_KEYS) == where(pred)


def test_image_fields_win_over_metadata_keys(con: duckdb.DuckDBPyConnection) -> None:
    assert run(con, "width>1024", ["width"]) == where(lambda im: gt(im["width"], 1024))


# -- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "position", "needles"),
    [
        ("widht:3", 0, ["unknown field 'widht'", "did you mean 'width'", "expected one of: width"]),
        ("tag:car widht>1024", 8, ["unknown field 'widht'", "did you mean 'width'"]),
        ("color:red", 0, ["unknown field 'color'", "metadata.<key>"]),
        ("bbox.are<3", 0, ["did you mean 'bbox.area'"]),
        ("width:abc", 6, ["type mismatch", "'width'", "expected a number"]),
        ("width:true", 6, ["type mismatch"]),
        ("tag>3", 3, ["type mismatch", "'tag'", "':', '=', '!='"]),
        ("split<=train", 5, ["type mismatch"]),
        ("iscrowd:maybe", 8, ["type mismatch", "true or false"]),
        ("iscrowd>1", 7, ["type mismatch"]),
        ("metadata.reviewed>true", 17, ["type mismatch"]),
        ("width>3..5", 5, ["range"]),
        ("(tag:car", 8, ["unclosed '('", "expected ')'"]),
        ("(tag:car OR (tag:x)", 19, ["unclosed '(' opened at 0"]),
        ('tag:"car', 4, ["unclosed quote", "closing '\"'"]),
        ("tag:car AND", 11, ["ends too early", "expected a term"]),
        ("tag:car OR OR tag:x", 11, ["unexpected OR"]),
        ("AND tag:x", 0, ["unexpected AND"]),
        ("tag:car -", 9, ["ends too early"]),
        ("ann:()", 5, ["empty", "annotation condition"]),
        ("ann:(width>3)", 5, ["'width' is not an annotation field", "bbox.area"]),
        ("ann:(category:car tag:x)", 18, ["'tag' is not an annotation field"]),
        ("ann:(category:car>=2)", 17, ["count"]),
        ("ann:(ann:(category:car))", 5, ["nested"]),
        ("ann:car", 4, ["ann:( … )"]),
        ("tag:", 4, ["missing value after 'tag:'"]),
        ("tag:(car)", 4, ["missing value"]),
        (")", 0, ["unmatched ')'"]),
        ("tag:car)", 7, ["unmatched ')'"]),
        ("()", 1, ["empty parentheses"]),
        ("car", 0, ["bare word 'car'", "tag:car"]),
        ('"rainy day"', 0, ["unexpected"]),
        ("category:person>=x", 17, ["count comparison needs a number"]),
        ("tag:car>=3", 7, ["cannot take a count"]),
        ("width>1>2", 7, ["cannot take a count"]),
        ("category!=person>=2", 8, ["count"]),
        ("has:nothing", 4, ["has: does not know 'nothing'", "metadata.<key>"]),
        ("has>x", 3, ["has takes ':'"]),
        ("has>attr.x", 3, ["has takes ':'"]),
        ("tags>none", 4, ["type mismatch"]),
        ("width>1e999", 6, ["out of range"]),
        ("(" * 100 + "tag:a" + ")" * 100, 64, ["nesting"]),
        ("-" * 100 + "tag:a", 64, ["nesting"]),
    ],
)
def test_errors_have_position_and_expectation(query: str, position: int, needles: list[str]) -> None:
    with pytest.raises(QueryError) as info:
        compile_query(query)
    err = info.value
    assert err.position == position, str(err)
    assert str(err).startswith(f"at {position}: ")
    assert " — expected " in str(err) and err.expected
    for needle in needles:
        assert needle in str(err), (needle, str(err))


def test_has_suggests_metadata_keys() -> None:
    with pytest.raises(QueryError, match="did you mean 'weather'"):
        compile_query("has:wether", ["weather"])


def test_query_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse("(")


def test_overlong_query() -> None:
    with pytest.raises(QueryError, match="longer than"):
        parse("tag:a " * 3000)


# -- injection -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "query",
    [
        'tag:"x\'; DROP TABLE images; --"',
        'file:"%\' OR 1=1 --"',
        "split:\"' OR ''='\"",
        "category:\"person' OR 'a'='a\"",
        'metadata.color:"red\') OR (1=1"',
        "metadata.x';DROP_TABLE_tags;--:1",
        "attr.occluded'_OR_1=1--:true",
        'sha:"\\\' OR 1=1"',
    ],
)
def test_injection_is_a_literal(con: duckdb.DuckDBPyConnection, query: str) -> None:
    assert run(con, query) == set()
    compiled = compile_query(query)
    assert "DROP" not in compiled.where and "1=1" not in compiled.where and "''" not in compiled.where
    names = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"images", "annotations", "categories", "tags", "metadata"} <= names
    assert con.execute("SELECT count(*) FROM images").fetchone()[0] == len(IMAGES) + 4


@pytest.mark.parametrize(
    ("query", "literals", "keys"),
    [
        ("tag:zebrafish", ["zebrafish"], ()),
        ("metadata.qwerty:asdfgh", ["qwerty", "asdfgh"], ()),
        ("file:*xyzzy*", ["xyzzy"], ()),
        ("category:wombat>=7 supercategory:mammal", ["wombat", "mammal"], ()),
        ("attr.plugh:frob attr.plover>12345", ["plugh", "frob", "plover", "12345"], ()),
        ("sha:deadbeef split:holdout id:987654", ["deadbeef", "holdout", "987654"], ()),
        ("has:metadata.fnord has:attr.quux", ["fnord", "quux"], ()),
        ("type:keypoints source:yolov9", ["keypoints", "KEYPOINTS", "yolov9"], ()),
        ("gizmo:widget has:gizmo", ["gizmo", "widget"], ("gizmo",)),
        ("width:31337..31338 score>0.987", ["31337", "31338", "0.987"], ()),
        ("ann:(category:ocelot attr.stripes:true)>=5", ["ocelot", "stripes"], ()),
        ('tag:"multi word value"', ["multi word", "value"], ()),
    ],
)
def test_sql_text_never_contains_user_values(query: str, literals: list[str], keys: tuple[str, ...]) -> None:
    compiled = compile_query(query, keys)
    for literal in literals:
        assert literal not in compiled.where
    params = [str(v).lower() for v in compiled.params.values()]
    assert all(any(lit.lower() in v for v in params) for lit in literals)  # they went to params instead


# -- parsing -------------------------------------------------------------------------------
def test_parse_shapes() -> None:
    assert isinstance(parse(""), MatchAll) and isinstance(parse(" \t\n"), MatchAll)
    node = parse("NOT tag:a tag:b OR tag:c")
    assert isinstance(node, Or) and isinstance(node.items[0], And)
    assert isinstance(node.items[0].items[0], Not)
    term = node.items[1]
    assert isinstance(term, Term) and (term.field, term.op, term.value.raw, term.pos) == ("tag", ":", "c", 19)
    group = parse("ann:(category:car bbox.w>3)>=2")
    assert isinstance(group, AnnGroup) and group.count is not None and group.count.value.value == 2
    assert parse('tag:"a \\"b\\" \\\\ c"').value.value == 'a "b" \\ c'
    assert parse("and:x").field == "and"  # a keyword followed by ':' is a field name (then unknown)


def test_literal_typing() -> None:
    assert parse("width:-12").value.value == -12
    assert parse("score>1.5e-1").value.value == pytest.approx(0.15)
    assert parse("x:TRUE").value.value is True
    assert parse('x:"true"').value.kind == "string"
    assert parse("x:2024-01-01").value.kind == "string"
    rng = parse("width:-10..1.5").value
    assert (rng.lo, rng.hi) == (-10, 1.5)
    assert parse("id:99999999999999999999").value.kind == "number"


# -- images_sql ----------------------------------------------------------------------------
def ids(con: duckdb.DuckDBPyConnection, query: str, **kw: Any) -> list[int]:
    sql, params = images_sql(compile_query(query), version_id=1, **kw)
    return [row[0] for row in con.execute(sql, params).fetchall()]


def test_images_sql_sorting_and_paging(con: duckdb.DuckDBPyConnection) -> None:
    assert ids(con, "") == [im["id"] for im in sorted(REF, key=lambda im: im["file"])]
    by_width = ids(con, "", order_by="width", descending=True)
    assert by_width[0] == 6 and by_width[-1] == 9  # nulls last
    assert ids(con, "", order_by="image_id", limit=3, offset=2) == [3, 4, 5]
    assert ids(con, "", order_by="boxes", descending=True, limit=1) == [1]
    assert ids(con, "tag:car", order_by="height") == [2, 1, 9]
    assert ids(con, "", order_by="metadata.speed", descending=True, limit=3) == [1, 3, 2]
    assert ids(con, "", order_by="metadata.weather")[:2] == [1, 7]


def test_images_sql_rejects_bad_arguments() -> None:
    compiled = compile_query("tag:car")
    with pytest.raises(ValueError, match="cannot sort by"):
        images_sql(compiled, order_by="file_name; DROP TABLE images")
    with pytest.raises(ValueError, match="limit"):
        images_sql(compiled, limit=-1)
    with pytest.raises(ValueError, match="offset"):
        images_sql(compiled, offset="5")  # type: ignore[arg-type]


def test_images_sql_without_version_sees_all_versions(con: duckdb.DuckDBPyConnection) -> None:
    sql, params = images_sql(compile_query("tag:car"), order_by="image_id")
    rows = con.execute(sql.replace("SELECT i.image_id", "SELECT i.version_id, i.image_id"), params).fetchall()
    assert rows == [(1, 1), (1, 2), (2, 4), (1, 9)]


# -- the swap-in point for precomputed counts -----------------------------------------------
class CountsCompiler(Compiler):
    """Reads per-image per-class counts from a precomputed table instead of counting annotations."""

    def category_exists(self, column: str, value: str) -> str:
        return f"({self.category_count(column, value)} > 0)"

    def category_count(self, column: str, value: str) -> str:
        sub = f"SELECT n FROM class_counts k WHERE k.version_id = i.version_id AND k.image_id = i.image_id AND k.{column} = {self.param(value)}"  # noqa: S608 - test
        return f"coalesce(({sub}), 0)"


def test_compiler_subclass_can_use_precomputed_counts(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """CREATE OR REPLACE TABLE class_counts AS
           SELECT a.version_id, a.image_id, c.name, c.supercategory, count(*) AS n
           FROM annotations a JOIN categories c USING (version_id, category_id)
           GROUP BY ALL"""
    )
    queries = ["category:person", "category:person>=3", "-category:car", "category:person<1", "category:dog"]
    for query in queries:
        compiled = compile_query(query, compiler=CountsCompiler)
        assert "class_counts" in compiled.where
        sql, params = images_sql(compiled, version_id=1)
        assert {r[0] for r in con.execute(sql, params).fetchall()} == run(con, query), query


# -- the bound plan ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "curation", "annotations"),
    [
        ("", False, False),
        ("width>10 file:*a*", False, False),
        ("tag:car", True, False),
        ("tags:none", True, False),
        ("has:tags", True, False),
        ("speed>3", True, False),
        ("has:metadata.x", True, False),
        ("category:person", False, True),
        ("categories:any", False, True),
        ("bbox.area<10", False, True),
        ("ann:(attr.occluded:true)", False, True),
        ("has:attr.occluded", False, True),
        ("NOT (tag:a OR category:b)", True, True),
    ],
)
def test_plan_says_what_the_query_reads(query: str, curation: bool, annotations: bool) -> None:
    from dsgen_core.query import bind

    plan = bind(query, ["speed"])
    assert (plan.reads_curation, plan.reads_annotations) == (curation, annotations)


def test_plan_key_ignores_spacing_and_spelling_but_not_meaning() -> None:
    from dsgen_core.query import bind

    assert bind("tag:car  width>3").key == bind(" tag:car AND Width>3").key
    assert bind("file_name:*a*").key == bind("file:*a*").key
    assert bind("tag:car").key != bind('tag:"car "').key
    assert bind("width>3").key != bind("width>=3").key
    assert bind("category:person>=3").key != bind("category:person>=2").key
    assert bind("x:1", ["x"]).key != bind("x:'1'", ["x"]).key


def test_binding_refuses_what_the_compiler_would_not_know_how_to_write() -> None:
    """Every QueryError comes from binding: compiling a bound plan never raises one."""
    from dsgen_core.query import bind

    for text in ("widht>3", "tag>3", "ann:(tag:x)", "has:wether", "iscrowd:3", "width:1..2>3"):
        with pytest.raises(QueryError):
            bind(text, ["weather"])


def test_query_package_imports_nothing_from_the_search_engine() -> None:
    """One direction: search/ and insights/ consume plans; the language never reaches back into them."""
    import ast as pyast
    from pathlib import Path

    import dsgen_core.query as q

    for path in Path(q.__file__).parent.glob("*.py"):
        tree = pyast.parse(path.read_text())
        names = [n.module or "" for n in pyast.walk(tree) if isinstance(n, pyast.ImportFrom)]
        names += [a.name for n in pyast.walk(tree) if isinstance(n, pyast.Import) for a in n.names]
        assert not [n for n in names if n.startswith(("dsgen_core.search", "dsgen_core.insights"))], path.name
