"""How the CLI ends when its surroundings fail: a reader that left the pipe (`| head`), a catalog that another
process keeps locked, an empty token. Each ends in one line (or silence) and an exit code, never a traceback.
Real subprocesses, a real second SQLite connection, the fake CVAT over HTTP."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cvat_fake.fixtures import fake_cvat, make_fake  # noqa: F401
from helpers import simple_export
from test_cvat_sync_support import capi, connect, import_version  # noqa: F401

from dsgen_core.cvat_sync.records import ExportRequest

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "dsgen_core.cli"]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, **extra)
    if "DSGEN_TOKEN" not in extra:
        env.pop("DSGEN_TOKEN", None)
    return env


def into_closed_pipe(*args: str) -> subprocess.CompletedProcess:
    """Run a command whose stdout is a pipe nobody reads any more: what `| head -1` leaves once head is done."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([*CLI, *args], cwd=ROOT, env=_env(), stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=180)
    finally:
        os.close(write_end)
    return proc


@pytest.fixture
def busy_install(capi, fake_cvat, tmp_path, monkeypatch):  # noqa: F811
    """An installation with a dataset, jobs, a CVAT connection and one finished export: every list prints."""
    monkeypatch.setenv("DSGEN_TOKEN_FILE", str(tmp_path / "no-tokens.json"))
    admin = capi.default_actor
    vid = import_version(capi, admin, simple_export(tmp_path / "exp", n=3))
    conn = connect(capi, admin, fake_cvat)
    started = capi.start_cvat_export(admin, ExportRequest(version_id=vid, connection=conn, project="p",
                                                          task_name="t"))
    assert capi.run_job_here(admin, started.job_id).status == "SUCCEEDED"
    return capi


COMMANDS = [["datasets", "list"], ["datasets", "list", "--json"], ["datasets", "show", "cars"], ["jobs", "list"],
            ["cvat", "exports"], ["cvat", "connections"], ["audit"], ["whoami"]]


def test_a_reader_leaving_the_pipe_ends_every_command_quietly(busy_install):
    """Before: 'Exception ignored … BrokenPipeError' (or a traceback) on stderr and exit 120."""
    for command in COMMANDS:
        proc = into_closed_pipe(*command)
        assert (proc.returncode, proc.stderr) == (141, ""), command


def test_piped_into_head_prints_the_first_line_only(busy_install):
    proc = subprocess.run(["sh", "-c", f"{sys.executable} -m dsgen_core.cli jobs list | head -1"], cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
    assert len(proc.stdout.splitlines()) == 1 and "SUCCEEDED" in proc.stdout


@pytest.fixture
def sqlite_install(tmp_path, monkeypatch):
    """A SQLite installation of its own (the lock is SQLite's; PostgreSQL waits on rows, not the file)."""
    home = tmp_path / "home"
    env = {"DSGEN_HOME": str(home), "DSGEN_CATALOG_URL": f"sqlite:///{home / 'catalog.db'}",
           "DSGEN_ADMIN_PASSWORD": "test-admin-pw", "DSGEN_TOKEN_FILE": str(tmp_path / "none.json")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    subprocess.run([*CLI, "whoami"], cwd=ROOT, env=_env(), check=True, capture_output=True, timeout=120)
    return home / "catalog.db"


def test_a_catalog_locked_longer_than_the_busy_timeout_gives_one_line_and_exit_1(sqlite_install):
    holder = sqlite3.connect(sqlite_install, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write transaction that does not end
    holder.execute("INSERT INTO organizations (name, created_at) VALUES ('held', CURRENT_TIMESTAMP)")
    try:
        t0 = time.monotonic()
        proc = subprocess.run([*CLI, "orgs", "create", "acme"], cwd=ROOT, env=_env(DSGEN_SQLITE_BUSY_TIMEOUT="0.5"),
                              capture_output=True, text=True, timeout=120)
        waited = time.monotonic() - t0
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: the catalog is locked: another process has held its write lock for more "
                               "than 0.5 s (DSGEN_SQLITE_BUSY_TIMEOUT)")
    assert waited < 60  # the setting was used, not the 60 s default
    again = subprocess.run([*CLI, "orgs", "create", "acme"], cwd=ROOT, env=_env(), capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0 and "created organization acme" in again.stdout


def test_the_catalog_unreachable_gives_one_line(tmp_path):
    env = _env(DSGEN_HOME=str(tmp_path / "h"), DSGEN_CATALOG_URL=f"sqlite:///{tmp_path / 'no-such-dir' / 'c.db'}")
    proc = subprocess.run([*CLI, "datasets", "list"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["error: the catalog could not be reached or used: unable to open "
                                                "database file"]


@pytest.mark.parametrize("how", ["flag", "env", "blank"])
def test_an_empty_token_is_refused_not_the_operator(api, tmp_path, how):
    env = _env(DSGEN_TOKEN_FILE=str(tmp_path / "none.json"))
    flag: list[str] = []
    if how == "flag":
        flag = ["--token", ""]
    else:
        env["DSGEN_TOKEN"] = "" if how == "env" else "   "
    proc = subprocess.run([*CLI, *flag, "orgs", "create", "acme"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1
    where = "--token" if how == "flag" else "DSGEN_TOKEN"
    assert proc.stderr.startswith(f"error: {where} is empty: pass a session token"), proc.stderr
    assert "acme" not in [o.name for o in api.list_orgs(api.default_actor)]
    # no token at all is still the operator
    env.pop("DSGEN_TOKEN", None)
    assert subprocess.run([*CLI, "whoami"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120).stdout.startswith("admin (site admin)")
