"""Send the webhook deliveries that are due: what Celery beat does every minute, for a setup without a
broker (where a failed first attempt waits for this) or by hand after an outage."""

from django.core.management.base import BaseCommand

from integrations import webhooks
from integrations.models import DeliveryStatus, WebhookDelivery


class Command(BaseCommand):
    help = "Attempt every webhook delivery that is due (pending, its backoff over)."

    def handle(self, *args, **options):
        sent = webhooks.deliver_due(seconds=float("inf"))
        waiting = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).count()
        self.stdout.write(f"{sent} webhooks delivered; {waiting} deliveries still waiting.")
