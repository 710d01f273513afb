"""Daily upkeep of the accounts app, run by Celery beat (config/settings.py, CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from accounts import security


@shared_task(acks_late=True, time_limit=600)
def prune_security_log() -> int:
    """Drop security-log events older than SECURITY_LOG_RETENTION_DAYS."""
    return security.prune()
