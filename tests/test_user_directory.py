"""Who may see which usernames: the permission dialogs' list stays within a user's organizations and
groups; anyone else is found only by their exact username or e-mail."""

from __future__ import annotations

import pytest
from test_curation_support import make_version

from dsgen_core.errors import NotFound, PermissionDenied

PW = "a-long-test-password"


@pytest.fixture
def people(api, admin):
    """bob and carol in acme; dave in globex; erin in none; zoe disabled (in acme)."""
    for name in ("bob", "carol", "dave", "erin", "zoe"):
        api.create_user(admin, name, email=f"{name.title()}@Example.org", password=PW)
    api.create_org(admin, "acme")
    api.create_org(admin, "globex")
    for org, user in (("acme", "bob"), ("acme", "carol"), ("acme", "zoe"), ("globex", "dave")):
        api.add_member(admin, org, user)
    api.set_user_active(admin, "zoe", False)
    return {name: api.actor(name) for name in ("bob", "carol", "dave", "erin")}


def test_admins_see_every_active_user(api, admin, people):
    assert api.list_usernames(admin) == ["admin", "bob", "carol", "dave", "erin"]


def test_others_see_their_organizations_and_their_groups_grantees(api, people):
    bob, dave, erin = people["bob"], people["dave"], people["erin"]
    assert api.list_usernames(bob) == ["bob", "carol"]  # not dave, erin, the admin or disabled zoe
    assert api.list_usernames(dave) == ["dave"]
    assert api.list_usernames(erin) == ["erin"]
    make_version(api, bob.id, group="bob-data")
    api.grant(bob, "bob-data", api.find_username(bob, "erin@example.org"), "viewer")
    assert api.list_usernames(bob) == ["bob", "carol", "erin"]  # so bob can revoke her again
    assert "bob" not in api.list_usernames(erin)  # being granted shows erin nobody new


def test_anyone_else_only_by_exact_name_or_email(api, people):
    bob = people["bob"]
    assert api.find_username(bob, "dave") == "dave"
    assert api.find_username(bob, "  DAVE@example.ORG ") == "dave"
    answers = []
    for guess in ("dav", "d%", "*", "", "Dave", "zoe", "zoe@example.org", "nobody"):
        with pytest.raises(NotFound) as exc:
            api.find_username(bob, guess)
        answers.append(str(exc.value).split("'")[0])
    assert len(set(answers)) == 1  # disabled and unknown read the same
    with pytest.raises(PermissionDenied):
        api.find_username(None, "dave")
