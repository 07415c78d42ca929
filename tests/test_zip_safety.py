"""Uploaded archives cannot write outside their folder."""

from __future__ import annotations

import stat
import zipfile

import pytest

from dsgen_core.api import ImportRequest
from dsgen_core.importing.sources import SourceError, extract_zip


def make_zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


@pytest.mark.parametrize(
    "member",
    ["../evil.txt", "annotations/../../evil.txt", "/tmp/evil_abs.txt", "..\\evil_win.txt", "C:/evil.txt"],
)
def test_zip_slip_is_refused(tmp_path, member):
    z = make_zip(tmp_path / "a.zip", [("annotations/instances_default.json", "{}", None), (member, "x", None)])
    dest = tmp_path / "out" / "inner"
    with pytest.raises(SourceError, match="outside|escapes"):
        extract_zip(z, dest)
    assert not (tmp_path / "out" / "evil.txt").exists()
    assert not (tmp_path / "evil.txt").exists()
    assert not list(dest.rglob("*")) if dest.exists() else True


def test_symlink_member_is_refused(tmp_path):
    z = make_zip(tmp_path / "a.zip", [("images/link.jpg", "/etc/passwd", stat.S_IFLNK | 0o777)])
    with pytest.raises(SourceError, match="symbolic link"):
        extract_zip(z, tmp_path / "out")


def test_zip_slip_through_the_facade_fails_the_job_cleanly(api, admin, tmp_path):
    z = make_zip(tmp_path / "a.zip", [("annotations/instances_default.json", "{}", None), ("../../x.txt", "x", None)])
    started = api.start_import(admin, ImportRequest(path=str(z), group="z"))
    job = api.run_job_here(admin, started.job_id)
    v = api.get_version(admin, started.version_id)
    assert job.status == "FAILED" and v.status == "ERROR"
    assert "outside the import folder" in v.validation_report.get("bad_source").message
    assert not any(api.app.settings.tmp_root.iterdir())
