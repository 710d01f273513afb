"""Hindsight in the team's tool chain: personal API tokens, webhook endpoints and their deliveries."""

from __future__ import annotations

import base64
import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

TOKEN_PREFIX = "hst_"
WEBHOOK_SECRET_PREFIX = "whsec_"


def hash_token(secret: str) -> str:
    # Tokens are 32 random bytes: a fast hash is enough (nothing to guess), and it can be looked up.
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenAccess(models.TextChoices):
    READ = "read", "Read only"
    WRITE = "write", "Read and write"


class ApiTokenQuerySet(models.QuerySet):
    def usable(self) -> ApiTokenQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """A personal token: a script acts as its user, with read-only or read-write access. Only its hash
    is kept; the secret is shown once, when it is created."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens", verbose_name="user"
    )
    name = models.CharField("name", max_length=100, help_text="What it is for, e.g. “incident bot”.")
    access = models.CharField("access", max_length=5, choices=TokenAccess, default=TokenAccess.READ)
    key_hash = models.CharField("hash", max_length=64, unique=True, editable=False)
    hint = models.CharField("starts with", max_length=12, editable=False)
    expires_at = models.DateTimeField("expires", null=True, blank=True)
    created_at = models.DateTimeField("created", auto_now_add=True)
    last_used_at = models.DateTimeField("last used", null=True, blank=True)
    revoked_at = models.DateTimeField("revoked", null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    def get_absolute_url(self) -> str:
        return reverse("accounts:profile") + "#api-tokens"

    @classmethod
    def issue(cls, *, user, name: str, access: str, expires_at=None) -> tuple[ApiToken, str]:
        """A new token and its secret, which is returned here and never again."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user,
            name=name,
            access=access,
            expires_at=expires_at,
            key_hash=hash_token(secret),
            hint=secret[: len(TOKEN_PREFIX) + 4],
        )
        return token, secret

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    @property
    def can_write(self) -> bool:
        return self.access == TokenAccess.WRITE


class Event(models.TextChoices):
    REVIEW_REQUESTED = "postmortem.review_requested", "Review requested"
    SIGNED_OFF = "postmortem.signed_off", "Signed off (approved)"
    CHANGES_REQUESTED = "postmortem.changes_requested", "Changes requested"
    PUBLISHED = "postmortem.published", "Published"
    REOPENED = "postmortem.reopened", "Reopened"
    ACTION_ITEM_CREATED = "action_item.created", "Action item created"
    ACTION_ITEM_UPDATED = "action_item.updated", "Action item updated"
    ACTION_ITEM_OVERDUE = "action_item.overdue", "Action item overdue"
    PING = "webhook.test", "Test event"


class EndpointKind(models.TextChoices):
    JSON = "json", "Webhook (signed JSON events)"
    SLACK = "slack", "Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat)"


def new_webhook_secret() -> str:
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


class WebhookEndpoint(models.Model):
    name = models.CharField("name", max_length=100)
    kind = models.CharField("kind", max_length=8, choices=EndpointKind, default=EndpointKind.JSON)
    url = models.URLField("URL", max_length=500)
    events = models.JSONField("events", default=list, help_text="The events sent to it.")
    # Kept as it is: signing needs it. Shown once, when the endpoint is created; never in the admin.
    secret = models.CharField("signing secret", max_length=100, default=new_webhook_secret, editable=False)
    is_active = models.BooleanField("active", default=True)
    include_restricted = models.BooleanField(
        "include restricted incidents",
        default=False,
        help_text="Send restricted (security) incidents’ content too; otherwise only their id and link.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", verbose_name="by"
    )
    created_at = models.DateTimeField("created", auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("integrations:endpoint", args=[self.pk])

    @property
    def shown_url(self) -> str:
        """The URL as pages show it: a chat webhook's path is its secret, so only its host is shown."""
        if self.kind == EndpointKind.SLACK:
            scheme, _, rest = self.url.partition("://")
            return f"{scheme}://{rest.split('/', 1)[0]}/…"
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDeliveryQuerySet(models.QuerySet):
    def due(self, now=None) -> WebhookDeliveryQuerySet:
        return self.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now or timezone.now())


