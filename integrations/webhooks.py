"""Outgoing webhooks (DESIGN.md section 8): signed the Standard Webhooks way, sent after commit, retried.

A change calls `emit` inside its transaction: one `WebhookDelivery` row per active endpoint that wants the
event (an outbox, like postmortems/notifications.py), each sent by Celery once the transaction commits.
A broker that is down, an endpoint that is slow or failing: the change stands, the delivery waits, and
`deliver_due` (Celery beat every minute, each worker as it starts) sends it, with exponential backoff
between attempts. Each attempt is logged with its HTTP status and duration.

Payloads are built when the change happens (what was true then). A restricted incident's content goes only
to endpoints marked for it; the others get its id, status and link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from datetime import timedelta
from functools import partial

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from integrations import chat
from integrations.models import (
    DeliveryAttempt,
    DeliveryStatus,
    EndpointKind,
    Event,
    WebhookDelivery,
    WebhookEndpoint,
)
from postmortems.models import ActionItem, Incident, SignOff

logger = logging.getLogger(__name__)


# --- signing -----------------------------------------------------------------------------------------------


def sign(secret: str, *, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: "v1," + base64 HMAC-SHA256 of "id.timestamp.body" keyed with the
    base64-decoded secret (without its `whsec_` prefix)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


# --- payloads ----------------------------------------------------------------------------------------------


def _url(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def incident_data(incident: Incident, *, full: bool) -> dict:
    data = {
        "id": incident.pk,
        "url": _url(incident.get_absolute_url()),
        "status": incident.status,
        "restricted": incident.is_restricted,
    }
    if full:
        data.update(
            title=incident.title,
            severity=incident.severity,
            incident_date=incident.incident_date.isoformat(),
            owner=incident.owner.username if incident.owner_id else None,
            summary=incident.summary,
            tags=sorted(tag.name for tag in incident.tags.all()),
            committee=[str(member) for member in incident.committee.all()],
            revision=incident.revision,
        )
    return data


def action_item_data(item: ActionItem, *, full: bool) -> dict:
    data = {"id": item.pk, "url": _url(item.get_absolute_url())}
    if full:
        data.update(
            title=item.title,
            owner=item.owner.username if item.owner_id else None,
            status=item.status,
            priority=item.priority,
            due_date=item.due_date.isoformat() if item.due_date else None,
            backlog_link=item.backlog_link,
        )
    return data


def build_payload(
    event: str, *, incident: Incident, actor=None, full: bool, extra: dict | None = None, item=None
) -> dict:
    data: dict = {"incident": incident_data(incident, full=full)}
    if actor is not None:
        data["actor"] = actor.username
    if item is not None:
        data["action_item"] = action_item_data(item, full=full)
    if extra and full:
        data.update(extra)
    return {"type": event, "timestamp": timezone.now().isoformat(), "data": data}


# --- recording (in the change's transaction) ---------------------------------------------------------------


def endpoints_for(event: str) -> list[WebhookEndpoint]:
    # `events` is a small JSON list: filtering in Python works the same on both databases.
    return [e for e in WebhookEndpoint.objects.filter(is_active=True) if event in e.events]


def emit(
    event: str,
    *,
    incident: Incident,
    actor=None,
    item: ActionItem | None = None,
    extra: dict | None = None,
    key: str = "",
) -> list[WebhookDelivery]:
    """Record `event` for every endpoint that wants it, in the current transaction; each is sent once it
    commits. `key`, when given, makes the event go to each endpoint at most once."""
    deliveries = []
    for endpoint in endpoints_for(event):
        full = endpoint.include_restricted or not incident.is_restricted
        payload = build_payload(event, incident=incident, actor=actor, full=full, extra=extra, item=item)
        delivery = record(endpoint, event, payload, key=key)
        if delivery is not None:
            deliveries.append(delivery)
    return deliveries


def record(endpoint: WebhookEndpoint, event: str, payload: dict, *, key: str = "") -> WebhookDelivery | None:
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                endpoint=endpoint, event=event, payload=payload, key=key, message_id=f"msg_{uuid.uuid4().hex}"
            )
    except IntegrityError:  # this keyed event went to this endpoint already
        return None
    transaction.on_commit(partial(enqueue, delivery.pk))
    return delivery


def enqueue(delivery_id: int, *, countdown: float | None = None, queue: str | None = None) -> None:
    """Hand a delivery to Celery; a broker that cannot take it leaves it for the catch-up."""
    from integrations.tasks import send_webhook

    try:
        send_webhook.apply_async((delivery_id,), countdown=countdown, queue=queue)
    except Exception:
        logger.warning(
            "webhook delivery %s not sent now; it waits for the catch-up (Celery beat every minute)",
            delivery_id,
            exc_info=True,
        )


# --- sending -----------------------------------------------------------------------------------------------


def backoff(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failure: base, 2×base, 4×base … at most WEBHOOK_RETRY_MAX."""
    seconds = settings.WEBHOOK_RETRY_SECONDS * 2 ** (attempts - 1)
    return timedelta(seconds=min(seconds, settings.WEBHOOK_RETRY_MAX_SECONDS))


