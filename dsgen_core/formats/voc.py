"""Pascal VOC as CVAT writes it: `Annotations/<id>.xml`, `JPEGImages/`, `ImageSets/Main/<subset>.txt`, `labelmap.txt`.

Boxes are read and written with no offset (CVAT's and Datumaro's convention; the original devkit's
1-based pixels would need −1, which shifts CVAT-made boxes by a pixel). `truncated`, `occluded`,
`difficult` and `pose` become attributes, and CVAT's `<attributes>` are kept with CVAT's typing
(true/false → booleans, canonical numbers → numbers, anything else stays text).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from dsgen_core.formats.base import ConversionReport, Detection, ImageMode, ReadResult, Split, WriteOptions
from dsgen_core.formats.build import TableBuilder
from dsgen_core.formats.classmap import ClassMap
from dsgen_core.formats.headers import header_sizes
from dsgen_core.formats.output import ExportBase, image_sources, place_images
from dsgen_core.formats.textout import SHAPE_SQL, stream, write_files, xml_escape
from dsgen_core.formats.tree import IMAGE_EXTENSIONS, SourceTree
from dsgen_core.formats.xmltext import XmlError, escape, parse_file, span, typed_value, value_text
from dsgen_core.validation import ValidationReport

__all__ = ["FORMAT", "PascalVoc"]

_NATIVE_FLAGS = ("truncated", "occluded", "difficult")
CARRIED = frozenset({"boxes", "occluded", "attributes", "rotation", "multipart"})  # multipart: one box
_LABELMAP_HEADER = "# label:color_rgb:parts:actions"


def _palette(i: int) -> str:
    """The VOC colour map (bit-interleaved), as `r,g,b`."""
    r = g = b = 0
    c = i
    for j in range(8):
        r |= ((c >> 0) & 1) << (7 - j)
        g |= ((c >> 1) & 1) << (7 - j)
        b |= ((c >> 2) & 1) << (7 - j)
        c >>= 3
    return f"{r},{g},{b}"


def _subset_lists(root: Path) -> dict[str, list[str]]:
    """ImageSets/Main/<subset>.txt files (one id per line); label lists (`<id> ±1`) are left out."""
    main = root / "ImageSets" / "Main"
    out: dict[str, list[str]] = {}
    if not main.is_dir():
        return out
    for f in sorted(main.glob("*.txt")):
        lines = [ln.strip() for ln in f.read_text("utf-8", "replace").splitlines() if ln.strip()]
        if lines and all(len(ln.split()) == 1 for ln in lines[:20]):
            out[f.stem] = lines
    if "trainval" in out and "train" in out and "val" in out:
        del out["trainval"]  # the union of the two; importing it would duplicate every image
    return out


def _text(el: Any, tag: str) -> str | None:
    child = el.find(tag)
    return None if child is None or child.text is None else child.text.strip()


def _flag(value: str | None) -> bool:
    try:
        return bool(float(value)) if value not in (None, "") else False
    except ValueError:
        return value.lower() == "true"


class PascalVoc(ExportBase):
    name = "voc"
    title = "Pascal VOC (Annotations/*.xml, JPEGImages/, ImageSets/Main/)"
    carries = CARRIED

    def detect(self, tree: SourceTree) -> Detection | None:
        folder = "Annotations" if tree.is_dir("Annotations") else None
        xmls = tree.files(folder, frozenset({".xml"})) if folder else [f for f in tree.listdir()[1]
                                                                           if f.endswith(".xml")]
        if not xmls:
            return None
        sample = tree.sample(xmls, 8)
        if not all("<annotation" in tree.text(x, 4096) and "<annotations" not in tree.text(x, 4096) for x in sample):
            return None
        objects = sum(tree.text(x, 1 << 20).count("<object>") for x in sample)
        splits = tuple(Path(f).stem for f in tree.listdir("ImageSets/Main")[1] if "_" not in f)
        names = tuple(ln.split(":", 1)[0] for ln in tree.text("labelmap.txt").splitlines()
                      if ln and not ln.startswith("#") and not ln.startswith("background:"))
        score = 0.9 if folder and (tree.is_dir("ImageSets") or tree.is_dir("JPEGImages")) else 0.7
        return Detection(self.name, score, f"{len(xmls)} VOC <annotation> XML files", tree.root, classes=names,
                         images=len(xmls), annotations=round(objects * len(xmls) / len(sample)),
                         annotations_estimated=len(sample) < len(xmls), splits=splits)

    # -- read -----------------------------------------------------------------------------

    def read(self, source: Path, report: ValidationReport) -> ReadResult | None:
        root = Path(source)
        ann_dir = root / "Annotations" if (root / "Annotations").is_dir() else root
        img_dir = root / "JPEGImages" if (root / "JPEGImages").is_dir() else root
        ids_all = sorted(r[:-4] for r in SourceTree(ann_dir).files("", frozenset({".xml"})))
        subsets = _subset_lists(root) or {"default": ids_all}
        docs: dict[str, dict[str, Any]] = {}
        bad_xml, missing_xml, bad_values = [], [], []
        for item in sorted({i for ids in subsets.values() for i in ids}):
            path = ann_dir / f"{item}.xml"
            if not path.is_file():
                missing_xml.append(f"{item}.xml")
                continue
            try:
                docs[item] = self._parse(parse_file(path), item, bad_values)
            except XmlError as exc:
                bad_xml.append(str(exc))
        report.error("xml_unreadable", "annotation XML files that do not parse", len(bad_xml), bad_xml)
        report.error("image_missing", "image set entries without an annotation file", len(missing_xml), missing_xml)
        report.error("bad_type", "objects whose box is missing or not numbers", len(bad_values), bad_values)
        names = self._class_names(root, docs, report)
        splits = [self._split(name, ids, docs, names, img_dir, report) for name, ids in subsets.items()]
        return ReadResult(self.name, root, splits)

    def _parse(self, el: Any, item: str, bad: list[str]) -> dict[str, Any]:
        if el.tag != "annotation":
            raise XmlError(f"{item}.xml: root element is <{el.tag}>, not <annotation>")
        size = el.find("size")
        dims = None
        if size is not None:
            try:
                dims = (int(float(_text(size, "width"))), int(float(_text(size, "height"))))
            except (TypeError, ValueError):
                dims = None  # CVAT leaves <size> values empty
        objects = []
        for k, obj in enumerate(el.findall("object")):
            box = obj.find("bndbox")
            try:
                xmin, ymin, xmax, ymax = (float(_text(box, t)) for t in ("xmin", "ymin", "xmax", "ymax"))
            except (TypeError, ValueError, AttributeError):
                if len(bad) < 5:
                    bad.append(f"{item}.xml object {k + 1}: bndbox")
                continue
            # occluded always (CVAT's default attribute); truncated/difficult and pose only when set
            attrs: dict[str, Any] = {"occluded": _flag(_text(obj, "occluded"))}
            attrs.update({f: True for f in ("truncated", "difficult") if _flag(_text(obj, f))})
            pose = _text(obj, "pose")
            if pose and pose != "Unspecified":
                attrs["pose"] = pose
            for a in obj.findall("attributes/attribute"):
                key = _text(a, "name")
                if key:
                    value = a.find("value")
                    attrs[key] = typed_value("" if value is None or value.text is None else value.text)
            objects.append((_text(obj, "name") or "", (xmin, ymin, span(xmin, xmax), span(ymin, ymax)), attrs))
        return {"filename": _text(el, "filename"), "size": dims, "objects": objects}

    def _class_names(self, root: Path, docs: dict[str, dict[str, Any]], report: ValidationReport) -> list[str]:
        names: list[str] = []
        lm = root / "labelmap.txt"
        if lm.is_file():
            for line in lm.read_text("utf-8", "replace").splitlines():
                if line.strip() and not line.startswith("#"):
                    n = line.split(":", 1)[0].strip()
                    if n and n != "background" and n not in names:
                        names.append(n)
        used = sorted({o[0] for d in docs.values() for o in d["objects"]})
        extra = [n for n in used if n not in names]
        if names and extra:
            report.warning("category_not_in_labelmap", "object names missing from labelmap.txt (added)", len(extra),
                           extra)
        return names + extra

    def _split(self, split: str, ids: list[str], docs: dict[str, dict[str, Any]], names: list[str], img_dir: Path,
               report: ValidationReport) -> Split:
        builder = TableBuilder(self.name)
        cat_id = {n: i + 1 for i, n in enumerate(names)}
        for n, i in cat_id.items():
            builder.category(i, n)
        items = [i for i in ids if i in docs]
        paths = [self._image_path(img_dir, i, docs[i]["filename"]) for i in items]
        sizes = header_sizes([p for p in paths if p is not None])
        size_iter = iter(sizes)
        missing, mismatch, corrupt = [], [], []
        for item, path in zip(items, paths, strict=True):
            doc = docs[item]
            if path is None:
                missing.append(f"{item}: {doc['filename'] or '(no <filename>)'} not in {img_dir.name}/")
                continue
            size = next(size_iter)
            if size.error:
                corrupt.append(f"{path.name}: {size.error}")
                continue
            if doc["size"] and doc["size"] != (size.width, size.height):
                mismatch.append(f"{item}: XML says {doc['size'][0]}x{doc['size'][1]}, file is {size.width}x{size.height}")
            extra = {"voc_id": item} if os.path.splitext(path.relative_to(img_dir).as_posix())[0] != item else None
            image_id = builder.image(path.relative_to(img_dir).as_posix(), size.width, size.height,
                                     exif_orientation=size.orientation, extra=extra)
            for name, box, attrs in doc["objects"]:
                builder.annotation(image_id, cat_id[name], "BBOX", box=box, attributes=attrs)
        report.error("image_missing", f"annotations whose image is not in {img_dir}", len(missing), missing)
        report.error("image_corrupt", "image files whose header cannot be read", len(corrupt), corrupt)
        report.warning("size_mismatch", "<size> in the XML differs from the image file", len(mismatch), mismatch)
        return Split(split, builder.tables({"format": self.name}), img_dir)

    @staticmethod
    def _image_path(img_dir: Path, item: str, filename: str | None) -> Path | None:
        sub = os.path.dirname(item)
        cands = []
        if filename:
            cands += [img_dir / sub / filename, img_dir / filename]
        cands += [img_dir / f"{item}{ext}" for ext in (".jpg", ".jpeg", ".png", ".JPG", ".PNG", ".bmp")]
        found = next((c for c in cands if c.is_file()), None)
        if found is None and (img_dir / sub).is_dir():
            stem = os.path.basename(item)
            found = next((p for p in (img_dir / sub).glob(f"{stem}.*") if p.suffix.lower() in IMAGE_EXTENSIONS), None)
        return found

    # -- write ----------------------------------------------------------------------------

    def write_into(self, out: Path, splits: Sequence[Split], options: WriteOptions, cmap: ClassMap,
                   report: ConversionReport) -> dict[str, int]:
        n_xml = n_obj = n_images = 0
        (out / "Annotations").mkdir()
        main = out / "ImageSets" / "Main"
        main.mkdir(parents=True)
        for s in splits:
            items, counts = _write_xmls(s, cmap, f"{out}/Annotations")
            names = s.tables.images.column("file_name").to_pylist()
            n_xml += len(items)
            n_obj += counts
            if options.images is not ImageMode.NONE:
                pairs = [(src, out / "JPEGImages" / name) for name, src in zip(names, image_sources(s), strict=True)
                         if src is not None]
                n_images += place_images(pairs, options.images, report)
            (main / f"{_subset(s.name)}.txt").write_text("".join(f"{i}\n" for i in items))
        lines = [_LABELMAP_HEADER, "background:0,0,0::"]
        lines += [f"{n}:{_palette(i + 1)}::" for i, n in enumerate(cmap.names)]
        (out / "labelmap.txt").write_text("\n".join(lines) + "\n")
        return {"images": n_images, "xml_files": n_xml, "objects": n_obj}


def _subset(name: str) -> str:
    return name or "default"


def _fragments(attributes: str | None) -> tuple[str, str]:
    """(pose and flag elements, <attributes> block) of one attributes JSON text."""
    attrs = dict(orjson.loads(attributes)) if attributes else {}
    flags = {f: 1 if attrs.pop(f, False) is True else 0 for f in _NATIVE_FLAGS}
    pose = attrs.pop("pose", "Unspecified")
    if not attrs.get("rotation"):
        attrs.pop("rotation", None)  # CVAT's default 0.0 is no information
    head = f"    <pose>{escape(str(pose))}</pose>\n" + "".join(f"    <{f}>{v}</{f}>\n" for f, v in flags.items())
    if not attrs:
        return head, ""
    inner = "".join(f"      <attribute><name>{escape(str(k))}</name><value>{escape(value_text(v))}</value></attribute>\n"
                    for k, v in attrs.items())
    return head, f"    <attributes>\n{inner}    </attributes>\n"


# One row per written object, in file order; the attribute XML comes from `frags`, rendered once per
# distinct attributes text (a dataset has few), so DuckDB only concatenates.
_OBJECTS_SQL = f"""
    SELECT a.image_id,
           '  <object>' || chr(10) || '    <name>' || {xml_escape("m.name")} || '</name>' || chr(10) ||
           f.head || '    <bndbox><xmin>' || a.bbox_x::VARCHAR || '</xmin><ymin>' || a.bbox_y::VARCHAR ||
           '</ymin><xmax>' || (a.bbox_x + a.bbox_w)::VARCHAR || '</xmax><ymax>' || (a.bbox_y + a.bbox_h)::VARCHAR ||
           '</ymax></bndbox>' || chr(10) || f.tail || '  </object>' || chr(10) AS xml
    FROM annotations a JOIN cmap m USING (category_id)
         JOIN frags f ON a.attributes IS NOT DISTINCT FROM f.attributes
    WHERE a.annotation_type IN ('BBOX', 'SEGMENTATION') AND a.bbox_x IS NOT NULL AND a.bbox_w IS NOT NULL
      AND {SHAPE_SQL} NOT IN ('polyline', 'points', 'cuboid')
    ORDER BY a.image_id, a.annotation_id