class WebhookDelivery(models.Model):
    """One event for one endpoint: recorded in the transaction of the change (an outbox), sent after it
    commits, retried with exponential backoff until it succeeds or runs out of attempts."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", verbose_name="endpoint"
    )
    event = models.CharField("event", max_length=40, choices=Event)
    message_id = models.CharField("webhook-id", max_length=40, unique=True)
    # Events that must go out once (an item becoming overdue) say so; others leave it blank.
    key = models.CharField("key", max_length=120, blank=True)
    payload = models.JSONField("payload")
    status = models.CharField("status", max_length=10, choices=DeliveryStatus, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField("attempts", default=0)
    next_attempt_at = models.DateTimeField("next attempt", default=timezone.now)
    created_at = models.DateTimeField("recorded", auto_now_add=True)
    delivered_at = models.DateTimeField("delivered", null=True, blank=True)

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="webhookdelivery_due_idx",
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "key"], condition=~models.Q(key=""), name="webhookdelivery_once_per_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint}"

    def get_absolute_url(self) -> str:
        return self.endpoint.get_absolute_url() + f"#delivery-{self.pk}"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log", verbose_name="delivery"
    )
    started_at = models.DateTimeField("sent", default=timezone.now)
    status_code = models.PositiveIntegerField("HTTP status", null=True, blank=True)
    duration_ms = models.PositiveIntegerField("duration (ms)")
    error = models.CharField("error", max_length=300, blank=True)

    class Meta:
        ordering = ["started_at", "id"]

    def __str__(self) -> str:
        return f"{self.delivery}: {self.status_code or self.error}"

    def get_absolute_url(self) -> str:
        return self.delivery.get_absolute_url()

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class SsoIdentity(models.Model):
    """The account an OpenID Connect subject signs in to (integrations/sso.py)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identity", verbose_name="user"
    )
    subject = models.CharField("subject (sub)", max_length=255, unique=True)
    created_at = models.DateTimeField("first sign-in", auto_now_add=True)

    class Meta:
        ordering = ["user"]
        verbose_name = "single sign-on identity"
        verbose_name_plural = "single sign-on identities"

    def __str__(self) -> str:
        return f"{self.user} ({self.subject})"

    def get_absolute_url(self) -> str:
        return self.user.get_absolute_url()


def new_inbox_secret() -> str:
    return secrets.token_urlsafe(24)


class AlertInbox(models.Model):
    """A draft's incoming alert webhook: Alertmanager, Grafana or PagerDuty post to its URL (the secret is
    part of it) while the incident is written up; what arrives waits as `PendingEvent`s for the author."""

    incident = models.OneToOneField(
        "postmortems.Incident", on_delete=models.CASCADE, related_name="alert_inbox", verbose_name="incident"
    )
    secret = models.CharField("secret", max_length=64, default=new_inbox_secret, editable=False)
    created_at = models.DateTimeField("created", auto_now_add=True)
    rotated_at = models.DateTimeField("secret changed", null=True, blank=True)

    class Meta:
        ordering = ["incident"]
        verbose_name = "alert inbox"
        verbose_name_plural = "alert inboxes"

    def __str__(self) -> str:
        return f"Alerts for {self.incident}"

    def get_absolute_url(self) -> str:
        return reverse("integrations:timeline_import", args=[self.incident_id])

    def url_path(self) -> str:
        return reverse("integrations:alert_inbox", args=[self.incident_id, self.secret])


class PendingEvent(models.Model):
    """A candidate timeline event that arrived by an alert webhook; it joins the timeline only when an
    author accepts it on the import page."""

    incident = models.ForeignKey(
        "postmortems.Incident",
        on_delete=models.CASCADE,
        related_name="pending_events",
        verbose_name="incident",
    )
    occurred_at = models.DateTimeField("time")
    kind = models.CharField("kind", max_length=12, default="other")
    description = models.TextField("description")
    link = models.URLField("link", max_length=500, blank=True)
    source = models.CharField("from", max_length=40, blank=True)
    received_at = models.DateTimeField("received", auto_now_add=True)

    class Meta:
        ordering = ["occurred_at", "id"]
        verbose_name = "pending timeline event"

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.description[:60]}"

    def get_absolute_url(self) -> str:
        return reverse("integrations:timeline_import", args=[self.incident_id])


