"""Pages computed once per audience and state of the data, and recomputed as soon as either changes.

One small query per request decides whether a cached result still holds: the data fingerprint (the latest
save and the newest id of incidents and action items, the newest sign-off, comment and activity entry) with
the person's teams; the audience (which restricted incidents they may see) is cached per person, teams and
fingerprint. A change the fingerprint cannot see (a deletion, a renamed tag, a person's new name, a team's
members, an edited comment) bumps a generation counter through signals. That counter lives in the cache, so
several processes share it only through a shared cache (CACHE_URL): with the default per-process cache such
a change can take up to CACHE_SECONDS to show in the other processes, as can a change made outside the ORM.
The state of the data also carries a digest of the code and templates (CODE_VERSION): a deploy starts afresh.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.db.models import Q
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver
from taggit.models import Tag, TaggedItem

from accounts.models import Team, User
from postmortems.models import (
    ActionItem,
    Activity,
    Comment,
    ContributingFactor,
    Incident,
    IncidentQuerySet,
    Lesson,
    SignOff,
    TimelineEvent,
    Visibility,
)


def _code_version() -> str:
    """A digest of the code and templates that make what is cached (pickled rows, HTML): a deploy that
    changes them must not be served the previous release's entries from a shared cache."""
    root = Path(settings.BASE_DIR)
    digest = hashlib.sha256()
    for path in sorted(
        [*root.glob("templates/**/*"), *root.glob("postmortems/**/*.py"), *root.glob("accounts/**/*.py")]
    ):
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


CODE_VERSION = _code_version()
GENERATION_KEY = "hindsight:generation"
# What a change made outside the ORM (which neither the fingerprint nor the signals see) can leave behind.
CACHE_SECONDS = 5 * 60


def data_fingerprint(user=None) -> tuple[tuple, tuple[int, ...]]:
    """(fingerprint, the ids of `user`'s teams) in one query. The fingerprint changes whenever an incident
    or an action item is saved (every write path saves `updated_at`) or created, and whenever a sign-off,
    a comment or an activity entry (every workflow step writes one) is added: index lookups, which every
    process sees alike, where the generation counter is per process without a shared cache."""
    incidents, items = Incident._meta.db_table, ActionItem._meta.db_table
    added = [model._meta.db_table for model in (SignOff, Comment, Activity)]
    connection = connections[Incident.objects.db]
    sql = (
        f"SELECT (SELECT MAX(updated_at) FROM {incidents}), (SELECT MAX(id) FROM {incidents}), "
        f"(SELECT MAX(updated_at) FROM {items}), (SELECT MAX(id) FROM {items})"
        + "".join(f", (SELECT MAX(id) FROM {table})" for table in added)
    )
    params = []
    if user is not None:
        members = Team.members.through._meta.db_table
        postgres = connection.vendor == "postgresql"
        joined = "string_agg(team_id::text, ',')" if postgres else "group_concat(team_id)"
        sql += f", (SELECT {joined} FROM {members} WHERE user_id = %s)"
        params.append(user.pk)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if user is None:
        return tuple(row), ()
    return tuple(row[:-1]), tuple(sorted(int(team) for team in (row[-1] or "").split(",") if team))


def generation() -> int:
    return cache.get_or_set(GENERATION_KEY, 0, None)


# What the detail page shows besides the incident's and its action items' own rows (postmortems/views.py).
_SHOWN_WITH_AN_INCIDENT = (SignOff, Comment, Activity, TimelineEvent, ContributingFactor, Lesson, TaggedItem)
_LINKS = (
    Incident.committee.through,
    Incident.co_authors.through,
    Incident.teams.through,
    ActionItem.factors.through,
    Lesson.action_items.through,
    Team.members.through,
)


@receiver(post_delete, sender=Incident)
@receiver(post_delete, sender=ActionItem)
@receiver(post_save, sender=Tag)
@receiver(post_delete, sender=Tag)
@receiver(post_save, sender=User)
@receiver(post_save, sender=Team)
def _bump_generation(sender, update_fields=None, **kwargs) -> None:
    """Changes the data fingerprint cannot see: sign-offs, comments, activity, an incident's parts and
    links, a team's members (who decide whose items are "my team's"); cheap enough for their rarity."""
    if sender is User and update_fields and set(update_fields) <= {"last_login", "password"}:
        return  # every sign-in saves the user; nothing shown changes
    action = kwargs.get("action")  # m2m_changed: once, after the change
    if action is not None and not action.startswith("post_"):
        return
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:  # not set yet, or evicted: any new value differs from what keys were built with
        cache.set(GENERATION_KEY, 1, None)


for _model in _SHOWN_WITH_AN_INCIDENT:
    post_save.connect(_bump_generation, sender=_model, dispatch_uid=f"caching:save:{_model.__name__}")
    post_delete.connect(_bump_generation, sender=_model, dispatch_uid=f"caching:delete:{_model.__name__}")
for _through in _LINKS:
    m2m_changed.connect(_bump_generation, sender=_through, dispatch_uid=f"caching:links:{_through.__name__}")


def wants_fresh(request) -> bool:
    """A hard reload (the browser sends Cache-Control: no-cache) asks for a page computed afresh."""
    return "no-cache" in request.headers.get("Cache-Control", "")


def cached(request, key: str, compute):
    """What `compute()` returns, from the cache under `key` unless the request wants it afresh; kept for
    CACHE_SECONDS. `compute` may raise (a 404): nothing is kept then."""
    value = None if wants_fresh(request) else cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, CACHE_SECONDS)
    return value


def _digest(value) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()


class Snapshot:
    """The state of the data and what `user` may see of its published incidents, read once (one small
    query: the fingerprint and the user's teams) for everything a request caches.

    Everyone sees the published incidents of normal visibility, so the restricted ones a user may see
    (usually none) tell audiences apart. Finding those runs the whole visibility filter, whose team
    subquery reads every incident of the user's teams (20 ms for a team of 20,000), so they are cached per
    user, teams and state of the data: a change of either asks again.
    """

    def __init__(self, user):
        self.user = user
        self.signed_in = user.is_authenticated and user.is_active
        fingerprint, teams = data_fingerprint(user if self.signed_in else None)
        self.state = (fingerprint, generation(), CODE_VERSION)
        self.restricted: list[int] | None = None  # staff see everything
        if not self.signed_in:
            self.restricted = []
        elif not user.is_staff:
            key = "visible-restricted:" + _digest((user.pk, teams, self.state))
            self.restricted = cache.get_or_set(key, self._visible_restricted, CACHE_SECONDS)

    def _visible_restricted(self) -> list[int]:
        visible = Incident.objects.visible_to(self.user).published().filter(visibility=Visibility.RESTRICTED)
        return list(visible.order_by("pk").values_list("pk", flat=True))

    @property
    def audience(self) -> str:
        return "staff" if self.restricted is None else ",".join(map(str, self.restricted))

    def published(self) -> IncidentQuerySet:
        """The published incidents the user may see: Incident.objects.visible_to(user).published(), by
        the ids it found, so that a list's query tests a column and a short list instead of subqueries."""
        published = Incident.objects.published()
        if not self.signed_in:
            return published.none()
        if self.restricted is None:
            return published
        return published.filter(Q(visibility=Visibility.NORMAL) | Q(pk__any_of=self.restricted))

    def key(self, prefix: str, parts) -> str:
        """A cache key for a result that depends on `parts` (what was asked), on what the user may see and
        on the state of the data."""
        return f"{prefix}:" + _digest((parts, self.audience, self.state))


def key_for(prefix: str, user, parts) -> str:
    return Snapshot(user).key(prefix, parts)
