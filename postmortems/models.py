"""The postmortem and its parts, following the template of DESIGN.md section 1."""

from __future__ import annotations

import zoneinfo
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from operator import attrgetter
from typing import TypeVar

from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import EmptyResultSet, ValidationError
from django.db import NotSupportedError, connections, models
from django.db.models import Case, Exists, OuterRef, Q, Value, When
from django.urls import reverse
from django.utils import timezone
from markdownx.models import MarkdownxField
from taggit.managers import TaggableManager

from accounts.models import Team, validate_time_zone, zone


class Severity(models.TextChoices):
    SEV1 = "SEV1", "SEV1 — critical"
    SEV2 = "SEV2", "SEV2 — major"
    SEV3 = "SEV3", "SEV3 — minor"
    SEV4 = "SEV4", "SEV4 — low"


class Status(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    PUBLISHED = "published", "Published"


class Visibility(models.TextChoices):
    NORMAL = "normal", "Everyone, once published"
    RESTRICTED = "restricted", "Restricted to its people and teams"


_STATUS_BADGES = {Status.PUBLISHED: "text-bg-success", Status.IN_REVIEW: "text-bg-warning"}


def status_badge_class(status: str) -> str:
    """The Bootstrap colour of an incident's status badge (includes/_status_badge.html)."""
    return _STATUS_BADGES.get(status, "text-bg-secondary")


# Published with normal visibility: everyone may see it. Most incidents are; the others are few.
PUBLIC = Q(status=Status.PUBLISHED, visibility=Visibility.NORMAL)


@models.BigAutoField.register_lookup
class AnyOf(models.Lookup):
    """`pk__any_of=[ids]`: `IN (…)` whose list is one array parameter on PostgreSQL (`= ANY(%s)`); there
    also `pk__any_of=ArraySubquery(…)`, the ids a query finds.

    The restricted incidents someone may see can be hundreds of ids; as `pk__in` each is a parameter that
    the ORM and the driver prepare one by one on every list query (a few ms), and PostgreSQL took longer
    over the long literal list than over one array (a common word's id query: 21 ms, against 14).
    """

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        if hasattr(self.rhs, "resolve_expression"):
            raise NotSupportedError("pk__any_of with a subquery needs PostgreSQL; use pk__in elsewhere.")
        ids = [int(pk) for pk in self.rhs]
        if not ids:
            raise EmptyResultSet
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} IN ({', '.join(['%s'] * len(ids))})", (*params, *ids)

    def as_postgresql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        if hasattr(self.rhs, "resolve_expression"):  # ArraySubquery: the ids a query finds
            rhs, rhs_params = self.process_rhs(compiler, connection)
            return f"{lhs} = ANY({rhs})", (*params, *rhs_params)
        return f"{lhs} = ANY(%s::bigint[])", (*params, [int(pk) for pk in self.rhs])


# Per tag, only this many of its newest published incidents are compared for related incidents.
RELATED_PER_TAG = 200
# A tag on fewer incidents than this is filtered through its own rows (IncidentQuerySet.with_tags).
FEW_TAGGED = 5_000


def _tag_sizes(slugs: list[str], content_type_id: int) -> dict[int, int]:
    """{tag id: how many incidents carry it, counted up to FEW_TAGGED} of the tags with these slugs."""
    from taggit.models import Tag, TaggedItem

    tags, items = Tag._meta.db_table, TaggedItem._meta.db_table
    sql = (
        f"SELECT t.id, (SELECT count(*) FROM (SELECT 1 FROM {items} AS ti WHERE ti.tag_id = t.id "
        f"AND ti.content_type_id = %s LIMIT %s) AS few) FROM {tags} AS t "
        f"WHERE t.slug IN ({', '.join(['%s'] * len(slugs))})"
    )
    with connections[Tag.objects.db].cursor() as cursor:
        cursor.execute(sql, [content_type_id, FEW_TAGGED, *slugs])
        return dict(cursor.fetchall())