"""  # noqa: S608 - fixed SQL
_FLUSH = 4096  # files per write


def _write_xmls(s: Split, cmap: ClassMap, folder: str) -> tuple[list[str], int]:
    """Write one XML per image, objects streamed image by image; (VOC ids, objects written)."""
    ann = s.tables.annotations.select(["annotation_id", "image_id", "category_id", "annotation_type", "bbox_x",
                                       "bbox_y", "bbox_w", "bbox_h", "attributes", "extra"])
    distinct = pc.unique(ann.column("attributes")).to_pylist()
    parts = [_fragments(a) for a in distinct]
    frags = pa.table({"attributes": pa.array(distinct, pa.string()), "head": [p[0] for p in parts],
                      "tail": [p[1] for p in parts]})
    img = s.tables.images
    rows = sorted(zip(img.column("image_id").to_pylist(), img.column("file_name").to_pylist(),
                      img.column("width").to_pylist(), img.column("height").to_pylist(), strict=True))
    objects = (row for batch in stream(_OBJECTS_SQL, {"annotations": ann, "frags": frags}, cmap)
               for row in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True))
    groups = groupby(objects, key=itemgetter(0))
    group = next(groups, None)
    items, pending, n_obj = [], [], 0
    for image_id, name, w, h in rows:
        while group is not None and group[0] < image_id:  # objects of an image the split does not hold
            group = next(groups, None)
        body = ""
        if group is not None and group[0] == image_id:
            xml = [x for _, x in group[1]]
            n_obj += len(xml)
            body = "".join(xml)
            group = next(groups, None)
        item = os.path.splitext(name)[0]
        items.append(item)
        pending.append((f"{folder}/{item}.xml", _xml(item, os.path.basename(name), w, h, body)))
        if len(pending) >= _FLUSH:
            write_files([p for p, _ in pending], [t for _, t in pending])
            pending.clear()
    write_files([p for p, _ in pending], [t for _, t in pending])
    return items, n_obj


def _xml(item: str, filename: str, w: int | None, h: int | None, objects: str) -> str:
    folder = item.split("_", 1)[0] if "_" in item and "/" not in item else ""
    return (
        "<annotation>\n"
        f"  <folder>{escape(folder)}</folder>\n"
        f"  <filename>{escape(filename)}</filename>\n"
        "  <source><database>Unknown</database><annotation>Unknown</annotation><image>Unknown</image></source>\n"
        f"  <size><width>{w or ''}</width><height>{h or ''}</height><depth></depth></size>\n"
        "  <segmented>0</segmented>\n"
        f"{objects}</annotation>\n"
    )


FORMAT = PascalVoc()
