"""Archives cannot write outside their folder, exhaust the disk, or confuse the import.

Bombs are built the way attackers build them (one small deflate stream reused by many members), names
and types the way tools or attackers write them (raw headers where zipfile cannot).
"""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest
from archive_makers import RawMember, deflate, make_tar, raw_zip
from helpers import ann_rec, coco_doc, image_rec, jpeg, simple_export, write_export, zip_folder

from dsgen_core.api import ImportRequest
from dsgen_core.importing.archive_limits import ArchiveLimits, Budget
from dsgen_core.importing.archives import Archive
from dsgen_core.importing.errors import SourceError
from dsgen_core.importing.pipeline import SourceSpec, run_checks
from dsgen_core.importing.server_paths import everywhere_but
from dsgen_core.validation import ValidationReport

MiB = 1 << 20
ROOMY = ArchiveLimits(max_bytes=1 << 40, max_ratio=200, max_members=1_000_000, origin="test")


def make_zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


def open_archive(path: Path, limits: ArchiveLimits = ROOMY) -> Archive:
    return Archive(path, path.name, limits)


def check(api, admin, path, **kw):  # noqa: ANN001, ANN201
    return api.check_import_path(admin, ImportRequest(path=str(path), group="g", **kw))


def bad_source(report) -> str:  # noqa: ANN001
    finding = report.get("bad_source")
    assert finding is not None, report.render_text()
    return finding.message


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def bomb(path: Path, members: int = 192, size: int = 16 * MiB) -> Path:
    """The issue's split bomb: `members` members of `size` zeros sharing one deflate stream (~3 MB for 3 GiB)."""
    stream = deflate(b"\0" * size)
    doc = json.dumps(coco_doc([], [])).encode()
    entries = [RawMember(b"annotations/instances_default.json", doc)]
    entries += [RawMember(f"images/{i:04d}.jpg".encode(), b"", compressed=stream, declared_size=size)
                for i in range(members)]
    return raw_zip(path, entries)


# ----- names and member types -------------------------------------------------------------------


@pytest.mark.parametrize(
    "member",
    ["../evil.txt", "annotations/../../evil.txt", "/tmp/evil_abs.txt", "..\\evil_win.txt", "C:/evil.txt"],
)
def test_zip_slip_is_refused(tmp_path, member):
    z = make_zip(tmp_path / "a.zip", [("annotations/instances_default.json", "{}", None), (member, "x", None)])
    with pytest.raises(SourceError, match="outside"):
        open_archive(z)


@pytest.mark.parametrize("mode,what", [(stat.S_IFLNK | 0o777, "symbolic link"), (stat.S_IFIFO | 0o644, "FIFO"),
                                       (stat.S_IFCHR | 0o644, "device")])
def test_link_and_special_members_are_refused(tmp_path, mode, what):
    z = make_zip(tmp_path / "a.zip", [("images/x.jpg", "/etc/passwd", mode)])
    with pytest.raises(SourceError, match=what):
        open_archive(z)


