"""Pages computed once per audience and state of the data, and recomputed as soon as either changes.

Two small queries decide whether a cached result still holds: the data fingerprint (the latest save of an
incident or an action item, and the newest of each) and the audience (which restricted incidents a user
may see). A change neither can see (a deleted incident, a renamed tag, a person's new display name) bumps a
generation counter through signals; the time limit bounds what a change made outside the ORM leaves behind.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache
from django.db import connections
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from taggit.models import Tag

from accounts.models import Team, User
from postmortems.models import ActionItem, Incident, IncidentQuerySet, Visibility

GENERATION_KEY = "hindsight:generation"


def data_fingerprint() -> tuple:
    """Changes whenever an incident or an action item is saved (every write path saves `updated_at`) or
    created; one query of four index lookups."""
    incidents, items = Incident._meta.db_table, ActionItem._meta.db_table
    with connections[Incident.objects.db].cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT MAX(updated_at) FROM {incidents}), (SELECT MAX(id) FROM {incidents}), "
            f"(SELECT MAX(updated_at) FROM {items}), (SELECT MAX(id) FROM {items})"
        )
        return tuple(cursor.fetchone())


def audience(user, visible: IncidentQuerySet | None = None) -> str:
    """Who sees which published incidents: everyone sees the normal ones, so the restricted ones a user may
    see (usually none) tell users apart; staff see them all. `visible`: Incident.objects.visible_to(user)
    where the caller has built it already (building it costs more than running it)."""
    if user.is_staff:
        return "staff"
    restricted = (
        (Incident.objects.visible_to(user) if visible is None else visible)
        .published()
        .filter(visibility=Visibility.RESTRICTED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return ",".join(map(str, restricted))


def generation() -> int:
    return cache.get_or_set(GENERATION_KEY, 0, None)


@receiver(post_delete, sender=Incident)
@receiver(post_delete, sender=ActionItem)
@receiver(post_save, sender=Tag)
@receiver(post_delete, sender=Tag)
@receiver(post_save, sender=User)
@receiver(post_save, sender=Team)
def _bump_generation(sender, update_fields=None, **kwargs) -> None:
    """Changes the data fingerprint cannot see; cheap enough for their rarity."""
    if sender is User and update_fields and set(update_fields) <= {"last_login", "password"}:
        return  # every sign-in saves the user; nothing shown changes
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:  # not set yet, or evicted: any new value differs from what keys were built with
        cache.set(GENERATION_KEY, 1, None)


def key_for(prefix: str, user, parts, *, visible: IncidentQuerySet | None = None) -> str:
    """A cache key for a result that depends on `parts` (what was asked), on what `user` may see and on the
    current state of the data."""
    raw = repr((parts, audience(user, visible), data_fingerprint(), generation()))
    return f"{prefix}:" + hashlib.sha256(raw.encode()).hexdigest()