class IncidentQuerySet(models.QuerySet):
    def visible_to(self, user) -> IncidentQuerySet:
        """What `user` may see (DESIGN.md section 6); the one gate every query goes through."""
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_staff:
            return self.all()
        through_committee = Incident.committee.through.objects.filter(incident=OuterRef("pk"), user=user)
        through_coauthors = Incident.co_authors.through.objects.filter(incident=OuterRef("pk"), user=user)
        through_teams = Incident.teams.through.objects.filter(incident=OuterRef("pk"), team__members=user)
        involved = Q(owner=user) | Exists(through_committee) | Exists(through_coauthors)
        published = Q(status=Status.PUBLISHED) & (Q(visibility=Visibility.NORMAL) | Exists(through_teams))
        # PostgreSQL tests an OR's branches in the order written: the column test first spares most rows
        # the three subqueries.
        return self.filter(published | involved)

    def hidden_from(self, user) -> IncidentQuerySet:
        """What `user` may not see (the complement of `visible_to`): always among the few incidents that
        are not published with normal visibility (a partial index holds them, with what is tested here),
        so excluding these is cheaper than checking every other row. Each is tested on its own columns,
        two index lookups of the user's part in drafts, and their teams only when it is published."""
        if not user.is_authenticated or not user.is_active:
            return self.all()
        if user.is_staff:
            return self.none()
        on_committee = Incident.committee.through.objects.filter(user=user).values("incident")
        co_authoring = Incident.co_authors.through.objects.filter(user=user).values("incident")
        through_teams = Incident.teams.through.objects.filter(incident=OuterRef("pk"), team__members=user)
        return (
            self.filter(~PUBLIC)
            .exclude(owner=user)
            .exclude(pk__in=on_committee.union(co_authoring))
            .exclude(Q(status=Status.PUBLISHED) & Exists(through_teams))
        )

    def published(self) -> IncidentQuerySet:
        return self.filter(status=Status.PUBLISHED)

    def drafts_of(self, user) -> IncidentQuerySet:
        # A UNION of two index lookups: "owner OR co-author" written as one OR made PostgreSQL scan every
        # incident (260 ms at 100,000 rows).
        owned = Incident.objects.filter(owner=user).order_by().values("pk")
        coauthored = Incident.co_authors.through.objects.filter(user=user).order_by().values("incident")
        return self.exclude(status=Status.PUBLISHED).filter(pk__in=owned.union(coauthored))

    def with_tags(self, slugs) -> IncidentQuerySet:
        """Incidents carrying every one of the tags (AND).

        The tags' ids are looked up first, with how many incidents carry each (counted up to FEW_TAGGED),
        in one query: with the id as a constant PostgreSQL knows how common each tag is; joined through
        the slug it guessed 1,000 rows for a tag on 31,000 and took a second. Then:
        - a tag on fewer than FEW_TAGGED incidents (on PostgreSQL): its incidents are read through the
          tag, by id (`id = ANY(ARRAY(…))`): 16 ms for a tag on 3,800 of 100,000 incidents, where the
          planner's hash join of every published incident took 40;
        - the other tags, one EXISTS each: walking the incidents newest first and testing each, the best
          plan for common tags (a tag on 33,000: 19 ms, against 92 through the tag).
        """
        from django.contrib.contenttypes.models import ContentType
        from taggit.models import TaggedItem

        slugs = list(dict.fromkeys(slugs))
        if not slugs:
            return self
        content_type = ContentType.objects.get_for_model(Incident)
        sizes = _tag_sizes(slugs, content_type.pk)
        if len(sizes) < len(slugs):
            return self.none()
        qs = self
        rarest = min(sizes, key=sizes.get)
        if sizes[rarest] < FEW_TAGGED and connections[self.db].vendor == "postgresql":
            tagged = TaggedItem.objects.filter(content_type=content_type, tag_id=rarest).values("object_id")
            qs = qs.filter(pk__any_of=ArraySubquery(tagged))
            del sizes[rarest]
        for tag_id in sizes:
            tagged = TaggedItem.objects.filter(
                content_type=content_type, object_id=OuterRef("pk"), tag_id=tag_id
            )
            qs = qs.filter(Exists(tagged))
        return qs

    def related_to(self, incident: Incident, *, limit: int = 5) -> list[Incident]:
        """Published incidents of this queryset (what someone may see) sharing the most tags with
        `incident`, most tags in common first, each with `common`, the number of tags in common.

        Only the newest RELATED_PER_TAG published incidents of each tag are compared, so that a tag on
        tens of thousands of incidents costs no more than a rare one (PostgreSQL: one UNION ALL of a
        bounded slice per tag; SQLite, which cannot slice a UNION's parts, counts every match)."""
        tag_ids = [tag.pk for tag in incident.tags.all()]
        if not tag_ids:
            return []
        published = Incident.objects.published().exclude(pk=incident.pk).order_by()
        if connections[self.db].features.supports_slicing_ordering_in_compound:
            newest = [
                published.filter(tags=tag_id).order_by("-id").values_list("pk", flat=True)[:RELATED_PER_TAG]
                for tag_id in tag_ids
            ]
            common = Counter(newest[0].union(*newest[1:], all=True))
        else:
            shared = published.filter(tags__in=tag_ids).values_list("pk").annotate(n=models.Count("pk"))
            common = Counter(dict(shared))
        best = sorted(common, key=lambda pk: (-common[pk], -pk))[: limit * 4]
        found = list(self.published().filter(pk__in=best).only("title", "incident_date", "severity"))
        for other in found:
            other.common = common[other.pk]
        found.sort(key=lambda other: (-other.common, -other.pk))
        return found[:limit]

    def with_parts(self) -> IncidentQuerySet:
        """Each incident with everything its page, review step and export show of it: owner, people,
        tags, timeline, factors and action items and lessons with their links, in a fixed number of
        queries."""
        return self.select_related("owner").prefetch_related(
            "tags",
            "co_authors",
            "committee",
            "timeline_events",
            models.Prefetch("factors", queryset=ContributingFactor.objects.prefetch_related("action_items")),
            models.Prefetch(
                "action_items",
                queryset=ActionItem.objects.select_related("owner").prefetch_related("factors"),
            ),
            models.Prefetch("lessons", queryset=Lesson.objects.prefetch_related("action_items")),
        )

    def search(self, text: str) -> IncidentQuerySet:
        """Full-text search, best first (see postmortems/search.py for both databases' behaviour)."""
        from postmortems import search

        return search.search(self, text)


