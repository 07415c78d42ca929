"""CVAT's "YOLO 1.1" (Darknet) layout: `obj.names`, `obj.data`, `<subset>.txt`, `obj_<subset>_data/`.

Each label file sits beside its image; `obj.data` holds `key = value` lines whose list paths
carry a `data/` prefix (stripped on reading, written as CVAT writes it). Only boxes: the
format has no polygons, so a CVAT import of our export sees exactly what CVAT itself writes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dsgen_core.formats.base import ConversionReport, Detection, ReadResult, Split, WriteOptions
from dsgen_core.formats.classmap import ClassMap
from dsgen_core.formats.output import ExportBase
from dsgen_core.formats.tree import SourceTree
from dsgen_core.formats.yolo import read_labeled_images, write_labels
from dsgen_core.formats.yolo_rows import yolo_carried
from dsgen_core.validation import ValidationReport

__all__ = ["FORMAT", "DarknetYolo"]

_RESERVED = frozenset({"classes", "names", "backup"})


def _strip_data(value: str) -> str:
    value = value.strip().replace("\\", "/")
    return value[5:] if value.startswith("data/") else value


def _beside(image: str) -> str:
    return os.path.splitext(image)[0] + ".txt"


def parse_obj_data(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, eq, value = line.partition("=")
        if eq:
            out[key.strip()] = value.strip()
    return out


class DarknetYolo(ExportBase):
    name = "yolo_darknet"
    title = "YOLO 1.1 (CVAT / Darknet: obj.names, obj.data, obj_train_data/)"
    carries = frozenset(yolo_carried(segment=False))

    def detect(self, tree: SourceTree) -> Detection | None:
        has_data, has_names = tree.is_file("obj.data"), tree.is_file("obj.names")
        data_dirs = [d for d in tree.listdir()[0] if d.startswith("obj_") and d.endswith("_data")]
        if not has_data and not (has_names and data_dirs):
            return None
        names = [n.strip() for n in tree.text("obj.names").splitlines() if n.strip()] if has_names else []
        splits = [d[4:-5] for d in data_dirs]
        images = sum(tree.count_images(d) for d in data_dirs)
        labels = [f for d in data_dirs for f in tree.files(d, frozenset({".txt"}))]
        sample = tree.sample(labels, 48)
        rows = sum(sum(1 for x in tree.text(r).splitlines() if x.strip()) for r in sample)
        est = round(rows * len(labels) / len(sample)) if sample else 0
        reason = "obj.data" if has_data else "obj.names and obj_*_data/"
        return Detection(self.name, 0.95 if has_data else 0.8, reason, tree.root, classes=tuple(names),
                         images=images, annotations=est, annotations_estimated=True, splits=tuple(splits))

    def read(self, source: Path, report: ValidationReport) -> ReadResult | None:
        root = Path(source)
        root = root.parent if root.is_file() else root
        data = parse_obj_data((root / "obj.data").read_text("utf-8", "replace")) if (root / "obj.data").is_file() else {}
        names_file = root / _strip_data(data.get("names", "obj.names"))
        if not names_file.is_file():
            report.error("missing_key", f"{root}: no {names_file.name} (class names)")
            return None
        names = [n.strip() for n in names_file.read_text("utf-8", "replace").splitlines() if n.strip()]
        lists = {k: v for k, v in data.items() if k not in _RESERVED}
        if not lists:
            lists = {d[4:-5]: "" for d in sorted(os.listdir(root)) if d.startswith("obj_") and d.endswith("_data")}
        splits = []
        for subset, list_rel in lists.items():
            list_file = root / _strip_data(list_rel) if list_rel else None
            if list_file is not None and list_file.is_file():
                lines = [ln.strip() for ln in list_file.read_text("utf-8", "replace").splitlines() if ln.strip()]
                paths = [root / _strip_data(ln) for ln in lines]
            else:
                folder = root / f"obj_{subset}_data"
                if not folder.is_dir():
                    report.error("split_missing", f"{root}: subset {subset}: neither {list_rel or 'a list'} "
                                 f"nor obj_{subset}_data/")
                    continue
                paths = [folder / r for r in SourceTree(folder).images()]
            if not paths:
                report.warning("split_empty", f"subset {subset}: no images", 1)
                continue
            image_root = Path(os.path.commonpath([str(p.parent) for p in paths]))
            folder = root / f"obj_{subset}_data"
            if folder.is_dir() and image_root.is_relative_to(folder):
                image_root = folder
            splits.append(read_labeled_images(self.name, subset, paths, image_root, names, _beside, report, root))
        return ReadResult(self.name, Path(source), splits)

    def check(self, splits: Sequence[Split], options: WriteOptions, report: ConversionReport) -> None:
        report.problems += [f"subset name {s.name!r} is reserved in obj.data" for s in splits
                            if _subset(s.name) in _RESERVED]

    def write_into(self, out: Path, splits: Sequence[Split], options: WriteOptions, cmap: ClassMap,
                   report: ConversionReport) -> dict[str, int]:
        n_rows = n_images = n_labels = 0
        (out / "obj.names").write_text("".join(f"{n}\n" for n in cmap.names))
        data_lines = [f"classes = {len(cmap.names)}"]
        for s in splits:
            subset = _subset(s.name)
            rows, images = write_labels(s, cmap, False, options, lambda n, d=subset: f"obj_{d}_data/{n}",
                                        lambda n, d=subset: f"obj_{d}_data/{n}", out, report)
            n_rows += rows
            n_images += images
            n_labels += s.tables.images.num_rows
            listed = "".join(f"data/obj_{subset}_data/{n}\n" for n in s.tables.images.column("file_name").to_pylist())
            (out / f"{subset}.txt").write_text(listed)
            data_lines.append(f"{subset} = data/{subset}.txt")
        data_lines += ["names = data/obj.names", "backup = backup/"]
        (out / "obj.data").write_text("\n".join(data_lines) + "\n")
        return {"images": n_images, "label_files": n_labels, "rows": n_rows}


def _subset(name: str) -> str:
    return "train" if name in ("", "default") else name


FORMAT = DarknetYolo()
