"""YOLO in the Ultralytics layout: `data.yaml`, `images/<split>/…` and `labels/<split>/….txt`.

Reading follows Ultralytics: `names` as a list or a {id: name} dict filling 0…n-1 (or only `nc`),
`train`/`val`/`test` as folders, `.txt` image lists or lists of either, and each image's label at
its path with the last `/images/` turned into `/labels/`. Two departures, both documented: a
relative `path` is taken against the YAML's folder (a server has no meaningful working
directory), and class ids are kept as category ids (never renumbered). Writing omits `path` and
writes relative split folders, so the export trains wherever it is unpacked.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from dsgen_core.formats.base import ConversionReport, Detection, ImageMode, ReadResult, Split, WriteOptions
from dsgen_core.formats.build import TableBuilder
from dsgen_core.formats.classmap import ClassMap
from dsgen_core.formats.images import add_images, read_texts, relative_name
from dsgen_core.formats.output import ExportBase, image_sources, place_images
from dsgen_core.formats.textout import write_files
from dsgen_core.formats.tree import IMAGE_EXTENSIONS, SourceTree, is_image_name
from dsgen_core.formats.yolo_rows import (
    LabelIssues,
    label_texts,
    read_clean_files,
    read_label_text,
    segment_task,
    yolo_carried,
)
from dsgen_core.validation import ValidationReport

__all__ = ["FORMAT", "UltralyticsYolo", "label_path"]

SPLIT_KEYS = ("train", "val", "test", "minival")
_RESERVED = frozenset({"path", "names", "nc", "download", "kpt_shape", "flip_idx", "channels"})
_VAL_NAMES = frozenset({"val", "valid", "validation"})


def label_path(image: str) -> str:
    """Ultralytics' img2label_paths: the last `/images/` becomes `/labels/`, the suffix `.txt`."""
    sep = f"{os.sep}images{os.sep}"
    head, found, tail = image.rpartition(sep)
    path = f"{head}{os.sep}labels{os.sep}{tail}" if found else image
    return os.path.splitext(path)[0] + ".txt"


def _yaml_files(tree: SourceTree) -> list[str]:
    if tree.file is not None:
        return [tree.file.name] if tree.file.suffix.lower() in (".yaml", ".yml") else []
    return [f for f in tree.listdir()[1] if f.lower().endswith((".yaml", ".yml"))]


def _parse_yaml(text: str) -> dict[str, Any] | None:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return doc if isinstance(doc, dict) and ("names" in doc or "nc" in doc) and "train" in doc else None


def class_names(doc: dict[str, Any]) -> tuple[list[str] | None, str | None]:
    """Names by id 0…n-1, or an error text (Ultralytics' rules: dict keys must fill 0…n-1)."""
    names, nc = doc.get("names"), doc.get("nc")
    if names is None:
        if isinstance(nc, int) and nc >= 0:
            return [f"class_{i}" for i in range(nc)], None
        return None, "data.yaml has neither `names` nor `nc`"
    if isinstance(names, list):
        out = [str(n) for n in names]
    elif isinstance(names, dict):
        try:
            by_id = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            return None, "`names` keys must be integers"
        if sorted(by_id) != list(range(len(by_id))):
            return None, f"`names` keys must fill 0…{len(by_id) - 1}, got {sorted(by_id)[:10]}"
        out = [by_id[i] for i in range(len(by_id))]
    else:
        return None, "`names` must be a list or a {id: name} mapping"
    if nc is not None and nc != len(out):
        return None, f"`nc` is {nc} but `names` has {len(out)} entries"
    return out, None


