"""Notifications (DESIGN.md section 8): recorded with the change that causes them, each email sent once.

A change records a `Notification` row in its own transaction (an outbox), and its sending is enqueued when
that transaction commits. When the broker is unreachable the enqueue fails: that is logged as a warning,
the person's action stands, and the row waits. Every minute Celery beat, and every worker as it starts,
sends what still waits (`tasks.send_pending_notifications`), so an outage delays emails but loses none.

However often a notification is sent (the enqueued task, the catch-up, a retry), each of its emails goes
out once: `send_once` claims the email's key in `SentNotification` in the transaction that sends it, so a
concurrent duplicate waits for the claim and then finds it taken, and a failed send releases the key.
"""

from __future__ import annotations

import logging
from functools import partial

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string

from postmortems.models import Notification, SentNotification

logger = logging.getLogger(__name__)


def send_once(key: str, *, to, template: str, context: dict) -> bool:
    """Send one email unless one with this key was already sent; True when it was sent now."""
    if not to.email:
        logger.info("not emailing %s (%s): no address", to, key)
        return False
    context = {"site_url": settings.SITE_URL.rstrip("/"), "recipient": to, **context}
    subject = " ".join(render_to_string(f"emails/{template}_subject.txt", context).split())
    body = render_to_string(f"emails/{template}.txt", context)
    try:
        with transaction.atomic():
            # Claiming the key first makes a concurrent duplicate wait here, then find it taken.
            SentNotification.objects.create(key=key)
            EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [to.email]).send()
    except IntegrityError:
        return False
    return True


def record(kind: str, object_id: int) -> Notification:
    """Record a notification in the current transaction; its sending is enqueued once that commits (a
    rolled-back change records and sends nothing)."""
    notification = Notification.objects.create(kind=kind, object_id=object_id)
    transaction.on_commit(partial(enqueue, notification.pk))
    return notification


def enqueue(notification_id: int) -> None:
    """Hand a recorded notification to Celery. A broker that cannot take it (down, failing over) is logged
    and the notification left waiting for the catch-up: the change it follows is committed already, and
    the person who made it must not see an error for it."""
    # tasks imports this module (send_once), so the task is looked up only when it is needed.
    from postmortems.tasks import send_notification

    try:
        send_notification.delay(notification_id)
    except Exception:
        # The traceback says why: kombu's OperationalError for a broker that is down; without a broker the
        # task runs here, so an SMTP error.
        logger.warning(
            "notification %s not sent now; it waits for the catch-up (Celery beat every minute, each worker "
            "as it starts, or manage.py send_pending_notifications)",
            notification_id,
            exc_info=True,
        )
