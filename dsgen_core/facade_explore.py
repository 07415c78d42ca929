"""Facade methods the Explore page needs beyond search: image files for the authenticated routes,
the overlays (boxes, polygons) of one gallery page, and one image's detail.

A mixin of `dsgen_core.api.Dsgen` (after `CurationFacade`, whose `_engine` checks read rights and
READY status); every method takes the acting user first, so the web routes never decide access.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsgen_core.errors import InvalidRequest, NotFound
from dsgen_core.lake.views import scan_params, scan_sql

if TYPE_CHECKING:
    from dsgen_core.app import App
    from dsgen_core.curation.values import MetaValue
    from dsgen_core.search.engine import VersionEngine
    from dsgen_core.users import Actor

log = logging.getLogger("dsgen.explore")
MAX_PAGE_IMAGES = 1_000  # overlays of more tiles than this are never one gallery page
MAX_POLY_POINTS = 96  # per ring in gallery payloads: thumbnails need no more, payloads stay small


@dataclass
class Tile:
    """One gallery tile: sizes in original pixels; boxes (class index, x, y, w, h), polygons (class, rings)."""

    image_id: int
    file_name: str
    width: int
    height: int
    boxes: list[tuple[int, float, float, float, float]] = field(default_factory=list)
    polygons: list[tuple[int, list[list[float]]]] = field(default_factory=list)


@dataclass
class PageOverlays:
    categories: list[str]  # class index -> name (all classes of the version, by category id)
    tiles: list[Tile]  # in the order of the ids asked for


@dataclass
class AnnotationRow:
    annotation_id: int
    category: str | None
    annotation_type: str
    bbox: tuple[float, float, float, float] | None
    area: float | None
    iscrowd: bool | None
    attributes: dict[str, Any]
    polygons: list[list[float]]
    score: float | None
    is_machine: bool


@dataclass
class ImageDetail:
    image_id: int
    file_name: str
    width: int
    height: int
    size_bytes: int | None
    sha256: str | None
    categories: list[str]
    annotations: list[AnnotationRow]
    tags: list[str]
    metadata: dict[str, MetaValue]
    seq: int


class ExploreFacade:
    """Mixin for Dsgen: needs `self.app` and CurationFacade's `_engine`, `_check_ids`, `image_curation`."""

    app: App

    # ----- files for the web routes ---------------------------------------------------------
    def image_file(self, actor: Actor, version_id: int, image_id: int) -> Path | None:
        """The original image file readable by this process; None when imported without media or missing."""
        _, uri = _image_row(self, actor, version_id, image_id)
        path = self.app.storage.local_path(uri) if uri else None
        return path if path is not None and path.is_file() else None

    def thumbnail_file(self, actor: Actor, version_id: int, image_id: int) -> Path | None:
        """The image's 512 px JPEG thumbnail, made now if the thumbnails job has not reached it yet;
        None when there is no readable source (the route then serves a placeholder)."""
        from dsgen_core.importing.job import thumb_path
        from dsgen_core.media import make_thumbnail

        sha, uri = _image_row(self, actor, version_id, image_id)
        if not sha:
            return None
        thumb = thumb_path(self.app, sha)
        if thumb.is_file():
            return thumb
        src = self.app.storage.local_path(uri) if uri else None
        if src is None or not src.is_file():
            return None
        try:
            make_thumbnail(src, thumb)  # atomic write; a concurrent job making the same file is harmless
        except Exception:  # noqa: BLE001 - a corrupt source: the validation report tells why
            log.warning("thumbnail of %s failed", src, exc_info=True)
            return None
        return thumb

    # ----- overlays of a gallery page -------------------------------------------------------
    def page_overlays(self, actor: Actor, version_id: int, image_ids: Iterable[int],
                      polygons: bool = True) -> PageOverlays:
        """Sizes, boxes and (simplified) polygons of the given images, for client-side drawing."""
        ids = [int(i) for i in image_ids]
        if len(ids) > MAX_PAGE_IMAGES:
            raise InvalidRequest(f"overlays of {len(ids)} images asked; at most {MAX_PAGE_IMAGES} per page")
        engine = self._engine(actor, version_id)  # type: ignore[attr-defined]
        cats = engine.fetchall("SELECT category_id, name FROM categories ORDER BY category_id")
        index = {int(cid): n for n, (cid, _) in enumerate(cats)}
        names = [str(name) for _, name in cats]
        if not ids:
            return PageOverlays(names, [])
        rows = engine.fetchall("SELECT image_id, file_name, width, height FROM images "
                               "WHERE image_id IN (SELECT unnest($ids::BIGINT[]))", {"ids": ids})
        tiles = {int(r[0]): Tile(int(r[0]), str(r[1]), int(r[2] or 0), int(r[3] or 0)) for r in rows}
        for iid, cid, x, y, w, h in engine.fetchall(
                "SELECT image_id, category_id, bbox_x, bbox_y, bbox_w, bbox_h FROM annotations "
                "WHERE image_id IN (SELECT unnest($ids::BIGINT[])) AND bbox_w IS NOT NULL "
                "ORDER BY image_id, annotation_id", {"ids": ids}):
            tiles[int(iid)].boxes.append((index.get(cid, -1), round(x, 1), round(y, 1), round(w, 1), round(h, 1)))
        if polygons:
            for iid, cid, rings in _polygon_rows(engine, ids):
                tiles[int(iid)].polygons.append((index.get(cid, -1), [_simplify(r) for r in rings if r]))
        return PageOverlays(names, [tiles[i] for i in ids if i in tiles])

    # ----- one image ------------------------------------------------------------------------
    def image_detail(self, actor: Actor, version_id: int, image_id: int) -> ImageDetail:
        """Everything the detail view shows: the image's facts, all its annotations, tags and metadata."""
        engine = self._engine(actor, version_id)  # type: ignore[attr-defined]
        row = engine.fetchall("SELECT image_id, file_name, width, height, size_bytes, sha256 FROM images "
                              "WHERE image_id = $id", {"id": int(image_id)})
        if not row:
            raise NotFound(f"image {image_id} not found in version {version_id}")
        iid, file_name, width, height, size, sha = row[0]
        names = {int(c): str(n) for c, n in engine.fetchall("SELECT category_id, name FROM categories")}
        anns = scan_sql(engine.folder, "annotations", "a")
        rows = engine.fetchall(
            f"SELECT annotation_id, category_id, annotation_type, bbox_x, bbox_y, bbox_w, bbox_h, area, iscrowd, "  # noqa: S608
            f"attributes, polygons, score, is_machine FROM {anns} WHERE image_id = $id ORDER BY annotation_id",
            {**scan_params(engine.folder, a="annotations"), "id": int(iid)})
        out = [AnnotationRow(
            annotation_id=int(aid), category=names.get(cid), annotation_type=str(kind),
            bbox=(x, y, w, h) if w is not None else None, area=area, iscrowd=crowd,
            attributes=_attributes(attrs), polygons=[list(r) for r in (polys or [])], score=score,
            is_machine=bool(machine),
        ) for aid, cid, kind, x, y, w, h, area, crowd, attrs, polys, score, machine in rows]
        cur = self.image_curation(actor, version_id, int(iid))  # type: ignore[attr-defined]
        return ImageDetail(int(iid), str(file_name), int(width or 0), int(height or 0), size, sha,
                           [names[k] for k in sorted(names)], out, cur.tags, cur.metadata, cur.seq)


