"""Benchmark of the format wing: COCO → YOLO, COCO → VOC and YOLO import on L, against Datumaro, globox and
supervision in the same run, plus auto-detection of an L-sized folder.

Each conversion runs in its own child process (wall time of the conversion itself, peak RSS of the
process). Every tool's output is then parsed by one shared reader and compared with ours box by box:
the table says ANSWER DIFFERS (and how) when they are not the same boxes.

L's file names are flattened (`scene__seq__frame.jpg`) because supervision writes labels by base name
only, and its images are hard links to one JPEG per resolution (peers decode every image; the bytes
do not matter, the declared sizes do).

    python bench/formats.py            # L = 118k images / ~870k annotations
    python bench/formats.py --small    # a tenth of it
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from datasets import DATA, ensure_l
from table import print_table  # bench/table.py: the script's own folder is on sys.path

ROOT = Path(__file__).resolve().parent.parent

OUT = ROOT / "bench" / "out" / "formats"
TOOLS = ("dsgen", "datumaro", "globox", "supervision")
CASES = ("coco_to_yolo", "coco_to_voc", "yolo_import")
# bytes of address space per peer process; supervision's from_coco builds a whole-image mask per polygon
PEER_MEMORY_LIMIT = {"datumaro": 12 << 30, "globox": 12 << 30, "supervision": 6 << 30}
BOX_TOL = 2e-3  # px: supervision keeps float32 and writes 5 decimals


# --------------------------------------------------------------------------------------------
# data


def ensure_flat(small: bool) -> Path:
    """L with flat, unique file names and an images/ folder of hard links (cached under bench/data)."""
    import numpy as np
    import pyarrow as pa
    from PIL import Image

    from dsgen_core.formats.coco_reader import read_coco
    from dsgen_core.formats.coco_writer import write_coco
    from dsgen_core.validation import ValidationReport

    src = ensure_l(small)
    flat = DATA / f"{src.name}-flat"
    done = flat / "ready"
    if done.exists():
        return flat
    t0 = time.perf_counter()
    shutil.rmtree(flat, ignore_errors=True)
    (flat / "annotations").mkdir(parents=True)
    tables = read_coco(src / "annotations" / "instances_default.json", ValidationReport())
    names = [n.replace("/", "__") for n in tables.images.column("file_name").to_pylist()]
    tables.images = tables.images.set_column(tables.images.schema.get_field_index("file_name"), "file_name",
                                             pa.array(names, pa.string()))
    write_coco(tables, flat / "annotations" / "instances_default.json")
    templates = flat / "templates"
    templates.mkdir()
    images = flat / "images"
    images.mkdir()
    made = {}
    for name, w, h in zip(names, tables.images.column("width").to_pylist(), tables.images.column("height").to_pylist(),
                          strict=True):
        t = made.get((w, h))
        if t is None:
            t = made[(w, h)] = templates / f"{w}x{h}.jpg"
            Image.fromarray(np.full((h, w, 3), 118, np.uint8)).save(t, quality=80)
        os.link(t, images / name)
    done.write_text("ok")
    print(f"prepared flat L in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return flat


def ensure_yolo_input(flat: Path) -> Path:
    """Our Ultralytics export of flat L (images hard-linked): the input of the YOLO import case."""
    from dsgen_core.formats.base import Split, WriteOptions
    from dsgen_core.formats.coco_reader import read_coco
    from dsgen_core.formats.yolo import FORMAT
    from dsgen_core.validation import ValidationReport

    dest = flat.parent / f"{flat.name}-yolo"
    if (dest / "data.yaml").exists():
        return dest
    tables = read_coco(flat / "annotations" / "instances_default.json", ValidationReport())
    FORMAT.write([Split("train", tables, flat / "images")], dest, WriteOptions(task="detect", allow_lossy=True))
    return dest


# --------------------------------------------------------------------------------------------
# conversions (each runs in a child process)


def run_case(case: str, tool: str, src: Path, out: Path) -> dict:
    coco = src / "annotations" / "instances_default.json"
    images = src / "images"
    t0 = time.perf_counter()
    extra: dict = {}
    if tool == "dsgen":
        from dsgen_core.formats.base import ImageMode, Split, WriteOptions
        from dsgen_core.formats.coco_reader import read_coco
        from dsgen_core.formats.voc import FORMAT as VOC
        from dsgen_core.formats.yolo import FORMAT as YOLO
        from dsgen_core.validation import ValidationReport

        opts = WriteOptions(images=ImageMode.NONE, task="detect", allow_lossy=True)
        if case == "yolo_import":
            res = YOLO.read(src, ValidationReport())
            extra["boxes"] = sum(s.tables.annotations.num_rows for s in res.splits)
            t1, peak = time.perf_counter(), _peak_mb()
            _dump_answer(out, _answer_dsgen(res))
            return {"seconds": t1 - t0, "peak_mb": peak, **extra}
        tables = read_coco(coco, ValidationReport())
        (YOLO if case == "coco_to_yolo" else VOC).write([Split("train", tables, images)], out, opts)
    elif tool == "globox":
        from globox import AnnotationSet

        if case == "yolo_import":
            ds = AnnotationSet.from_yolo_v5(src / "labels" / "train", image_folder=src / "images" / "train")
            t1, peak = time.perf_counter(), _peak_mb()
            _dump_answer(out, _answer_globox(ds, src))
            return {"seconds": t1 - t0, "peak_mb": peak}
        ds = AnnotationSet.from_coco(coco)
        (out / ("labels/train" if case == "coco_to_yolo" else "Annotations")).mkdir(parents=True)
        if case == "coco_to_yolo":
            names = [c["name"] for c in json.loads(coco.read_bytes())["categories"]]
            ds.save_yolo_v5(out / "labels" / "train", label_to_id={n: i for i, n in enumerate(names)})
            (out / "data.yaml").write_text(json.dumps({"names": names}))
        else:
            ds.save_pascal_voc(out / "Annotations")
    elif tool == "supervision":
        import supervision as sv

        if case == "yolo_import":
            ds = sv.DetectionDataset.from_yolo(str(src / "images/train"), str(src / "labels/train"),
                                               str(src / "data.yaml"))
            rows = {Path(p).stem: [(ds.classes[c], *map(float, b)) for b, c in zip(d.xyxy, d.class_id, strict=True)]
                    for p, _img, d in ds}
            t1, peak = time.perf_counter(), _peak_mb()
            _dump_answer(out, {k: sorted((n, x0, y0, x1 - x0, y1 - y0) for n, x0, y0, x1, y1 in v)
                               for k, v in rows.items()})
            return {"seconds": t1 - t0, "peak_mb": peak}
        ds = sv.DetectionDataset.from_coco(str(images), str(coco))
        if case == "coco_to_yolo":
            ds.as_yolo(annotations_directory_path=str(out / "labels/train"), data_yaml_path=str(out / "data.yaml"))
        else:
            ds.as_pascal_voc(annotations_directory_path=str(out / "Annotations"))
    elif tool == "datumaro":
        import datumaro as dm

        if case == "yolo_import":
            ds = dm.Dataset.import_from(str(src), "yolo")
            labels = ds.categories()[dm.AnnotationType.label]
            rows = {Path(item.id).name: sorted((labels[a.label].name, *map(float, a.get_bbox()))
                                               for a in item.annotations if a.type == dm.AnnotationType.bbox)
                    for item in ds}
            t1, peak = time.perf_counter(), _peak_mb()
            _dump_answer(out, rows)
            return {"seconds": t1 - t0, "peak_mb": peak}
        ds = dm.Dataset.import_from(str(src), "coco_instances").transform("map_subsets", mapping={"default": "train"})
        fmt = "yolo" if case == "coco_to_yolo" else "voc_detection"  # yolo_ultralytics insists on a val subset
        ds.export(str(out), fmt, save_media=False)
    return {"seconds": time.perf_counter() - t0, **extra}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dump_answer(out: Path, rows: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "answer.json").write_text(json.dumps(rows))


def _answer_dsgen(res) -> dict:
    rows: dict[str, list] = {}
    for s in res.splits:
        t = s.tables
        names = dict(zip(t.categories.column("category_id").to_pylist(), t.categories.column("name").to_pylist(),
                         strict=True))
        files = {i: Path(f).stem for i, f in zip(t.images.column("image_id").to_pylist(),
                                                 t.images.column("file_name").to_pylist(), strict=True)}
        for f in files.values():
            rows.setdefault(f, [])
        a = t.annotations
        for i, c, x, y, w, h in zip(*(a.column(k).to_pylist() for k in ("image_id", "category_id", "bbox_x", "bbox_y",
                                                                        "bbox_w", "bbox_h")), strict=True):
            rows[files[i]].append((names[c], x, y, w, h))
    return {k: sorted(v) for k, v in rows.items()}


def _answer_globox(ds, src: Path) -> dict:
    import yaml

    names = yaml.safe_load((src / "data.yaml").read_text())["names"]
    rows = {}
    for ann in ds:
        rows[Path(ann.image_id).stem] = sorted(
            (names[int(b.label)], *map(float, b.ltrb[:2]), float(b.ltrb[2] - b.ltrb[0]), float(b.ltrb[3] - b.ltrb[1]))
            for b in ann.boxes)
    return rows


# --------------------------------------------------------------------------------------------
# one reader for every tool's output, then the comparison


def read_yolo_output(out: Path) -> dict[str, list]:
    """stem → sorted (class name, cx, cy, w, h) from any tool's YOLO labels."""
    import yaml

    doc_path = next((p for p in (out / "data.yaml", out / "dataset.yaml") if p.exists()), None)
    doc = yaml.safe_load(doc_path.read_text()) if doc_path else {}
    names = doc.get("names")
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names, key=int)]
    if names is None and (out / "obj.names").exists():  # the Darknet layout (Datumaro's "yolo")
        names = [n for n in (out / "obj.names").read_text().splitlines() if n]
    rows: dict[str, list] = {}
    for p in out.rglob("*.txt"):
        if p.parent == out:
            continue  # list files and obj.names
        items = []
        for line in p.read_text().splitlines():
            v = line.split()
            if v:
                items.append((names[int(v[0])] if names else v[0], *map(float, v[1:5])))
        rows[p.stem] = sorted(items)
    return rows