def tar_member(name: str, kind: bytes, **kw: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for k, v in kw.items():
        setattr(info, k, v)
    return info


@pytest.mark.parametrize("extra,match", [
    (tar_member("images/l.jpg", tarfile.SYMTYPE, linkname="/etc/passwd"), "link"),
    (tar_member("images/h.jpg", tarfile.LNKTYPE, linkname="annotations/instances_default.json"), "link"),
    (tar_member("images/dev", tarfile.CHRTYPE, devmajor=1, devminor=3), "device"),
    (tar_member("images/fifo", tarfile.FIFOTYPE), "FIFO"),
    (tar_member("/etc/cron.d/x", tarfile.DIRTYPE), "outside"),
    (tar_member("../../x", tarfile.DIRTYPE), "outside"),
])
def test_tar_archives_follow_the_same_rules(tmp_path, extra, match):
    t = make_tar(tmp_path / "a.tar.gz", {"annotations/instances_default.json": b"{}"}, mode="w:gz", extra=[extra])
    with pytest.raises(SourceError, match=match):
        open_archive(t)


def test_encrypted_and_deflate64_members_say_so(tmp_path):
    enc = raw_zip(tmp_path / "enc.zip", [RawMember(b"annotations/instances_default.json", b"{}", flags=0x1)])
    with pytest.raises(SourceError, match="encrypted"):
        open_archive(enc)
    d64 = raw_zip(tmp_path / "d64.zip", [RawMember(b"images/a.jpg", b"x", method=9)])
    with pytest.raises(SourceError, match="Deflate64"):
        open_archive(d64)


def test_zip_slip_through_the_facade_fails_the_job_cleanly(api, admin, tmp_path):
    z = make_zip(tmp_path / "a.zip", [("annotations/instances_default.json", "{}", None), ("../../x.txt", "x", None)])
    started = api.start_import(admin, ImportRequest(path=str(z), group="z"))
    job = api.run_job_here(admin, started.job_id)
    v = api.get_version(admin, started.version_id)
    assert job.status == "FAILED" and v.status == "ERROR"
    assert "outside the import folder" in v.validation_report.get("bad_source").message
    assert not any(api.app.settings.tmp_root.iterdir())


def test_one_member_stored_twice_is_refused_and_named(api, admin, tmp_path):
    doc = json.dumps(coco_doc([image_rec(1, "a.jpg", 8, 8)], [])).encode()
    z = raw_zip(tmp_path / "twice.zip", [RawMember(b"annotations/instances_default.json", doc),
                                         RawMember(b"images/a.jpg", b"first"), RawMember(b"./images/a.jpg", b"second")])
    message = bad_source(check(api, admin, z))
    assert "stored more than once" in message and "'images/a.jpg' and './images/a.jpg'" in message


def test_two_annotation_files_are_asked_about(api, admin, tmp_path):
    root = simple_export(tmp_path / "exp", n=2)
    (root / "annotations" / "instances_Train.json").write_text(
        (root / "annotations" / "instances_default.json").read_text())
    z = zip_folder(root, tmp_path / "two.zip")
    for source in (z, root):
        report = check(api, admin, source)
        finding = report.get("several_annotation_files")
        assert finding is not None and finding.severity == "error", report.render_text()
        assert report.stats["annotation_files"] == ["annotations/instances_Train.json",
                                                    "annotations/instances_default.json"]
        chosen = check(api, admin, source, annotations_path="annotations/instances_Train.json")
        assert not chosen.has_errors, chosen.render_text()
        assert chosen.stats["images"] == 2


# ----- sizes ---------------------------------------------------------------------------------------


def test_a_bomb_split_into_many_members_is_refused_before_anything_is_written(api, admin, tmp_path):
    z = bomb(tmp_path / "bomb.zip")
    assert z.stat().st_size < 4 * MiB
    for run in (lambda: check(api, admin, z), lambda: api.run_job_here(
            admin, api.start_import(admin, ImportRequest(path=str(z), group="b")).job_id)):
        result = run()
        message = bad_source(result if isinstance(result, ValidationReport) else
                             api.get_version(admin, result.version_id).validation_report)
        assert "3.0 GiB" in message and "zip bomb" in message and "bomb.zip" in message
        assert files_under(api.app.settings.tmp_root) == []


def test_the_declared_total_is_checked_against_the_limit(api, admin, tmp_path, monkeypatch):
    monkeypatch.setenv("DSGEN_ARCHIVE_MAX_BYTES", "100M")
    message = bad_source(check(api, admin, bomb(tmp_path / "big.zip", members=8)))  # 128 MiB declared
    assert "expands to 128.0 MiB, more than the limit of 100.0 MiB (DSGEN_ARCHIVE_MAX_BYTES)" in message


def test_the_default_limit_follows_the_free_disk(api, admin, tmp_path, monkeypatch):
    monkeypatch.setenv("DSGEN_ARCHIVE_DISK_SHARE", "1e-12")  # as if the disk had next to no room left
    z = zip_folder(simple_export(tmp_path / "exp", n=2), tmp_path / "ok.zip")
    message = bad_source(check(api, admin, z))
    assert "free in the data folder (DSGEN_ARCHIVE_DISK_SHARE)" in message
    monkeypatch.delenv("DSGEN_ARCHIVE_DISK_SHARE")
    assert not check(api, admin, z).has_errors


def test_extraction_stops_at_the_limit_whatever_the_headers_say(tmp_path):
    z = raw_zip(tmp_path / "z.zip", [RawMember(b"images/a.bin", os.urandom(3 * MiB))])
    archive = open_archive(z)  # its headers pass the scan's limit
    small = ArchiveLimits(max_bytes=MiB, max_ratio=200, max_members=10, origin="test")
    with pytest.raises(SourceError, match="extraction stopped after 2.0 MiB, past the limit of 1.0 MiB"):
        archive.extract(list(archive.files.values()), tmp_path / "out", Budget(small, "z.zip"))
    assert (tmp_path / "out" / "images" / "a.bin").stat().st_size <= 2 * MiB
    archive.close()


def test_a_member_holding_more_than_its_header_says_is_cut_and_refused(tmp_path):
    z = raw_zip(tmp_path / "liar.zip", [RawMember(b"images/a.bin", b"\0" * (10 * MiB), declared_size=1024)])
    archive = open_archive(z)
    with pytest.raises(SourceError, match="liar.zip is damaged"):
        archive.extract(list(archive.files.values()), tmp_path / "out", Budget(ROOMY, "liar.zip"))
    assert (tmp_path / "out" / "images" / "a.bin").stat().st_size <= 1024
    archive.close()


def test_check_extracts_only_the_annotation_file(tmp_path):
    z = zip_folder(simple_export(tmp_path / "exp", n=30), tmp_path / "e.zip")
    work = tmp_path / "work"
    seen: list[list[str]] = []

    def progress(done: int, total: int) -> None:  # called while the images are probed
        seen.append(sorted(p.relative_to(work).as_posix() for p in files_under(work)))

    report = ValidationReport()
    checked = run_checks(SourceSpec(str(z), "e.zip"), report, work, everywhere_but(tmp_path / "home"),
                         extract=False, progress=progress)
    assert not report.has_errors, report.render_text()
    assert seen and all(s == ["archive/annotations/annotations/instances_default.json"] for s in seen), seen
    checked.source.cleanup()
    # an import of the same archive extracts the listed images, and only those
    report = ValidationReport()
    checked = run_checks(SourceSpec(str(z), "e.zip"), report, work, everywhere_but(tmp_path / "home"), extract=True)
    assert len([p for p in files_under(work / "images") if p.suffix == ".jpg"]) == 30
    checked.source.cleanup()


# ----- damaged or unusual sources --------------------------------------------------------------


def test_a_damaged_zip_says_it_is_damaged(api, admin, tmp_path):
    z = zip_folder(simple_export(tmp_path / "exp", n=3), tmp_path / "download.zip")
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(z.read_bytes()[:-300])
    message = bad_source(check(api, admin, truncated))
    assert "truncated.zip is a damaged zip" in message and "not an export" not in message
    # a flipped byte inside a stored image: the checksum says so
    jpeg(tmp_path / "a.jpg", 64, 48)
    with zipfile.ZipFile(tmp_path / "crc.zip", "w") as zf:
        zf.writestr("annotations/instances_default.json", json.dumps(coco_doc([image_rec(1, "a.jpg", 64, 48)], [])))
        zf.write(tmp_path / "a.jpg", "images/a.jpg")
    data = bytearray((tmp_path / "crc.zip").read_bytes())
    at = data.find(b"\xff\xd8\xff") + 200
    data[at] ^= 0xFF
    (tmp_path / "crc.zip").write_bytes(bytes(data))
    message = bad_source(check(api, admin, tmp_path / "crc.zip"))
    assert "crc.zip is damaged: member 'images/a.jpg'" in message and "checksum" in message


def test_a_fifo_as_source_or_image_is_an_error_not_a_hang(api, admin, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert "pipe is a FIFO (named pipe), not a file or folder" in bad_source(check(api, admin, fifo))
    root = write_export(tmp_path / "exp", coco_doc([image_rec(1, "a.jpg"), image_rec(2, "b.jpg")], []),
                        {"a.jpg": (64, 48)})
    os.mkfifo(root / "images" / "b.jpg")
    report = check(api, admin, root)
    assert report.get("image_not_a_file").examples == ["image 2: b.jpg"], report.render_text()
    assert report.get("image_missing") is None


def test_unsupported_and_hidden_files_are_reported_as_what_they_are(api, admin, tmp_path):
    root = write_export(tmp_path / "exp", coco_doc([image_rec(1, "shot.heic"), image_rec(2, ".hidden.jpg"),
                                                    image_rec(3, "gone.jpg")], []), {".hidden.jpg": (64, 48)})
    (root / "images" / "shot.heic").write_bytes(b"\0\0\0\x18ftypheic" + b"\0" * 64)  # an HEIC file's start
    report = check(api, admin, root)
    assert report.get("image_unsupported").examples == ["image 1: shot.heic (.heic)"]
    assert report.get("image_hidden").examples == ["image 2: .hidden.jpg"]
    assert report.get("image_missing").examples[0].startswith("image 3: gone.jpg")
    assert report.get("image_missing").count == 1


def test_messages_name_the_users_archive_not_our_temp_folders(api, admin, tmp_path):
    root = write_export(tmp_path / "exp", coco_doc([image_rec(1, "a.jpg"), image_rec(2, "nope.jpg")],
                                                   [ann_rec(1, 1)]), {"a.jpg": (64, 48)})
    z = zip_folder(root, tmp_path / "x.zip")
    with open(z, "rb") as f:
        path = api.save_upload(admin, f, "task_12 export.zip")
    report = check(api, admin, path)
    assert report.get("image_missing").examples == ["image 2: nope.jpg (not in task_12 export.zip:images/)"]
    text = report.render_text() + json.dumps(report.stats, default=str)
    assert "task_12 export.zip" in text and str(api.app.settings.tmp_root) not in text and "uploads" not in text


def test_uploads_are_removed_after_the_import_and_abandoned_ones_on_start(api, admin, tmp_path):
    from dsgen_core.api import Dsgen
    from dsgen_core.importing.uploads import uploads_root

    z = zip_folder(simple_export(tmp_path / "exp", n=2), tmp_path / "x.zip")
    bad = make_zip(tmp_path / "bad.zip", [("annotations/instances_default.json", "{", None)])
    for source, status in ((z, "SUCCEEDED"), (bad, "FAILED")):
        with open(source, "rb") as f:
            path = api.save_upload(admin, f, source.name)
        started = api.start_import(admin, ImportRequest(path=path, group="u"))
        assert api.run_job_here(admin, started.job_id).status == status
        assert not Path(path).exists() and not Path(path).parent.exists()
    with open(z, "rb") as f:
        old, fresh, queued = (Path(api.save_upload(admin, f, n)) for n in ("old.zip", "fresh.zip", "queued.zip"))
    api.start_import(admin, ImportRequest(path=str(queued), group="q"))  # waits in the queue: kept
    day_ago = os.path.getmtime(old) - 25 * 3600
    for p in (old, queued):
        os.utime(p.parent, (day_ago, day_ago))
    Dsgen(api.app)  # a process starting on this installation
    assert not old.exists() and fresh.exists() and queued.exists()
    assert sorted(p.name for p in uploads_root(api.app.settings).rglob("*.zip")) == ["fresh.zip", "queued.zip"]


def test_in_place_needs_a_folder_not_an_archive(api, admin, tmp_path):
    z = zip_folder(simple_export(tmp_path / "exp", n=2), tmp_path / "x.zip")
    assert "registering in place needs the export unpacked" in bad_source(check(api, admin, z, in_place=True))


def test_tar_of_a_gzip_that_is_no_tar_says_so(api, admin, tmp_path):
    import gzip

    p = tmp_path / "instances.json.gz"
    p.write_bytes(gzip.compress(b'{"images": []}'))
    assert "compressed but not a tar archive" in bad_source(check(api, admin, p))
    t = tmp_path / "cut.tar.gz"
    full = io.BytesIO()
    make_tar(tmp_path / "full.tar.gz", {"annotations/instances_default.json": os.urandom(200_000)}, mode="w:gz")
    full.write((tmp_path / "full.tar.gz").read_bytes())
    t.write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    message = bad_source(check(api, admin, t))
    assert "cut.tar.gz is a damaged" in message


def test_an_archives_annotations_with_a_server_images_folder_leave_that_folder_untouched(api, admin, tmp_path):
    root = simple_export(tmp_path / "exp", n=2)
    z = make_zip(tmp_path / "json-only.zip", [("annotations/instances_default.json",
                                                (root / "annotations" / "instances_default.json").read_text(), None)])
    started = api.start_import(admin, ImportRequest(path=str(z), images_path=str(root / "images"), group="j"))
    assert api.run_job_here(admin, started.job_id).status == "SUCCEEDED"
    assert sorted(p.name for p in (root / "images").iterdir()) == ["frame_001.jpg", "frame_002.jpg"]
    message = bad_source(check(api, admin, root, annotations_path="../../etc/x.json"))
    assert "the annotation file '../../etc/x.json' must lie inside the export" in message
