"""Webhook deliveries (integrations/webhooks.py), sent by Celery after the change commits."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.utils import timezone

from integrations import webhooks
from integrations.models import DeliveryStatus

logger = logging.getLogger(__name__)

OPTIONS = {"acks_late": True, "time_limit": 60, "soft_time_limit": 45}


@shared_task(bind=True, **OPTIONS)
def send_webhook(self, delivery_id: int) -> str:
    """One attempt; after a failure the next one is enqueued with its backoff (the catch-up sends it too,
    should the broker lose it)."""
    delivery = webhooks.attempt(delivery_id)
    if delivery is None:
        return "nothing to send"
    if delivery.status == DeliveryStatus.PENDING and not send_webhook.app.conf.task_always_eager:
        # In-process (no broker) a retry would block the request: there the catch-up retries instead.
        wait = max(0.0, (delivery.next_attempt_at - timezone.now()).total_seconds())
        # On the queue this came from, which this worker consumes.
        queue = (self.request.delivery_info or {}).get("routing_key")
        webhooks.enqueue(delivery.pk, countdown=wait, queue=queue)
    return delivery.status


@shared_task(**OPTIONS)
def send_pending_webhooks() -> int:
    """Celery beat's every-minute catch-up: deliveries the broker did not take, and retries that are due."""
    return webhooks.deliver_due()


@shared_task(**OPTIONS)
def send_overdue_webhooks() -> int:
    """Daily: `action_item.overdue` for items that fell overdue (each once per item and due date)."""
    return webhooks.overdue_events(timezone.localdate())


@worker_ready.connect
def send_pending_webhooks_when_a_worker_starts(sender, **kwargs) -> None:
    queue = next(iter(sender.app.amqp.queues.consume_from), None)
    try:
        send_pending_webhooks.apply_async(queue=queue)
    except Exception:
        logger.warning(
            "could not enqueue the webhook catch-up at start; beat runs it every minute", exc_info=True
        )


@shared_task(bind=True, **OPTIONS)
def create_tracker_issue(self, issue_id: int) -> str:
    """Create an action item's tracker issue; while the tracker is down or rate-limits, try again later (its
    Retry-After, else 1, 2, 4 … minutes). In-process (no broker) a failure waits for the person to ask
    again."""
    from integrations import trackers

    try:
        issue = trackers.attempt(issue_id)
    except trackers.TrackerError as error:
        if create_tracker_issue.app.conf.task_always_eager:
            return "failed for now"
        backoff = settings.TRACKER_RETRY_SECONDS * 2 ** (self.request.retries or 0)
        wait = error.retry_after if error.retry_after is not None else backoff
        raise self.retry(countdown=min(wait, 3600), max_retries=trackers.MAX_ATTEMPTS) from error
    return issue.status if issue is not None else "nothing to do"