def request_for(delivery: WebhookDelivery) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one attempt (signed afresh: the timestamp is the attempt's)."""
    endpoint = delivery.endpoint
    if endpoint.kind == EndpointKind.SLACK:
        body = json.dumps(chat.message(delivery.event, delivery.payload)).encode()
    else:
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Hindsight-Webhooks/1",
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(
            endpoint.secret, message_id=delivery.message_id, timestamp=timestamp, body=body
        ),
    }
    return body, headers


def attempt(delivery_id: int) -> WebhookDelivery | None:
    """One attempt at a pending delivery; returns it afterwards (None when there was nothing to send).

    The row is locked while it is sent, so the task and the catch-up never send it twice at once."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .select_related("endpoint")
            .filter(pk=delivery_id, status=DeliveryStatus.PENDING)
            .first()
        )
        if delivery is None:
            return None
        body, headers = request_for(delivery)
        started, clock = timezone.now(), time.monotonic()
        status_code, error = None, ""
        try:
            response = requests.post(
                delivery.endpoint.url,
                data=body,
                headers=headers,
                timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
                allow_redirects=False,
            )
            status_code = response.status_code
        except requests.RequestException as exc:
            # The exception's class says enough (its text may hold the URL, a chat webhook's secret).
            error = type(exc).__name__
        duration = round((time.monotonic() - clock) * 1000)
        DeliveryAttempt.objects.create(
            delivery=delivery, started_at=started, status_code=status_code, duration_ms=duration, error=error
        )
        delivery.attempts = F("attempts") + 1
        ok = status_code is not None and 200 <= status_code < 300
        if ok:
            delivery.status, delivery.delivered_at = DeliveryStatus.SUCCEEDED, timezone.now()
        delivery.save(update_fields=["attempts", "status", "delivered_at"])
        delivery.refresh_from_db(fields=["attempts"])
        if not ok:
            if delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
                delivery.status = DeliveryStatus.FAILED
                logger.warning(
                    "webhook delivery %s to endpoint %s failed %s times (%s); giving up",
                    delivery.pk, delivery.endpoint_id, delivery.attempts, status_code or error,
                )  # fmt: skip
            else:
                delivery.next_attempt_at = timezone.now() + backoff(delivery.attempts)
                logger.info(
                    "webhook delivery %s to endpoint %s failed (%s); attempt %s at %s",
                    delivery.pk, delivery.endpoint_id, status_code or error, delivery.attempts + 1,
                    delivery.next_attempt_at.isoformat(),
                )  # fmt: skip
            delivery.save(update_fields=["status", "next_attempt_at"])
    return delivery


def deliver_due(*, seconds: float = 40) -> int:
    """Send every delivery that is due (the catch-up), for at most `seconds`; returns how many succeeded."""
    started, sent = time.monotonic(), 0
    for delivery_id in list(
        WebhookDelivery.objects.due().order_by("next_attempt_at").values_list("pk", flat=True)[:500]
    ):
        if time.monotonic() - started > seconds:
            break
        delivery = attempt(delivery_id)
        sent += delivery is not None and delivery.status == DeliveryStatus.SUCCEEDED
    return sent


def redeliver(delivery: WebhookDelivery) -> WebhookDelivery:
    """Send an earlier delivery's event again, as a new delivery with the same payload and webhook-id
    (receivers de-duplicate by it)."""
    with transaction.atomic():
        copy = WebhookDelivery.objects.create(
            endpoint=delivery.endpoint,
            event=delivery.event,
            payload=delivery.payload,
            message_id=f"msg_{uuid.uuid4().hex}",
        )
        transaction.on_commit(partial(enqueue, copy.pk))
    return copy


def send_test_event(endpoint: WebhookEndpoint, *, by) -> WebhookDelivery:
    payload = {
        "type": Event.PING.value,
        "timestamp": timezone.now().isoformat(),
        "data": {"message": "A test event from Hindsight.", "actor": by.username},
    }
    with transaction.atomic():
        delivery = record(endpoint, Event.PING, payload)
    return delivery


# --- the events --------------------------------------------------------------------------------------------


def sign_off_event(sign_off: SignOff) -> None:
    event = Event.SIGNED_OFF if sign_off.decision == "approve" else Event.CHANGES_REQUESTED
    extra = {
        "sign_off": {
            "decision": sign_off.decision,
            "comment": sign_off.comment,
            "revision": sign_off.revision,
        }
    }
    emit(event, incident=sign_off.incident, actor=sign_off.reviewer, extra=extra)


def overdue_events(today) -> int:
    """`action_item.overdue` once per item and due date, for items that fell overdue in the last week."""
    items = (
        ActionItem.objects.overdue(today)
        .filter(due_date__gte=today - timedelta(days=7))
        .select_related("incident__owner", "owner")
    )
    count = 0
    for item in items:
        with transaction.atomic():
            count += len(
                emit(
                    Event.ACTION_ITEM_OVERDUE,
                    incident=item.incident,
                    item=item,
                    key=f"overdue:{item.pk}:{item.due_date.isoformat()}",
                )
            )
    return count