class TrackerKind(models.TextChoices):
    GITHUB = "github", "GitHub"
    GITLAB = "gitlab", "GitLab"
    JIRA = "jira", "Jira"


DEFAULT_TRACKER_URLS = {
    TrackerKind.GITHUB: "https://api.github.com",
    TrackerKind.GITLAB: "https://gitlab.com",
}


class TrackerConnection(models.Model):
    """An issue tracker action items become issues in (integrations/trackers.py). The token is kept to call
    the tracker and shown on no page; the webhook secret is shown once, when the connection is added."""

    kind = models.CharField("tracker", max_length=8, choices=TrackerKind)
    base_url = models.URLField(
        "address",
        max_length=300,
        blank=True,
        help_text="GitHub: https://api.github.com (or your GitHub Enterprise API); "
        "GitLab: https://gitlab.com or your instance; Jira: your site, e.g. https://acme.atlassian.net.",
    )
    project = models.CharField(
        "repository or project",
        max_length=200,
        help_text="GitHub: owner/repository; GitLab: group/project (or its id); "
        "Jira: the project key, e.g. OPS.",
    )
    email = models.EmailField("Jira account e-mail", blank=True)
    token = models.CharField("API token", max_length=300, editable=False)
    webhook_secret = models.CharField(
        "webhook secret", max_length=64, default=new_inbox_secret, editable=False
    )
    is_active = models.BooleanField("active", default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", verbose_name="by"
    )
    created_at = models.DateTimeField("created", auto_now_add=True)

    class Meta:
        ordering = ["kind", "project", "id"]
        verbose_name = "issue tracker connection"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.project}"

    def get_absolute_url(self) -> str:
        return reverse("integrations:settings") + f"#tracker-{self.pk}"

    @property
    def api_url(self) -> str:
        return (self.base_url or DEFAULT_TRACKER_URLS.get(self.kind, "")).rstrip("/")

    def webhook_path(self) -> str:
        if self.kind == TrackerKind.JIRA:  # Jira signs nothing: its shared secret is in the URL
            return reverse("integrations:tracker_webhook_secret", args=[self.pk, self.webhook_secret])
        return reverse("integrations:tracker_webhook", args=[self.pk])


class TrackerIssueStatus(models.TextChoices):
    PENDING = "pending", "Being created"
    CREATED = "created", "Created"
    FAILED = "failed", "Failed"


class TrackerIssue(models.Model):
    """The tracker issue an action item became; created by Celery after the request, retried while the
    tracker is down or rate-limits, and kept in step by the tracker's webhook."""

    action_item = models.OneToOneField(
        "postmortems.ActionItem",
        on_delete=models.CASCADE,
        related_name="tracker_issue",
        verbose_name="action item",
    )
    connection = models.ForeignKey(
        TrackerConnection, on_delete=models.CASCADE, related_name="issues", verbose_name="tracker"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", verbose_name="by"
    )
    status = models.CharField(
        "status", max_length=8, choices=TrackerIssueStatus, default=TrackerIssueStatus.PENDING
    )
    external_id = models.CharField("issue", max_length=64, blank=True, db_index=True)
    url = models.URLField("URL", max_length=500, blank=True)
    state = models.CharField("state in the tracker", max_length=20, blank=True)
    attempts = models.PositiveIntegerField("attempts", default=0)
    error = models.CharField("last error", max_length=300, blank=True)
    updated_at = models.DateTimeField("updated", auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        verbose_name = "tracker issue"

    def __str__(self) -> str:
        return f"{self.connection}: {self.external_id or self.get_status_display()}"

    def get_absolute_url(self) -> str:
        return self.action_item.get_absolute_url()
