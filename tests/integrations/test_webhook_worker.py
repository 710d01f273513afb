"""A real Celery worker on Redis delivers a webhook recorded by a committed transition, retrying a receiver
that fails twice with Celery countdowns (the production shape; eager mode would hide serialisation bugs)."""

from __future__ import annotations

import time

import pytest

from integrations.models import DeliveryStatus, Event, WebhookDelivery, WebhookEndpoint
from postmortems import workflow
from tests.integrations.receiver import verify
from tests.postmortems.reviewing import make_cast, postmortem
from tests.postmortems.test_celery_worker import broker_queue, worker  # noqa: F401 - fixtures

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def fast_retries(monkeypatch):
    # Read by the worker's settings: attempts 0.5 s and 1 s apart instead of 30 s and 60 s.
    monkeypatch.setenv("WEBHOOK_RETRY_SECONDS", "0.5")


def test_a_real_worker_delivers_and_retries_a_webhook(fast_retries, receiver, request):
    _, log = request.getfixturevalue("worker")
    receiver.fail_first = 2
    endpoint = WebhookEndpoint.objects.create(name="R", url=receiver.url, events=[Event.REVIEW_REQUESTED])
    cast = make_cast()
    incident = postmortem(cast)

    workflow.request_review(incident, by=cast.owner)  # commits; the delivery goes to Redis on commit

    deadline = time.monotonic() + 45
    delivery = None
    while time.monotonic() < deadline:
        delivery = WebhookDelivery.objects.get()
        if delivery.status != DeliveryStatus.PENDING:
            break
        time.sleep(0.2)
    assert delivery.status == DeliveryStatus.SUCCEEDED, log.read_text()[-3000:]
    assert [a.status_code for a in delivery.attempt_log.all()] == [500, 500, 204]
    assert len(receiver.requests) == 3
    assert all(verify(endpoint.secret, r) for r in receiver.requests)
    assert receiver.requests[-1].json["data"]["incident"]["id"] == incident.pk
    first, second, third = (a.started_at for a in delivery.attempt_log.all())
    assert (third - second) > (second - first)  # the wait doubles
