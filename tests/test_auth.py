"""Log-in, sessions, tokens, slow-down after failures, password changes, disabling users."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from dsgen_core.auth import AuthFailed, token_hash
from dsgen_core.catalog.models import AuthSession, User
from dsgen_core.errors import InvalidRequest, PermissionDenied

PW = "correct horse battery"


@pytest.fixture
def bob(api, admin):
    info, generated = api.create_user(admin, "bob", email="Bob@Example.org", password=PW)
    assert generated is None and info.username == "bob"
    return info


def test_login_by_username_or_email_gives_a_working_session(api, bob):
    by_name = api.login("bob", PW)
    by_mail = api.login("bob@example.org", PW)
    assert by_name.token != by_mail.token and len(by_name.token) >= 40
    assert api.actor_for_token(by_name.token).username == "bob"
    with api.app.catalog.session() as s:  # only the hash is stored
        stored = set(s.scalars(select(AuthSession.token_hash)))
    assert token_hash(by_name.token) in stored and by_name.token not in stored


def test_wrong_password_and_unknown_user_get_the_same_message(api, bob):
    with pytest.raises(AuthFailed) as wrong:
        api.login("bob", "not the password")
    with pytest.raises(AuthFailed) as unknown:
        api.login("nobody", "not the password")
    assert str(wrong.value) == str(unknown.value)


def test_repeated_failures_lock_the_account_for_a_while(api, bob):
    for _ in range(5):
        with pytest.raises(AuthFailed, match="wrong username or password"):
            api.login("bob", "guess")
    with pytest.raises(AuthFailed) as locked:
        api.login("bob", PW)  # even the right password waits
    for _ in range(6):  # the same tries on a name nobody has
        with pytest.raises(AuthFailed) as unknown:
            api.login("nobody", "guess")
    assert str(locked.value) == str(unknown.value)  # the lock does not tell that bob exists
    assert "locked for a while" in str(locked.value)
    with api.app.catalog.session() as s:
        user = s.scalars(select(User).where(User.username == "bob")).one()
        user.locked_until -= timedelta(hours=1)  # the lock has run out
    assert api.login("bob", PW).actor.username == "bob"
    with api.app.catalog.session() as s:
        assert s.scalars(select(User.failed_logins).where(User.username == "bob")).one() == 0
    actions = [e.action for e in api.list_audit(api.default_actor, username="bob")]
    assert actions.count("login.failed") == 5 and "login.locked" in actions and "login" in actions


def test_logout_and_expiry_end_a_session(api, bob):
    a, b = api.login("bob", PW), api.login("bob", PW)
    api.logout(a.token)
    assert api.actor_for_token(a.token) is None
    assert api.actor_for_token(b.token) is not None
    with api.app.catalog.session() as s:
        row = s.scalars(select(AuthSession).where(AuthSession.token_hash == token_hash(b.token))).one()
        row.expires_at -= timedelta(days=1)
    assert api.actor_for_token(b.token) is None
    assert api.actor_for_token("forged-token") is None and api.actor_for_token("") is None


def test_change_password_revokes_other_sessions(api, bob):
    here, elsewhere = api.login("bob", PW), api.login("bob", PW, kind="api", name="laptop")
    with pytest.raises(PermissionDenied, match="current password is wrong"):
        api.change_password(here.actor, "wrong", "a brand new password")
    with pytest.raises(InvalidRequest, match="too short"):
        api.change_password(here.actor, PW, "short")
    api.change_password(here.actor, PW, "a brand new password", keep_token=here.token)
    assert api.actor_for_token(here.token) is not None
    assert api.actor_for_token(elsewhere.token) is None
    with pytest.raises(AuthFailed):
        api.login("bob", PW)
    assert api.login("bob", "a brand new password").actor.username == "bob"


def test_disabling_a_user_revokes_sessions_and_refuses_login(api, admin, bob):
    session = api.login("bob", PW)
    api.set_user_active(admin, "bob", False)
    assert api.actor_for_token(session.token) is None
    with pytest.raises(AuthFailed):
        api.login("bob", PW)
    api.set_user_active(admin, "bob", True)
    assert api.login("bob", PW)


def test_admin_only_user_management_and_one_time_passwords(api, admin, bob):
    bob_actor = api.actor("bob")
    for call in (lambda: api.list_users(bob_actor), lambda: api.create_user(bob_actor, "eve"),
                 lambda: api.reset_password(bob_actor, "admin"), lambda: api.create_org(bob_actor, "x")):
        with pytest.raises(PermissionDenied, match="not a site admin"):
            call()
    info, one_time = api.create_user(admin, "carol")
    assert one_time and api.login("carol", one_time).actor.username == "carol"
    new = api.reset_password(admin, "carol")
    with pytest.raises(AuthFailed):
        api.login("carol", one_time)
    assert api.login("carol", new)
    with pytest.raises(InvalidRequest, match="exists already"):
        api.create_user(admin, "carol", password=PW)
    with pytest.raises(InvalidRequest, match="username"):
        api.create_user(admin, "no spaces please", password=PW)
    assert [u.username for u in api.list_users(admin)] == ["admin", "bob", "carol"]


def test_first_admin_password_is_never_a_default(api):
    with pytest.raises(AuthFailed):
        api.login("admin", "admin")
    assert api.login("admin", "test-admin-pw").actor.is_admin
