"""Metadata CSV files: long (`file_name,key,value[,kind]`) or wide (`file_name,<key>,<key>…`), in and out.

Rows are matched to images by file name (the relative path as imported; a bare base name also
matches when exactly one image has it). Values are typed per key over the whole file, so a key
never mixes types: all numbers → number, all true/false → boolean, otherwise text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from dsgen_core.curation.values import Typed, ValueType, check_key, check_tag, from_text, infer_column
from dsgen_core.errors import InvalidRequest

KINDS = ("tag", "string", "number", "boolean")
MAX_ERRORS = 20


@dataclass
class CsvImportReport:
    layout: str  # long | wide
    rows: int = 0
    matched_rows: int = 0
    unmatched: list[tuple[int, str]] = field(default_factory=list)  # (line, file_name)
    ambiguous: list[tuple[int, str]] = field(default_factory=list)  # base name shared by several images
    empty_values: int = 0
    key_types: dict[str, str] = field(default_factory=dict)
    images: int = 0
    values_changed: int = 0
    tags_changed: int = 0
    action_id: int | None = None
    seq: int | None = None

    def render_text(self) -> str:
        lines = [f"{self.layout} CSV: {self.rows} rows, {self.matched_rows} matched to {self.images} images; "
                 f"{self.values_changed} values and {self.tags_changed} tags changed"]
        if self.unmatched:
            shown = ", ".join(f"line {n}: {name!r}" for n, name in self.unmatched[:10])
            lines.append(f"{len(self.unmatched)} rows match no image: {shown}{' …' if len(self.unmatched) > 10 else ''}")
        if self.ambiguous:
            shown = ", ".join(f"line {n}: {name!r}" for n, name in self.ambiguous[:10])
            lines.append(f"{len(self.ambiguous)} rows name a file several images share: {shown}")
        if self.empty_values:
            lines.append(f"{self.empty_values} empty values skipped")
        return "\n".join(lines)


@dataclass(frozen=True)
class Entry:
    line: int
    file_name: str
    key: str
    text: str
    kind: str | None  # tag or a value type forced by a kind column; None: infer


def read_entries(text: str) -> tuple[str, list[Entry], int]:
    """Parse either layout; returns (layout, entries, rows). Bad headers, keys or kinds raise with lines."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(reader, None)
    if not header or not header[0].strip():
        raise InvalidRequest("CSV: empty file or header; expected file_name,key,value (long) or "
                             "file_name,<key>,<key>… (wide)")
    names = [h.strip() for h in header]
    if names[0].lower() not in ("file_name", "filename", "file"):
        raise InvalidRequest(f"CSV header: the first column must be file_name, got {names[0]!r}")
    lowered = [n.lower() for n in names]
    long = lowered[:3] == ["file_name", "key", "value"] and set(lowered[3:]) <= {"kind", "image_id"}
    entries: list[Entry] = []
    errors: list[str] = []
    rows = 0
    if not long:
        for n in names[1:]:
            if n.lower() != "tags":
                check_key(n)
        if len(set(names)) != len(names):
            raise InvalidRequest(f"CSV header: repeated column names in {names}")
    for line, row in enumerate(reader, start=2):
        if not any(c.strip() for c in row):
            continue
        rows += 1
        if len(row) > len(names):
            errors.append(f"line {line}: {len(row)} fields, the header has {len(names)}")
            continue
        row = row + [""] * (len(names) - len(row))
        file_name = row[0].strip()
        if long:
            kind = row[3].strip().lower() if len(row) > 3 and row[3].strip() else None
            if kind is not None and kind not in KINDS:
                errors.append(f"line {line}: kind {kind!r}, expected one of {', '.join(KINDS)}")
                continue
            try:
                key = check_tag(row[1]) if kind == "tag" else check_key(row[1].strip())
            except InvalidRequest as exc:
                errors.append(f"line {line}: {exc}")
                continue
            entries.append(Entry(line, file_name, key, row[2], kind))
        else:
            for name, cell in zip(names[1:], row[1:], strict=True):
                if name.lower() == "tags":
                    entries += [Entry(line, file_name, check_tag(t), "", "tag") for t in cell.split(";") if t.strip()]
                else:
                    entries.append(Entry(line, file_name, name, cell, None))
        if len(errors) >= MAX_ERRORS:
            break
    if errors:
        raise InvalidRequest("CSV not imported (nothing changed):\n" + "\n".join(errors))
    return ("long" if long else "wide"), entries, rows


def match_files(file_names: Iterable[tuple[int, str]]) -> tuple[dict[str, int], dict[str, int | None]]:
    """Maps for matching: exact relative path → id, base name → id (None when several images share it)."""
    exact: dict[str, int] = {}
    base: dict[str, int | None] = {}
    for image_id, name in file_names:
        exact[name] = image_id
        b = PurePosixPath(name).name
        base[b] = None if b in base else image_id
    return exact, base


def typed_values(entries: list[Entry], report: CsvImportReport) -> Iterator[tuple[Entry, Typed | None]]:
    """Each value entry typed by its key's column type (tags get None); empty cells are skipped."""
    texts: dict[str, list[str]] = {}
    for e in entries:
        if e.kind is None and e.text.strip():
            texts.setdefault(e.key, []).append(e.text)
    types: dict[str, ValueType] = {k: infer_column(v) for k, v in texts.items()}
    report.key_types = dict(sorted(types.items()))
    for e in entries:
        if e.kind == "tag":
            yield e, None
        elif not e.text.strip():
            report.empty_values += 1
        else:
            kind = e.kind or types[e.key]
            yield e, from_text(e.text, kind, f"line {e.line}, {e.key}")  # type: ignore[arg-type]


def read_source(source: str | Path | bytes) -> str:
    """CSV text from a path, raw bytes (an upload) or text containing a newline."""
    if isinstance(source, bytes):
        return source.decode("utf-8-sig")
    if isinstance(source, str) and "\n" in source:
        return source
    path = Path(source).expanduser()
    if not path.is_file():
        raise InvalidRequest(f"{path}: no such CSV file")
    if path.stat().st_size > 512 * 1024 * 1024:
        raise InvalidRequest(f"{path}: larger than 512 MB; split it")
    return path.read_text(encoding="utf-8-sig")


def write_long(path: Path, rows: Iterable[tuple[int, str, str, str, str]]) -> int:
    """image_id,file_name,kind,key,value — `kind` is tag or the value type; reads back with import."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["file_name", "key", "value", "kind", "image_id"])
        for image_id, file_name, kind, key, value in rows:
            w.writerow([file_name, key, value, kind, image_id])
            n += 1
    return n
