"""Webhooks: recorded with the change, sent after commit, signed, retried with backoff, never in the way."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from django.db import transaction

from integrations import chat, webhooks
from integrations.models import (
    DeliveryStatus,
    EndpointKind,
    Event,
    WebhookDelivery,
    WebhookEndpoint,
)
from postmortems import followthrough, workflow
from postmortems.models import ActionItemStatus, Status, Visibility
from tests.factories import ActionItemFactory
from tests.integrations.receiver import verify
from tests.postmortems.reviewing import make_cast, postmortem

pytestmark = pytest.mark.django_db


@pytest.fixture
def cast(db):
    return make_cast()


def endpoint_for(url: str, *events, **kwargs) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        name="Receiver", url=url, events=[str(e) for e in events or Event.values], **kwargs
    )


def test_review_request_is_delivered_signed_after_commit(cast, receiver, django_capture_on_commit_callbacks):
    endpoint = endpoint_for(receiver.url, Event.REVIEW_REQUESTED)
    incident = postmortem(cast)

    with django_capture_on_commit_callbacks(execute=True):
        workflow.request_review(incident, by=cast.owner)
        assert receiver.requests == []  # nothing leaves before the change commits

    (received,) = receiver.requests
    assert verify(endpoint.secret, received)
    assert received.headers["content-type"] == "application/json"
    assert abs(int(received.headers["webhook-timestamp"]) - time.time()) < 60
    payload = received.json
    assert payload["type"] == "postmortem.review_requested"
    assert payload["data"]["incident"]["title"] == incident.title
    assert payload["data"]["incident"]["url"] == f"http://127.0.0.1:8000/postmortems/{incident.pk}/"
    assert payload["data"]["actor"] == "owner"
    assert payload["data"]["incident"]["committee"] == ["Ada Reviewer", "Ben Reviewer"]
    delivery = WebhookDelivery.objects.get()
    assert received.headers["webhook-id"] == delivery.message_id
    assert delivery.status == DeliveryStatus.SUCCEEDED
    (attempt,) = delivery.attempt_log.all()
    assert attempt.status_code == 204
    assert attempt.duration_ms < 5000


def test_signature_does_not_verify_with_another_secret_or_body(
    cast, receiver, django_capture_on_commit_callbacks
):
    endpoint_for(receiver.url, Event.REVIEW_REQUESTED)
    with django_capture_on_commit_callbacks(execute=True):
        workflow.request_review(postmortem(cast), by=cast.owner)
    (received,) = receiver.requests
    assert not verify("whsec_" + "A" * 32, received)
    received.body += b" "
    assert not verify(WebhookEndpoint.objects.get().secret, received)


def test_failed_deliveries_are_retried_with_exponential_backoff(
    cast, receiver, clock, django_capture_on_commit_callbacks, settings
):
    settings.WEBHOOK_RETRY_SECONDS = 30
    receiver.fail_first = 2
    endpoint = endpoint_for(receiver.url, Event.PUBLISHED)
    incident = postmortem(cast, status=Status.IN_REVIEW, approved_by=[cast.reviewer_a, cast.reviewer_b])

    with django_capture_on_commit_callbacks(execute=True):
        workflow.publish(incident, by=cast.owner)  # the action succeeds although the endpoint fails

    incident.refresh_from_db()
    assert incident.status == Status.PUBLISHED
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    assert delivery.next_attempt_at == clock.now + dt.timedelta(seconds=30)

    assert webhooks.deliver_due() == 0  # not due yet
    assert len(receiver.requests) == 1
    clock.advance(seconds=30)
    webhooks.deliver_due()
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert delivery.next_attempt_at == clock.now + dt.timedelta(seconds=60)  # twice the wait
    clock.advance(seconds=60)
    assert webhooks.deliver_due() == 1

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert [a.status_code for a in delivery.attempt_log.all()] == [500, 500, 204]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1  # one message, three attempts
    assert all(verify(endpoint.secret, r) for r in receiver.requests)


def test_a_delivery_that_keeps_failing_stops_after_the_last_attempt(cast, clock, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    endpoint_for("http://127.0.0.1:9/nothing-listens-here", Event.REVIEW_REQUESTED)
    workflow.request_review(postmortem(cast), by=cast.owner)  # on_commit never runs in this test
    delivery = WebhookDelivery.objects.get()

    webhooks.attempt(delivery.pk)
    clock.advance(hours=1)
    webhooks.deliver_due()

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert [a.error for a in delivery.attempt_log.all()] == ["ConnectionError", "ConnectionError"]


def test_an_endpoint_that_is_down_never_fails_the_action(cast, django_capture_on_commit_callbacks, caplog):
    endpoint_for("http://127.0.0.1:9/down", Event.REVIEW_REQUESTED)
    incident = postmortem(cast)

    with django_capture_on_commit_callbacks(execute=True):
        workflow.request_review(incident, by=cast.owner)

    incident.refresh_from_db()
    assert incident.status == Status.IN_REVIEW
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.attempt_log.get().error == "ConnectionError"


def test_a_broker_that_is_down_loses_no_delivery(
    cast, receiver, django_capture_on_commit_callbacks, monkeypatch
):
    endpoint_for(receiver.url, Event.REVIEW_REQUESTED)

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr("integrations.tasks.send_webhook.apply_async", broker_down)
    incident = postmortem(cast)
    with django_capture_on_commit_callbacks(execute=True):
        workflow.request_review(incident, by=cast.owner)

    assert receiver.requests == []
    assert webhooks.deliver_due() == 1  # the catch-up (Celery beat every minute) sends it
    assert len(receiver.requests) == 1


def test_a_rolled_back_change_records_no_delivery(cast):
    endpoint_for("http://127.0.0.1:9/", Event.REVIEW_REQUESTED)
    incident = postmortem(cast)

    def review_then_fail():
        with transaction.atomic():
            workflow.request_review(incident, by=cast.owner)
            raise RuntimeError("the request failed later")

    with pytest.raises(RuntimeError):
        review_then_fail()
    assert not WebhookDelivery.objects.exists()


def test_inactive_endpoints_and_other_events_get_nothing(cast):
    endpoint_for("http://127.0.0.1:9/a", Event.PUBLISHED)
    endpoint_for("http://127.0.0.1:9/b", Event.REVIEW_REQUESTED, is_active=False)
    workflow.request_review(postmortem(cast), by=cast.owner)
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize("include_restricted", [False, True])
def test_restricted_incidents_content_only_for_endpoints_marked_for_them(cast, include_restricted):
    endpoint_for("http://127.0.0.1:9/", Event.REVIEW_REQUESTED, include_restricted=include_restricted)
    incident = postmortem(cast, visibility=Visibility.RESTRICTED, summary="Keys leaked from the vault")

    workflow.request_review(incident, by=cast.owner)

    payload = WebhookDelivery.objects.get().payload
    shown = json.dumps(payload)
    assert payload["data"]["incident"]["id"] == incident.pk
    assert payload["data"]["incident"]["restricted"] is True
    assert (incident.title in shown) is include_restricted
    assert ("Keys leaked" in shown) is include_restricted


def test_every_workflow_event_is_recorded(cast):
    endpoint_for("http://127.0.0.1:9/")
    incident = postmortem(cast)
    workflow.request_review(incident, by=cast.owner)
    workflow.request_changes(incident, by=cast.reviewer_b, revision=incident.revision, comment="Add a graph")
    workflow.approve(incident, by=cast.reviewer_a, revision=incident.revision)
    workflow.approve(incident, by=cast.reviewer_b, revision=incident.revision)
    workflow.publish(incident, by=cast.owner)
    workflow.reopen(incident, by=cast.owner, reason="New data")

    events = list(WebhookDelivery.objects.order_by("id").values_list("event", flat=True))
    assert events == [
        "postmortem.review_requested",
        "postmortem.changes_requested",
        "postmortem.signed_off",
        "postmortem.signed_off",
        "postmortem.published",
        "postmortem.reopened",
    ]
    changes = WebhookDelivery.objects.get(event=Event.CHANGES_REQUESTED).payload["data"]
    assert changes["sign_off"]["comment"] == "Add a graph"
    assert changes["actor"] == "revb"


def test_action_item_events(cast, api_as, clock):
    endpoint_for("http://127.0.0.1:9/")
    incident = postmortem(cast)
    response = api_as(cast.owner).post(
        f"/api/v1/postmortems/{incident.pk}/action-items/",
        {"title": "Add alerting on pool use", "owner": cast.co_author.pk, "priority": "P1"},
        if_match=incident.revision,
    )
    assert response.status_code == 201, response.json_body
    item = incident.action_items.get(title="Add alerting on pool use")
    followthrough.update_action_item(
        item, by=cast.co_author, status=ActionItemStatus.IN_PROGRESS, backlog_link=""
    )
    late = ActionItemFactory(owner=cast.other, due_date=clock.now.date() - dt.timedelta(days=1))

    assert webhooks.overdue_events(clock.now.date()) == 1
    assert webhooks.overdue_events(clock.now.date()) == 0  # once per item and due date

    created, updated, overdue = WebhookDelivery.objects.order_by("id")
    assert created.event == "action_item.created"
    assert created.payload["data"]["action_item"]["title"] == "Add alerting on pool use"
    assert created.payload["data"]["action_item"]["owner"] == "coauthor"
    assert updated.event == "action_item.updated"
    assert updated.payload["data"]["changes"] == ["status Open → In progress"]
    assert overdue.event == "action_item.overdue"
    assert overdue.payload["data"]["action_item"]["id"] == late.pk


def test_chat_endpoint_gets_a_readable_message_with_links(cast, receiver, django_capture_on_commit_callbacks):
    endpoint_for(receiver.url, Event.PUBLISHED, Event.CHANGES_REQUESTED, kind=EndpointKind.SLACK)
    incident = postmortem(cast, status=Status.IN_REVIEW, approved_by=[cast.reviewer_a, cast.reviewer_b])

    with django_capture_on_commit_callbacks(execute=True):
        workflow.publish(incident, by=cast.owner)

    (received,) = receiver.requests
    text = received.json["text"]
    assert set(received.json) == {"text"}
    assert text.startswith(f":books: owner published <http://127.0.0.1:8000/postmortems/{incident.pk}/|")
    assert "A **connection-pool** change exhausted database connections." in text
    assert "Tags: configuration, database" in text


def test_chat_message_for_review_and_changes():
    payload = {"data": {"incident": {"id": 7, "url": "https://h/postmortems/7/", "title": "DB <down> & out"},
                        "actor": "ada", "sign_off": {"comment": "Add the graph."}}}  # fmt: skip
    review = chat.message("postmortem.review_requested", payload)["text"]
    changes = chat.message("postmortem.changes_requested", payload)["text"]
    assert review == ":mag: ada requested review of <https://h/postmortems/7/|DB &lt;down&gt; &amp; out>."
    assert changes.endswith(
        "requested changes to <https://h/postmortems/7/|DB &lt;down&gt; &amp; out>.\n> Add the graph."
    )


def test_redeliver_sends_the_same_event_again(cast, receiver, django_capture_on_commit_callbacks):
    endpoint = endpoint_for(receiver.url, Event.REVIEW_REQUESTED)
    with django_capture_on_commit_callbacks(execute=True):
        workflow.request_review(postmortem(cast), by=cast.owner)
    first = WebhookDelivery.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        again = webhooks.redeliver(first)

    assert again.pk != first.pk
    assert [r.json for r in receiver.requests] == [first.payload, first.payload]
    assert all(verify(endpoint.secret, r) for r in receiver.requests)


def test_send_pending_webhooks_command_sends_what_is_due(cast, receiver):
    from io import StringIO

    from django.core.management import call_command

    endpoint_for(receiver.url, Event.REVIEW_REQUESTED)
    workflow.request_review(postmortem(cast), by=cast.owner)  # on_commit never runs here: it waits
    out = StringIO()

    call_command("send_pending_webhooks", stdout=out)

    assert out.getvalue().strip() == "1 webhooks delivered; 0 deliveries still waiting."
    assert len(receiver.requests) == 1


def test_chat_review_request_names_the_committee(cast, receiver, django_capture_on_commit_callbacks):
    endpoint_for(receiver.url, Event.REVIEW_REQUESTED, kind=EndpointKind.SLACK)
    incident = postmortem(cast)
    with django_capture_on_commit_callbacks(execute=True):
        workflow.request_review(incident, by=cast.owner)
    (received,) = receiver.requests
    assert received.json["text"] == (
        f":mag: owner requested review of <http://127.0.0.1:8000/postmortems/{incident.pk}/|{incident.title}>"
        " from Ada Reviewer, Ben Reviewer."
    )