def _names_only(source: Path) -> list[str] | None:
    """Class names from a YAML that has them but no split keys."""
    folder = source if source.is_dir() else source.parent
    for f in _yaml_files(SourceTree(folder)):
        try:
            doc = yaml.safe_load((folder / f).read_text("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            continue
        if isinstance(doc, dict) and ("names" in doc or "nc" in doc):
            names, err = class_names(doc)
            if not err:
                return names
    return None


def _split_values(doc: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if "val" not in doc and "validation" in doc:
        doc = {**doc, "val": doc["validation"]}
    for key in SPLIT_KEYS:
        v = doc.get(key)
        if v:
            out[key] = [str(x) for x in v] if isinstance(v, list) else [str(v)]
    return out


def _resolve_entry(root: Path, value: str) -> Path | None:
    for cand in (value, value[3:] if value.startswith("../") else None, value[5:] if value.startswith("data/") else None):
        if cand is None:
            continue
        p = Path(cand) if os.path.isabs(cand) else root / cand
        if p.exists():
            return p
    return None


def _list_images(entry: Path) -> list[Path]:
    if entry.is_dir():
        tree = SourceTree(entry)
        return [entry / r for r in tree.images()]
    base = entry.parent
    out = []
    for line in entry.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line:
            continue
        p = Path(line)
        if not p.is_absolute():
            cands = [base / line, base / line[5:]] if line.startswith("data/") else [base / line]
            p = next((c for c in cands if c.exists()), cands[-1])
        out.append(p)
    return out


def _estimate_rows(tree: SourceTree, labels: list[str]) -> int:
    sample = tree.sample(labels, 48)
    if not sample:
        return 0
    rows = sum(sum(1 for line in tree.text(r, 1 << 16).splitlines() if line.strip()) for r in sample)
    return round(rows * len(labels) / len(sample))


class UltralyticsYolo(ExportBase):
    name = "yolo"
    title = "YOLO (Ultralytics data.yaml + images/ + labels/)"

    # -- detect ---------------------------------------------------------------------------

    def detect(self, tree: SourceTree) -> Detection | None:
        for rel in _yaml_files(tree):
            doc = _parse_yaml(tree.text(rel))
            if doc is None:
                continue
            names, _err = class_names(doc)
            splits = _split_values(doc)
            n_img, labels, seen = 0, [], set()
            for values in splits.values():
                for v in values:
                    rel_dir = v.removeprefix("./").rstrip("/")
                    if rel_dir in seen:
                        continue
                    seen.add(rel_dir)
                    if not os.path.isabs(rel_dir) and tree.is_dir(rel_dir):
                        n_img += tree.count_images(rel_dir)
                        ldir = label_path(f"{os.sep}{rel_dir}{os.sep}x").lstrip(os.sep).rsplit("/", 1)[0]
                        labels += tree.files(ldir, frozenset({".txt"}))
            return Detection(self.name, 0.95, f"{rel} with names and split keys", tree.root,
                             classes=tuple(names or ()), images=n_img, annotations=_estimate_rows(tree, labels),
                             annotations_estimated=True, splits=tuple(splits))
        if tree.is_dir("images") and tree.is_dir("labels"):
            labels = tree.files("labels", frozenset({".txt"}))
            if not labels:
                return None
            dirs = tree.listdir("images")[0]
            return Detection(self.name, 0.55, "images/ and labels/*.txt but no data.yaml (class names unknown)",
                             tree.root, images=tree.count_images("images"), annotations=_estimate_rows(tree, labels),
                             annotations_estimated=True, splits=tuple(dirs))
        return None

    # -- read -----------------------------------------------------------------------------

    def read(self, source: Path, report: ValidationReport) -> ReadResult | None:
        source = Path(source)
        yaml_path = source if source.is_file() else next(
            (source / f for f in _yaml_files(SourceTree(source)) if _parse_yaml((source / f).read_text("utf-8"))),
            None)
        if yaml_path is None:
            return self._read_without_yaml(source, report, _names_only(source))
        try:
            doc = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            report.error("yaml_unreadable", f"{yaml_path.name}: {exc}")
            return None
        if not isinstance(doc, dict):
            report.error("yaml_unreadable", f"{yaml_path.name}: not a mapping")
            return None
        names, err = class_names(doc)
        if err:
            report.error("missing_key" if "neither" in err else "bad_type", f"{yaml_path.name}: {err}")
            return None
        splits = _split_values(doc)
        if "train" not in splits:
            report.error("missing_key", f"{yaml_path.name}: no `train` key")
            return None
        root = yaml_path.parent
        if doc.get("path"):
            p = Path(str(doc["path"]))
            root = p if p.is_absolute() else (yaml_path.parent / p).resolve()
        out, seen = [], {}
        for key, values in splits.items():
            paths: list[Path] = []
            entries = [e for e in (_resolve_entry(root, v) for v in values) if e is not None]
            for v in values:
                if _resolve_entry(root, v) is None:
                    report.error("split_missing", f"{yaml_path.name}: {key}: {v} not found under {root}")
            same = seen.get(tuple(entries))
            if same:
                report.warning("split_repeated", f"{yaml_path.name}: {key} lists the same images as {same} "
                               "(read once, as {same})".replace("{same}", same), 1)
                continue
            seen[tuple(entries)] = key
            for entry in entries:
                paths += _list_images(entry)
            folder = entries[0] if len(entries) == 1 and entries[0].is_dir() else None
            out.append(self._read_split(key, paths, names, report, folder, root))
        return ReadResult(self.name, source, [s for s in out if s is not None])

    def _read_without_yaml(self, source: Path, report: ValidationReport,
                           names: list[str] | None = None) -> ReadResult | None:
        """images/<split>/ beside labels/<split>/; class names from a YAML without split keys (as
        supervision writes it) or, failing that, class_0…class_N."""
        tree = SourceTree(source)
        if not tree.is_dir("images"):
            report.error("bad_source", f"{source}: no data.yaml and no images/ folder")
            return None
        subdirs = tree.listdir("images")[0]
        loose = [f for f in tree.listdir("images")[1] if is_image_name(f)]
        groups = {d: [source / r for r in tree.images(f"images/{d}")] for d in subdirs}
        if loose or not groups:
            groups = {"default": [source / r for r in tree.images("images")]}
        if names is None:
            max_cls = -1
            for rel in tree.files("labels", frozenset({".txt"})):
                for line in (source / rel).read_text(encoding="utf-8", errors="replace").splitlines():
                    head = line.split(maxsplit=1)
                    if head and head[0].isdigit():
                        max_cls = max(max_cls, int(head[0]))
            names = [f"class_{i}" for i in range(max_cls + 1)]
            report.warning("names_missing", f"{source}: no data.yaml; classes named class_0…class_{max_cls}", 1)
        splits = [self._read_split(k, v, names, report, source / "images" / k if k != "default" else
                                   source / "images", source) for k, v in groups.items()]
        return ReadResult(self.name, source, [s for s in splits if s is not None])

    def _read_split(self, split: str, paths: list[Path], names: list[str], report: ValidationReport,
                    folder: Path | None, base: Path) -> Split | None:
        paths = [p for p in paths if p.suffix.lower() in IMAGE_EXTENSIONS]
        if not paths:
            report.warning("split_empty", f"split {split}: no images", 1)
            return None
        root = folder or Path(os.path.commonpath([str(p.parent) for p in paths]))
        return read_labeled_images(self.name, split, paths, root, names, label_path, report, base)

    # -- write ----------------------------------------------------------------------------

    def carried(self, splits: Sequence[Split], options: WriteOptions) -> set[str]:
        return yolo_carried(segment_task([s.tables for s in splits], options))

    def check(self, splits: Sequence[Split], options: WriteOptions, report: ConversionReport) -> None:
        if segment_task([s.tables for s in splits], options):
            report.notes.append("segmentation rows: boxes without an outline are written as 4-corner polygons")
        names = [_out_split(s.name) for s in splits]
        if len(set(names)) != len(names):
            report.problems.append(f"two splits would share one folder: {names}")
        report.problems += [f"split name {n!r} is a reserved data.yaml key" for n in names if n in _RESERVED]
        for s in splits:
            seen: dict[str, str] = {}
            for f in s.tables.images.column("file_name").to_pylist():
                lab = os.path.splitext(f)[0]
                if lab in seen:
                    report.problems.append(f"{s.name}: {seen[lab]} and {f} would share one label file")
                    break
                seen[lab] = f

    def write_into(self, out: Path, splits: Sequence[Split], options: WriteOptions, cmap: ClassMap,
                   report: ConversionReport) -> dict[str, int]:
        segment = segment_task([s.tables for s in splits], options)
        keys: dict[str, str] = {}
        n_labels = n_rows = n_images = 0
        for s in splits:
            folder = _out_split(s.name)
            keys.setdefault("val" if folder in _VAL_NAMES else folder, f"images/{folder}")
            rows, images = write_labels(s, cmap, segment, options, lambda name, f=folder: f"labels/{f}/{name}",
                                        lambda name, f=folder: f"images/{f}/{name}", out, report)
            n_labels += s.tables.images.num_rows
            n_rows += rows
            n_images += images
        if "val" not in keys:
            keys["val"] = keys.get("train") or next(iter(keys.values()))
            report.notes.append(f"no val split: data.yaml's val points at {keys['val']} (Ultralytics needs one)")
        doc: dict[str, Any] = {k: keys[k] for k in ("train", "val", "test") if k in keys}
        doc.update({k: v for k, v in keys.items() if k not in doc})
        doc["nc"] = len(cmap.names)
        doc["names"] = dict(enumerate(cmap.names))
        (out / "data.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
        return {"images": n_images, "label_files": n_labels, "rows": n_rows}


def write_labels(s: Split, cmap: ClassMap, segment: bool, options: WriteOptions, label_rel, image_rel, out: Path,
                 report: ConversionReport) -> tuple[int, int]:
    """One label file per image (empty without objects) and its image beside it; (rows, images) written.
    `label_rel`/`image_rel` turn a file name into its path inside the export."""
    texts = label_texts(s.tables.annotations, s.tables.images, cmap, segment, options.decimals)
    ids = s.tables.images.column("image_id").to_pylist()
    names = s.tables.images.column("file_name").to_pylist()
    write_files([f"{out}/{label_rel(os.path.splitext(n)[0] + '.txt')}" for n in names], [texts.get(i) for i in ids])
    pairs = [(src, out / image_rel(name)) for name, src in zip(names, image_sources(s), strict=True)
             if src is not None] if options.images is not ImageMode.NONE else []
    return sum(t.count("\n") for t in texts.values()), place_images(pairs, options.images, report)


def _out_split(name: str) -> str:
    return "train" if name in ("", "default") else name


def read_labeled_images(fmt: str, split: str, paths: list[Path], root: Path, names: list[str], to_label,
                        report: ValidationReport, base: Path) -> Split:
    """Images with their label files (found by `to_label`) into one split; shared by both YOLO layouts."""
    builder = TableBuilder(fmt)
    for i, n in enumerate(names):
        builder.category(i, n)
    issues = LabelIssues()
    by_label: dict[str, Path] = {}
    shared = []
    labels = [to_label(str(p)) for p in paths]
    for p, lab in zip(paths, labels, strict=True):
        if lab in by_label:
            shared.append(f"{by_label[lab].name} and {p.name} → {os.path.relpath(lab, base)}")
        by_label[lab] = p
    report.error("label_shared", "two images map to one label file (same name, different suffix)", len(shared),
                 shared)
    texts = read_texts(labels)
    added = add_images(builder, paths, root, report)
    ok = [k for k, (image_id, _s) in enumerate(added) if image_id >= 0 and texts[k]]
    if not read_clean_files(builder, [added[k][0] for k in ok], [texts[k] for k in ok],
                            [(added[k][1].width, added[k][1].height) for k in ok], len(names)):
        for k in ok:  # row by row, naming each fault's file and line
            image_id, size = added[k]
            read_label_text(builder, image_id, texts[k], relative_name(labels[k], base), size.width, size.height,
                            len(names), issues)
    issues.flush(report, len(names))
    _orphans(set(labels), base, report)
    return Split(split, builder.tables({"format": fmt}), root)


def _orphans(expected: set[str], base: Path, report: ValidationReport) -> None:
    folders = {os.path.dirname(x) for x in expected}
    tops = sorted(folders)
    pruned = [f for i, f in enumerate(tops) if not any(f.startswith(t + os.sep) for t in tops[:i])]
    orphans = []
    for folder in pruned:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                full = f"{dirpath}{os.sep}{name}"
                if name.endswith(".txt") and name != "classes.txt" and full not in expected:
                    orphans.append(os.path.relpath(full, base))
    orphans.sort()
    report.warning("label_without_image", "label files with no image (ignored)", len(orphans), orphans)


FORMAT = UltralyticsYolo()
