"""VisDrone-DET: `images/<name>.jpg` with `annotations/<name>.txt`, one
`left,top,width,height,score,category,truncation,occlusion` line per object, absolute pixels.

Category ids are VisDrone's own numbers, 0 (ignored regions) to 11 (others), never shifted;
ignored regions stay annotations of category 0. `score`, `truncation` and `occlusion` are kept
as attributes under those names. Splits are `VisDrone2019-DET-<split>/` folders.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import orjson

from dsgen_core.formats.base import ConversionReport, Detection, ReadResult, Split, WriteOptions
from dsgen_core.formats.build import TableBuilder
from dsgen_core.formats.images import add_images, relative_name
from dsgen_core.formats.output import ExportBase, image_sources, place_images
from dsgen_core.formats.textout import write_files
from dsgen_core.formats.tree import SourceTree
from dsgen_core.validation import MAX_EXAMPLES, ValidationReport

__all__ = ["CATEGORIES", "FORMAT", "VisDrone"]

CATEGORIES = ("ignored regions", "pedestrian", "people", "bicycle", "car", "van", "truck", "tricycle",
              "awning-tricycle", "bus", "motor", "others")
_OWN_ATTRS = ("score", "truncation", "occlusion")
_PREFIX = "VisDrone2019-DET-"


def _looks_like_line(text: str) -> bool:
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    parts = [p for p in line.strip().rstrip(",").split(",")]
    return len(parts) == 8 and all(p.strip().lstrip("-").isdigit() for p in parts)


def _split_roots(tree: SourceTree) -> dict[str, str]:
    roots = {d[len(_PREFIX):]: d for d in tree.listdir()[0] if d.startswith(_PREFIX)}
    if not roots and tree.is_dir("annotations") and tree.is_dir("images"):
        roots = {"default": ""}
    return {k: v for k, v in roots.items() if tree.is_dir(f"{v}/annotations".lstrip("/"))}


class VisDrone(ExportBase):
    name = "visdrone"
    title = "VisDrone-DET (images/ + annotations/*.txt)"

    def detect(self, tree: SourceTree) -> Detection | None:
        roots = _split_roots(tree)
        if not roots:
            return None
        labels = [f for r in roots.values() for f in tree.files(f"{r}/annotations".lstrip("/"), frozenset({".txt"}))]
        sample = tree.sample(labels, 16)
        if not sample or not all(_looks_like_line(tree.text(x)) or not tree.text(x).strip() for x in sample):
            return None
        rows = sum(sum(1 for ln in tree.text(x).splitlines() if ln.strip()) for x in sample)
        images = sum(tree.count_images(f"{r}/images".lstrip("/")) for r in roots.values())
        return Detection(self.name, 0.9, "annotations/*.txt with 8 comma-separated integers per line", tree.root,
                         classes=CATEGORIES, images=images, annotations=round(rows * len(labels) / len(sample)),
                         annotations_estimated=len(sample) < len(labels), splits=tuple(roots))

    def read(self, source: Path, report: ValidationReport) -> ReadResult | None:
        tree = SourceTree(Path(source))
        roots = _split_roots(tree)
        if not roots:
            report.error("bad_source", f"{source}: no images/ + annotations/ (VisDrone-DET)")
            return None
        return ReadResult(self.name, Path(source), [self._split(n, tree.root / r, report) for n, r in roots.items()])

    def _split(self, name: str, root: Path, report: ValidationReport) -> Split:
        img_dir, ann_dir = root / "images", root / "annotations"
        b = TableBuilder(self.name)
        for i, n in enumerate(CATEGORIES):
            b.category(i, n)
        paths = [img_dir / r for r in SourceTree(img_dir).images()]
        malformed, bad_cat = [], []
        n_malformed = n_bad = 0
        expected = set()
        for p, (image_id, _size) in zip(paths, add_images(b, paths, img_dir, report), strict=True):
            rel = os.path.splitext(relative_name(p, img_dir))[0] + ".txt"
            expected.add(rel)
            if image_id < 0:
                continue
            try:
                text = (ann_dir / rel).read_text("utf-8", "replace")
            except FileNotFoundError:
                continue
            for lineno, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                parts = line.strip().rstrip(",").split(",")
                try:
                    x, y, w, h = (float(v) for v in parts[:4])
                    score, cat, trunc, occ = (int(v) for v in parts[4:8])
                    if len(parts) != 8:
                        raise ValueError
                except ValueError:
                    n_malformed += 1
                    if len(malformed) < MAX_EXAMPLES:
                        malformed.append(f"annotations/{rel}:{lineno}: {line[:80]!r}")
                    continue
                if not 0 <= cat < len(CATEGORIES):
                    n_bad += 1
                    if len(bad_cat) < MAX_EXAMPLES:
                        bad_cat.append(f"annotations/{rel}:{lineno}: category {cat}")
                    continue
                b.annotation(image_id, cat, "BBOX", box=(x, y, w, h),
                             attributes={"score": score, "truncation": trunc, "occlusion": occ})
        report.error("malformed_line", "lines that are not 8 comma-separated integers", n_malformed, malformed)
        report.error("class_out_of_range", "categories outside VisDrone's 0–11", n_bad, bad_cat)
        orphans = sorted(set(SourceTree(ann_dir).files("", frozenset({".txt"}))) - expected)
        report.warning("label_without_image", "annotation files with no image (ignored)", len(orphans),
                       [f"annotations/{o}" for o in orphans])
        return Split(name, b.tables({"format": self.name}), img_dir)

    # -- write ----------------------------------------------------------------------------

    numbers_classes = False  # VisDrone's own list, matched by name
    carries = frozenset({"boxes", "occluded", "attributes", "multipart"})

    def extra_losses(self) -> dict[str, tuple[str, str]]:
        own = "['occluded', 'rotation', 'score', 'truncation', 'occlusion']"
        return {
            "attributes": ("object attributes other than score, truncation and occlusion",
                           f"len(list_filter(json_keys(a.attributes), lambda k: NOT list_contains({own}, k))) > 0"),
            "rounding": ("box coordinates rounded to whole pixels",
                         "a.annotation_type IN ('BBOX', 'SEGMENTATION') AND (a.bbox_x <> round(a.bbox_x) OR "
                         "a.bbox_y <> round(a.bbox_y) OR a.bbox_w <> round(a.bbox_w) OR a.bbox_h <> round(a.bbox_h))"),
        }

    def check(self, splits: Sequence[Split], options: WriteOptions, report: ConversionReport) -> None:
        mapping = _mapping(splits)
        report.class_map = sorted((cid, vid, CATEGORIES[vid]) for cid, vid in mapping.items())
        lost, ex = 0, []
        for s in splits:
            names = dict(zip(s.tables.categories.column("category_id").to_pylist(),
                             s.tables.categories.column("name").to_pylist(), strict=True))
            for aid, cat in zip(s.tables.annotations.column("annotation_id").to_pylist(),
                                s.tables.annotations.column("category_id").to_pylist(), strict=True):
                if cat is not None and cat not in mapping:
                    lost += 1
                    if len(ex) < MAX_EXAMPLES:
                        ex.append(f"annotation {aid} ({names.get(cat, cat)})")
        report.lose("classes", "objects whose class is not one of VisDrone's categories", lost, ex)

    def write_into(self, out: Path, splits: Sequence[Split], options: WriteOptions, cmap: None,
                   report: ConversionReport) -> dict[str, int]:
        mapping = _mapping(splits)
        n_files = n_rows = n_images = 0
        single = len(splits) == 1 and splits[0].name in ("", "default")
        for s in splits:
            root = out if single else out / f"{_PREFIX}{s.name}"
            lines = _lines_by_image(s, mapping)
            ids = s.tables.images.column("image_id").to_pylist()
            names = s.tables.images.column("file_name").to_pylist()
            write_files([f"{root}/annotations/{os.path.splitext(n)[0]}.txt" for n in names],
                        ["".join(f"{r}\n" for r in lines.get(i, [])) for i in ids])
            n_files += len(names)
            n_rows += sum(len(v) for v in lines.values())
            (root / "images").mkdir(parents=True, exist_ok=True)
            pairs = [(src, root / "images" / n) for n, src in zip(names, image_sources(s), strict=True)
                     if src is not None]
            n_images += place_images(pairs, options.images, report)
        return {"images": n_images, "annotation_files": n_files, "rows": n_rows}


def _mapping(splits: Sequence[Split]) -> dict[int, int]:
    """category_id → VisDrone category, by name (case-insensitive)."""
    index = {n.lower(): i for i, n in enumerate(CATEGORIES)}
    out = {}
    for s in splits:
        for cid, name in zip(s.tables.categories.column("category_id").to_pylist(),
                             s.tables.categories.column("name").to_pylist(), strict=True):
            if name.lower() in index:
                out[cid] = index[name.lower()]
    return out


def _lines_by_image(s: Split, mapping: dict[int, int]) -> dict[int, list[str]]:
    a = s.tables.annotations.sort_by("annotation_id")
    out: dict[int, list[str]] = defaultdict(list)
    cols = [a.column(c).to_pylist() for c in ("image_id", "category_id", "annotation_type", "bbox_x", "bbox_y",
                                              "bbox_w", "bbox_h", "attributes")]
    for image_id, cat, kind, x, y, w, h, attrs in zip(*cols, strict=True):
        if cat not in mapping or x is None or kind not in ("BBOX", "SEGMENTATION"):
            continue
        at = orjson.loads(attrs) if attrs else {}
        occ = at.get("occlusion", 1 if at.get("occluded") is True else 0)
        score = at.get("score", 1)
        trunc = at.get("truncation", 0)
        out[image_id].append(f"{round(x)},{round(y)},{round(w)},{round(h)},{score},{mapping[cat]},{trunc},{occ}")
    return out


FORMAT = VisDrone()
