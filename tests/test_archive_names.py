"""Archive member names as other systems write them, and file names matched under Unicode normalization.

Each archive is shaped like the real tool's: Debian's Info-ZIP `zip` (UTF-8 names, no flag), Korean
Windows archivers (CP949, no flag), Info-ZIP's Unicode Path extra field (0x7075), macOS (NFD names),
a Western Windows archiver (CP437), and tar/tar.gz/tgz written by GNU tar formats.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import unicodedata

import pytest
from archive_makers import RawMember, export_members, make_tar, raw_zip, unicode_path_extra
from helpers import ann_rec, coco_doc, image_rec, write_export
from PIL import Image

from dsgen_core.api import ImportRequest

KOREAN = ["밤/사진_001.jpg", "밤/사진_002.jpg", "낮/거리.jpg"]


def jpeg_bytes(w: int = 32, h: int = 24, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (seed * 40 % 255, 90, 160)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def doc_for(names: list[str]) -> bytes:
    images = [image_rec(i, n, 32, 24) for i, n in enumerate(names, 1)]
    return json.dumps(coco_doc(images, [ann_rec(i, i) for i in range(1, len(names) + 1)]),
                      ensure_ascii=False).encode("utf-8")


def check(api, admin, path):  # noqa: ANN001, ANN201
    return api.check_import_path(admin, ImportRequest(path=str(path), group="g"))


def imported_names(api, admin, path, group="g"):  # noqa: ANN001, ANN201
    started = api.start_import(admin, ImportRequest(path=str(path), group=group))
    job = api.run_job_here(admin, started.job_id)
    v = api.get_version(admin, started.version_id)
    assert job.status == "SUCCEEDED", v.validation_report.render_text()
    return v, sorted(s.file_name for s in api.sample_images(admin, v.id, limit=50))


def encoding_finding(report):  # noqa: ANN001, ANN201
    finding = report.get("archive_name_encoding")
    return finding.examples if finding else []


@pytest.mark.skipif(shutil.which("zip") is None, reason="Debian's zip is installed by scripts/test.sh")
def test_debian_info_zip_writes_utf8_without_the_flag_and_it_imports(api, admin, tmp_path):
    root = write_export(tmp_path / "exp", coco_doc([image_rec(i, n, 32, 24) for i, n in enumerate(KOREAN, 1)], []),
                        {n: (32, 24) for n in KOREAN})
    z = tmp_path / "linux.zip"
    subprocess.run(["zip", "-q", "-r", str(z), "annotations", "images"], cwd=root, check=True,
                   env={**os.environ, "LC_ALL": "C.UTF-8"})
    import zipfile

    flags = {i.flag_bits & 0x800 for i in zipfile.ZipFile(z).infolist()}
    assert flags == {0}, "Info-ZIP zip 3.0 on Linux writes no UTF-8 flag (the case this test is about)"
    report = check(api, admin, z)
    assert not report.has_errors, report.render_text()
    assert any("UTF-8 without the UTF-8 flag" in e and "밤" in e for e in encoding_finding(report))
    assert "utf-8-unmarked" in report.stats["archive_name_encodings"]
    _, names = imported_names(api, admin, z)
    assert names == sorted(KOREAN)


def test_cp949_names_of_korean_windows_archivers(api, admin, tmp_path):
    files = {n.encode("cp949"): jpeg_bytes(seed=i) for i, n in enumerate(KOREAN)}
    z = raw_zip(tmp_path / "windows-ko.zip", export_members(doc_for(KOREAN), files, create_system=0, mode=0))
    report = check(api, admin, z)
    assert not report.has_errors, report.render_text()
    assert any("CP949" in e for e in encoding_finding(report))
    _, names = imported_names(api, admin, z)
    assert names == sorted(KOREAN)


def test_unicode_path_extra_field_wins_over_the_header_bytes(api, admin, tmp_path):
    """7-Zip/WinZip-style: a legacy name in the header plus the exact name in the 0x7075 field."""
    members = [RawMember(b"annotations/instances_default.json", doc_for(KOREAN))]
    for i, name in enumerate(KOREAN):
        raw = b"images/" + name.encode("cp949")
        members.append(RawMember(raw, jpeg_bytes(seed=i), extra=unicode_path_extra(raw, "images/" + name)))
    z = raw_zip(tmp_path / "extra.zip", members)
    report = check(api, admin, z)
    assert not report.has_errors and not report.get("archive_name_encoding"), report.render_text()
    assert "unicode-path: 3" in report.stats["archive_name_encodings"]


def test_a_stale_unicode_path_field_is_ignored(api, admin, tmp_path):
    """The field's CRC covers the header name; a tool that renamed the member without updating it is not
    believed (Info-ZIP's rule), so the header name is used."""
    members = [RawMember(b"annotations/instances_default.json", doc_for(["a.jpg"]))]
    members.append(RawMember(b"images/a.jpg", jpeg_bytes(), extra=unicode_path_extra(b"images/old.jpg", "images/x.jpg")))
    report = check(api, admin, raw_zip(tmp_path / "stale.zip", members))
    assert not report.has_errors, report.render_text()


def test_cp437_names_of_a_western_windows_archiver_are_chosen_by_the_listed_names(api, admin, tmp_path):
    """b"M\\x81ller" decodes as CP949 too (as Korean); the annotations' names decide for CP437."""
    names = ["Müller/öl.jpg", "Müller/bölle.jpg"]
    assert all(n.encode("cp437").decode("cp949") != n for n in names)  # both decode: the ambiguity is real
    files = {n.encode("cp437"): jpeg_bytes(seed=i) for i, n in enumerate(names)}
    z = raw_zip(tmp_path / "windows-de.zip", export_members(doc_for(names), files, create_system=0, mode=0))
    report = check(api, admin, z)
    assert not report.has_errors, report.render_text()
    assert any("CP437" in e for e in encoding_finding(report))


def test_macos_nfd_names_match_nfc_json_in_zips_and_folders(api, admin, tmp_path):
    names = ["café/crème.jpg", "한글.jpg"]
    nfd = {unicodedata.normalize("NFD", n).encode("utf-8"): jpeg_bytes(seed=i) for i, n in enumerate(names)}
    z = raw_zip(tmp_path / "mac.zip", export_members(doc_for(names), nfd, flags=0x800))
    report = check(api, admin, z)
    assert not report.has_errors and not report.get("archive_name_encoding"), report.render_text()
    # the same on a server folder whose files a Mac wrote (NFD on disk), JSON in NFC
    root = tmp_path / "nas"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances_default.json").write_bytes(doc_for(names))
    for raw, data in nfd.items():
        target = root / "images" / raw.decode()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    assert not check(api, admin, root).has_errors
    v, got = imported_names(api, admin, root, group="nas")
    assert got == sorted(names) and v.num_images == 2


@pytest.mark.parametrize("suffix,mode,fmt,encoding", [
    (".tar", "w", tarfile.PAX_FORMAT, "utf-8"),
    (".tar.gz", "w:gz", tarfile.GNU_FORMAT, "utf-8"),
    (".tgz", "w:gz", tarfile.GNU_FORMAT, "cp949"),
])
def test_tar_archives_import_like_zips(api, admin, tmp_path, suffix, mode, fmt, encoding):
    files = {"task_7/annotations/instances_default.json": doc_for(KOREAN)}
    files |= {f"task_7/images/{n}": jpeg_bytes(seed=i) for i, n in enumerate(KOREAN)}
    t = make_tar(tmp_path / f"export{suffix}", files, mode=mode, fmt=fmt, encoding=encoding)
    report = check(api, admin, t)
    assert not report.has_errors, report.render_text()
    assert report.stats["images"] == 3
    if encoding == "cp949":
        assert any("CP949" in e for e in encoding_finding(report))
    _, names = imported_names(api, admin, t)
    assert names == sorted(KOREAN)
