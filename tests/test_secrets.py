"""CVAT connection secrets at rest: encrypted with the installation's key (key file or DSGEN_SECRET_KEY),
plain-text ones from older versions sealed on start, the key rotated on demand; no key or secret is shown.
Real catalog (SQLite and PostgreSQL), the fake CVAT over HTTP, real CLI subprocesses."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from cvat_fake.fixtures import fake_cvat, make_fake  # noqa: F401
from sqlalchemy import text
from test_cvat_sync_support import CvatApi, capi, connect  # noqa: F401

from dsgen_core.errors import PermissionDenied
from dsgen_core.secret_box import SecretKeyError

ROOT = Path(__file__).resolve().parent.parent


def stored(api) -> list[str]:
    with api.app.catalog.engine.connect() as conn:
        return list(conn.execute(text("SELECT secret FROM cvat_connections ORDER BY id")).scalars())


def key_file(api) -> Path:
    return api.app.settings.home / "secret.key"


def test_a_saved_secret_is_encrypted_at_rest_and_still_logs_in(capi, fake_cvat):  # noqa: F811
    admin = capi.default_actor
    conn = connect(capi, admin, fake_cvat)
    [value] = stored(capi)
    assert value.startswith("fernet:") and fake_cvat.password not in value
    path = key_file(capi)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text().strip()
    assert Fernet(key.encode()).decrypt(value.removeprefix("fernet:").encode()).decode() == fake_cvat.password
    assert capi.check_cvat_connection(admin, conn)  # the client got the real password
    catalog = Path(capi.app.settings.home / "catalog.db")
    if catalog.exists():  # SQLite: not in the file either (WAL included)
        for f in catalog.parent.glob("catalog.db*"):
            assert fake_cvat.password.encode() not in f.read_bytes()


def test_plain_text_secrets_of_an_older_version_are_sealed_on_start(capi, fake_cvat):  # noqa: F811
    admin = capi.default_actor
    conn = connect(capi, admin, fake_cvat)
    with capi.app.catalog.engine.begin() as c:  # what dsgen stored before encryption
        c.execute(text("UPDATE cvat_connections SET secret = :p WHERE id = :i"), {"p": fake_cvat.password, "i": conn})
    assert stored(capi) == [fake_cvat.password]
    assert capi.check_cvat_connection(admin, conn)  # still usable before the next start
    again = CvatApi.open()
    try:
        [value] = stored(again)
        assert value.startswith("fernet:") and fake_cvat.password not in value
        assert again.check_cvat_connection(admin, conn)
        assert [e.details for e in again.list_audit(admin, action="secrets.seal")] == [{"secrets": 1}]
        assert again.secret_key_status(admin).plain == 0
    finally:
        again.app.close()


def test_rotating_the_key_file_re_encrypts_every_secret(capi, make_fake):  # noqa: F811
    admin = capi.default_actor
    fakes = [make_fake(), make_fake()]
    conns = [connect(capi, admin, f, name=f"c{i}") for i, f in enumerate(fakes)]
    old_key, before = key_file(capi).read_text().strip(), stored(capi)
    assert capi.rotate_secret_key(admin) == 2
    new_key, after = key_file(capi).read_text().strip(), stored(capi)
    assert new_key != old_key and len(new_key.splitlines()) == 1  # the old key is gone from the file
    assert stat.S_IMODE(key_file(capi).stat().st_mode) == 0o600
    for value in after:
        assert value not in before
        with pytest.raises(InvalidToken):
            Fernet(old_key.encode()).decrypt(value.removeprefix("fernet:").encode())
    for conn in conns:
        assert capi.check_cvat_connection(admin, conn)
    [entry] = capi.list_audit(admin, action="secrets.rotate")
    assert entry.details == {"secrets": 2, "key": "key file"} and old_key not in str(entry.details)


def test_rotating_a_key_from_the_setting(capi, fake_cvat, monkeypatch):  # noqa: F811
    admin = capi.default_actor
    one, two = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("DSGEN_SECRET_KEY", one)
    conn = connect(capi, admin, fake_cvat)
    with pytest.raises(SecretKeyError, match="holds one key: put a new key first"):
        capi.rotate_secret_key(admin)
    monkeypatch.setenv("DSGEN_SECRET_KEY", f"{two},{one}")
    assert capi.secret_key_status(admin).keys == 2
    assert capi.rotate_secret_key(admin) == 1
    monkeypatch.setenv("DSGEN_SECRET_KEY", two)  # the old key dropped
    assert capi.check_cvat_connection(admin, conn)
    monkeypatch.setenv("DSGEN_SECRET_KEY", one)  # a wrong key: a clear message, no secret, no key
    with pytest.raises(SecretKeyError) as exc:
        capi.check_cvat_connection(admin, conn)
    message = str(exc.value)
    assert "the secret of CVAT connection 'fake' was encrypted with another key than the one from " \
           "DSGEN_SECRET_KEY" in message
    assert one not in message and two not in message and fake_cvat.password not in message
    monkeypatch.setenv("DSGEN_SECRET_KEY", "not-a-key")
    with pytest.raises(SecretKeyError, match="is not a Fernet key"):
        capi.check_cvat_connection(admin, conn)


def test_only_site_admins_see_or_rotate_the_key(capi):  # noqa: F811
    admin = capi.default_actor
    capi.create_user(admin, "bob", password="a-long-test-password")
    bob = capi.actor("bob")
    for call in (capi.secret_key_status, capi.rotate_secret_key):
        with pytest.raises(PermissionDenied):
            call(bob)


def test_processes_starting_together_agree_on_one_key(tmp_path):
    home = tmp_path / "home"
    code = ("import hashlib, sys; from dsgen_core.config import Settings; from dsgen_core.secret_box import load_box;"
            "print(hashlib.sha256(load_box(Settings.from_env(sys.argv[1])).keys[0]).hexdigest())")
    env = {k: v for k, v in os.environ.items() if k != "DSGEN_SECRET_KEY"}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(home)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              text=True) for _ in range(6)]
    digests = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert digests == {hashlib.sha256((home / "secret.key").read_text().strip().encode()).hexdigest()}
    assert not [p for p in home.iterdir() if p.name != "secret.key"]  # no temporary files left


def test_cli_status_and_rotate_show_no_key(capi, fake_cvat, tmp_path):  # noqa: F811
    connect(capi, capi.default_actor, fake_cvat)
    env = {k: v for k, v in os.environ.items() if k not in ("DSGEN_TOKEN", "DSGEN_SECRET_KEY")}
    env["DSGEN_TOKEN_FILE"] = str(tmp_path / "none.json")

    def dsgen(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dsgen_core.cli", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    old_key = key_file(capi).read_text().strip()
    status = dsgen("secrets", "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.strip() == (f"key: {key_file(capi)} (1 key(s), the first encrypts); stored secrets: "
                                     "1 encrypted, 0 in plain text")
    rotated = dsgen("secrets", "rotate")
    assert rotated.returncode == 0 and rotated.stdout.strip() == "re-encrypted 1 stored secret(s) with a new key"
    new_key = key_file(capi).read_text().strip()
    for out in (status, rotated, dsgen("secrets", "--help")):
        for secret in (old_key, new_key, fake_cvat.password):
            assert secret not in out.stdout + out.stderr
    capi.create_user(capi.default_actor, "eve", password="a-long-test-password")
    env["DSGEN_TOKEN"] = capi.login("eve", "a-long-test-password", kind="api").token
    refused = dsgen("secrets", "rotate")
    assert refused.returncode == 1 and "not a site admin" in refused.stderr
    assert key_file(capi).read_text().strip() == new_key


def test_a_key_file_without_hard_links_is_still_created_once(tmp_path, monkeypatch):
    """Some shares (SMB, some container volumes) refuse hard links: the exclusive create takes over."""
    from dsgen_core import secret_box
    from dsgen_core.config import Settings

    def no_links(src: object, dst: object) -> None:  # what os.link raises there
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(secret_box.os, "link", no_links)
    monkeypatch.delenv("DSGEN_SECRET_KEY", raising=False)
    settings = Settings.from_env(tmp_path / "home")
    first = secret_box.load_box(settings)
    assert secret_box.load_box(settings).keys == first.keys
    path = settings.home / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(first.keys) == 1
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"]
