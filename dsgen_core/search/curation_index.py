"""Tags and metadata of one version as numpy arrays over image positions, for sub-millisecond filters.

A hash join in DuckDB costs milliseconds even for a few thousand rows; a tag's positions or a
metadata key's value codes answer `tag:night metadata.weather:rain` in microseconds. Arrays are
replaced, never changed in place, so a reader holding the previous ones sees a consistent state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from dsgen_core.curation.store import MetaRow, TagChange

NO_CODE = -1


@dataclass(frozen=True)
class MetaColumn:
    """One metadata key over all image positions: exactly one of the value arrays holds each value."""

    present: np.ndarray  # bool
    codes: np.ndarray  # int32 into `texts`, NO_CODE where no text value
    numbers: np.ndarray  # float64, NaN where no number value (stored numbers are finite)
    flags: np.ndarray  # int8: 1 true, 0 false, -1 no boolean value
    texts: tuple[str, ...]
    code_of: dict[str, int] = field(default_factory=dict)

    @classmethod
    def empty(cls, n: int) -> MetaColumn:
        return cls(np.zeros(n, bool), np.full(n, NO_CODE, np.int32), np.full(n, np.nan), np.full(n, -1, np.int8), ())


def locate(image_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each id's position in the sorted `image_ids`, and whether the id is there at all."""
    ids = np.asarray(ids, dtype=np.int64)
    if not len(image_ids):
        return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
    pos = np.searchsorted(image_ids, ids)
    pos[pos >= len(image_ids)] = 0
    return pos, image_ids[pos] == ids


class CurationIndex:
    """Per-tag sorted positions and per-key value columns, kept in step with the engine's mirror."""

    def __init__(self, image_ids: np.ndarray) -> None:
        self.image_ids = image_ids
        self.tags: dict[str, np.ndarray] = {}
        self.tagged = np.zeros(len(image_ids), bool)  # has any tag
        self.meta: dict[str, MetaColumn] = {}

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Positions of known image ids (unknown ones are dropped: they cannot match any image)."""
        pos, known = locate(self.image_ids, ids)
        return pos[known]

    def tag_mask(self, tag: str) -> np.ndarray:
        mask = np.zeros(len(self.image_ids), bool)
        held = self.tags.get(tag)
        if held is not None:
            mask[held] = True
        return mask

    # -- updates --------------------------------------------------------------------------------
    def set_tags(self, state: dict[str, np.ndarray]) -> None:
        """The whole tag state at once (the first sync): tag -> image ids."""
        self.tags = {tag: np.unique(self.positions(ids)) for tag, ids in state.items()}
        self._recount()

    def apply_tags(self, changes: Iterable[TagChange]) -> None:
        """Each change's ids are sorted and exactly the images whose state it changed (see TagChange),
        so adding is a merge of two sorted runs and removing drops positions known to be there."""
        tags = dict(self.tags)
        for change in changes:
            pos = self.positions(change.ids)
            have = tags.get(change.tag, np.empty(0, np.int64))
            if change.present:
                new = np.sort(np.concatenate([have, pos]), kind="stable")
                new = new[np.concatenate([[True], new[1:] != new[:-1]])] if len(new) else new
            else:
                keep = np.ones(len(have), bool)
                at = np.searchsorted(have, pos)
                found = at < len(have)
                found[found] = have[at[found]] == pos[found]
                keep[at[found]] = False
                new = have[keep]
            if len(new):
                tags[change.tag] = new
            else:
                tags.pop(change.tag, None)
        self.tags = tags
        self._recount()

    def _recount(self) -> None:
        tagged = np.zeros(len(self.image_ids), bool)
        for pos in self.tags.values():
            tagged[pos] = True
        self.tagged = tagged

    def apply_meta(self, rows: list[MetaRow]) -> None:
        """Rows in sequence order: a later row of the same (image, key) wins; tombstones clear."""
        by_key: dict[str, list[MetaRow]] = {}
        for row in rows:
            by_key.setdefault(row[1], []).append(row)
        meta = dict(self.meta)
        for key, key_rows in by_key.items():
            column = _updated(meta.get(key) or MetaColumn.empty(len(self.image_ids)), key_rows, self.image_ids)
            if column.present.any():
                meta[key] = column
            else:
                meta.pop(key, None)
        self.meta = meta


def _updated(old: MetaColumn, rows: list[MetaRow], image_ids: np.ndarray) -> MetaColumn:
    pos, known = locate(image_ids, np.array([r[0] for r in rows], dtype=np.int64))  # unknown ids cannot match
    present, codes, numbers, flags = old.present.copy(), old.codes.copy(), old.numbers.copy(), old.flags.copy()
    texts, code_of = list(old.texts), dict(old.code_of)
    for p, ok, (_, _, _, vs, vn, vb, deleted) in zip(pos.tolist(), known.tolist(), rows, strict=True):
        if not ok:
            continue
        present[p] = not deleted
        codes[p], numbers[p], flags[p] = NO_CODE, np.nan, -1
        if deleted:
            continue
        if vs is not None:
            code = code_of.get(vs)
            if code is None:
                code = code_of[vs] = len(texts)
                texts.append(vs)
            codes[p] = code
        if vn is not None:
            numbers[p] = vn
        if vb is not None:
            flags[p] = 1 if vb else 0
    return MetaColumn(present, codes, numbers, flags, tuple(texts), code_of)
