"""ImageFolder (CLS_FOLDER): `root/<class>/…/<image>`, or `root/<split>/<class>/…` for train/val/test.

Each image gets one image-level LABEL annotation. Classes are numbered as torchvision does,
the sorted (code point) folder names from 0; with splits the union of every split's classes is
numbered once, so an id means the same class in every split. Writing puts each labelled image
in its class folder (subfolders of its file name kept, so names never clash).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from dsgen_core.formats.base import ConversionReport, Detection, ReadResult, Split, WriteOptions
from dsgen_core.formats.build import TableBuilder
from dsgen_core.formats.classmap import ClassMap
from dsgen_core.formats.images import add_images
from dsgen_core.formats.output import ExportBase, image_sources, place_images
from dsgen_core.formats.tree import SourceTree, is_image_name
from dsgen_core.validation import MAX_EXAMPLES, ValidationReport

__all__ = ["FORMAT", "ImageFolder"]

SPLIT_NAMES = ("train", "val", "valid", "validation", "test")
# Datumaro's imagenet detector refuses these folder names: they are another format's layout.
_NOT_CLASSES = frozenset({"images", "labels", "annotations", "instances", "Annotations", "JPEGImages", "ImageSets"})


def _class_dirs(tree: SourceTree, rel: str) -> list[str] | None:
    dirs, files = tree.listdir(rel)
    if not dirs or any(d in _NOT_CLASSES for d in dirs) or any(f.endswith((".xml", ".json", ".yaml", ".txt"))
                                                                  for f in files):
        return None
    with_images = [d for d in dirs if any(is_image_name(f) for f in tree.listdir(f"{rel}/{d}".lstrip("/"))[1])]
    return dirs if with_images else None


def _layout(tree: SourceTree) -> dict[str, str] | None:
    """{split: folder} — the root itself ("default") or its train/val/test sub-folders."""
    dirs = tree.listdir()[0]
    splits = [d for d in dirs if d in SPLIT_NAMES]
    if splits and all(_class_dirs(tree, d) for d in splits):
        return {("val" if d in ("valid", "validation") else d): d for d in splits}
    return {"default": ""} if _class_dirs(tree, "") else None


class ImageFolder(ExportBase):
    name = "imagefolder"
    title = "ImageFolder (one folder per class)"

    def detect(self, tree: SourceTree) -> Detection | None:
        layout = _layout(tree)
        if layout is None:
            return None
        classes = sorted({c for rel in layout.values() for c in tree.listdir(rel)[0]})
        images = sum(tree.count_images(rel) for rel in layout.values())
        return Detection(self.name, 0.5, "sub-folders of images, one per class", tree.root, classes=tuple(classes),
                         images=images, annotations=images, splits=tuple(layout))

    def read(self, source: Path, report: ValidationReport) -> ReadResult | None:
        tree = SourceTree(Path(source))
        layout = _layout(tree)
        if layout is None:
            report.error("bad_source", f"{source}: no class folders with images")
            return None
        per_split = {s: tree.listdir(rel)[0] for s, rel in layout.items()}
        classes = sorted({c for cs in per_split.values() for c in cs})
        differ = [f"{s}: missing {', '.join(sorted(set(classes) - set(cs)))}" for s, cs in per_split.items()
                  if set(cs) != set(classes)]
        report.warning("split_classes_differ", "splits hold different class folders (ids use the union)",
                       len(differ), differ)
        splits = []
        for split, rel in layout.items():
            b = TableBuilder(self.name)
            for i, c in enumerate(classes):
                b.category(i, c)
            root = tree.root / rel if rel else tree.root
            empty = []
            for i, c in enumerate(classes):
                if c not in per_split[split]:
                    continue
                paths = [root / c / r for r in SourceTree(root / c).images()]
                if not paths:
                    empty.append(f"{split}/{c}" if rel else c)
                for image_id, _size in add_images(b, paths, root, report):
                    if image_id >= 0:
                        b.annotation(image_id, i, "LABEL")
            report.warning("empty_class_folder", "class folders without images", len(empty), empty)
            splits.append(Split(split, b.tables({"format": self.name}), root))
        return ReadResult(self.name, Path(source), splits)

    carries = frozenset({"tags"})
    needs_images = True

    def check(self, splits: Sequence[Split], options: WriteOptions, report: ConversionReport) -> None:
        multi, unlabeled = [], []
        n_multi = n_unlabeled = 0
        for s in splits:
            labels = _labels(s)
            for image_id, name in zip(s.tables.images.column("image_id").to_pylist(),
                                      s.tables.images.column("file_name").to_pylist(), strict=True):
                got = labels.get(image_id, [])
                if len(got) > 1:
                    n_multi += 1
                    if len(multi) < MAX_EXAMPLES:
                        multi.append(f"{name}: {len(got)} labels")
                elif not got:
                    n_unlabeled += 1
                    if len(unlabeled) < MAX_EXAMPLES:
                        unlabeled.append(name)
        report.lose("multi_label", "images with several labels (written once into each class folder)", n_multi,
                    multi)
        report.lose("unlabeled_images", "images without an image-level label (not written)", n_unlabeled, unlabeled)

    def write_into(self, out: Path, splits: Sequence[Split], options: WriteOptions, cmap: ClassMap,
                   report: ConversionReport) -> dict[str, int]:
        single = len(splits) == 1 and splits[0].name in ("", "default")
        n = 0
        for c in cmap.names:
            for s in splits:
                (out / ("" if single else s.name) / c).mkdir(parents=True, exist_ok=True)
        for s in splits:
            labels = _labels(s)
            pairs = []
            for image_id, name, src in zip(s.tables.images.column("image_id").to_pylist(),
                                           s.tables.images.column("file_name").to_pylist(), image_sources(s),
                                           strict=True):
                for cat in labels.get(image_id, []):
                    cname = cmap.name_of(cat)
                    if cname is not None and src is not None:
                        rel = name[len(cname) + 1:] if name.startswith(f"{cname}/") else name  # read from a class folder
                        pairs.append((src, out / ("" if single else s.name) / cname / rel))
            n += place_images(pairs, options.images, report)
        return {"images": n, "classes": len(cmap.names)}


def _labels(s: Split) -> dict[int, list[int]]:
    a = s.tables.annotations
    out: dict[int, list[int]] = defaultdict(list)
    for image_id, cat, kind in zip(a.column("image_id").to_pylist(), a.column("category_id").to_pylist(),
                                   a.column("annotation_type").to_pylist(), strict=True):
        if kind == "LABEL" and cat is not None and cat not in out[image_id]:
            out[image_id].append(cat)
    return out


FORMAT = ImageFolder()
