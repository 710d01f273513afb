import functools
import zoneinfo

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils.text import slugify


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

    class Meta(AbstractUser.Meta):
        ordering = ["username"]

    def __str__(self) -> str:
        return self.name_of(self.username, self.display_name, self.first_name, self.last_name)

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
