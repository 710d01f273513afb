"""Pages computed once per audience and state of the data, and recomputed as soon as either changes.

One small query per request decides whether a cached result still holds: the data fingerprint (the latest
save and the newest id of incidents and action items, the newest sign-off, comment and activity entry) with
the person's teams; the audience (which restricted incidents they may see) is cached per person, teams and
fingerprint. A change the fingerprint cannot see (a deletion, a renamed tag, a person's new name, a team's
members, an edited comment) bumps a generation counter through signals. That counter lives in the cache, so
several processes share it only through a shared cache (CACHE_URL): with the default per-process cache such
a change can take up to CACHE_SECONDS to show in the other processes, as can a change made outside the ORM.
The state of the data also carries a digest of the code and templates (CODE_VERSION): a deploy starts afresh.

What shows only published incidents (lists, searches, tag pages, insights, the audience) is keyed by the
state of the published ones alone (`Snapshot.published_key`): their latest save, and a second counter that
signals bump only for a change that may touch a published incident (its parts, tags, action items and
links, a publication or a reopening). A draft's autosave, every few seconds while someone writes, then
leaves those pages cached, and a published incident's own page too (`cached_by_status`); a draft's page
and /action-items/, which shows drafts' items, follow every change.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import connections, transaction
from django.db.models import Q
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver
from taggit.models import Tag, TaggedItem

from accounts.models import Team, User
from postmortems.models import (
    PUBLISHED_CHANGES,
    ActionItem,
    Activity,
    Comment,
    ContributingFactor,
    Incident,
    IncidentQuerySet,
    Lesson,
    SignOff,
    Status,
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
PUBLISHED_GENERATION_KEY = "hindsight:generation:published"
# What a change made outside the ORM (which neither the fingerprint nor the signals see) can leave behind.
CACHE_SECONDS = 5 * 60


def data_fingerprint(user=None) -> tuple[tuple, object, tuple[int, ...]]:
    """(fingerprint, published fingerprint, the ids of `user`'s teams) in one query. The fingerprint
    changes whenever an incident or an action item is saved (every write path saves `updated_at`) or
    created, and whenever a sign-off, a comment or an activity entry (every workflow step writes one) is
    added: index lookups, which every process sees alike, where the generation counters are per process
    without a shared cache. The published fingerprint (the latest save of a published incident, the
    newest publication, reopening or follow-through logged) changes with those, not with a draft's
    autosave."""
    incidents, items = Incident._meta.db_table, ActionItem._meta.db_table
    added = [model._meta.db_table for model in (SignOff, Comment, Activity)]
    connection = connections[Incident.objects.db]
    activity = Activity._meta.db_table
    published_changes = ", ".join(["%s"] * len(PUBLISHED_CHANGES))
    sql = (
        f"SELECT (SELECT MAX(updated_at) FROM {incidents} WHERE status = %s), "
        f"(SELECT MAX(id) FROM {activity} WHERE verb IN ({published_changes})), "
        f"(SELECT MAX(updated_at) FROM {incidents}), (SELECT MAX(id) FROM {incidents}), "
        f"(SELECT MAX(updated_at) FROM {items}), (SELECT MAX(id) FROM {items})"
        + "".join(f", (SELECT MAX(id) FROM {table})" for table in added)
    )
    params = [Status.PUBLISHED.value, *(verb.value for verb in PUBLISHED_CHANGES)]
    if user is not None:
        members = Team.members.through._meta.db_table
        postgres = connection.vendor == "postgresql"
        joined = "string_agg(team_id::text, ',')" if postgres else "group_concat(team_id)"
        sql += f", (SELECT {joined} FROM {members} WHERE user_id = %s)"
        params.append(user.pk)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    published, row = row[:2], row[2:]
    if user is None:
        return tuple(row), published, ()
    return tuple(row[:-1]), published, tuple(sorted(int(team) for team in (row[-1] or "").split(",") if team))


def generations() -> tuple[int, int]:
    """(the generation of all the data, that of the published incidents) in one round trip."""
    found = cache.get_many([GENERATION_KEY, PUBLISHED_GENERATION_KEY])
    for key in (GENERATION_KEY, PUBLISHED_GENERATION_KEY):
        if key not in found:
            found[key] = cache.get_or_set(key, 0, None)
    return found[GENERATION_KEY], found[PUBLISHED_GENERATION_KEY]


def _bump(keys: tuple[str, ...]) -> None:
    for key in keys:
        try:
            cache.incr(key)
        except ValueError:  # not set yet, or evicted: any new value differs from what keys were built with
            cache.set(key, 1, None)


def bump(*, published: bool) -> None:
    """A change the fingerprints cannot see; `published`: it may touch what a published incident shows
    or who may see it. That one is bumped again when the transaction commits: the published fingerprint
    does not see an incident leave "published" (a reopening), so a page computed in between, from the
    data before the change, would otherwise be kept under the new generation. Every other change moves
    the fingerprint when it commits."""
    if not published:
        _bump((GENERATION_KEY,))
        return
    keys = (GENERATION_KEY, PUBLISHED_GENERATION_KEY)
    _bump(keys)
    transaction.on_commit(lambda: _bump(keys))


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
# Links that decide who may see an incident, or what its lists show (its teams).
_AUDIENCE_LINKS = (Incident.committee.through, Incident.co_authors.through, Incident.teams.through)


def _may_be_published(incident: Incident | None, incident_id: int | None) -> bool:
    """Whether the incident is published (or cannot be told): from the row in memory when it was read
    with its status, else one query."""
    if incident is not None and incident.__dict__.get("status") is not None:
        return incident.status == Status.PUBLISHED
    if incident_id is None:
        return True
    # Gone (a deletion cascading) is as unknown as published.
    return not Incident.objects.filter(pk=incident_id).exclude(status=Status.PUBLISHED).exists()


@receiver(post_save, sender=Incident)
def _incident_saved(sender, instance, created, **kwargs) -> None:
    """A save of a published incident, or of one read as published (a reopening), changes what lists
    show; so may one whose status was never read. A draft's save changes the fingerprint only."""
    now = instance.__dict__.get("status")
    if now == Status.PUBLISHED or (
        not created and getattr(instance, "loaded_status", None) in (None, Status.PUBLISHED)
    ):
        bump(published=True)
    instance.loaded_status = now  # what the next save of this instance changes from


def _part_changed(sender, instance, **kwargs) -> None:
    """A part of an incident saved or deleted (a published one's: its follow-through, or an edit in the
    admin); a draft's, as its autosave writes them, leaves published pages cached."""
    if sender is TaggedItem:
        incident_id = instance.object_id if instance.content_type_id == _incident_type_id() else None
        published = _may_be_published(None, incident_id)
    else:
        published = _may_be_published(instance._state.fields_cache.get("incident"), instance.incident_id)
    bump(published=published)


def _incident_type_id() -> int:
    return ContentType.objects.get_for_model(Incident).pk


@receiver(post_delete, sender=Incident)
@receiver(post_save, sender=Tag)
@receiver(post_delete, sender=Tag)
@receiver(post_save, sender=User)
@receiver(post_save, sender=Team)
def _bump_generation(sender, update_fields=None, **kwargs) -> None:
    """Changes the fingerprints cannot see and that may touch anything: a deletion, a tag's or a
    person's or a team's new name."""
    if sender is User and update_fields and set(update_fields) <= {"last_login", "password"}:
        return  # every sign-in saves the user; nothing shown changes
    bump(published=True)


def _links_changed(sender, instance, action, **kwargs) -> None:
    """A team's members (who decide whose items are "my team's", and who sees a team's incidents), an
    incident's committee, co-authors and teams (who may see it), an item's factors, a lesson's items."""
    if not action.startswith("post_"):  # once, after the change
        return
    if sender in _AUDIENCE_LINKS and isinstance(instance, Incident):
        published = _may_be_published(instance, instance.pk)
    else:
        published = sender in _AUDIENCE_LINKS or sender is Team.members.through
    bump(published=published)


# An action item's save moves the fingerprint, not the published one: its follow-through on a published
# incident (the "has open action items" narrowing, insights) bumps the published generation.
for _model in (*_SHOWN_WITH_AN_INCIDENT, ActionItem):
    post_save.connect(_part_changed, sender=_model, dispatch_uid=f"caching:save:{_model.__name__}")
    post_delete.connect(_part_changed, sender=_model, dispatch_uid=f"caching:delete:{_model.__name__}")
for _through in _LINKS:
    m2m_changed.connect(_links_changed, sender=_through, dispatch_uid=f"caching:links:{_through.__name__}")


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


def cached_by_status(request, snapshot: Snapshot, prefix: str, parts, compute, *, published):
    """`cached` for a page of one incident, published or not: a published incident's page is kept under
    `snapshot.published_key` (`published(value)` tells), so that drafts' autosaves leave it cached; a
    draft's under `snapshot.key`, following every change. Both are looked for in one round trip."""
    keys = [snapshot.published_key(prefix, parts), snapshot.key(prefix, parts)]  # as incident_key chooses
    if not wants_fresh(request):
        found = cache.get_many(keys)
        for key in keys:
            if key in found:
                return found[key]
    value = compute()
    cache.set(keys[0] if published(value) else keys[1], value, CACHE_SECONDS)
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
        fingerprint, published, teams = data_fingerprint(user if self.signed_in else None)
        everything, published_generation = generations()
        self.state = (fingerprint, everything, CODE_VERSION)
        self.published_state = (published, published_generation, CODE_VERSION)
        self.restricted: list[int] | None = None  # staff see everything
        if not self.signed_in:
            self.restricted = []
        elif not user.is_staff:
            key = "visible-restricted:" + _digest((user.pk, teams, self.published_state))
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

    def published_key(self, prefix: str, parts) -> str:
        """`key` for a result made of published incidents only (and what they carry): it outlives
        changes to drafts."""
        return f"{prefix}:" + _digest((parts, self.audience, self.published_state))

    def public_key(self, prefix: str, parts) -> str:
        """`published_key` for a result made of the published incidents of normal visibility alone, which
        everyone sees: one entry for every audience."""
        return f"{prefix}:" + _digest((parts, "public", self.published_state))

    def involved_key(self, prefix: str, parts) -> str:
        """`key` for a result made of published incidents and of the drafts the user has a part in (owner,
        co-author, committee: the only drafts they may see): it outlives changes to other people's drafts.
        One query more: those drafts' ids and latest saves (every write to a draft saves it, and a
        follow-through on one moves the published fingerprint). Staff see every draft: `key`."""
        if self.restricted is None or not self.signed_in:
            return self.key(prefix, parts)
        return f"{prefix}:" + _digest((parts, self.audience, self.published_state, self._own_drafts))

    @cached_property
    def _own_drafts(self) -> list[tuple]:
        user = self.user
        drafts = Incident.objects.exclude(status=Status.PUBLISHED)
        owned = drafts.filter(owner=user).order_by().values("pk")  # a union part takes no ORDER BY
        on_committee = Incident.committee.through.objects.filter(user=user).values("incident")
        co_authoring = Incident.co_authors.through.objects.filter(user=user).values("incident")
        # A union of three index lookups: written as an OR, PostgreSQL tested it on each of the 7,000
        # incidents that are not public (8 ms instead of 0.04).
        mine = drafts.filter(pk__in=owned.union(on_committee, co_authoring))
        return list(mine.order_by("pk").values_list("pk", "updated_at"))

    def incident_key(self, prefix: str, parts, incident: Incident) -> str:
        """The key for a result about one incident: `published_key` if it is published, else `key`."""
        if incident.status == Status.PUBLISHED:
            return self.published_key(prefix, parts)
        return self.key(prefix, parts)
