"""Small builders for hand-made CVAT-style exports, so each validation case is explicit in its test."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from PIL import Image


def jpeg(path: Path, w: int, h: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (w, h), ((seed * 37) % 255, (seed * 91) % 255, (seed * 13) % 255))
    img.putpixel((seed % w, 0), (255, 255, 255))
    img.save(path, "JPEG", quality=90)
    return path


def coco_doc(
    images: list[dict[str, Any]], annotations: list[dict[str, Any]], categories: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "licenses": [{"name": "", "id": 0, "url": ""}],
        "info": {"contributor": "", "date_created": "", "description": "", "url": "", "version": "", "year": ""},
        "categories": categories
        if categories is not None
        else [{"id": 1, "name": "car", "supercategory": ""}, {"id": 2, "name": "person", "supercategory": ""}],
        "images": images,
        "annotations": annotations,
    }


def image_rec(i: int, name: str, w: int = 64, h: int = 48) -> dict[str, Any]:
    return {"id": i, "width": w, "height": h, "file_name": name, "license": 0, "flickr_url": "", "coco_url": "",
            "date_captured": 0}


def ann_rec(i: int, image_id: int, cat: int = 1, bbox=(1.0, 2.0, 10.0, 8.0), **extra: Any) -> dict[str, Any]:
    rec = {"id": i, "image_id": image_id, "category_id": cat, "segmentation": [], "area": bbox[2] * bbox[3],
           "bbox": list(bbox), "iscrowd": 0, "attributes": {"occluded": False, "rotation": 0.0}}
    rec.update(extra)
    return rec


def write_export(root: Path, doc: dict[str, Any] | str, files: dict[str, tuple[int, int]] | None = None) -> Path:
    """A CVAT-layout folder: annotations/instances_default.json + images/<files> (real JPEGs)."""
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    text = doc if isinstance(doc, str) else json.dumps(doc)
    (root / "annotations" / "instances_default.json").write_text(text)
    (root / "images").mkdir(exist_ok=True)
    for n, (name, (w, h)) in enumerate((files or {}).items()):
        jpeg(root / "images" / name, w, h, seed=n + 1)
    return root


def simple_export(root: Path, n: int = 3) -> Path:
    """n valid images, two boxes each."""
    files = {f"frame_{i:03d}.jpg": (64, 48) for i in range(1, n + 1)}
    images = [image_rec(i, name) for i, name in enumerate(files, start=1)]
    anns = []
    for img in images:
        anns.append(ann_rec(len(anns) + 1, img["id"], 1))
        anns.append(ann_rec(len(anns) + 1, img["id"], 2, bbox=(5.0, 5.0, 20.5, 30.25)))
    return write_export(root, coco_doc(images, anns), files)


def zip_folder(folder: Path, zip_path: Path) -> Path:
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder).as_posix())
    return zip_path


APP_SCRIPT = str(Path(__file__).resolve().parents[1] / "app.py")


def run_page(page: str | None = None, **query: str):  # noqa: ANN201 - streamlit's AppTest
    """app.py in AppTest, logged in as the fixture installation's admin (AppTest has no cookies, so the
    session token goes in session_state), with query params, switched to `page`; fails on an exception."""
    from streamlit.testing.v1 import AppTest

    from pages._common import get_api

    at = AppTest.from_file(APP_SCRIPT, default_timeout=60)
    at.session_state["dsgen_token"] = get_api().login("admin", "test-admin-pw").token
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_import_root(api, folder: Path, **limits: Any) -> None:  # noqa: ANN001
    """Open `folder` for importing (a site admin's import root), as a deployment does for its NAS; without
    limits every logged-in user may import from it."""
    api.add_import_root(api.default_actor, str(folder), **limits)
