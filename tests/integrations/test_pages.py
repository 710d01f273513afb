"""The profile's API tokens and staff's integration settings: secrets shown once, never again."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.urls import reverse

from integrations.models import (
    ApiToken,
    DeliveryStatus,
    EndpointKind,
    Event,
    WebhookDelivery,
    WebhookEndpoint,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SETTINGS = "/settings/integrations/"


def test_profile_needs_sign_in(client):
    response = client.get("/accounts/profile/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_profile_saves_the_time_zone(client_for, user):
    client = client_for(user)
    response = client.post("/accounts/profile/", {"display_name": "Kim", "time_zone": "Europe/Berlin"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.display_name, user.time_zone) == ("Kim", "Europe/Berlin")
    refused = client.post("/accounts/profile/", {"display_name": "Kim", "time_zone": "Mars/Olympus"})
    assert "is not a time zone name" in refused.content.decode()


def test_token_secret_is_shown_once_and_works(client_for, user, caplog):
    client = client_for(user)
    caplog.set_level(logging.DEBUG)
    tomorrow = dt.date.today() + dt.timedelta(days=2)

    created = client.post(
        reverse("integrations:token_create"), {"name": "bot", "access": "write", "expires_at": tomorrow}
    )

    page = created.content.decode()
    token = ApiToken.objects.get(user=user)
    secret = page.split('data-testid="new-token"')[1].split("<code")[1].split(">")[1].split("<")[0]
    assert secret.startswith("hst_")
    assert len(secret) > 40
    assert created["Cache-Control"] == "no-store"
    assert token.expires_at.date() == tomorrow
    assert token.access == "write"
    assert secret not in client.get("/accounts/profile/").content.decode()
    assert secret not in caplog.text
    me = client.get("/api/v1/me/", headers={"Authorization": f"Bearer {secret}"})
    assert me.json()["username"] == user.username
    assert secret not in caplog.text


def test_token_form_refuses_a_past_expiry(client_for, user):
    response = client_for(user).post(
        reverse("integrations:token_create"), {"name": "bot", "access": "read", "expires_at": "2020-01-01"}
    )
    assert "Choose a day after today" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_revoked_token_stops_working_and_only_its_owner_revokes_it(client_for, user, api_as):
    api = api_as(user)
    token = ApiToken.objects.get(user=user)
    other = client_for(UserFactory()).post(reverse("integrations:token_revoke", args=[token.pk]))
    assert other.status_code == 404
    assert api.get("/api/v1/me/").status_code == 200

    client_for(user).post(reverse("integrations:token_revoke", args=[token.pk]))

    assert api.get("/api/v1/me/").status_code == 401
    assert "revoked" in client_for(user).get("/accounts/profile/").content.decode()


@pytest.mark.parametrize(("who", "expected"), [("anonymous", 302), ("user", 302), ("staff", 200)])
def test_integration_settings_are_for_staff(client, who, expected):
    if who != "anonymous":
        client.force_login(UserFactory(is_staff=who == "staff"))
    response = client.get(SETTINGS)
    assert response.status_code == expected
    if expected == 200:
        assert "Add an endpoint" in response.content.decode()


def test_staff_add_an_endpoint_and_see_its_secret_once(client_for):
    client = client_for(UserFactory(is_staff=True))
    response = client.post(SETTINGS, {
        "name": "Ops bus", "kind": "json", "url": "https://hooks.example.com/hindsight",
        "events": ["postmortem.published", "action_item.overdue"], "is_active": "on",
    })  # fmt: skip
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == ["postmortem.published", "action_item.overdue"]
    assert endpoint.secret in response.content.decode()
    assert endpoint.secret.startswith("whsec_")
    later = client.get(endpoint.get_absolute_url()).content.decode()
    assert endpoint.secret not in later
    assert "https://hooks.example.com/hindsight" in later


def test_chat_webhook_url_is_kept_secret(client_for):
    client = client_for(UserFactory(is_staff=True))
    url = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX"
    client.post(SETTINGS, {"name": "Chat", "kind": "slack", "url": url, "events": ["postmortem.published"]})
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.kind == EndpointKind.SLACK

    for page in (
        SETTINGS,
        endpoint.get_absolute_url(),
        f"/admin/integrations/webhookendpoint/{endpoint.pk}/change/",
    ):
        html = client.get(page).content.decode()
        assert "XXXXSECRETXXXX" not in html
        assert endpoint.secret not in html

    # Saving the settings without typing the URL again keeps it.
    client.post(
        endpoint.get_absolute_url(),
        {"name": "Chat!", "kind": "slack", "url": "", "events": ["postmortem.published"]},
    )
    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.url) == ("Chat!", url)


def test_secrets_are_not_in_the_admin(client_for, user):
    ApiToken.issue(user=user, name="bot", access="read")
    endpoint = WebhookEndpoint.objects.create(name="E", url="https://e.example.com/", events=["webhook.test"])
    token = ApiToken.objects.get()
    client = client_for(UserFactory(is_staff=True, is_superuser=True))
    for page in (
        "/admin/integrations/apitoken/",
        f"/admin/integrations/apitoken/{token.pk}/change/",
        f"/admin/integrations/webhookendpoint/{endpoint.pk}/change/",
    ):
        html = client.get(page).content.decode()
        assert endpoint.secret not in html
        assert token.key_hash not in html


def test_test_event_and_redeliver_from_the_endpoint_page(
    client_for, receiver, django_capture_on_commit_callbacks
):
    client = client_for(UserFactory(is_staff=True))
    endpoint = WebhookEndpoint.objects.create(name="E", url=receiver.url, events=["postmortem.published"])

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("integrations:endpoint_test", args=[endpoint.pk]))
    delivery = WebhookDelivery.objects.get()
    assert delivery.event == Event.PING
    assert delivery.status == DeliveryStatus.SUCCEEDED
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("integrations:redeliver", args=[delivery.pk]))

    assert [r.json["type"] for r in receiver.requests] == ["webhook.test", "webhook.test"]
    page = client.get(endpoint.get_absolute_url()).content.decode()
    assert page.count("HTTP 204") == 2
    assert " ms" in page


def test_non_staff_cannot_send_test_events(client_for):
    endpoint = WebhookEndpoint.objects.create(name="E", url="https://e.example.com/", events=["webhook.test"])
    response = client_for(UserFactory()).post(reverse("integrations:endpoint_test", args=[endpoint.pk]))
    assert response.status_code == 302
    assert not WebhookDelivery.objects.exists()