class IncidentManager(models.Manager.from_queryset(IncidentQuerySet)):
    def get_queryset(self) -> IncidentQuerySet:
        # The stored search vectors are large (TOAST) and only the search query reads them; loading them
        # made a 20-row list ten times slower. Deferred fields are also left alone by save().
        return super().get_queryset().defer("search_vector", "search_rank_vector")


class Incident(models.Model):
    title = models.CharField(
        "title",
        max_length=200,
        help_text="Descriptive, e.g. “Service XYZ failed, affecting customers in the EU region”.",
    )
    incident_date = models.DateField("incident date", help_text="The date of the event.")
    started_at = models.DateTimeField("started", null=True, blank=True)
    detected_at = models.DateTimeField("detected", null=True, blank=True)
    mitigated_at = models.DateTimeField("mitigated", null=True, blank=True)
    resolved_at = models.DateTimeField("resolved", null=True, blank=True)
    time_zone = models.CharField(
        "time zone",
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="The zone the times were written in; every time on the page is shown in it.",
    )
    severity = models.CharField("severity", max_length=4, choices=Severity, default=Severity.SEV3)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="owned_incidents",
        verbose_name="owner",
        help_text="The person who owns the postmortem process.",
    )
    committee = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        related_name="reviewing_incidents",
        blank=True,
        verbose_name="peer-review committee",
        help_text="The people who verify its quality before it is published.",
    )
    co_authors = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        related_name="coauthored_incidents",
        blank=True,
        verbose_name="co-authors",
        help_text="People who may edit it with the owner.",
    )
    teams = models.ManyToManyField(
        Team,
        related_name="incidents",
        blank=True,
        verbose_name="teams",
        help_text="Teams it concerns; when it is restricted, the teams who may read it.",
    )
    tags = TaggableManager(
        "tags",
        blank=True,
        help_text="Keywords to classify and find it, e.g. Configuration, Database, Dependency, Latent.",
    )
    summary = MarkdownxField("summary", blank=True, help_text="A summary of the event.")
    supporting_data = MarkdownxField(
        "supporting data",
        blank=True,
        help_text="Metric graphs, tables and other data that illustrate the impact.",
    )
    customer_impact = MarkdownxField(
        "customer impact", blank=True, help_text="What did customers experience, and for how long?"
    )
    impacted_customers = models.PositiveIntegerField(
        "number of impacted customers",
        null=True,
        blank=True,
        help_text="Leave blank until you know; 0 is an answer.",
    )
    response_analysis = MarkdownxField(
        "incident response analysis",
        blank=True,
        help_text=(
            "Detection: was it detected in time? How? How could it be detected sooner? "
            "Escalation: who was involved and was it the right people, at the right time? "
            "Mitigation: how did you know how to mitigate? How could it be faster? How was it confirmed?"
        ),
    )
    post_incident_analysis = MarkdownxField(
        "post-incident analysis",
        blank=True,
        help_text=(
            "How was the cause diagnosed? Was there a backlog item that could have prevented it? Could a "
            "programmatic verification rule have caught it? Which change triggered it and how was it "
            "deployed? Which safeguards, staging, tests, playbooks, tools, commands and readiness reviews "
            "existed or were missing?"
        ),
    )
    status = models.CharField("status", max_length=10, choices=Status, default=Status.DRAFT)
    revision = models.PositiveIntegerField(
        "revision", default=1, help_text="Bumped by every content save; approvals are given on one."
    )
    visibility = models.CharField("visibility", max_length=10, choices=Visibility, default=Visibility.NORMAL)
    company = models.CharField(
        "company", max_length=100, blank=True, help_text="For imported public postmortems."
    )
    source_url = models.URLField(
        "source", max_length=500, blank=True, help_text="The original report, for imported postmortems."
    )
    created_at = models.DateTimeField("created", auto_now_add=True)
    updated_at = models.DateTimeField("updated", auto_now=True)
    published_at = models.DateTimeField("published", null=True, blank=True)
    last_step = models.CharField(
        "last authoring step", max_length=16, blank=True, help_text="Where “My drafts” resumes editing."
    )
    step_revisions = models.JSONField(
        "revision of each step",
        default=dict,
        blank=True,
        editable=False,
        help_text="The revision at which each authoring step last changed, so parallel edits of different "
        "steps do not conflict.",
    )
    # Kept current by postmortems.search.update_search_vector (PostgreSQL only; unused on SQLite).
    search_vector = SearchVectorField(null=True, editable=False)
    # Title, tags and summary only: small enough to stay in the row, so ranking does not read TOAST.
    search_rank_vector = SearchVectorField(null=True, editable=False)

    objects = IncidentManager()

    class Meta:
        ordering = ["-incident_date", "-id"]
        indexes = [
            # aggregates.published_version reads the latest save of a published incident from here.
            models.Index(
                fields=["updated_at"],
                condition=Q(status=Status.PUBLISHED),
                name="incident_published_updated_idx",
            ),
            models.Index(fields=["status", "-incident_date", "-id"], name="incident_status_date_idx"),
            GinIndex(fields=["search_vector"], name="incident_search_vector_idx"),
            # The incidents someone may not see are among these (IncidentQuerySet.hidden_from), told apart
            # by what the index holds of each, without reading the wide rows.
            models.Index(
                fields=["id"],
                include=["owner_id", "status", "visibility"],
                condition=~PUBLIC,
                name="incident_not_public_idx",
            ),
            # /insights/ reads its figures from this index alone, never from the wide rows (PostgreSQL).
            models.Index(
                fields=["status", "incident_date"],
                include=[
                    "id",
                    "started_at",
                    "detected_at",
                    "mitigated_at",
                    "resolved_at",
                    "published_at",
                    "severity",
                    "visibility",
                ],
                name="incident_insights_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(impacted_customers__gte=0) | Q(impacted_customers__isnull=True),
                name="incident_impacted_customers_not_negative",
            ),
            models.CheckConstraint(condition=Q(revision__gte=1), name="incident_revision_positive"),
            models.UniqueConstraint(
                fields=["source_url"], condition=~Q(source_url=""), name="incident_unique_source_url"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("postmortems:detail", args=[self.pk])

    @property
    def status_badge_class(self) -> str:
        """The Bootstrap colour of its status badge."""
        return status_badge_class(self.status)

    @property
    def is_public(self) -> bool:
        """Published with normal visibility (PUBLIC): everyone signed in may see it."""
        return self.status == Status.PUBLISHED and self.visibility == Visibility.NORMAL

    def is_visible_to(self, user) -> bool:
        """IncidentQuerySet.visible_to asked about this one incident; a query only when it is not public
        (the visibility filter's three subqueries cost more to build than to run)."""
        if not user.is_authenticated or not user.is_active:
            return False
        return self.is_public or Incident.objects.visible_to(user).filter(pk=self.pk).exists()

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zone(self.time_zone)

    @property
    def is_restricted(self) -> bool:
        return self.visibility == Visibility.RESTRICTED

    def _span(self, start, end) -> timedelta | None:
        if start is None or end is None:
            return None
        return end - start

    @property
    def time_to_detect(self) -> timedelta | None:
        return self._span(self.started_at, self.detected_at)

    @property
    def time_to_mitigate(self) -> timedelta | None:
        return self._span(self.started_at, self.mitigated_at)

    @property
    def time_to_resolve(self) -> timedelta | None:
        return self._span(self.started_at, self.resolved_at)

    def clean(self):
        errors = {}
        order = [
            ("started_at", "started"),
            ("detected_at", "detected"),
            ("mitigated_at", "mitigated"),
            ("resolved_at", "resolved"),
        ]
        for i, (field, label) in enumerate(order):
            value = getattr(self, field)
            if value is None:
                continue
            for earlier_field, earlier_label in order[:i]:
                earlier = getattr(self, earlier_field)
                if earlier is not None and value < earlier:
                    errors[field] = f"The {label} time cannot be before the {earlier_label} time."
                    break
        if errors:
            raise ValidationError(errors)

    def is_involved(self, user) -> bool:
        """Owner, co-author or committee member (uses prefetched relations when present)."""
        if not user.is_authenticated:
            return False
        return (
            self.owner_id == user.pk
            or any(u.pk == user.pk for u in self.co_authors.all())
            or any(u.pk == user.pk for u in self.committee.all())
        )

    def bump_revision(self, *, steps, also: tuple[str, ...] = ()) -> int:
        """Record a content change on this row, locked in the caller's transaction: the revision goes up (so
        earlier approvals go stale) and each of `steps` counts as changed at it (so an author's form of that
        step opened before now conflicts). Saves, with the fields in `also`; returns the new revision."""
        self.revision += 1
        self.step_revisions = {**self.step_revisions, **dict.fromkeys(steps, self.revision)}
        self.save(update_fields=["revision", "step_revisions", "updated_at", *also])
        return self.revision

    def can_edit(self, user) -> bool:
        """Owner and co-authors edit drafts and postmortems in review; published ones are frozen."""
        if self.status == Status.PUBLISHED or not user.is_authenticated:
            return False
        return self.owner_id == user.pk or any(u.pk == user.pk for u in self.co_authors.all())


class TimelineEventKind(models.TextChoices):
    TRIGGER = "trigger", "Trigger"
    DETECTION = "detection", "Detection"
    ESCALATION = "escalation", "Escalation"
    MITIGATION = "mitigation", "Mitigation"
    RESOLUTION = "resolution", "Resolution"
    OTHER = "other", "Other"


class TimelineEvent(models.Model):
    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="timeline_events", verbose_name="incident"
    )
    occurred_at = models.DateTimeField("time", help_text="When it happened, with its time zone.")
    kind = models.CharField("kind", max_length=12, choices=TimelineEventKind, default=TimelineEventKind.OTHER)
    description = models.TextField("description", help_text="A short description of what happened.")
    link = models.URLField("link", max_length=500, blank=True, help_text="A graph or log that shows it.")

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [models.Index(fields=["incident", "occurred_at"], name="timeline_incident_time_idx")]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.get_kind_display()}: {self.description[:60]}"

    def get_absolute_url(self) -> str:
        return self.incident.get_absolute_url() + f"#event-{self.pk}"


