"""Helpers for the curation and search tests: the facade with CurationFacade, and READY versions whose
lake is written from the DSL test data with the real lake writer (real Parquet, real catalog rows)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from test_query_dsl import ANNS, CATEGORIES, IMAGES, META, TAGS, _ann_rows, _image_rows

from dsgen_core.catalog.models import DatasetGroup, DatasetVersion, User
from dsgen_core.facade_curation import CurationFacade
from dsgen_core.lake.schema import ANNOTATIONS_SCHEMA, CATEGORIES_SCHEMA, IMAGES_SCHEMA
from dsgen_core.lake.store import write_tables
from dsgen_core.lake.tables import DatasetTables


def curation_api(api: Any) -> Any:
    """The facade (Dsgen carries CurationFacade); kept as one place to adapt the tests' facade."""
    assert isinstance(api, CurationFacade)
    return api


def make_version(api: Any, owner_id: int, group: str = "g", images: list[tuple] | None = None,
                 anns: list[tuple] | None = None, split: str = "train", visibility: str = "private") -> int:
    """A READY version holding the DSL test images/annotations (or the given ones); returns its id."""
    images = IMAGES if images is None else images
    anns = ANNS if anns is None else anns
    per_image = {r["image_id"]: r for r in _image_rows(1, anns)}
    rows = [{"image_id": i, "file_name": f, "width": w, "height": h, "sha256": sha,
             "num_annotations": per_image[i]["num_annotations"] if i in per_image else 0}
            for i, f, w, h, _split, sha in images]
    tables = DatasetTables(
        images=pa.Table.from_pylist(rows, schema=IMAGES_SCHEMA),
        annotations=pa.Table.from_pylist(_ann_rows(1, anns), schema=ANNOTATIONS_SCHEMA),
        categories=pa.Table.from_pylist(
            [{"category_id": c, "name": n, "supercategory": s} for c, (n, s) in CATEGORIES.items()],
            schema=CATEGORIES_SCHEMA),
    )
    with api.app.catalog.session() as s:
        g = s.query(DatasetGroup).filter_by(name=group).first()
        if g is None:
            g = DatasetGroup(name=group, owner_id=owner_id, task_types=[], visibility=visibility)
            s.add(g)
            s.flush()
        n = s.query(DatasetVersion).filter_by(group_id=g.id, split=split).count()
        v = DatasetVersion(group_id=g.id, split=split, version=f"1.{n}.0", status="READY",
                           num_images=len(rows), num_annotations=len(anns), num_categories=len(CATEGORIES))
        s.add(v)
        s.flush()
        v.lake_path = f"g{g.id}/v{v.id}"
        version_id = v.id
        folder = api.app.settings.lake_root / v.lake_path
    write_tables(tables, folder)
    return version_id


def make_user(api: Any, name: str) -> Any:
    from dsgen_core.users import to_actor

    with api.app.catalog.session() as s:
        u = User(username=name, email=None, password_hash=None, is_admin=False)
        s.add(u)
        s.flush()
        return to_actor(u)


def curate_like_dsl_tests(cur: Any, actor: Any, version_id: int) -> None:
    """Write the DSL tests' tags and metadata through the facade."""
    for image_id, tag in TAGS:
        cur.add_tags(actor, version_id, image_id, tag)
    by_image: dict[int, dict[str, Any]] = {}
    for image_id, key, value in META:
        by_image.setdefault(image_id, {})[key] = value
    for image_id, values in by_image.items():
        cur.set_metadata(actor, version_id, image_id, values)
