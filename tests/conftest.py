import datetime as dt
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import override_settings

from tests import factories


@pytest.fixture(autouse=True, scope="session")
def _plain_http_settings():
    """Tests talk plain HTTP to an uncollected static tree; production settings assume neither.

    Session-scoped, so that it is in force before the live server builds its middleware.
    """
    overrides = override_settings(
        SECURE_SSL_REDIRECT=False,
        SECURE_HSTS_SECONDS=0,
        SESSION_COOKIE_SECURE=False,
        CSRF_COOKIE_SECURE=False,
        STORAGES={
            **django_settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    )
    overrides.enable()
    yield
    overrides.disable()


@pytest.fixture
def user(db):
    return factories.UserFactory()


@pytest.fixture
def client_for(client):
    """A client signed in as the given user."""

    def sign_in(user):
        client.force_login(user)
        return client

    return sign_in


@pytest.fixture
def full_incident(db):
    """A published incident with every section of the template filled."""
    return factories.full_incident()


@pytest.fixture
def public_data_dir() -> Path:
    folder = Path(django_settings.PUBLIC_POSTMORTEMS_DIR)
    if not (folder / "icco_postmortems.jsonl").exists():
        pytest.skip(f"public postmortems not found at {folder}")
    return folder


@pytest.fixture
def today() -> dt.date:
    return dt.date.today()