Row = TypeVar("Row")


def factor_tree(
    rows: Iterable[Row],
    *,
    pk: Callable[[Row], int | None] = attrgetter("pk"),
    parent: Callable[[Row], int | None] = attrgetter("parent_id"),
) -> list[tuple[Row, int]]:
    """Contributing factors (or anything naming one, e.g. their forms) in “why?”-tree order, each with its
    depth: a factor, then the answers to its “why?”. Rows whose chain never reaches a root (a parent left
    out, or a circular chain a rejected form holds) follow at depth 0, so that none goes missing."""
    rows = list(rows)
    known = {pk(row) for row in rows}
    children: dict[int | None, list] = {}
    for row in rows:
        children.setdefault(parent(row) if parent(row) in known else None, []).append(row)
    ordered: list[tuple[Row, int]] = []
    placed: set[int] = set()

    def walk(parent_pk: int | None, depth: int) -> None:
        for row in children.get(parent_pk, []):
            if id(row) not in placed:
                placed.add(id(row))
                ordered.append((row, depth))
                if pk(row) is not None:
                    walk(pk(row), depth + 1)

    walk(None, 0)
    return ordered + [(row, 0) for row in rows if id(row) not in placed]


class FactorCategory(models.TextChoices):
    TOOLS = "tools", "Tools"
    PROCESS = "process", "Process"
    CULTURE = "culture", "Culture"
    TECHNOLOGY = "technology", "Technology"
    EXTERNAL = "external", "External"


