"""Insight numbers against independent computations: pycocotools and plain Python over the generated
CVAT export; comparison mode; association statistics against closed forms."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from pycocotools.coco import COCO
from test_insights_support import InsightsApi, generated, import_version

from dsgen_core.errors import InvalidRequest
from dsgen_core.insights import Subset
from dsgen_core.insights.stats import chi2, cramers_v, imbalance_ratio
from dsgen_core.sample_data import ANNOTATIONS_NAME


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    return generated(tmp_path_factory.mktemp("insights") / "street")


@pytest.fixture(scope="module")
def coco(export) -> COCO:
    return COCO(str(export / ANNOTATIONS_NAME))


@pytest.fixture
def iapi(dsgen_env):
    api = InsightsApi.open()
    yield api
    api.app.close()


@pytest.fixture
def version(iapi, export) -> int:
    return import_version(iapi, export)


def rows(frame, subset: str = "all") -> list[dict]:
    return [r for r in frame.to_dicts() if r["subset"] == subset]


def test_distributions_match_pycocotools(iapi, version, coco):
    a = iapi.default_actor
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    anns = coco.loadAnns(coco.getAnnIds())
    imgs = coco.loadImgs(coco.getImgIds())
    # classes: images and instances per class, imbalance ratio
    res = iapi.insight(a, version, "classes")
    got = {r["category"]: (r["images"], r["instances"]) for r in rows(res.tables["classes"])}
    want = {names[c]: (len(set(coco.catToImgs[c])), len(coco.getAnnIds(catIds=[c]))) for c in names}
    assert got == want
    summary = rows(res.tables["summary"])[0]
    counts = [n for _, n in want.values() if n]
    assert summary["imbalance_ratio"] == pytest.approx(max(counts) / min(counts))
    assert summary["images"] == len(imgs) and summary["annotations"] == len(anns)
    assert summary["annotated_images"] == len({x["image_id"] for x in anns})
    # boxes per image, COCO size buckets, border and tiny boxes
    boxes = iapi.insight(a, version, "boxes")
    per_image = Counter(len(coco.getAnnIds(imgIds=[i["id"]])) for i in imgs)
    assert {r["boxes"]: r["images"] for r in rows(boxes.tables["per_image"])} == dict(per_image)
    buckets: dict[str, Counter] = defaultdict(Counter)
    edges: dict[str, Counter] = defaultdict(Counter)
    size = {i["id"]: (i["width"], i["height"]) for i in imgs}
    for x in anns:
        name = names[x["category_id"]]
        area = x["area"]
        buckets[name]["small" if area < 32**2 else "medium" if area < 96**2 else "large"] += 1
        bx, by, bw, bh = x["bbox"]
        w, h = size[x["image_id"]]
        edges[name]["instances"] += 1
        edges[name]["touching_border"] += bx <= 0 or by <= 0 or bx + bw >= w or by + bh >= h
        edges[name]["tiny"] += min(bw, bh) < 4
    assert {r["category"]: {k: r[k] for k in ("small", "medium", "large")} for r in rows(boxes.tables["sizes"])} \
        == {n: {k: c[k] for k in ("small", "medium", "large")} for n, c in buckets.items()}
    assert {r["category"]: {k: r[k] for k in ("instances", "touching_border", "tiny")}
            for r in rows(boxes.tables["edges"])} == {n: dict(c) | {"tiny": c["tiny"]} for n, c in edges.items()}
    assert sum(r["instances"] for r in rows(boxes.tables["centres"])) == len(anns)
    for measure in ("width", "height", "area", "aspect"):
        shape = [r for r in rows(boxes.tables["shape"]) if r["measure"] == measure]
        assert sum(r["instances"] for r in shape) == len(anns), measure
    # width histogram per class, on edges shared by all classes (so that classes compare bin by bin)
    width_bins = [r for r in rows(boxes.tables["shape"]) if r["measure"] == "width" and r["category"] == "person"]
    person_w = [x["bbox"][2] for x in anns if names[x["category_id"]] == "person"]
    lo, hi = min(x["bbox"][2] for x in anns), max(x["bbox"][2] for x in anns)
    want_bins = Counter(min(19, math.floor((v - lo) / (hi - lo) * 20)) for v in person_w)
    assert {r["bin"]: r["instances"] for r in width_bins} == dict(want_bins)
    # resolution pairs
    res = iapi.insight(a, version, "resolution")
    assert {(r["width"], r["height"]): r["images"] for r in rows(res.tables["resolution"])} \
        == dict(Counter((i["width"], i["height"]) for i in imgs))
    assert sum(r["images"] for r in rows(res.tables["width"])) == len(imgs)
    # attributes (CVAT occluded / rotation / custom) per class
    att = iapi.insight(a, version, "attributes", settings={"top": 1000})
    want_att = Counter((names[x["category_id"]], k, v if isinstance(v, str) else json.dumps(v))
                       for x in anns for k, v in x["attributes"].items())
    assert {(r["category"], r["attribute"], r["value"]): r["instances"] for r in rows(att.tables["attributes"])} \
        == dict(want_att)
    # co-occurrence and issues
    cross = iapi.insight(a, version, "cross")
    classes_of = defaultdict(set)
    for x in anns:
        classes_of[x["image_id"]].add(names[x["category_id"]])
    pairs = Counter((p, q) for s in classes_of.values() for p in s for q in s)
    assert {(r["category_a"], r["category_b"]): r["images"] for r in rows(cross.tables["cooccurrence"])} \
        == dict(pairs)
    issues = iapi.insight(a, version, "issues", settings={"min_instances": 20})
    unannotated = sorted(i["id"] for i in imgs if not coco.getAnnIds(imgIds=[i["id"]]))
    assert [r["image_id"] for r in rows(issues.tables["unannotated"])] == unannotated
    assert {r["category"] for r in rows(issues.tables["rare_classes"])} == \
        {n for n, (_, k) in want.items() if k < 20}


def test_comparison_mode_and_curation(iapi, version, coco):
    a = iapi.default_actor
    person = coco.getCatIds(catNms=["person"])[0]
    with_person = set(coco.catToImgs[person])
    res = iapi.compare_insight(a, [Subset(version, "category:person", "P"), Subset(version, "NOT category:person")],
                               "classes")
    assert res.subsets == ["P", "NOT category:person"]
    assert rows(res.tables["summary"], "P")[0]["images"] == len(with_person)
    assert rows(res.tables["summary"], "NOT category:person")[0]["images"] == len(coco.getImgIds()) - len(with_person)
    car = coco.getCatIds(catNms=["car"])[0]
    want_car_in_p = len([x for x in coco.loadAnns(coco.getAnnIds(catIds=[car])) if x["image_id"] in with_person])
    got = {r["category"]: r["instances"] for r in rows(res.tables["classes"], "P")}
    assert got["car"] == want_car_in_p
    # tags and metadata subsets follow the curation rows (cache keyed by the curation sequence)
    ids = sorted(coco.getImgIds())[:30]
    for i in ids[:10]:
        iapi.add_tags(a, version, i, "night")
    for n, i in enumerate(ids):
        iapi.set_metadata(a, version, i, {"weather": "rain" if n % 3 else "sun", "speed": float(n)})
    night = iapi.compare_insight(a, [Subset(version, "tag:night"), Subset(version, "NOT tag:night")], "tags")
    assert rows(night.tables["tags"], "tag:night") == [
        {"subset": "tag:night", "tag": "night", "images": 10, "share": 1.0}]
    assert rows(night.tables["tags"], "NOT tag:night") == []
    meta = iapi.insight(a, version, "metadata", settings={"bins": 3})
    assert {(r["key"], r["images"]) for r in rows(meta.tables["coverage"])} == {("weather", 30), ("speed", 30)}
    assert {r["value"]: r["images"] for r in rows(meta.tables["values"])} == {"rain": 20, "sun": 10}
    assert [r["images"] for r in rows(meta.tables["numeric"])] == [10, 10, 10]
    iapi.add_tags(a, version, ids[20], "night")
    again = iapi.insight(a, version, "tags")
    assert rows(again.tables["tags"])[0]["images"] == 11 and again.cached == [False]
    assert iapi.insight(a, version, "tags").cached == [True]
    # metadata × class association is present and in range
    cross = iapi.insight(a, version, "cross")
    assoc = {r["variable"]: r for r in rows(cross.tables["association"])}
    assert {"tag", "metadata.weather", "attr.occluded"} <= set(assoc)
    assert all(0.0 <= r["cramers_v"] <= 1.0 for r in assoc.values())


def test_version_a_vs_b_and_errors(iapi, version, export):
    a = iapi.default_actor
    other = import_version(iapi, export, group="street", split="val")
    res = iapi.compare_insight(a, [Subset(version, "", "A"), Subset(other, "width>=1280", "B")], "resolution")
    # B's images are all 1280 wide: it fills the last bin of the edges it shares with A (640…1280)
    assert [(r["bin"], r["bin_end"], r["last"]) for r in rows(res.tables["width"], "B")] == [(19, 1280.0, True)]
    assert _one_edge_set(res.tables["width"], ["A", "B"])[19] == (640 + 19 * 640 / 20, 1280.0)
    with pytest.raises(InvalidRequest, match="labels must differ"):
        iapi.compare_insight(a, [Subset(version, "x:1", "A"), Subset(other, "", "A")], "classes")
    with pytest.raises(InvalidRequest, match="unknown insight"):
        iapi.insight(a, version, "nope")
    with pytest.raises(InvalidRequest, match="bins"):
        iapi.insight(a, version, "classes", settings={"bins": 0})
    with pytest.raises(Exception, match="nknown field|position"):
        iapi.insight(a, version, "classes", query="widht>3")


def test_statistics_closed_forms():
    a, b, c, d = 10, 20, 30, 40
    n = a + b + c + d
    closed = n * (a * d - b * c) ** 2 / ((a + b) * (c + d) * (a + c) * (b + d))
    value, dof, total = chi2([[a, b], [c, d]])
    assert value == pytest.approx(closed) and dof == 1 and total == n
    assert cramers_v([[a, b], [c, d]]) == pytest.approx(math.sqrt(closed / n))
    assert cramers_v([[5, 0], [0, 5]]) == pytest.approx(1.0)
    assert cramers_v([[5, 5], [5, 5]]) == pytest.approx(0.0)
    assert cramers_v([[5, 5]]) == 0.0  # one row: undefined, reported as 0
    assert imbalance_ratio([0, 4, 12]) == 3.0 and imbalance_ratio([0, 0]) is None


def _edges(frame, subset: str, **match) -> dict[int, tuple[float, float]]:
    return {r["bin"]: (r["bin_start"], r["bin_end"]) for r in rows(frame, subset)
            if all(r[k] == v for k, v in match.items())}


def _one_edge_set(frame, subsets: list[str], **match) -> dict[int, tuple[float, float]]:
    """Bin → (start, end) over all subsets (and all rows matching), asserting that no bin has two extents."""
    out: dict[int, tuple[float, float]] = {}
    for r in frame.to_dicts():
        if r["subset"] in subsets and all(r[k] == v for k, v in match.items()):
            assert out.setdefault(r["bin"], (r["bin_start"], r["bin_end"])) == (r["bin_start"], r["bin_end"]), r
    return out


def test_comparison_bins_share_edges(iapi, version, coco):
    """Side by side, a histogram bins every subset on the same edges (the union of their ranges), so bar k
    of A and bar k of B cover the same values; counts checked against plain Python on those edges."""
    a = iapi.default_actor
    imgs = coco.loadImgs(coco.getImgIds())
    lo, hi = min(i["width"] for i in imgs), max(i["width"] for i in imgs)
    assert lo < hi
    pair = [Subset(version, f"width<={lo}", "S"), Subset(version, f"width>{lo}", "L")]
    res = iapi.compare_insight(a, pair, "resolution", settings={"bins": 5})
    for table in ("width", "height"):
        assert len(_one_edge_set(res.tables[table], ["S", "L"])) == 2, table
    assert _edges(res.tables["width"], "S") == {0: (lo, lo + (hi - lo) / 5)}
    assert _edges(res.tables["width"], "L") == {4: (lo + 4 * (hi - lo) / 5, hi)}
    got = {r["bin"]: r["images"] for r in rows(res.tables["width"], "L")}
    assert got == dict(Counter(min(4, math.floor((i["width"] - lo) / (hi - lo) * 5)) for i in imgs if i["width"] > lo))
    # box shapes: one set of edges per measure for every class and both subsets
    boxes = iapi.compare_insight(a, pair, "boxes", settings={"bins": 6})
    for measure in ("width", "height", "area", "aspect"):
        assert _one_edge_set(boxes.tables["shape"], ["S", "L"], measure=measure), measure
    size = {i["id"]: i["width"] for i in imgs}
    anns = coco.loadAnns(coco.getAnnIds())
    person = coco.getCatIds(catNms=["person"])[0]
    blo, bhi = min(x["bbox"][2] for x in anns), max(x["bbox"][2] for x in anns)
    for label, keep in (("S", lambda w: w <= lo), ("L", lambda w: w > lo)):
        want = Counter(min(5, math.floor((x["bbox"][2] - blo) / (bhi - blo) * 6)) for x in anns
                       if x["category_id"] == person and keep(size[x["image_id"]]))
        got = {r["bin"]: r["instances"] for r in rows(boxes.tables["shape"], label)
               if r["measure"] == "width" and r["category"] == "person"}
        assert got == dict(want), label
    # a numeric metadata key with different ranges in the two subsets
    ids = sorted(coco.getImgIds())[:20]
    for n, i in enumerate(ids):
        iapi.set_metadata(a, version, i, {"speed": float(n)})
    meta = iapi.compare_insight(a, [Subset(version, f"id<={ids[9]}", "lo"), Subset(version, f"id>{ids[9]}", "hi")],
                                "metadata", settings={"bins": 4})
    assert _one_edge_set(meta.tables["numeric"], ["lo", "hi"], key="speed") \
        == {0: (0.0, 4.75), 1: (4.75, 9.5), 2: (9.5, 14.25), 3: (14.25, 19.0)}
    assert [r["images"] for r in rows(meta.tables["numeric"], "lo")] == [5, 5]
    assert [r["images"] for r in rows(meta.tables["numeric"], "hi")] == [5, 5]
    # alone, a subset keeps its own range
    alone = iapi.insight(a, version, "resolution", f"width>{lo}", settings={"bins": 5})
    assert _edges(alone.tables["width"], f"width>{lo}") == {0: (hi, hi)}
