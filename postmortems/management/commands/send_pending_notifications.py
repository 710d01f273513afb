"""Send the notifications still waiting: what Celery beat does every minute, for a setup without a broker
(whose emails go out in the request, so one that failed there waits for this) or by hand after an outage."""

from django.core.management.base import BaseCommand

from postmortems import tasks
from postmortems.models import Notification


class Command(BaseCommand):
    help = "Send every recorded notification not sent yet (each email once)."

    def handle(self, *args, **options):
        sent = tasks.deliver_pending(seconds=float("inf"))
        waiting = Notification.objects.pending().count()
        self.stdout.write(f"{sent} emails sent; {waiting} notifications still waiting.")
