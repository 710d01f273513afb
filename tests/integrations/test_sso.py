"""How single sign-on claims become an account (the browser path is tests/browser/test_sso.py)."""

from __future__ import annotations

import pytest

from integrations.models import SsoIdentity
from integrations.sso import SsoBackend, apply_groups
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def backend(settings):
    settings.OIDC_RP_CLIENT_ID = "hindsight"
    settings.OIDC_RP_CLIENT_SECRET = "secret"
    settings.OIDC_OP_TOKEN_ENDPOINT = "http://127.0.0.1:9/token"
    settings.OIDC_OP_USER_ENDPOINT = "http://127.0.0.1:9/me"
    settings.OIDC_OP_JWKS_ENDPOINT = "http://127.0.0.1:9/jwks"
    return SsoBackend()


def test_accounts_are_found_by_subject_never_by_email(backend):
    local = UserFactory(username="kim", email="kim@example.com")
    claims = {"sub": "abc", "email": "kim@example.com", "preferred_username": "kim"}

    assert not backend.filter_users_by_claims(claims).exists()
    created = backend.create_user(claims)

    assert created != local
    assert created.username == "kim-2"
    assert list(backend.filter_users_by_claims(claims)) == [created]
    assert SsoIdentity.objects.get().subject == "abc"


def test_claims_without_a_subject_are_refused(backend):
    assert not backend.verify_claims({"email": "x@example.com"})


def test_groups_claim_is_the_source_of_truth_for_teams_and_staff(settings):
    settings.OIDC_STAFF_GROUPS = ["admins"]
    user = UserFactory(is_staff=True)
    old, payments = (
        TeamFactory(name="Old", slug="old", members=[user]),
        TeamFactory(name="Payments", slug="payments"),
    )

    apply_groups(user, {"groups": ["Payments"]})

    assert list(user.teams.all()) == [payments]
    assert old not in user.teams.all()
    user.refresh_from_db()
    assert not user.is_staff


def test_no_groups_claim_leaves_teams_alone(settings):
    user = UserFactory()
    team = TeamFactory(members=[user])
    apply_groups(user, {"sub": "x"})
    assert list(user.teams.all()) == [team]


def test_unknown_groups_become_teams_when_configured(settings):
    settings.OIDC_CREATE_TEAMS = True
    user = UserFactory()
    apply_groups(user, {"groups": ["Site Reliability"]})
    assert [(t.name, t.slug) for t in user.teams.all()] == [("Site Reliability", "site-reliability")]
