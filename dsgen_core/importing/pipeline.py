"""The checks an import and "check path" share: source → annotations → tables → images, into one report.

The import job goes on to store what passed; the check stops here. Both read an archive the same
safe way; only the import extracts the listed images, the check probes them inside the archive.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dsgen_core.importing.archive_names import DECLARED
from dsgen_core.importing.errors import SourceError
from dsgen_core.importing.media_checks import MediaResult, check_media
from dsgen_core.importing.server_paths import PathPolicy
from dsgen_core.importing.sources import ImportSource, SeveralAnnotations, encoding_note, resolve_source
from dsgen_core.lake.tables import DatasetTables
from dsgen_core.validation import ValidationReport

Stage = Callable[[str, int], None]


@dataclass
class SourceSpec:
    """What the user pointed at, as the facade accepted it."""

    path: str
    label: str  # how messages name it: the path as typed, or the uploaded file's own name
    images_path: str | None = None
    annotations_path: str | None = None
    annotations_only: bool = False
    in_place: bool = False


@dataclass
class Checked:
    source: ImportSource | None = None
    tables: DatasetTables | None = None
    media: MediaResult | None = None


def run_checks(spec: SourceSpec, report: ValidationReport, work: Path, policy: PathPolicy, *, extract: bool,
               stage: Stage | None = None, progress: Callable[[int, int], None] | None = None) -> Checked:
    """Every check of an import; the caller cleans up `result.source`. `extract`: write the listed images of
    an archive under `work` (an import) instead of probing them in memory (a check)."""
    from dsgen_core.formats.coco_reader import read_coco
    from dsgen_core.importing.checks import check_tables

    stage = stage or (lambda name, total: None)
    out = Checked()
    stage("reading source", 0)
    try:
        out.source = src = resolve_source(spec.path, images=spec.images_path, work_dir=work / "archive",
                                          annotations=spec.annotations_path, policy=policy, label=spec.label)
    except SeveralAnnotations as exc:
        report.error("several_annotation_files", str(exc), len(exc.choices), exc.choices)
        report.stats["annotation_files"] = exc.choices
        return out
    except SourceError as exc:
        report.error("bad_source", str(exc))
        return out
    if spec.in_place and src.extracted:
        report.error("bad_source", f"{spec.label}: registering in place needs the export unpacked in a folder on "
                     "the server; an archive's images would only exist in a temp folder")
        return out
    report.stats.update(src.stats)
    report.stats.setdefault("annotations_file", src.json_path.name)
    report.stats["images_folder"] = src.images.label if src.images else None
    try:
        stage("parsing annotations", 0)
        out.tables = tables = read_coco(src.json_path, report, tmp_dir=work)
        if tables is None:
            return out
        report.stats.update(images=tables.images.num_rows, annotations=tables.annotations.num_rows,
                            categories=tables.categories.num_rows)
        stage("checking annotations", 0)
        check_tables(tables, report)
        if not spec.annotations_only and src.images is None:
            report.error("images_folder_missing",
                         f"no images folder in {spec.label} (expected images/ as in a CVAT export); pass the "
                         "folder, or import annotations only")
        elif not spec.annotations_only:
            stage("checking images", tables.images.num_rows)
            out.media = check_media(tables.images, src.images, report, progress=progress,
                                    extract_to=work / "images" if extract and src.extracted else None)
    except SourceError as exc:  # a damaged member or the written-bytes limit, met while reading
        report.error("bad_source", str(exc))
    finally:
        if src.archive is not None:
            _report_names(src, report)
    return out


def _report_names(src: ImportSource, report: ValidationReport) -> None:
    """Which decoding each member name took; a warning with examples when some had to be guessed."""
    counts, guessed = encoding_note(src.archive)
    report.stats["archive_name_encodings"] = ", ".join(f"{how}: {n}" for how, n in counts.items())
    report.warning("archive_name_encoding", "member names without a mark of their encoding, read as shown "
                   "(DSGEN_ARCHIVE_LEGACY_ENCODINGS sets the code pages tried)",
                   sum(n for how, n in counts.items() if how not in DECLARED), guessed)
