import datetime as dt
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
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


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache: cached figures must not outlive the data of a test."""
    cache.clear()
    yield
    cache.clear()


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


class Clock:
    """The current time as `django.utils.timezone.now` reports it, moved by the test."""

    def __init__(self, now: dt.datetime):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def set(self, now: dt.datetime) -> None:
        self.now = now

    def advance(self, **delta) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """Time stands still at 2026-03-10 07:00 UTC until the test moves it (also for auto_now fields and
    `timezone.localdate()`): `clock.advance(days=1)`, `clock.set(...)`."""
    clock = Clock(dt.datetime(2026, 3, 10, 7, 0, tzinfo=dt.UTC))
    monkeypatch.setattr("django.utils.timezone.now", clock)
    return clock
