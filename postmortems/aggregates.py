"""Figures over public published incidents, cached as data: the only thing Hindsight caches (DESIGN.md 7).

Everyone signed in sees the published incidents of normal visibility, so figures over them alone (the tag
counts, the insights figures) are the same for every person and may be kept. What a person may see beyond
them is worked out per request and never cached.

A cached figure is keyed by the version of the published incidents: one query of three indexed maxima that
moves with every change a published incident can undergo (a save, a publication, a reopening, a
follow-through update, anything staff change or delete in the admin). Every process reads it from the
database, so all of them agree at once, with or without a shared cache. The TTL bounds what the key cannot
see: a change made outside Django (raw SQL), and two changes whose ids and times were taken in one order and
committed in the other, with figures computed in between.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TypeVar

from django.contrib.admin.models import LogEntry
from django.core.cache import cache
from django.db import connections

from postmortems.models import PUBLISHED_CHANGES, Activity, Incident, Status

T = TypeVar("T")

CACHE_SECONDS = 10 * 60


def published_version() -> tuple:
    """The latest save of a published incident, the newest publication, reopening or follow-through
    logged, and the newest change made in the admin: each a maximum read from an index."""
    incidents, activity, admin_log = (
        Incident._meta.db_table,
        Activity._meta.db_table,
        LogEntry._meta.db_table,
    )
    verbs = ", ".join(["%s"] * len(PUBLISHED_CHANGES))
    sql = (
        f"SELECT (SELECT MAX(updated_at) FROM {incidents} WHERE status = %s), "
        f"(SELECT MAX(id) FROM {activity} WHERE verb IN ({verbs})), "
        f"(SELECT MAX(id) FROM {admin_log})"
    )
    with connections[Incident.objects.db].cursor() as cursor:
        cursor.execute(sql, [Status.PUBLISHED.value, *(verb.value for verb in PUBLISHED_CHANGES)])
        return tuple(str(value) for value in cursor.fetchone())


def public_figures(name: str, parts, compute: Callable[[], T]) -> T:
    """`compute()`, a figure over public published incidents only, cached per `parts` (what was asked)
    and per version of the published incidents."""
    digest = hashlib.sha256(repr((parts, published_version())).encode()).hexdigest()
    return cache.get_or_set(f"public:{name}:{digest}", compute, CACHE_SECONDS)
