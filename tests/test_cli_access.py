"""The CLI acts as the user behind a token (from `dsgen login`, --token or $DSGEN_TOKEN) and the core
refuses what that user may not do: the permission matrix again, through real subprocesses."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import open_import_root, simple_export

from dsgen_core.api import ImportRequest

ROOT = Path(__file__).resolve().parent.parent
PW = "a-long-test-password"


def dsgen(*args: str, token: str | None = None, stdin: str | None = None, env: dict | None = None):
    full = dict(os.environ, **(env or {}))
    full.pop("DSGEN_TOKEN", None)
    if token:
        full["DSGEN_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "dsgen_core.cli", *args], cwd=ROOT, env=full, input=stdin,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def team(api, admin, tmp_path, monkeypatch):
    monkeypatch.setenv("DSGEN_TOKEN_FILE", str(tmp_path / "no-such-tokens.json"))
    tokens = {}
    for name in ("owner", "editor", "viewer", "stranger", "zed"):
        api.create_user(admin, name, password=PW)
        tokens[name] = api.login(name, PW, kind="api").token
    owner = api.actor("owner")
    open_import_root(api, tmp_path)
    started = api.start_import(owner, ImportRequest(path=str(simple_export(tmp_path / "e", n=2)), group="g"))
    assert api.run_job_here(owner, started.job_id).status == "SUCCEEDED"
    api.grant(owner, "g", "editor", "editor")
    api.grant(owner, "g", "viewer", "viewer")
    return tokens, started, tmp_path


ACTIONS = {
    "list": lambda t, v, d: ["datasets", "list", "--json"],
    "show": lambda t, v, d: ["datasets", "show", "g"],
    "export": lambda t, v, d: ["export", str(v.version_id), "--out", str(d / "out.json")],
    "import": lambda t, v, d: ["import", str(d / "e"), "--group", "g", "--split", "cli"],
    "grant": lambda t, v, d: ["access", "grant", "g", "zed", "viewer"],
    "delete": lambda t, v, d: ["datasets", "delete", "g", "--yes"],
}
EXPECTED = {  # role -> actions allowed; the rest must fail with a message and exit 1
    "owner": set(ACTIONS),
    "editor": {"list", "show", "export", "import"},
    "viewer": {"list", "show", "export"},
    "stranger": set(),
}


@pytest.mark.parametrize("role", list(EXPECTED))
def test_cli_permission_matrix(team, role):
    tokens, started, tmp = team
    for action in ["list", "show", "export", "import", "grant", "delete"]:
        proc = dsgen(*ACTIONS[action](tokens, started, tmp), token=tokens[role])
        if action == "list":
            names = [g["name"] for g in json.loads(proc.stdout)] if proc.returncode == 0 else None
            assert names == (["g"] if action in EXPECTED[role] else []), (role, proc.stderr)
            continue
        if action in EXPECTED[role]:
            assert proc.returncode == 0, (role, action, proc.stderr)
        else:
            assert proc.returncode == 1, (role, action, proc.stdout)
            assert proc.stderr.startswith("error: "), proc.stderr
            assert "Traceback" not in proc.stderr
            assert ("not found" in proc.stderr) or ("needs" in proc.stderr) or ("is taken" in proc.stderr)


def test_login_saves_a_private_token_file_and_logout_revokes_it(api, admin, tmp_path):
    api.create_user(admin, "ann", password=PW)
    env = {"DSGEN_TOKEN_FILE": str(tmp_path / "cfg" / "tokens.json")}
    proc = dsgen("login", "--username", "ann", "--password-stdin", stdin=PW + "\n", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "logged in as ann" in proc.stdout and PW not in proc.stdout + proc.stderr
    path = Path(env["DSGEN_TOKEN_FILE"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = next(iter(json.loads(path.read_text()).values()))
    assert token not in proc.stdout
    assert dsgen("whoami", env=env).stdout.startswith("ann (user)")
    assert dsgen("logout", env=env).returncode == 0
    assert api.actor_for_token(token) is None
    stale = dsgen("whoami", token=token)
    assert stale.returncode == 1 and "expired or was revoked" in stale.stderr
    wrong = dsgen("login", "--username", "ann", "--password-stdin", stdin="nope\n", env=env)
    assert wrong.returncode == 1 and "wrong username or password" in wrong.stderr


def test_admin_commands_need_an_admin(api, admin, tmp_path, monkeypatch):
    monkeypatch.setenv("DSGEN_TOKEN_FILE", str(tmp_path / "none.json"))
    created = dsgen("users", "create", "newbie")  # the operator (no token) is the first admin
    assert created.returncode == 0 and "one-time password" in created.stdout
    one_time = created.stdout.rsplit(" ", 1)[-1].strip()
    newbie = api.login("newbie", one_time, kind="api").token
    refused = dsgen("users", "create", "another", token=newbie)
    assert refused.returncode == 1 and "not a site admin" in refused.stderr
    assert dsgen("orgs", "create", "acme").returncode == 0
    assert dsgen("orgs", "add-member", "acme", "newbie").returncode == 0
    assert "acme" in dsgen("whoami", token=newbie).stdout
    audit = dsgen("audit", "--csv", "--action", "user.")
    assert audit.returncode == 0 and audit.stdout.splitlines()[0].startswith("id,at,username,action")
    assert "user.create" in audit.stdout
