"""Sign-in throttling, password reset by e-mail, other sessions, and the security log."""

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import security
from accounts.models import SecurityEvent, SecurityEventKind
from tests import factories

PASSWORD = "correct horse battery staple"


@pytest.fixture
def alice(db):
    person = factories.UserFactory(username="alice", email="alice@example.com")
    person.set_password(PASSWORD)
    person.save()
    return person


def sign_in(client, username, password, *, url="/accounts/login/", address="203.0.113.7"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def kinds() -> list[str]:
    return list(SecurityEvent.objects.order_by("id").values_list("kind", flat=True))


def test_five_failures_lock_the_username_from_that_address_even_with_the_right_password(client, alice):
    for _ in range(4):
        response = sign_in(client, "alice", "wrong")
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()
    fifth = sign_in(client, "alice", "wrong")
    assert fifth.status_code == 429
    assert "Sign-in paused for 15 minutes" in fifth.content.decode()

    right = sign_in(client, "alice", PASSWORD)
    assert right.status_code == 429
    assert "“alice”" in right.content.decode()
    assert "_auth_user_id" not in client.session
    assert SecurityEventKind.LOCKED_OUT in kinds()


def test_a_lockout_is_per_address_and_username(client, alice):
    for _ in range(5):
        sign_in(client, "alice", "wrong")
    assert sign_in(Client(), "alice", PASSWORD, address="198.51.100.9").status_code == 302
    bob = factories.UserFactory(username="bob")
    bob.set_password(PASSWORD)
    bob.save()
    assert sign_in(Client(), "bob", PASSWORD).status_code == 302


def test_the_lockout_ends_after_the_cool_off(client, alice):
    for _ in range(5):
        sign_in(client, "alice", "wrong")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    response = sign_in(client, "alice", PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_the_limit_and_cool_off_are_settings(client, alice, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(minutes=3)
    sign_in(client, "alice", "wrong")
    response = sign_in(client, "alice", "wrong")
    assert response.status_code == 429
    assert "paused for 3 minutes" in response.content.decode()


def test_the_admin_sign_in_is_throttled_too(client, alice):
    alice.is_staff = True
    alice.save()
    for _ in range(5):
        response = sign_in(client, "alice", "wrong", url="/admin/login/")
    assert response.status_code == 429
    assert sign_in(client, "alice", PASSWORD, url="/admin/login/").status_code == 429


def test_sign_ins_failures_and_sign_outs_are_logged_with_address(client, alice):
    sign_in(client, "alice", "wrong")
    sign_in(client, "alice", PASSWORD)
    client.post("/accounts/logout/", REMOTE_ADDR="203.0.113.7")
    assert kinds() == [
        SecurityEventKind.SIGN_IN_FAILED,
        SecurityEventKind.SIGNED_IN,
        SecurityEventKind.SIGNED_OUT,
    ]
    failed = SecurityEvent.objects.get(kind=SecurityEventKind.SIGN_IN_FAILED)
    assert (failed.username, failed.address, failed.user) == ("alice", "203.0.113.7", None)
    assert SecurityEvent.objects.get(kind=SecurityEventKind.SIGNED_IN).user == alice


def test_the_address_behind_a_proxy_is_the_one_it_appended(rf, settings):
    settings.FORWARDED_FOR_PROXIES = 1
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.7")
    assert security.client_address(request) == "203.0.113.7"
    settings.FORWARDED_FOR_PROXIES = 0
    assert security.client_address(request) == "10.0.0.1"


def test_password_reset_by_email_sets_a_new_password_and_ends_the_lockout(client, alice, settings):
    settings.SITE_URL = "https://hindsight.example.com"
    for _ in range(5):
        sign_in(client, "alice", "wrong")
    response = client.post("/accounts/password/reset/", {"email": "alice@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"https://hindsight\.example\.com(/accounts/password/reset/\S+/)", mail.outbox[0].body)
    assert link, mail.outbox[0].body
    form_page = client.get(link.group(1), follow=True)
    assert "Choose a new password" in form_page.content.decode()
    new = "a brand new passphrase 42"
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert done.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(new)
    assert sign_in(Client(), "alice", new).status_code == 302
    assert SecurityEventKind.PASSWORD_RESET_REQUESTED in kinds()
    assert SecurityEventKind.PASSWORD_RESET_DONE in kinds()


def test_password_reset_requests_are_throttled_like_sign_in(client, alice):
    for _ in range(5):
        assert client.post("/accounts/password/reset/", {"email": "alice@example.com"}).status_code == 302
    refused = client.post("/accounts/password/reset/", {"email": "alice@example.com"})
    assert refused.status_code == 429
    assert "Too many reset requests" in refused.content.decode()
    assert len(mail.outbox) == 5
    assert SecurityEventKind.PASSWORD_RESET_REFUSED in kinds()


def test_a_password_change_is_logged(client, alice):
    client.force_login(alice)
    new = "another long passphrase 7"
    response = client.post(
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 302
    assert SecurityEvent.objects.filter(kind=SecurityEventKind.PASSWORD_CHANGED, user=alice).exists()


def test_a_staff_password_change_in_the_admin_is_logged(client, alice):
    staff = factories.UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    new = "set by the admin 12345"
    url = reverse("admin:auth_user_password_change", args=[alice.pk])  # UserAdmin names it so
    response = client.post(url, {"password1": new, "password2": new, "usable_password": "true"})
    assert response.status_code == 302
    event = SecurityEvent.objects.get(kind=SecurityEventKind.PASSWORD_CHANGED)
    assert event.user == alice
    assert staff.username in event.detail


def test_sign_out_my_other_sessions_keeps_this_one(alice):
    here, elsewhere = Client(), Client()
    here.force_login(alice)
    elsewhere.force_login(alice)
    response = here.post("/accounts/profile/sessions/")
    assert response.status_code == 302
    assert here.get("/postmortems/").status_code == 200
    assert elsewhere.get("/postmortems/").status_code == 302  # to the sign-in page
    assert SecurityEvent.objects.filter(kind=SecurityEventKind.OTHER_SESSIONS_ENDED, user=alice).exists()


def test_the_profile_page_saves_the_time_zone(client, alice):
    client.force_login(alice)
    page = client.get("/accounts/profile/")
    assert "Sign out my other sessions" in page.content.decode()
    response = client.post(
        "/accounts/profile/",
        {"display_name": "Alice", "email": "a@example.com", "time_zone": "Europe/Berlin"},
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.time_zone == "Europe/Berlin"


def test_an_export_and_a_refused_action_are_logged(client, alice):
    incident = factories.full_incident()
    client.force_login(alice)
    assert client.get(f"/postmortems/{incident.pk}/export.md").status_code == 200
    assert client.post(f"/postmortems/{incident.pk}/reopen/", {"reason": "x"}).status_code == 403
    exported = SecurityEvent.objects.get(kind=SecurityEventKind.EXPORTED)
    assert exported.user == alice
    assert str(incident.pk) in exported.detail
    denied = SecurityEvent.objects.get(kind=SecurityEventKind.PERMISSION_DENIED)
    assert "reopen" in denied.detail
    assert denied.path == f"/postmortems/{incident.pk}/reopen/"


def test_old_events_are_pruned_after_the_retention(alice, settings):
    settings.SECURITY_LOG_RETENTION_DAYS = 30
    old = security.record(SecurityEventKind.SIGNED_IN, user=alice)
    SecurityEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    recent = security.record(SecurityEventKind.SIGNED_IN, user=alice)
    from accounts.tasks import prune_security_log

    assert prune_security_log() == 1
    assert list(SecurityEvent.objects.all()) == [recent]


def test_the_security_log_is_read_only_in_the_admin(client, alice):
    security.record(SecurityEventKind.SIGNED_IN, user=alice)
    staff = factories.UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    page = client.get("/admin/accounts/securityevent/")
    assert page.status_code == 200
    assert "alice" in page.content.decode()
    assert client.get("/admin/accounts/securityevent/add/").status_code == 403
