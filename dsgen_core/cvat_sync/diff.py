"""Compare a task's CVAT annotations with ours: match frames by file name, shapes by content, and say what changed.

Unchanged annotations keep our rows untouched (that is what makes the round trip lossless); changed
ones keep their id with CVAT's geometry, class and attributes; the rest are added or removed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dsgen_core.cvat_sync.shapes import Ann, describe_move, fmt_box, merge_geometry, same_geometry

__all__ = ["Ann", "AnnChange", "Plan", "PullDiff", "category_map", "diff_images", "our_annotation",
           "their_annotations"]

BUILTIN_DEFAULTS: dict[str, Any] = {"occluded": False, "rotation": 0.0}
MIN_IOU = 0.3  # a changed shape is paired with ours only above this overlap


@dataclass
class AnnChange:
    image_id: int
    file_name: str
    change: str  # added | removed | moved | relabeled | attributes
    annotation_id: int | None
    category: str
    detail: str = ""


@dataclass
class PullDiff:
    """The preview of a pull-back; `plan` is what a commit applies."""

    images_in_task: int = 0
    images_matched: int = 0
    images_changed: int = 0
    added: int = 0
    removed: int = 0
    moved: int = 0
    relabeled: int = 0
    attributes_changed: int = 0
    unchanged: int = 0
    classes_renamed: list[tuple[str, str]] = field(default_factory=list)
    classes_added: list[str] = field(default_factory=list)
    images_not_matched: list[str] = field(default_factory=list)  # CVAT frames with no image of ours
    images_missing: list[str] = field(default_factory=list)  # our exported images CVAT no longer has
    frames_resized: int = 0  # frames CVAT shows in another size than ours (EXIF orientation); ours are kept
    images_deleted: list[str] = field(default_factory=list)  # frames deleted in CVAT: removed from the version
    annotations_of_deleted: int = 0  # our annotations on those images (they leave with them)
    changes: list[AnnChange] = field(default_factory=list)

    @property
    def is_zero(self) -> bool:
        return not (self.added or self.removed or self.moved or self.relabeled or self.attributes_changed
                    or self.classes_renamed or self.classes_added or self.images_not_matched or self.images_missing
                    or self.images_deleted)

    def summary(self, max_changes: int = 200) -> dict[str, Any]:
        from dataclasses import asdict

        d = asdict(self)
        d["changes"] = d["changes"][:max_changes]
        d["is_zero"] = self.is_zero
        return d


@dataclass
class Plan:
    """Row-level edits of the annotations table (ids are ours)."""

    removed: set[int] = field(default_factory=set)
    removed_images: set[int] = field(default_factory=set)  # frames deleted in CVAT
    updated: dict[int, Ann] = field(default_factory=dict)
    moved: set[int] = field(default_factory=set)  # updated ids whose geometry changed (the others keep ours)
    added: list[tuple[int, Ann]] = field(default_factory=list)  # (image_id, annotation)
    renamed: dict[str, str] = field(default_factory=dict)  # our class name → CVAT's
    new_classes: list[str] = field(default_factory=list)


def kind_of(segmentation: Any, rle: Any = None) -> str:
    if rle is not None or isinstance(segmentation, dict):
        return "mask"
    return "polygon" if segmentation else "box"


def _norm(v: Any) -> Any:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    return v


def _their_value(ours: Any, theirs: Any) -> Any:
    """CVAT's value in our type: text where ours is not text (an object, a list, a number sent to a text
    attribute) is read back as JSON when it parses."""
    if isinstance(theirs, str) and ours is not None and not isinstance(ours, str):
        try:
            return json.loads(theirs)
        except ValueError:
            return theirs
    return theirs


def changed_attributes(ours: dict[str, Any], theirs: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """CVAT's values that differ from ours (read in our type); a key we lack counts as its declared default."""
    out = {}
    for k, tv in theirs.items():
        if k in ours:
            value = _their_value(ours[k], tv)
            if _norm(ours[k]) != _norm(value):
                out[k] = value
        elif _norm(defaults.get(k, BUILTIN_DEFAULTS.get(k))) != _norm(tv):
            out[k] = tv
    return out


def iou(a: tuple[float, ...] | None, b: tuple[float, ...] | None) -> float:
    if not a or not b:
        return 0.0
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def category_map(cvat_names: Sequence[str], exported_labels: Sequence[str], ours: Iterable[str]
                 ) -> tuple[dict[str, str], dict[str, str]]:
    """CVAT class name → our class name, and our renamed classes (old → new).

    CVAT exports labels in their creation order, which we recorded at export time: a name that
    changed at the same position, whose old name is gone from CVAT, is a rename.
    """
    ours = set(ours)
    present = set(cvat_names)
    mapping: dict[str, str] = {n: n for n in cvat_names if n in ours}
    renamed: dict[str, str] = {}
    if len(cvat_names) == len(exported_labels):
        for old, new in zip(exported_labels, cvat_names, strict=True):
            if old != new and old in ours and old not in present and new not in ours:
                mapping[new] = old
                renamed[old] = new
    return mapping, renamed