class ContributingFactor(models.Model):
    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="factors", verbose_name="incident"
    )
    parent = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="children",
        verbose_name="answers “why?” of",
        help_text="The factor this one explains; leave empty for a starting point.",
    )
    description = models.TextField(
        "description", help_text="Keep asking “why?”: probe tools, culture and processes."
    )
    category = models.CharField(
        "category", max_length=12, choices=FactorCategory, default=FactorCategory.TECHNOLOGY
    )
    is_human_error = models.BooleanField(
        "human error",
        default=False,
        help_text="Never stop here: ask why no safeguard, review or rollback existed.",
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~Q(parent=models.F("id")), name="factor_not_its_own_parent"),
        ]

    def __str__(self) -> str:
        return self.description[:80]

    def save(self, *args, **kwargs):
        # The tree must not cross incidents; no database constraint can say so across a self-reference.
        self.clean()
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return self.incident.get_absolute_url() + f"#factor-{self.pk}"

    def clean(self):
        if self.parent_id is None:
            return
        parent = self.parent
        if parent.incident_id != self.incident_id:
            raise ValidationError(
                {"parent": "A factor can only answer “why?” for a factor of the same incident."}
            )
        seen = {self.pk} if self.pk else set()
        while parent is not None:
            if parent.pk in seen:
                raise ValidationError({"parent": "A factor cannot answer “why?” for itself."})
            seen.add(parent.pk)
            parent = parent.parent


