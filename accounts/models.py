import functools
import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.text import slugify

# The pseudo-user that owns imported public postmortems (postmortems.importing): never a person to pick.
ARCHIVE_USERNAME = "public-archive"


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            "“%(value)s” is not a time zone name; use one like Europe/Berlin or UTC.",
            params={"value": value},
            code="invalid_time_zone",
        )


def zone(name: str | None) -> zoneinfo.ZoneInfo:
    """The time zone of that name; UTC for a blank or unknown one (a zone removed from the system)."""
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def in_zone(value, tz: zoneinfo.ZoneInfo):
    """`value` in the zone `tz`; in UTC when the zone cannot show it (an instant at the calendar's very
    edge, stored before forms refused those)."""
    try:
        return timezone.localtime(value, tz)
    except OverflowError:
        return timezone.localtime(value, zoneinfo.ZoneInfo("UTC"))


@functools.cache
def time_zone_choices() -> list[tuple[str, str]]:
    # Reading the system's zone list takes longer than rendering a whole form; it changes with a deploy.
    return [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())]


class User(AbstractUser):
    display_name = models.CharField(
        "display name", max_length=150, blank=True, help_text="How your name is shown to others."
    )
    time_zone = models.CharField(
        "time zone",
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="Times are shown to you in this zone on hover; new postmortems default to it.",
    )
    session_epoch = models.PositiveIntegerField(
        "session epoch",
        default=0,
        editable=False,
        help_text="Raised by “Sign out my other sessions”: sessions signed in before it end.",
    )

    class Meta(AbstractUser.Meta):
        ordering = ["username"]

    def __str__(self) -> str:
        return self.name_of(self.username, self.display_name, self.first_name, self.last_name)

    # A session stays valid while the hash it was signed in with matches: Django derives it from the
    # password (a new password ends every other session); the epoch lets a person end them without one.
    def get_session_auth_hash(self) -> str:
        return self._session_hash(settings.SECRET_KEY)

    def get_session_auth_fallback_hash(self):
        for secret in settings.SECRET_KEY_FALLBACKS:
            yield self._session_hash(secret)

    def _session_hash(self, secret: str) -> str:
        salt = "accounts.User.get_session_auth_hash"
        return salted_hmac(
            salt, f"{self.password}:{self.session_epoch}", secret=secret, algorithm="sha256"
        ).hexdigest()

    @staticmethod
    def name_of(username: str, display_name: str, first_name: str, last_name: str) -> str:
        """The name a person goes by: for rows read as plain values, without a User each."""
        return display_name or f"{first_name} {last_name}".strip() or username

    def get_absolute_url(self) -> str:
        return reverse("postmortems:list") + f"?owner={self.username}"


class Team(models.Model):
    name = models.CharField("name", max_length=100, unique=True)
    slug = models.SlugField("slug", max_length=100, unique=True)
    members = models.ManyToManyField(User, related_name="teams", blank=True, verbose_name="members")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = slugify(self.name)
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("postmortems:list") + f"?team={self.slug}"


class SecurityEventKind(models.TextChoices):
    SIGNED_IN = "signed_in", "Signed in"
    SIGN_IN_FAILED = "sign_in_failed", "Failed sign-in"
    LOCKED_OUT = "locked_out", "Locked out (too many failures)"
    SIGNED_OUT = "signed_out", "Signed out"
    OTHER_SESSIONS_ENDED = "other_sessions_ended", "Signed out other sessions"
    PASSWORD_CHANGED = "password_changed", "Password changed"
    PASSWORD_RESET_REQUESTED = "password_reset_requested", "Password reset requested"
    PASSWORD_RESET_REFUSED = "password_reset_refused", "Password reset refused (too many requests)"
    PASSWORD_RESET_DONE = "password_reset_done", "Password reset"
    EXPORTED = "exported", "Exported a postmortem"
    PERMISSION_DENIED = "permission_denied", "Refused an action on a postmortem"


class SecurityEvent(models.Model):
    """Append-only: who did what that matters to security, from where (accounts/security.py writes it)."""

    created_at = models.DateTimeField("time", auto_now_add=True, db_index=True)
    kind = models.CharField("event", max_length=32, choices=SecurityEventKind)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="person",
    )
    username = models.CharField(
        "username or e-mail", max_length=150, blank=True, help_text="As typed, for a failed sign-in."
    )
    address = models.GenericIPAddressField("address", null=True, blank=True)
    path = models.CharField("page", max_length=200, blank=True)
    detail = models.CharField("detail", max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Password-reset throttling counts one e-mail address's recent requests from one address.
            models.Index(fields=["kind", "username", "created_at"], name="securityevent_kind_user_idx"),
        ]

    def __str__(self) -> str:
        who = self.user or self.username or "someone"
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.get_kind_display()}: {who} from {self.address or '?'}"

    def get_absolute_url(self) -> str:
        return reverse("admin:accounts_securityevent_change", args=[self.pk])
