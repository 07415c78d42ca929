"""The derived per-version tables (`ins_*`): built once per engine, and box, attribute and co-occurrence numbers
read from them match plain Python on the generated export, on a filtered subset and after curation edits."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from pycocotools.coco import COCO
from test_insights_support import InsightsApi, generated, import_version

from dsgen_core.insights import InsightSettings, cross, derived, registry
from dsgen_core.sample_data import ANNOTATIONS_NAME

GRID, TINY = 7, 12.0


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    return generated(tmp_path_factory.mktemp("derived") / "street")


@pytest.fixture(scope="module")
def coco(export) -> COCO:
    return COCO(str(export / ANNOTATIONS_NAME))


@pytest.fixture
def iapi(dsgen_env):
    api = InsightsApi.open()
    yield api
    api.app.close()


def _want(coco: COCO, images: set[int]) -> dict[str, Counter]:
    """Per-class box facts and attribute counts of the annotations of `images`, in plain Python."""
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    size = {i["id"]: (i["width"], i["height"]) for i in coco.loadImgs(coco.getImgIds())}
    out: dict[str, Counter] = defaultdict(Counter)
    for x in coco.loadAnns(coco.getAnnIds(imgIds=sorted(images))):
        name, (bx, by, bw, bh), (iw, ih) = names[x["category_id"]], x["bbox"], size[x["image_id"]]
        area = x["area"]
        out["buckets"][(name, "small" if area < 32**2 else "medium" if area < 96**2 else "large")] += 1
        out["edges"][(name, "instances")] += 1
        out["edges"][(name, "touching_border")] += bx <= 0 or by <= 0 or bx + bw >= iw or by + bh >= ih
        out["edges"][(name, "tiny")] += min(bw, bh) < TINY
        cell = (min(GRID - 1, max(0, math.floor((bx + bw / 2) / iw * GRID))),
                min(GRID - 1, max(0, math.floor((by + bh / 2) / ih * GRID))))
        out["centres"][cell] += 1
        for k, v in x["attributes"].items():
            out["attributes"][(name, k, v if isinstance(v, str) else json.dumps(v))] += 1
    return out


def _got(iapi, version: int, query: str) -> dict[str, Counter]:
    a = iapi.default_actor
    settings = {"grid": GRID, "tiny_px": TINY, "top": 1000}
    boxes = iapi.insight(a, version, "boxes", query, settings=settings).tables
    out: dict[str, Counter] = defaultdict(Counter)
    for r in boxes["sizes"].to_dicts():
        for bucket in ("small", "medium", "large"):
            if r[bucket]:
                out["buckets"][(r["category"], bucket)] = r[bucket]
    for r in boxes["edges"].to_dicts():
        for k in ("instances", "touching_border", "tiny"):
            if r[k]:
                out["edges"][(r["category"], k)] = r[k]
    out["centres"] = Counter({(r["gx"], r["gy"]): r["instances"] for r in boxes["centres"].to_dicts()})
    att = iapi.insight(a, version, "attributes", query, settings=settings).tables["attributes"]
    out["attributes"] = Counter({(r["category"], r["attribute"], r["value"]): r["instances"] for r in att.to_dicts()})
    return out


def test_subset_and_curation_numbers_match_plain_python(iapi, export, coco):
    version = import_version(iapi, export)
    a = iapi.default_actor
    ids = sorted(coco.getImgIds())
    assert _got(iapi, version, "") == _want(coco, set(ids))
    person = coco.getCatIds(catNms=["person"])[0]
    assert _got(iapi, version, "category:person") == _want(coco, set(coco.catToImgs[person]))
    engine = iapi._engine(a, version)
    built = derived.build_seconds(engine)
    assert set(built) == {derived.BOX, derived.BOX_RANGES, derived.ATTR}
    # a curation edit changes the subset, never the derived tables: the numbers follow the edit
    night = set(ids[::7])
    for i in sorted(night):
        iapi.add_tags(a, version, i, "night")
    assert _got(iapi, version, "tag:night") == _want(coco, night)
    iapi.remove_tags(a, version, ids[0], "night")
    iapi.add_tags(a, version, ids[1], "night")
    night = (night - {ids[0]}) | {ids[1]}
    assert _got(iapi, version, "tag:night") == _want(coco, night)
    assert _got(iapi, version, "NOT tag:night") == _want(coco, set(ids) - night)
    assert derived.build_seconds(engine) == built  # built once per engine


def test_counting_paths_agree(iapi, export, coco, monkeypatch):
    """Attribute codes counted jointly or per key, co-occurrence masks split in chunks, and the stored
    whole-version co-occurrence give the same tables (and plain Python's)."""
    version = import_version(iapi, export)
    engine = iapi._engine(iapi.default_actor, version)
    settings = InsightSettings(top=1000)

    def run(name: str, query: str) -> dict:
        return {k: v.to_dicts() for k, v in registry.run(engine, engine.plan(query), name, settings).items()}

    for query in ("", "category:person", "width>700"):
        joint = {n: run(n, query) for n in ("attributes", "cross")}
        assert registry.attrs_of(engine).joint
        with monkeypatch.context() as m:
            m.setattr(derived, "JOINT_LIMIT", 0)
            m.setattr(cross, "MASK_BITS", 3)
            assert not registry.attrs_of(engine).joint
            assert {n: run(n, query) for n in ("attributes", "cross")} == joint, query
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    person = coco.getCatIds(catNms=["person"])[0]
    for query, images in (("", coco.getImgIds()), ("category:person", coco.catToImgs[person])):
        pairs: Counter = Counter()
        for i in set(images):
            present = {names[x["category_id"]] for x in coco.loadAnns(coco.getAnnIds(imgIds=[i]))}
            pairs.update((p, q) for p in present for q in present)
        with monkeypatch.context() as m:
            m.setattr(cross, "MASK_BITS", 3)  # the part is computed in chunks of 3 classes; the whole is stored
            got = run("cross", query)["cooccurrence"]
        assert {(r["category_a"], r["category_b"]): r["images"] for r in got} == dict(pairs), query
    built = derived.build_seconds(engine)
    assert {derived.ATTR, derived.COOC} <= set(built)


def test_curation_contingency_from_arrays_equals_the_sql_form(iapi, export):
    """Tag × class and metadata × class tables from the engine's arrays are the SQL form's tables, on the
    whole version and on parts, with all keys or chosen ones, a key holding texts, numbers and booleans
    included; one count is checked in plain Python too."""
    version = import_version(iapi, export)
    a = iapi.default_actor
    engine = iapi._engine(a, version)
    ids = sorted(int(i) for i in engine.image_ids)
    for n, i in enumerate(ids[:60]):
        iapi.add_tags(a, version, i, ["night"] if n % 2 else ["night", "wet road"])
        value = ("rain", 2.5, True, "sun", 10.0, False)[n % 6]
        iapi.set_metadata(a, version, i, {"weather": value, "speed": float(n % 4), "zone": f"z{n % 3}"})
    engine = iapi._engine(a, version)
    attrs = registry.attrs_of(engine)
    for query in ("", "tag:night", "category:person", "NOT metadata.weather:rain"):
        for conf in ({}, {"metadata_keys": ["zone", "weather"]}, {"top": 2}):
            settings = InsightSettings.from_dict(conf).to_dict()
            with registry.subset_cursor(engine, engine.plan(query)) as cur:
                arrays = cross.cross(cur, settings, attrs, engine=engine)["contingency"]
                sql = cross.cross(cur, settings, attrs)["contingency"]
            assert arrays.to_dicts() == sql.to_dicts(), (query, conf)
            assert arrays.height > 0
    # plain Python: instances of class person in images tagged "wet road"
    with registry.subset_cursor(engine) as cur:
        table = cross.cross(cur, InsightSettings().to_dict(), attrs, engine=engine)["contingency"]
    wet = {i for n, i in enumerate(ids[:60]) if n % 2 == 0}
    person = engine.layout.by_name["person"]
    want = sum(int(n) for (n,) in engine.fetchall(
        f"SELECT count(*) FROM annotations WHERE category_id IN ({', '.join(map(str, person))}) "  # noqa: S608
        f"AND image_id IN ({', '.join(map(str, sorted(wet)))}) GROUP BY ALL"))
    got = table.filter((table["variable"] == "tag") & (table["value"] == "wet road") & (table["category"] == "person"))
    assert got["instances"].to_list() == [want]