class Priority(models.TextChoices):
    P1 = "P1", "P1 — urgent"
    P2 = "P2", "P2 — high"
    P3 = "P3", "P3 — medium"
    P4 = "P4", "P4 — low"


class ActionItemStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"
    WONT_DO = "wont_do", "Won’t do"


_ACTION_STATUS_BADGES = {
    ActionItemStatus.DONE: "text-bg-success",
    ActionItemStatus.IN_PROGRESS: "text-bg-primary",
    ActionItemStatus.WONT_DO: "text-bg-secondary",
}


def default_due_date(priority: str, *, start: date | None = None) -> date | None:
    """The deadline policy: `ACTION_ITEM_SLO_DAYS[priority]` days from `start` (default today); None
    without a priority."""
    days = settings.ACTION_ITEM_SLO_DAYS.get(priority)
    if days is None:
        return None
    return (start or timezone.localdate()) + timedelta(days=int(days))


UNFINISHED = Q(status__in=[ActionItemStatus.OPEN, ActionItemStatus.IN_PROGRESS])
# 0 for open and in-progress items, 1 for done and won't do: the first key of /action-items/'s order.
FINISHED_LAST = models.Case(
    models.When(UNFINISHED, then=models.Value(0)), default=models.Value(1), output_field=models.IntegerField()
)


class ActionItemQuerySet(models.QuerySet):
    def visible_to(self, user) -> ActionItemQuerySet:
        """Action items of the incidents `user` may see.

        Written as "not of an incident hidden from them": each item is checked against a small indexed
        set, where "of a visible incident" joined every item to its incident (200 ms at 300,000 items).
        NOT IN, not NOT EXISTS: PostgreSQL hashes the hidden set once, where with NOT EXISTS it guessed
        the set small and scanned it once per item (150-370 ms with 5,000 drafts).
        """
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_staff:
            return self.all()
        hidden = Incident.objects.hidden_from(user)
        return self.exclude(incident_id__in=hidden.values("pk"))

    def reachable_by(self, user) -> ActionItemQuerySet:
        """`visible_to`, and the items `user` owns wherever they are: the work assigned to someone never
        disappears from them, even on a postmortem they may not see (a restricted one, or a draft they
        have no part in). Pages and e-mails then name that postmortem only as a restricted one."""
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_staff:
            return self.all()
        hidden = Incident.objects.hidden_from(user).values("pk")
        return self.filter(~Q(incident_id__in=hidden) | Q(owner=user))

    def with_may_update(self, user) -> ActionItemQuerySet:
        """Each item with `may_update`: ActionItem.can_update(user) in SQL, for a page of rows (the method
        reads each incident's co-authors). The two say the same rule: change them together."""
        if not user.is_authenticated:
            return self.annotate(may_update=Value(False))
        co_author = Incident.co_authors.through.objects.filter(incident=OuterRef("incident_id"), user=user)
        may_update = Q(owner=user) | Q(incident__owner=user) | Exists(co_author)
        return self.annotate(may_update=Case(When(may_update, then=True), default=False))

    def unfinished(self) -> ActionItemQuerySet:
        return self.filter(status__in=[ActionItemStatus.OPEN, ActionItemStatus.IN_PROGRESS])

    def overdue(self, today: date) -> ActionItemQuerySet:
        return self.unfinished().filter(due_date__lt=today)


