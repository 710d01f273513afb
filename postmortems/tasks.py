"""Emails of the review workflow (DESIGN.md section 8), sent by Celery after the change commits.

Tasks take ids and load what they need, so a worker always sees committed data. Each email is sent at most
once per (event, recipient): the key is claimed in `SentNotification` in the same transaction that sends it,
so a retried or duplicated task skips what already went out, and a failed send releases the key for the retry.
"""

from __future__ import annotations

import logging
from smtplib import SMTPException

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string

from postmortems import reminders
from postmortems.models import Activity, SentNotification, SignOff

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
def send_daily_reminders() -> int:
    """Celery beat's morning job (settings.CELERY_BEAT_SCHEDULE); one email per person and kind per day."""
    return reminders.send_daily_reminders()


@shared_task(**TASK_OPTIONS)
def send_related_open_items(incident_id: int) -> int:
    """Enqueue when a postmortem being written gets its tags: owners of related open items are told once."""
    return reminders.related_open_items_emails(incident_id)
