"""Emails of the review workflow (DESIGN.md section 8), sent by Celery after the change commits.

Tasks take ids and load what they need, so a worker always sees committed data. A change records each
notification in its own transaction (`notifications.record`); `send_notification` sends one, and
`send_pending_notifications` (Celery beat, every minute, and every worker as it starts) sends whatever the
broker did not take. Each email is sent at most once per (event, recipient) (`notifications.send_once`).
"""

from __future__ import annotations

import logging
import time
from smtplib import SMTPException

from celery import shared_task
from celery.signals import worker_ready
from django.db.models import F
from django.utils import timezone

from postmortems import reminders, uploads
from postmortems.models import Activity, Notification, NotificationKind, SignOff
from postmortems.notifications import send_once

logger = logging.getLogger(__name__)

TASK_OPTIONS = {
    "acks_late": True,
    "time_limit": 60,
    "soft_time_limit": 45,
    "autoretry_for": (SMTPException, ConnectionError, TimeoutError),
    "retry_backoff": 30,
    "retry_backoff_max": 15 * 60,
    "retry_jitter": True,
    "max_retries": 8,
}
# A recorded notification is not retried by Celery: what fails waits for the next minute's catch-up.
NOTIFICATION_TASK_OPTIONS = {"acks_late": True, "time_limit": 60, "soft_time_limit": 45}
# The catch-up stops starting new sends after this long, so that one run ends before the next begins
# (a slow or unreachable SMTP server costs its timeout per email).
CATCH_UP_SECONDS = 40


def _activity(activity_id: int) -> Activity | None:
    activity = Activity.objects.select_related("incident__owner", "actor").filter(pk=activity_id).first()
    if activity is None:
        logger.warning("activity %s is gone; nothing to send", activity_id)
    return activity


def review_requested_emails(activity_id: int) -> int:
    """Each committee member is asked to review; returns how many emails went out now."""
    activity = _activity(activity_id)
    if activity is None:
        return 0
    incident = activity.incident
    sent = 0
    for reviewer in incident.committee.all():
        earlier = SignOff.objects.filter(incident=incident, reviewer=reviewer, is_current=True).first()
        sent += send_once(
            f"review_requested:{activity.pk}:{reviewer.pk}",
            to=reviewer,
            template="review_requested",
            context={"incident": incident, "activity": activity, "earlier_sign_off": earlier},
        )
    return sent


def signed_off_emails(sign_off_id: int) -> int:
    """The owner hears about an approval or a request for changes."""
    sign_off = SignOff.objects.select_related("incident__owner", "reviewer").filter(pk=sign_off_id).first()
    if sign_off is None:
        return 0
    incident = sign_off.incident
    return int(
        send_once(
            f"signed_off:{sign_off.pk}:{incident.owner_id}",
            to=incident.owner,
            template="signed_off",
            context={"incident": incident, "sign_off": sign_off},
        )
    )


def published_emails(activity_id: int) -> int:
    """The committee hears that the postmortem they reviewed is published."""
    activity = _activity(activity_id)
    if activity is None:
        return 0
    incident = activity.incident
    sent = 0
    for reviewer in incident.committee.all():
        sent += send_once(
            f"published:{activity.pk}:{reviewer.pk}",
            to=reviewer,
            template="published",
            context={"incident": incident, "activity": activity},
        )
    return sent


SENDERS = {
    NotificationKind.REVIEW_REQUESTED: review_requested_emails,
    NotificationKind.SIGNED_OFF: signed_off_emails,
    NotificationKind.PUBLISHED: published_emails,
    NotificationKind.RELATED_OPEN_ITEMS: reminders.related_open_items_emails,
}


def deliver(notification_id: int) -> int:
    """Send one recorded notification, unless it was sent already, and mark it sent; returns emails sent
    now. A failure leaves it waiting (its emails sent so far stay sent) and counts the attempt."""
    notification = Notification.objects.filter(pk=notification_id, sent_at__isnull=True).first()
    if notification is None:
        return 0
    try:
        sent = SENDERS[notification.kind](notification.object_id)
    except Exception:
        Notification.objects.filter(pk=notification.pk).update(failures=F("failures") + 1)
        raise
    Notification.objects.filter(pk=notification.pk, sent_at__isnull=True).update(sent_at=timezone.now())
    return sent


def deliver_pending(*, seconds: float = CATCH_UP_SECONDS) -> int:
    """Send every notification still waiting, oldest first, for at most `seconds`; returns emails sent.
    One that fails is logged and left for the next run, and the others still go."""
    started = time.monotonic()
    sent = 0
    waiting = list(Notification.objects.pending().values_list("pk", flat=True))
    for done, notification_id in enumerate(waiting):
        if time.monotonic() - started > seconds:
            logger.warning("%s notifications still wait; the next catch-up sends them", len(waiting) - done)
            break
        try:
            sent += deliver(notification_id)
        except Exception:
            logger.warning(
                "notification %s not sent; the next catch-up retries it", notification_id, exc_info=True
            )
    if sent:
        logger.info("catch-up sent %s emails of %s waiting notifications", sent, len(waiting))
    return sent


@shared_task(**NOTIFICATION_TASK_OPTIONS)
def send_notification(notification_id: int) -> int:
    return deliver(notification_id)


@shared_task(**NOTIFICATION_TASK_OPTIONS)
def send_pending_notifications() -> int:
    """Celery beat's every-minute catch-up (settings.CELERY_BEAT_SCHEDULE), also run as a worker starts."""
    return deliver_pending()


@shared_task(**TASK_OPTIONS)
def send_daily_reminders() -> int:
    """Celery beat's morning job (settings.CELERY_BEAT_SCHEDULE); one email per person and kind per day."""
    return reminders.send_daily_reminders()


@worker_ready.connect
def send_pending_when_a_worker_starts(sender, **kwargs) -> None:
    """A worker that starts (after an outage, a deploy) sends what waited without waiting for beat; on a
    queue it consumes, so that this worker is sure to run it."""
    queue = next(iter(sender.app.amqp.queues.consume_from), None)
    try:
        send_pending_notifications.apply_async(queue=queue)
    except Exception:
        logger.warning("could not enqueue the catch-up at start; beat runs it every minute", exc_info=True)


# Before the outbox, changes enqueued these with the changed row's id; they stay so that messages queued by
# that release are still sent. Changes now record a Notification (send_notification).


@shared_task(**TASK_OPTIONS)
def send_review_requested(activity_id: int) -> int:
    return review_requested_emails(activity_id)


@shared_task(**TASK_OPTIONS)
def send_signed_off(sign_off_id: int) -> int:
    return signed_off_emails(sign_off_id)


@shared_task(**TASK_OPTIONS)
def send_published(activity_id: int) -> int:
    return published_emails(activity_id)


@shared_task(**TASK_OPTIONS)
def send_related_open_items(incident_id: int) -> int:
    return reminders.related_open_items_emails(incident_id)


@shared_task(acks_late=True, time_limit=600, soft_time_limit=540)
def delete_unused_uploads() -> int:
    """Daily (Celery beat): images uploaded more than a day ago that no postmortem shows any more."""
    return uploads.delete_unused()
