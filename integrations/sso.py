"""Single sign-on with OpenID Connect (mozilla-django-oidc does the flow: state, nonce, token, JWKS).

An account is found by the provider's subject (`sub`), never by email: an address someone else can set at
the provider must not open another person's account. The first sign-in creates the account from the
claims; every sign-in maps the groups claim (OIDC_GROUPS_CLAIM) to Hindsight teams (by slug or name) and to
staff (OIDC_STAFF_GROUPS).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils.text import slugify
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from accounts.models import Team, User
from integrations.models import SsoIdentity

logger = logging.getLogger(__name__)


class SsoBackend(OIDCAuthenticationBackend):
    def filter_users_by_claims(self, claims):
        subject = claims.get("sub")
        if not subject:
            return self.UserModel.objects.none()
        return self.UserModel.objects.filter(sso_identity__subject=subject, is_active=True)

    def verify_claims(self, claims):
        return bool(claims.get("sub"))

    def create_user(self, claims):
        with transaction.atomic():
            user = User.objects.create_user(
                username=_free_username(claims),
                email=claims.get("email", ""),
                first_name=claims.get("given_name", "")[:150],
                last_name=claims.get("family_name", "")[:150],
                display_name=claims.get("name", "")[:150],
            )
            SsoIdentity.objects.create(user=user, subject=claims["sub"])
            apply_groups(user, claims)
        logger.info("single sign-on created the account %s", user.username)
        return user

    def update_user(self, user, claims):
        with transaction.atomic():
            if claims.get("email"):
                user.email = claims["email"]
            if claims.get("name"):
                user.display_name = claims["name"][:150]
            user.save(update_fields=["email", "display_name"])
            apply_groups(user, claims)
        return user


def _free_username(claims) -> str:
    wanted = claims.get("preferred_username") or claims.get("email", "").split("@")[0] or "user"
    base = slugify(wanted)[:140] or "user"
    candidate, n = base, 1
    while User.objects.filter(username=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def apply_groups(user: User, claims: dict) -> None:
    """Teams and staff from the groups claim, when the provider sends it (it is then the source of truth)."""
    groups = claims.get(settings.OIDC_GROUPS_CLAIM)
    if groups is None:
        return
    if isinstance(groups, str):
        groups = [groups]
    names = {str(group).strip() for group in groups if str(group).strip()}
    wanted = {slugify(name) for name in names}
    teams = [team for team in Team.objects.all() if team.slug in wanted or team.name in names]
    if settings.OIDC_CREATE_TEAMS:
        known = {team.slug for team in teams}
        for name in sorted(names):
            if slugify(name) and slugify(name) not in known:
                team, _ = Team.objects.get_or_create(slug=slugify(name), defaults={"name": name})
                teams.append(team)
                known.add(team.slug)
    user.teams.set(teams)
    if settings.OIDC_STAFF_GROUPS:
        is_staff = bool(names & set(settings.OIDC_STAFF_GROUPS))
        if user.is_staff != is_staff:
            user.is_staff = is_staff
            user.save(update_fields=["is_staff"])