class ActionItem(models.Model):
    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="action_items", verbose_name="incident"
    )
    title = models.CharField("title", max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="action_items",
        verbose_name="owner",
    )
    due_date = models.DateField("due date", null=True, blank=True)
    priority = models.CharField("priority", max_length=2, choices=Priority, blank=True)
    backlog_link = models.URLField(
        "backlog link", max_length=500, blank=True, help_text="The item in your tracker."
    )
    status = models.CharField(
        "status", max_length=12, choices=ActionItemStatus, default=ActionItemStatus.OPEN
    )
    wont_do_reason = models.TextField("reason it won’t be done", blank=True)
    factors = models.ManyToManyField(
        ContributingFactor,
        related_name="action_items",
        blank=True,
        verbose_name="addresses factors",
    )
    completed_at = models.DateTimeField("completed", null=True, blank=True)
    created_at = models.DateTimeField("created", auto_now_add=True)
    updated_at = models.DateTimeField("updated", auto_now=True)

    objects = ActionItemQuerySet.as_manager()

    class Meta:
        ordering = ["due_date", "id"]
        indexes = [
            models.Index(fields=["owner", "status", "due_date"], name="actionitem_owner_status_idx"),
            # /action-items/ reads these in its order (followthrough.urgency_order) and stops at a page.
            models.Index(fields=["status", "due_date", "id"], name="actionitem_status_due_idx"),
            models.Index(fields=["due_date", "id"], condition=UNFINISHED, name="actionitem_open_due_idx"),
            models.Index(
                fields=["owner", "due_date", "id"], condition=UNFINISHED, name="actionitem_owner_open_idx"
            ),
            models.Index(FINISHED_LAST, "due_date", "id", name="actionitem_finished_idx"),
            # "Mine", its default scope, from this index alone: the page's ids in order and every column
            # its counts and deadline table read (an owner's items lie on thousands of table pages).
            models.Index(
                "owner",
                FINISHED_LAST,
                "due_date",
                "id",
                include=["incident", "status", "priority", "completed_at"],
                name="actionitem_owner_urgency_idx",
            ),
            # /insights/' follow-through share, from the index alone (PostgreSQL).
            models.Index(
                fields=["incident", "due_date"],
                include=["priority", "status", "completed_at"],
                name="actionitem_follow_through_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status=ActionItemStatus.WONT_DO) | ~Q(wont_do_reason=""),
                name="actionitem_wont_do_needs_reason",
            ),
            models.CheckConstraint(
                condition=~Q(status=ActionItemStatus.DONE) | Q(completed_at__isnull=False),
                name="actionitem_done_has_completed_at",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return self.incident.get_absolute_url() + f"#action-{self.pk}"

    @property
    def status_badge_class(self) -> str:
        """The Bootstrap colour of its status badge (_action_item_status_badge.html)."""
        return _ACTION_STATUS_BADGES.get(self.status, "text-bg-light border")

    @property
    def is_closed(self) -> bool:
        return self.status in (ActionItemStatus.DONE, ActionItemStatus.WONT_DO)

    def is_overdue(self, today) -> bool:
        return not self.is_closed and self.due_date is not None and self.due_date < today

    def can_update(self, user) -> bool:
        """Its owner and the postmortem's owner and co-authors update status and backlog link, even once
        published (uses `incident.co_authors` when prefetched; ActionItemQuerySet.with_may_update says the
        same in SQL)."""
        if not user.is_authenticated:
            return False
        incident = self.incident
        return (
            self.owner_id == user.pk
            or incident.owner_id == user.pk
            or any(u.pk == user.pk for u in incident.co_authors.all())
        )


class Lesson(models.Model):
    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="lessons", verbose_name="incident"
    )
    text = models.TextField("lesson", help_text="What was learned, what was unexpected, which process broke.")
    action_items = models.ManyToManyField(
        ActionItem, related_name="lessons", blank=True, verbose_name="leads to action items"
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.text[:80]

    def get_absolute_url(self) -> str:
        return self.incident.get_absolute_url() + f"#lesson-{self.pk}"


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REQUEST_CHANGES = "request_changes", "Request changes"


class SignOff(models.Model):
    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="sign_offs", verbose_name="incident"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sign_offs", verbose_name="reviewer"
    )
    decision = models.CharField("decision", max_length=16, choices=Decision)
    comment = models.TextField("comment", blank=True)
    revision = models.PositiveIntegerField("on revision")
    is_current = models.BooleanField(
        "current", default=True, help_text="The reviewer's latest sign-off; earlier ones are history."
    )
    created_at = models.DateTimeField("signed", auto_now_add=True)
    snapshot = models.JSONField(
        "content when signed",
        default=dict,
        blank=True,
        help_text="The postmortem's content at this revision, to show the reviewer what changed since.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "reviewer"],
                condition=Q(is_current=True),
                name="signoff_one_current_per_reviewer",
            ),
            models.CheckConstraint(
                condition=~Q(decision="request_changes") | ~Q(comment=""),
                name="signoff_request_changes_needs_comment",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer}: {self.get_decision_display()} on revision {self.revision}"

    def get_absolute_url(self) -> str:
        return self.incident.get_absolute_url() + "#sign-offs"

    def is_stale(self) -> bool:
        return self.revision != self.incident.revision


class ActivityVerb(models.TextChoices):
    CREATED = "created", "created the postmortem"
    EDITED = "edited", "edited"
    REVIEW_REQUESTED = "review_requested", "requested review"
    WITHDRAWN = "withdrawn", "withdrew it from review"
    APPROVED = "approved", "approved"
    CHANGES_REQUESTED = "changes_requested", "requested changes"
    COMMENTED = "commented", "commented"
    PUBLISHED = "published", "published"
    REOPENED = "reopened", "reopened"
    ACTION_ITEM_UPDATED = "action_item_updated", "updated an action item"
    IMPORTED = "imported", "imported"


# What changes a published incident, or whether it is one: logged, so that every process sees it.
PUBLISHED_CHANGES = [ActivityVerb.PUBLISHED, ActivityVerb.REOPENED, ActivityVerb.ACTION_ITEM_UPDATED]


class Activity(models.Model):
    """Append-only: who did what to an incident, and when."""

    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="activities", verbose_name="incident"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="who",
    )
    verb = models.CharField("what", max_length=24, choices=ActivityVerb)
    detail = models.TextField("detail", blank=True)
    revision = models.PositiveIntegerField("revision", null=True, blank=True)
    is_staff_action = models.BooleanField("staff action", default=False)
    created_at = models.DateTimeField("when", auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "activities"
        indexes = [
            # aggregates.published_version: the newest entry that changed what a published incident shows.
            models.Index(
                fields=["id"], condition=Q(verb__in=PUBLISHED_CHANGES), name="activity_published_idx"
            ),
        ]

    def __str__(self) -> str:
        who = self.actor or "someone"
        return f"{who} {self.get_verb_display()} {self.detail}".strip()

    def get_absolute_url(self) -> str:
        return self.incident.get_absolute_url() + "#activity"


class Section(models.TextChoices):
    """The parts of a postmortem a reviewer can comment on, in template order."""

    GENERAL = "general", "Overall"
    SUMMARY = "summary", "Summary"
    SUPPORTING_DATA = "supporting_data", "Supporting data"
    CUSTOMER_IMPACT = "customer_impact", "Customer impact"
    RESPONSE_ANALYSIS = "response_analysis", "Incident response analysis"
    POST_INCIDENT_ANALYSIS = "post_incident_analysis", "Post-incident analysis"
    TIMELINE = "timeline", "Timeline"
    FACTORS = "factors", "Contributing factors"
    LESSONS = "lessons", "Lessons learned"
    ACTION_ITEMS = "action_items", "Action items"


class Comment(models.Model):
    """A reviewer's (or author's) remark on one section, made on one revision."""

    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="comments", verbose_name="incident"
    )
    section = models.CharField("section", max_length=24, choices=Section, default=Section.GENERAL)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name="author"
    )
    text = models.TextField("comment")
    revision = models.PositiveIntegerField("on revision")
    created_at = models.DateTimeField("written", auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["incident", "created_at"], name="comment_incident_created_idx")]
        constraints = [models.CheckConstraint(condition=~Q(text=""), name="comment_text_not_empty")]

    def __str__(self) -> str:
        return f"{self.author} on {self.get_section_display()}: {self.text[:60]}"

    def get_absolute_url(self) -> str:
        return self.incident.get_absolute_url() + f"#comment-{self.pk}"