# Module functions, not methods: pages may bind ExploreFacade methods to a Dsgen without the mixin.
def _image_row(facade: Any, actor: Actor, version_id: int, image_id: int) -> tuple[str | None, str | None]:
    """(sha256, uri) of one image, after the read-right check of `_engine`."""
    engine = facade._engine(actor, version_id)
    row = engine.fetchall("SELECT sha256, uri FROM images WHERE image_id = $id", {"id": int(image_id)})
    if not row:
        raise NotFound(f"image {image_id} not found in version {version_id}")
    return row[0][0], row[0][1]


def _polygon_rows(engine: VersionEngine, ids: list[int]) -> list[tuple[Any, ...]]:
    """Polygons are not in the search engine (it keeps no geometry lists): read them from the lake."""
    anns = scan_sql(engine.folder, "annotations", "a")  # fixed names; the path and values are bound
    return engine.fetchall(
        f"SELECT image_id, category_id, polygons FROM {anns} WHERE image_id IN (SELECT unnest($ids::BIGINT[])) "  # noqa: S608
        "AND polygons IS NOT NULL AND len(polygons) > 0 ORDER BY image_id, annotation_id",
        {**scan_params(engine.folder, a="annotations"), "ids": ids})


def _simplify(ring: list[float]) -> list[float]:
    """Every k-th vertex of a long ring, rounded to 0.1 px: enough for a 512 px tile."""
    n = len(ring) // 2
    step = max(1, -(-n // MAX_POLY_POINTS))
    return [round(v, 1) for i in range(0, n * 2, 2 * step) for v in (ring[i], ring[i + 1])]


def _attributes(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"_raw": text}
    return value if isinstance(value, dict) else {"_value": value}
