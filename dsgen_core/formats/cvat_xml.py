"""CVAT for images 1.1 XML: the format CVAT keeps losslessly, read and written without losing anything.

Shapes map to the lake like this (the shape kind is kept in `extra.shape`):
box → BBOX; polygon → SEGMENTATION; polyline → SEGMENTATION with null area; points → KEYPOINTS
(x, y, 2 per point); ellipse → BBOX of its extent; mask → SEGMENTATION with a COCO RLE of the same
pixels; tag → LABEL. Skeletons and cuboids keep their XML verbatim in `extra.cvat_xml`. `occluded`
and `rotation` join the other attributes (as in CVAT's COCO export), typed by the label's
attribute spec; `z_order`, `source` and `group_id` go to `extra` when they are not the defaults.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, tostring

import orjson

from dsgen_core.formats.base import ConversionReport, Detection, ReadResult, Split, WriteOptions
from dsgen_core.formats.build import TableBuilder, polygon_box
from dsgen_core.formats.classmap import ClassMap
from dsgen_core.formats.headers import header_sizes
from dsgen_core.formats.masks import coco_rle_to_cvat, cvat_rle_to_coco
from dsgen_core.formats.output import ExportBase, image_sources, place_images
from dsgen_core.formats.tree import SourceTree
from dsgen_core.formats.xmltext import (
    XmlError,
    escape,
    num,
    parse_file,
    quoteattr,
    span,
    typed_value,
    value_text,
)
from dsgen_core.validation import ValidationReport

__all__ = ["FORMAT", "CvatXml"]

_SHAPES = ("box", "polygon", "polyline", "points", "ellipse", "mask", "tag", "skeleton", "cuboid")
_RAW = ("skeleton", "cuboid")
_BUILTIN = frozenset({"occluded", "rotation"})
CARRIED = frozenset({"boxes", "polygons", "rle", "rotation", "occluded", "attributes", "polylines", "points",
                     "ellipses", "cuboids", "tags", "extra"})
_EXTRA_KEYS = "('shape', 'cvat_xml', 'z_order', 'source', 'group_id')"


def _points(text: str) -> list[float]:
    out: list[float] = []
    for pair in text.split(";"):
        x, y = pair.split(",")
        out += [float(x), float(y)]
    return out


def _points_text(flat: Sequence[float]) -> str:
    return ";".join(f"{num(flat[i])},{num(flat[i + 1])}" for i in range(0, len(flat) - 1, 2))


def _label_specs(root: Element) -> list[dict[str, Any]]:
    labels = []
    for lab in root.iterfind("meta/*/labels/label"):
        spec: dict[str, Any] = {"name": (lab.findtext("name") or "").strip()}
        for key in ("type", "color", "parent", "svg"):
            v = lab.findtext(key)
            if v:
                spec[key] = v
        spec["attributes"] = [
            {k: (a.findtext(k) or "") for k in ("name", "mutable", "input_type", "default_value", "values")}
            for a in lab.iterfind("attributes/attribute")
        ]
        labels.append(spec)
    return labels


def _find_xml(tree: SourceTree) -> str | None:
    if tree.file is not None:
        return tree.file.name if tree.file.suffix.lower() == ".xml" else None
    files = tree.listdir()[1]
    cands = (["annotations.xml"] if "annotations.xml" in files else []) + [f for f in files if f.endswith(".xml")]
    return next((c for c in cands if "<annotations" in tree.text(c, 4096)), None)


class CvatXml(ExportBase):
    name = "cvat_xml"
    title = "CVAT for images 1.1 (annotations.xml)"
    carries = CARRIED

    def detect(self, tree: SourceTree) -> Detection | None:
        rel = _find_xml(tree)
        if rel is None:
            return None
        head = tree.text(rel, 1 << 20)
        names = []
        for part in head.split("<label>")[1:]:
            name = part.split("<name>", 1)[1].split("</name>", 1)[0] if "<name>" in part else ""
            if "<parent>" not in part.split("</label>", 1)[0]:
                names.append(name)
        size = (tree.root / rel).stat().st_size
        images = head.count("<image ")
        objects = sum(head.count(f"<{s} ") for s in _SHAPES)
        partial = size > len(head.encode())
        scale = size / max(1, len(head.encode())) if partial else 1
        subsets = sorted({p.split('"', 2)[1] for p in head.split('subset=')[1:]})
        return Detection(self.name, 0.95, f"{rel} with root <annotations>", tree.root, classes=tuple(names),
                         images=round(images * scale), annotations=round(objects * scale),
                         annotations_estimated=partial, splits=tuple(subsets))

    # -- read -----------------------------------------------------------------------------

    def read(self, source: Path, report: ValidationReport) -> ReadResult | None:
        source = Path(source)
        tree = SourceTree(source)
        rel = _find_xml(tree)
        if rel is None:
            report.error("bad_source", f"{source}: no CVAT annotations XML")
            return None
        xml_path = tree.root / rel
        try:
            root = parse_file(xml_path)
        except XmlError as exc:
            report.error("xml_unreadable", str(exc))
            return None
        specs = _label_specs(root)
        by_name = {s["name"]: i + 1 for i, s in enumerate(specs)}
        attr_types = {s["name"]: {a["name"]: a["input_type"] for a in s["attributes"]} for s in specs}
        images_root = tree.root / "images" if (tree.root / "images").is_dir() else None
        builders: dict[str, TableBuilder] = {}
        unknown, bad = [], []
        meta_el = root.find("meta")
        meta = {"format": self.name, "cvat_version": root.findtext("version") or "1.1",
                "cvat_meta_xml": tostring(meta_el, encoding="unicode") if meta_el is not None else None}
        for image in root.iterfind("image"):
            subset = image.get("subset") or "default"
            b = builders.get(subset)
            if b is None:
                b = builders[subset] = TableBuilder(self.name)
                for i, s in enumerate(specs):
                    b.category(i + 1, s["name"], extra={k: v for k, v in s.items() if k != "name"})
            try:
                w, h = int(image.get("width")), int(image.get("height"))
                image_id = b.image(image.get("name") or "", w, h, image_id=int(image.get("id")),
                                   extra={"task_id": int(image.get("task_id"))} if image.get("task_id") else None)
            except (TypeError, ValueError):
                bad.append(f"<image id={image.get('id')!r} name={image.get('name')!r}>: id, width and height")
                continue
            for el in image:
                if el.tag not in _SHAPES:
                    continue
                label = el.get("label")
                if label not in by_name:
                    unknown.append(f"{image.get('name')}: <{el.tag} label={label!r}>")
                    continue
                try:
                    self._shape(b, image_id, el, by_name[label], attr_types.get(label, {}), w, h)
                except (TypeError, ValueError, IndexError) as exc:
                    bad.append(f"{image.get('name')}: <{el.tag}>: {exc}")
        report.error("unknown_category_ref", "shapes whose label is not declared in <meta>", len(unknown), unknown)
        report.error("bad_type", "shapes or images with missing or non-numeric coordinates", len(bad), bad)
        if not builders:
            builders["default"] = TableBuilder(self.name)
            for i, s in enumerate(specs):
                builders["default"].category(i + 1, s["name"], extra={k: v for k, v in s.items() if k != "name"})
        splits = [Split(name, b.tables(meta), images_root) for name, b in builders.items()]
        if images_root is not None:
            for s in splits:
                _check_images(s, report)
        return ReadResult(self.name, source, splits)

    def _shape(self, b: TableBuilder, image_id: int, el: Element, cat: int, types: dict[str, str],
               img_w: int, img_h: int) -> None:
        kind = el.tag
        attrs: dict[str, Any] = {}
        if kind != "tag":
            attrs["occluded"] = el.get("occluded") == "1"
        if el.get("rotation") not in (None, ""):
            attrs["rotation"] = float(el.get("rotation"))
        for a in el.iterfind("attribute"):
            name, text = a.get("name"), a.text or ""
            t = types.get(name)
            attrs[name] = (text == "true") if t == "checkbox" else text if t in ("text", "select", "radio") else \
                typed_value(text)
        extra: dict[str, Any] = {"shape": kind}
        if el.get("z_order") not in (None, "0"):
            extra["z_order"] = int(el.get("z_order"))
        if el.get("source") not in (None, "manual"):
            extra["source"] = el.get("source")
        if el.get("group_id") not in (None, "0"):
            extra["group_id"] = int(el.get("group_id"))
        machine = el.get("source") in ("auto", "semi-auto")
        if kind == "box":
            x0, y0, x1, y1 = (float(el.get(k)) for k in ("xtl", "ytl", "xbr", "ybr"))
            b.annotation(image_id, cat, "BBOX", box=(x0, y0, span(x0, x1), span(y0, y1)), attributes=attrs, extra=extra,
                         is_machine=machine)
        elif kind == "polygon":
            b.annotation(image_id, cat, "SEGMENTATION", polygons=[_points(el.get("points"))], attributes=attrs,
                         extra=extra, is_machine=machine)
        elif kind == "polyline":
            pts = _points(el.get("points"))
            b.annotation(image_id, cat, "SEGMENTATION", polygons=[pts], area=math.nan, attributes=attrs,
                         extra=extra, is_machine=machine)
        elif kind == "points":
            pts = _points(el.get("points"))
            kp = [v for i in range(0, len(pts), 2) for v in (pts[i], pts[i + 1], 2.0)]
            b.annotation(image_id, cat, "KEYPOINTS", box=polygon_box([pts]), area=math.nan, keypoints=kp,
                         attributes=attrs, extra=extra, is_machine=machine)
        elif kind == "ellipse":
            cx, cy, rx, ry = (float(el.get(k)) for k in ("cx", "cy", "rx", "ry"))
            b.annotation(image_id, cat, "BBOX", box=(cx - rx, cy - ry, 2 * rx, 2 * ry), area=math.pi * rx * ry,
                         attributes=attrs, extra=extra, is_machine=machine)
        elif kind == "mask":
            left, top, width, height = (int(float(el.get(k))) for k in ("left", "top", "width", "height"))
            counts = [int(c) for c in el.get("rle").split(",") if c.strip()]
            rle = cvat_rle_to_coco(counts, left, top, width, height, img_w, img_h)
            b.annotation(image_id, cat, "SEGMENTATION", box=(left, top, width, height),
                         area=float(sum(counts[1::2])), rle=rle, attributes=attrs, extra=extra, is_machine=machine)
        elif kind == "tag":
            b.annotation(image_id, cat, "LABEL", attributes=attrs or None, extra=extra, is_machine=machine)
        else:  # skeleton, cuboid: kept verbatim
            extra["cvat_xml"] = tostring(el, encoding="unicode").strip()
            vals = [float(v) for k, v in el.attrib.items() if k[:1] in "xy" and k[1:2] in ("t", "b")]
            pts = [p for child in el.iterfind("points") for p in _points(child.get("points"))]
            flat = pts or vals
            box = polygon_box([flat]) if flat else None
            b.annotation(image_id, cat, "KEYPOINTS" if kind == "skeleton" else "BBOX", box=box, area=math.nan,
                         attributes=attrs, extra=extra, is_machine=machine)

    # -- write ----------------------------------------------------------------------------

    def extra_losses(self) -> dict[str, tuple[str, str]]:
        return {"extra": ("fields CVAT XML has no place for (unknown COCO keys)",
                          f"len(list_filter(json_keys(a.extra), lambda k: k NOT IN {_EXTRA_KEYS})) > 0")}

    def write_into(self, out: Path, splits: Sequence[Split], options: WriteOptions, cmap: ClassMap,
                   report: ConversionReport) -> dict[str, int]:
        labels = _labels_xml(splits, cmap)
        n_images = n_shapes = 0
        pairs = []
        total = sum(s.tables.images.num_rows for s in splits)
        with open(out / "annotations.xml", "w", encoding="utf-8") as f:
            f.write('<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n')
            f.write(f"  <meta>\n    <task>\n      <name>dsgen export</name>\n      <size>{total}</size>\n"
                    f"      <mode>annotation</mode>\n      <overlap>0</overlap>\n{labels}    </task>\n"
                    f"    <dumped>{datetime.now(UTC).isoformat()}</dumped>\n  </meta>\n")
            frame = 0
            named = len(splits) > 1 or splits[0].name not in ("", "default")
            for s in splits:
                shapes = _shapes_by_image(s, cmap)
                img = s.tables.images
                for image_id, name, w, h, src in zip(img.column("image_id").to_pylist(),
                                                     img.column("file_name").to_pylist(),
                                                     img.column("width").to_pylist(),
                                                     img.column("height").to_pylist(), image_sources(s),
                                                     strict=True):
                    subset = f" subset={quoteattr(s.name)}" if named else ""
                    body = shapes.get(image_id, [])
                    f.write(f"  <image id=\"{frame}\" name={quoteattr(name)}{subset} width=\"{w}\" "
                            f"height=\"{h}\">\n" + "".join(body) + "  </image>\n")
                    frame += 1
                    n_shapes += len(body)
                    if src is not None:
                        pairs.append((src, out / "images" / name))
            f.write("</annotations>\n")
        n_images = place_images(pairs, options.images, report)
        return {"images": n_images, "frames": frame, "shapes": n_shapes}


def _check_images(s: Split, report: ValidationReport) -> None:
    img = s.tables.images
    names = img.column("file_name").to_pylist()
    sizes = header_sizes([s.images_root / n for n in names])
    missing, mismatch = [], []
    for name, w, h, size in zip(names, img.column("width").to_pylist(), img.column("height").to_pylist(), sizes,
                                strict=True):
        if size.error:
            missing.append(f"{name}: {size.error}")
        elif (size.width, size.height) != (w, h) and (size.height, size.width) != (w, h):
            mismatch.append(f"{name}: XML says {w}x{h}, file is {size.width}x{size.height}")
    report.error("image_missing", f"images listed in the XML but not readable in {s.images_root}", len(missing),
                 missing)
    report.warning("size_mismatch", "width/height in the XML differ from the image file", len(mismatch), mismatch)


def _attr_specs(splits: Sequence[Split]) -> dict[int, dict[str, set]]:
    """Attribute names and values seen per category, for labels that carry no CVAT spec."""
    seen: dict[int, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for s in splits:
        a = s.tables.annotations
        for cat, attrs in zip(a.column("category_id").to_pylist(), a.column("attributes").to_pylist(), strict=True):
            if attrs and cat is not None:
                for k, v in orjson.loads(attrs).items():
                    if k not in _BUILTIN:
                        seen[cat][k].add(v if not isinstance(v, list | dict) else orjson.dumps(v).decode())
    return seen


def _labels_xml(splits: Sequence[Split], cmap) -> str:
    cats = splits[0].tables.categories if splits else None
    specs: dict[int, dict[str, Any]] = {}
    if cats is not None:
        for cid, extra in zip(cats.column("category_id").to_pylist(), cats.column("extra").to_pylist(), strict=True):
            specs[cid] = orjson.loads(extra) if extra else {}
    seen = _attr_specs(splits)
    out = ["      <labels>\n"]
    for cid, _target, name in sorted(((c, t, n) for c, t, n in _class_rows(cmap)), key=lambda r: r[1]):
        spec = specs.get(cid, {})
        attrs = spec.get("attributes")
        if attrs is None:
            attrs = [_infer_spec(k, vals) for k, vals in sorted(seen.get(cid, {}).items())]
        out.append(f"        <label>\n          <name>{escape(name)}</name>\n")
        for key in ("color", "type", "parent", "svg"):
            if spec.get(key):
                out.append(f"          <{key}>{escape(spec[key])}</{key}>\n")
        out.append("          <attributes>\n")
        for a in attrs:
            out.append("            <attribute>\n" + "".join(
                f"              <{k}>{escape(str(a.get(k, '')))}</{k}>\n"
                for k in ("name", "mutable", "input_type", "default_value", "values")) + "            </attribute>\n")
        out.append("          </attributes>\n        </label>\n")
    out.append("      </labels>\n")
    return "".join(out)


def _class_rows(cmap) -> list[tuple[int, int, str]]:
    return [(cid, t, cmap.names[t]) for cid, t in cmap.by_category.items()]


def _infer_spec(name: str, values: set) -> dict[str, str]:
    if values and all(isinstance(v, bool) for v in values):
        return {"name": name, "mutable": "False", "input_type": "checkbox", "default_value": "false",
                "values": "false"}
    if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        lo, hi = min(values), max(values)
        return {"name": name, "mutable": "False", "input_type": "number", "default_value": value_text(lo),
                "values": f"{value_text(lo)}\n{value_text(hi)}\n1"}
    texts = sorted(value_text(v) for v in values)
    return {"name": name, "mutable": "False", "input_type": "select" if len(texts) <= 64 else "text",
            "default_value": texts[0] if texts else "", "values": "\n".join(texts) if len(texts) <= 64 else ""}


def _shapes_by_image(s: Split, cmap) -> dict[int, list[str]]:
    a = s.tables.annotations.sort_by("annotation_id")
    out: dict[int, list[str]] = defaultdict(list)
    cols = [a.column(c).to_pylist() for c in ("image_id", "category_id", "annotation_type", "bbox_x", "bbox_y",
                                              "bbox_w", "bbox_h", "polygons", "rle", "keypoints", "attributes",
                                              "extra")]
    for image_id, cat, kind, x, y, w, h, polys, rle, kps, attrs_json, extra_json in zip(*cols, strict=True):
        label = cmap.name_of(cat) if cat is not None else None
        if label is None:
            continue
        extra = orjson.loads(extra_json) if extra_json else {}
        if "cvat_xml" in extra:
            out[image_id].append(f"    {extra['cvat_xml']}\n")
            continue
        attrs = orjson.loads(attrs_json) if attrs_json else {}
        shape = extra.get("shape") or {"BBOX": "box", "SEGMENTATION": "polygon", "LABEL": "tag",
                                       "KEYPOINTS": "points"}.get(kind)
        if shape == "polygon" and rle and not polys:
            shape = "mask"
        occluded = attrs.pop("occluded", False)
        rotation = attrs.pop("rotation", 0) or 0
        head = [f"label={quoteattr(label)}", f"source={quoteattr(str(extra.get('source', 'manual')))}"]
        if shape != "tag":
            head.insert(1, f'occluded="{1 if occluded is True else 0}"')
        geom = _geometry(shape, x, y, w, h, polys, rle, kps)
        if geom is None:
            continue
        if rotation and shape in ("box", "ellipse"):
            geom += f' rotation="{num(rotation)}"'
        elif rotation:
            attrs["rotation"] = rotation
        if shape != "tag":
            head.append(f'z_order="{int(extra.get("z_order", 0))}"')
        if extra.get("group_id"):
            head.append(f'group_id="{int(extra["group_id"])}"')
        inner = "".join(f"      <attribute name={quoteattr(str(k))}>{escape(value_text(v))}</attribute>\n"
                        for k, v in attrs.items())
        out[image_id].append(f"    <{shape} {' '.join(head)}{geom}>\n{inner}    </{shape}>\n")
        for part in (polys or [])[1:] if shape in ("polygon", "polyline") else ():
            out[image_id].append(f"    <{shape} {' '.join(head)} points=\"{_points_text(part)}\">\n{inner}"
                                 f"    </{shape}>\n")
    return out


def _geometry(shape: str, x, y, w, h, polys, rle, kps) -> str | None:
    if shape == "tag":
        return ""
    if shape == "box":
        return None if x is None else f' xtl="{num(x)}" ytl="{num(y)}" xbr="{num(x + w)}" ybr="{num(y + h)}"'
    if shape == "ellipse":
        rx, ry = w / 2, h / 2
        return f' cx="{num(x + rx)}" cy="{num(y + ry)}" rx="{num(rx)}" ry="{num(ry)}"'
    if shape in ("polygon", "polyline"):
        return f' points="{_points_text(polys[0])}"' if polys else None
    if shape == "points":
        flat = [v for i in range(0, len(kps or []), 3) for v in kps[i : i + 2]]
        return f' points="{_points_text(flat)}"' if flat else None
    if shape == "mask":
        got = coco_rle_to_cvat(rle) if rle else None
        if got is None:
            return None
        counts, left, top, width, height = got
        return (f' rle="{", ".join(map(str, counts))}" left="{left}" top="{top}" width="{width}" '
                f'height="{height}"')
    return None


FORMAT = CvatXml()