class SentNotification(models.Model):
    """One row per email sent, so that a task run twice sends it once."""

    key = models.CharField("key", max_length=200, unique=True)
    sent_at = models.DateTimeField("sent", auto_now_add=True)

    class Meta:
        ordering = ["-sent_at"]

    def __str__(self) -> str:
        return self.key


class NotificationKind(models.TextChoices):
    """What a recorded notification tells, and so which row its `object_id` names."""

    REVIEW_REQUESTED = "review_requested", "Review requested (activity)"
    SIGNED_OFF = "signed_off", "Signed off (sign-off)"
    PUBLISHED = "published", "Published (activity)"
    RELATED_OPEN_ITEMS = "related_open_items", "Related open items (incident)"


class NotificationQuerySet(models.QuerySet):
    def pending(self) -> NotificationQuerySet:
        """Not sent yet, oldest first."""
        return self.filter(sent_at__isnull=True).order_by("created_at", "id")


class Notification(models.Model):
    """A notification a change calls for, recorded in the change's own transaction (the outbox), so that
    it is sent even when the broker was down at the commit (postmortems/notifications.py)."""

    kind = models.CharField("kind", max_length=24, choices=NotificationKind)
    object_id = models.PositiveBigIntegerField("about (id)")
    created_at = models.DateTimeField("recorded", auto_now_add=True)
    sent_at = models.DateTimeField("sent", null=True, blank=True)
    failures = models.PositiveIntegerField("failed attempts", default=0)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # What the catch-up reads every minute: the few rows not sent yet.
            models.Index(
                fields=["created_at"], condition=Q(sent_at__isnull=True), name="notification_pending_idx"
            )
        ]

    def __str__(self) -> str:
        state = f"sent {self.sent_at:%Y-%m-%d %H:%M}" if self.sent_at else "waiting"
        return f"{self.get_kind_display()} #{self.object_id}, {state}"