def read_voc_output(out: Path) -> dict[str, list]:
    from defusedxml.ElementTree import parse

    rows: dict[str, list] = {}
    for p in (out / "Annotations").rglob("*.xml"):
        items = []
        for obj in parse(str(p)).getroot().iter("object"):
            b = obj.find("bndbox")
            x0, y0, x1, y1 = (float(b.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            items.append((obj.findtext("name"), x0, y0, x1 - x0, y1 - y0))
        rows[p.stem] = sorted(items)
    return rows


def _close(x: list, y: list, tol: float) -> bool:
    return x[0] == y[0] and max(abs(p - q) for p, q in zip(x[1:], y[1:], strict=True)) <= tol


def _same_boxes(a: list, b: list, tol: float) -> bool:
    """The same multiset of (class, 4 numbers) within `tol`: pairwise in sorted order, else matched
    greedily (two boxes of one class a hair apart may sort either way)."""
    if len(a) != len(b):
        return False
    if all(_close(x, y, tol) for x, y in zip(a, b, strict=True)):
        return True
    left = list(b)
    for x in a:
        j = next((j for j, y in enumerate(left) if _close(x, y, tol)), None)
        if j is None:
            return False
        left.pop(j)
    return True


def compare(ours: dict[str, list], theirs: dict[str, list], tol: float) -> str:
    """'same' or what differs."""
    ours_nonempty = {k for k, v in ours.items() if v}
    theirs_nonempty = {k for k, v in theirs.items() if v}
    n_ours = sum(len(v) for v in ours.values())
    n_theirs = sum(len(v) for v in theirs.values())
    bad = 0
    for k in ours_nonempty | theirs_nonempty:
        if not _same_boxes(ours.get(k, []), theirs.get(k, []), tol):
            bad += 1
    if not bad:
        return "same"
    return f"ANSWER DIFFERS: {bad} images, boxes {n_theirs} vs ours {n_ours}"


# --------------------------------------------------------------------------------------------
# driver


def child(case: str, tool: str, src: Path, out: Path, timeout: float) -> dict:
    """Run one conversion in a fresh process; its wall time, peak RSS, or the error it died of."""
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, __file__, "--child", case, tool, str(src), str(out)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"error": f"timed out after {timeout:.0f}s"}
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        last = (stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        if "MemoryError" in stderr or "bad_alloc" in stderr or "Unable to allocate" in stderr:
            last = f"out of memory (limit {PEER_MEMORY_LIMIT[tool] >> 30} GB address space)"
        return {"error": last[:120]}
    res = json.loads(stdout.strip().splitlines()[-1])
    res["wall"] = time.perf_counter() - t0
    res["peak_mb"] = res.get("peak_mb") or usage.ru_maxrss / 1024
    return res


def detect_in_child(path: Path) -> dict:
    code = (
        "import json, time, resource\n"
        "from dsgen_core.formats.registry import FormatRegistry\n"
        "reg = FormatRegistry.builtin()\n"
        f"t = time.perf_counter(); r = reg.rank({str(path)!r}); s = time.perf_counter() - t\n"
        "b = r.best\n"
        "print(json.dumps({'seconds': s, 'format': b.format, 'images': b.images, 'annotations': b.annotations,\n"
        "  'ambiguous': r.ambiguous, 'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per peer conversion")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of " + ", ".join(CASES))
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma-separated; dsgen is always run")
    ap.add_argument("--no-detect", action="store_true", help="skip the detection rows")
    ap.add_argument("--child", nargs=4, metavar=("CASE", "TOOL", "SRC", "OUT"))
    args = ap.parse_args()
    if args.child:
        case, tool, src, out = args.child
        if tool != "dsgen":  # keep a peer from taking the shared machine (supervision rasterises every polygon)
            limit = PEER_MEMORY_LIMIT[tool]
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        res = run_case(case, tool, Path(src), Path(out))
        res.setdefault("peak_mb", _peak_mb())  # the import cases measure theirs before building the answer
        print(json.dumps(res))
        return
    flat = ensure_flat(args.small)
    yolo_in = ensure_yolo_input(flat)
    n_images = sum(1 for _ in (flat / "images").iterdir())
    print(f"data: {flat.name}: {n_images} images; YOLO import input {yolo_in.name}", file=sys.stderr)
    rows = []
    tools = ["dsgen", *[t for t in args.tools.split(",") if t in TOOLS and t != "dsgen"]]
    for case in [c for c in args.cases.split(",") if c in CASES]:
        src = yolo_in if case == "yolo_import" else flat
        results = {}
        for tool in tools:
            out = OUT / case / tool
            print(f"{case}: {tool} …", file=sys.stderr, flush=True)
            results[tool] = child(case, tool, src, out, args.timeout)
            print(f"   {results[tool]}", file=sys.stderr, flush=True)
        reader = read_yolo_output if case == "coco_to_yolo" else read_voc_output
        answers = {}
        for tool, r in results.items():
            if "error" in r:
                continue
            if case == "yolo_import":
                answers[tool] = json.loads((OUT / case / tool / "answer.json").read_text())
            else:
                answers[tool] = reader(OUT / case / tool)
        ours = results["dsgen"]
        tol = BOX_TOL if case != "coco_to_yolo" else 1.1e-5
        peers = {t: r for t, r in results.items() if t != "dsgen" and "error" not in r}
        fastest = min(peers.values(), key=lambda r: r["seconds"]) if peers else None
        for tool, r in results.items():
            if tool == "dsgen":
                continue
            if "error" in r:
                rows.append((f"{case}: {tool}", f"{ours['seconds']:.1f}s / {ours['peak_mb']:.0f} MB", r["error"],
                             "-", "<= 0.5x", False))
                continue
            ratio = ours["seconds"] / r["seconds"]
            verdict = compare(answers["dsgen"], answers[tool], tol) if "dsgen" in answers else "?"
            met = ratio <= 0.5 and ours["peak_mb"] <= r["peak_mb"]
            rows.append((f"{case}: {tool}{' (fastest)' if r is fastest else ''}",
                         f"{ours['seconds']:.1f}s / {ours['peak_mb']:.0f} MB",
                         f"{r['seconds']:.1f}s / {r['peak_mb']:.0f} MB; {verdict}", f"{ratio:.2f}x",
                         "<= 0.5x fastest, mem <=", met if r is fastest else ratio <= 0.5))
    if args.no_detect:
        print_table(rows)
        return
    det = detect_in_child(yolo_in)
    rows.append(("detect L YOLO folder", f"{det['seconds']:.2f}s -> {det['format']} ({det['images']} images, "
                 f"~{det['annotations']} boxes)", "-", "-", "<= 1 s", det["seconds"] <= 1.0 and not det["ambiguous"]))
    det = detect_in_child(flat)
    rows.append(("detect L COCO folder", f"{det['seconds']:.2f}s -> {det['format']}", "-", "-", "<= 1 s",
                 det["seconds"] <= 1.0 and not det["ambiguous"]))
    print_table(rows)


if __name__ == "__main__":
    main()