def match_image(ours: list[Ann], theirs: list[Ann], defaults: dict[str, dict[str, Any]]
                ) -> tuple[list[tuple[Ann, Ann]], list[Ann], list[Ann]]:
    """Pairs (ours, theirs) — exact geometry first, then best box overlap of the same shape kind —, and the rest."""
    left = list(ours)
    pairs: list[tuple[Ann, Ann]] = []
    rest: list[Ann] = []
    for t in theirs:  # exact geometry and class: the common, unchanged case
        hit = next((o for o in left if o.category == t.category and same_geometry(o, t)), None)
        if hit is None:
            hit = next((o for o in left if same_geometry(o, t)), None)
        if hit is None:
            rest.append(t)
        else:
            left.remove(hit)
            pairs.append((hit, t))
    candidates = sorted(((iou(o.bbox, t.bbox), i, j) for i, o in enumerate(left) for j, t in enumerate(rest)
                         if o.kind == t.kind), reverse=True)
    used_o: set[int] = set()
    used_t: set[int] = set()
    for score, i, j in candidates:
        if score < MIN_IOU:
            break
        if i in used_o or j in used_t:
            continue
        used_o.add(i)
        used_t.add(j)
        pairs.append((left[i], rest[j]))
    return (pairs, [o for i, o in enumerate(left) if i not in used_o],
            [t for j, t in enumerate(rest) if j not in used_t])


def diff_images(ours: dict[int, list[Ann]], theirs: dict[int, list[Ann]], names: dict[int, str],
                defaults: dict[str, dict[str, Any]], diff: PullDiff, plan: Plan) -> None:
    """Fill `diff` and `plan` for the matched images (ours[image_id] vs theirs[image_id])."""
    for image_id, their_anns in theirs.items():
        pairs, removed, added = match_image(ours.get(image_id, []), their_anns, defaults)
        fname = names[image_id]
        changed = False
        for o, t in pairs:
            attrs = changed_attributes(o.attributes, t.attributes, defaults.get(t.category, {}))
            moved = not same_geometry(o, t)
            relabeled = o.category != t.category
            if not (attrs or moved or relabeled):
                diff.unchanged += 1
                continue
            changed = True
            if moved:
                diff.moved += 1
                plan.moved.add(o.annotation_id)
                diff.changes.append(AnnChange(image_id, fname, "moved", o.annotation_id, t.category,
                                              describe_move(o, t)))
            if relabeled:
                diff.relabeled += 1
                diff.changes.append(AnnChange(image_id, fname, "relabeled", o.annotation_id, t.category,
                                              f"{o.category} → {t.category}"))
            if attrs:
                diff.attributes_changed += 1
                detail = ", ".join(f"{k}: {o.attributes.get(k, defaults.get(t.category, {}).get(k))!r} → {v!r}"
                                   for k, v in attrs.items())
                diff.changes.append(AnnChange(image_id, fname, "attributes", o.annotation_id, t.category, detail))
            geometry = merge_geometry(o, t) if moved else o  # within CVAT's rounding, our values stay
            plan.updated[o.annotation_id] = Ann(
                t.category, geometry.kind, geometry.bbox, geometry.polygons, geometry.rle, {**o.attributes, **attrs},
                o.annotation_id, geometry.area)
        for o in removed:
            changed = True
            diff.removed += 1
            plan.removed.add(o.annotation_id)
            diff.changes.append(AnnChange(image_id, fname, "removed", o.annotation_id, o.category, fmt_box(o.bbox)))
        for t in added:
            changed = True
            diff.added += 1
            plan.added.append((image_id, t))
            diff.changes.append(AnnChange(image_id, fname, "added", None, t.category, fmt_box(t.bbox)))
        diff.images_changed += changed


def their_annotations(doc: dict[str, Any], frame_to_image: dict[str, int], cat_map: dict[str, str]
                      ) -> tuple[dict[int, list[Ann]], list[str], dict[int, str]]:
    """CVAT's annotations per image of ours (frames matched by file name), the frames we could not match,
    and our image id → CVAT file name."""
    cat_name = {c["id"]: cat_map.get(c["name"], c["name"]) for c in doc.get("categories", [])}
    image_of: dict[int, int] = {}
    unmatched: list[str] = []
    names: dict[int, str] = {}
    for im in doc.get("images", []):
        ours = frame_to_image.get(str(im["file_name"]))
        if ours is None:
            unmatched.append(str(im["file_name"]))
        else:
            image_of[im["id"]] = ours
            names[ours] = str(im["file_name"])
    out: dict[int, list[Ann]] = {i: [] for i in image_of.values()}
    for a in doc.get("annotations", []):
        image_id = image_of.get(a["image_id"])
        if image_id is None:
            continue
        seg = a.get("segmentation")
        kind = kind_of(seg)
        out[image_id].append(Ann(
            category=cat_name[a["category_id"]], kind=kind,
            bbox=tuple(float(v) for v in a["bbox"]) if a.get("bbox") else None,
            polygons=[[float(v) for v in p] for p in seg] if kind == "polygon" else None,
            rle=seg if kind == "mask" else None, attributes=dict(a.get("attributes") or {}),
            area=float(a["area"]) if a.get("area") is not None else None,
        ))
    return out, unmatched, names


def our_annotation(row: dict[str, Any], cat_name: dict[int, str]) -> Ann:
    rle = json.loads(row["rle"]) if row.get("rle") else None
    box = (row["bbox_x"], row["bbox_y"], row["bbox_w"], row["bbox_h"])
    return Ann(
        category=cat_name.get(row["category_id"], str(row["category_id"])), kind=kind_of(row.get("polygons"), rle),
        bbox=None if any(v is None for v in box) else tuple(float(v) for v in box),
        polygons=row.get("polygons") or None, rle=rle,
        attributes=json.loads(row["attributes"]) if row.get("attributes") else {},
        annotation_id=int(row["annotation_id"]), area=row.get("area"),
    )
