"""Follow-through: action items after the postmortem (DESIGN.md sections 4 and 8).

A published postmortem is frozen, its action items are not: their owner and the postmortem's owner and
co-authors change status and backlog link at any time. Each change is logged as Activity on the incident
and never bumps a published incident's revision: the follow-through is not the frozen postmortem. Before
publishing, an item change is a content change of the "actions" step like an author's save (a new revision,
stale approvals, a conflict for a stale actions form).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Case, F, IntegerField, Q, Value, When
from django.utils import timezone

from accounts.models import User
from postmortems.models import (
    FINISHED_LAST,
    UNFINISHED,
    ActionItem,
    ActionItemQuerySet,
    ActionItemStatus,
    Activity,
    ActivityVerb,
    Incident,
    Priority,
    Status,
)

DUE_SOON_DAYS = 7


class FollowThroughError(Exception):
    """The change was refused; the message says what to do about it."""


class NotAllowed(FollowThroughError):
    """The user may not update this action item."""


def update_action_item(
    item: ActionItem, *, by: User, status: str, backlog_link: str, wont_do_reason: str = ""
) -> list[str]:
    """Change an item's status and backlog link and log it; returns what changed (empty: nothing did)."""
    wont_do_reason = wont_do_reason.strip()
    backlog_link = backlog_link.strip()
    if status not in ActionItemStatus.values:
        raise FollowThroughError("Choose a status: open, in progress, done or won’t do.")
    if status == ActionItemStatus.WONT_DO and not wont_do_reason:
        raise FollowThroughError("Say why it won’t be done: a reason is required.")
    with transaction.atomic():
        # The incident row first, as editing.save_step and the review workflow lock it: an item update then
        # serialises with step saves, review and publishing, and sees the incident's status for certain.
        incident = Incident.objects.select_for_update().get(pk=item.incident_id)
        locked = ActionItem.objects.select_for_update().get(pk=item.pk)
        locked.incident = incident
        if not locked.can_update(by):
            raise NotAllowed(
                "Only the action item’s owner and the postmortem’s owner and co-authors can update it."
            )
        changes = []
        if status != locked.status:
            changes.append(
                f"status {ActionItemStatus(locked.status).label} → {ActionItemStatus(status).label}"
            )
            if status == ActionItemStatus.DONE:
                locked.completed_at = timezone.now()
            elif locked.status == ActionItemStatus.DONE:
                locked.completed_at = None
            locked.status = status
        reason = wont_do_reason if status == ActionItemStatus.WONT_DO else ""
        if reason != locked.wont_do_reason:
            if reason:
                changes.append(f"reason: {reason}")
            locked.wont_do_reason = reason
        if backlog_link != locked.backlog_link:
            changes.append(f"backlog link {backlog_link}" if backlog_link else "backlog link removed")
            locked.backlog_link = backlog_link
        if changes:
            locked.save(
                update_fields=["status", "completed_at", "wont_do_reason", "backlog_link", "updated_at"]
            )
            if incident.status != Status.PUBLISHED:
                # Before publishing the item is part of the postmortem being written: the change is a new
                # revision of its "actions" step, so a stale actions form conflicts instead of overwriting
                # it, and approvals given in review go stale.
                incident.bump_revision(steps=["actions"])
            Activity.objects.create(
                incident=incident,
                actor=by,
                verb=ActivityVerb.ACTION_ITEM_UPDATED,
                detail=f"“{locked.title}”: " + "; ".join(changes),
                revision=incident.revision,
            )
    for name in ("status", "completed_at", "wont_do_reason", "backlog_link", "updated_at"):
        setattr(item, name, getattr(locked, name))
    if ActionItem.incident.is_cached(item):
        item.incident.revision = incident.revision
        item.incident.step_revisions = incident.step_revisions
    return changes


# --- reading -----------------------------------------------------------------------------------------------


class Scope:
    MINE = "mine"
    TEAM = "team"
    ALL = "all"
    CHOICES = [(MINE, "Mine"), (TEAM, "My teams’"), (ALL, "All I can see")]


def in_scope(user: User, scope: str) -> ActionItemQuerySet:
    """Action items of incidents `user` may see: their own, their teams' members', or all of them."""
    items = ActionItem.objects.visible_to(user)
    if scope == Scope.MINE:
        return items.filter(owner=user)
    if scope == Scope.TEAM:
        teammates = User.objects.filter(teams__members=user).values("pk")
        return items.filter(Q(owner=user) | Q(owner__in=teammates))
    return items


def urgency_order(items: ActionItemQuerySet, today: dt.date) -> ActionItemQuerySet:
    """Overdue first, then due soonest, then those without a due date; finished ones last.

    Among unfinished items "overdue first, then due soonest" is simply the due date, earliest first, so
    the order is (finished?, due date, id): an index holds it, and a page stops after its rows.
    `urgency` (0 overdue, 1 due later, 2 no due date, 3 finished) is for the page's badges.
    """
    return items.annotate(
        urgency=Case(
            When(UNFINISHED & Q(due_date__lt=today), then=Value(0)),
            When(UNFINISHED & Q(due_date__isnull=False), then=Value(1)),
            When(UNFINISHED, then=Value(2)),
            default=Value(3),
            output_field=IntegerField(),
        )
    ).order_by(FINISHED_LAST, F("due_date").asc(nulls_last=True), "id")


# Counting all 300,000 items someone can see takes ~100 ms, ten page views' worth. Up to EXACT_LIMIT items
# in a scope the counts and the deadline table are exact; past it the counts stop at COUNT_CAP (“1,000+”)
# and the table is left out.
EXACT_LIMIT = 10_000
COUNT_CAP = 1_000


class AtLeast(int):
    """A count that stopped at its cap: there are at least this many (shown as “1,000+”)."""

    def __str__(self) -> str:
        return f"{int(self):,}+"


@dataclass
class SloRow:
    priority: str
    label: str
    slo_days: int | None
    within: int
    late: int
    no_due_date: int

    @property
    def measured(self) -> int:
        return self.within + self.late

    @property
    def share_within(self) -> float | None:
        return self.within / self.measured if self.measured else None


@dataclass
class Figures:
    """The counts at the top of /action-items/ and its deadline table (None when the scope is too large)."""

    counts: dict[str, int]
    slo: list[SloRow] | None


_FLAGS = ("overdue", "due_soon", "within", "late", "no_due")


def _flagged(items: ActionItemQuerySet, today: dt.date) -> ActionItemQuerySet:
    """Each item with what the counts and the deadline table tell apart, as true/false columns."""
    soon = today + dt.timedelta(days=DUE_SOON_DAYS)
    has_due = Q(due_date__isnull=False)
    done = Q(status=ActionItemStatus.DONE)

    def flag(*conditions):
        return Case(*(When(c, then=Value(True)) for c in conditions), default=Value(False))

    return items.order_by().annotate(
        overdue=flag(UNFINISHED & Q(due_date__lt=today)),
        due_soon=flag(UNFINISHED & Q(due_date__gte=today, due_date__lte=soon)),
        # Within the deadline: done by it, or not yet due. Late: done after it, or unfinished past it.
        within=flag(
            has_due & done & Q(completed_at__date__lte=F("due_date")),
            has_due & UNFINISHED & Q(due_date__gte=today),
        ),
        late=flag(
            has_due & done & Q(completed_at__date__gt=F("due_date")),
            has_due & UNFINISHED & Q(due_date__lt=today),
        ),
        # Won't-do items have no deadline left to keep.
        no_due=flag(Q(due_date__isnull=True) & ~Q(status=ActionItemStatus.WONT_DO)),
    )


def _grouped_count(sample: ActionItemQuerySet, columns: tuple[str, ...]) -> list[dict]:
    """COUNT(*) of a sliced values() queryset grouped by its columns (the ORM cannot group over a LIMIT)."""
    sql, params = sample.query.sql_with_params()
    quoted = ", ".join(f's."{column}"' for column in columns)
    with connections[sample.db].cursor() as cursor:
        cursor.execute(f"SELECT {quoted}, COUNT(*) FROM ({sql}) s GROUP BY {quoted}", params)
        return [dict(zip((*columns, "n"), row, strict=True)) for row in cursor.fetchall()]


def figures(items: ActionItemQuerySet, today: dt.date) -> Figures:
    """Counts per state and the deadline table per priority, from one query of at most a few dozen rows;
    past EXACT_LIMIT items, capped counts from a second query and no table."""
    columns = ("status", "priority", *_FLAGS)
    rows = _grouped_count(_flagged(items, today).values(*columns)[: EXACT_LIMIT + 1], columns)
    total = sum(row["n"] for row in rows)
    if total > EXACT_LIMIT:
        return Figures(counts=capped_counts(items, today), slo=None)
    counts = {"total": total, "overdue": 0, "due_soon": 0, **dict.fromkeys(ActionItemStatus.values, 0)}
    for row in rows:
        counts[row["status"]] += row["n"]
        counts["overdue"] += row["n"] if row["overdue"] else 0
        counts["due_soon"] += row["n"] if row["due_soon"] else 0
    return Figures(counts=counts, slo=_slo_table(rows))


def slo_table(items: ActionItemQuerySet, today: dt.date) -> list[SloRow]:
    """The deadline table of `items`, exact however many there are (one query)."""
    columns = ("priority", *_FLAGS)
    return _slo_table(_grouped_count(_flagged(items, today).values(*columns), columns))


def capped_counts(items: ActionItemQuerySet, today: dt.date) -> dict[str, int]:
    """How many items are in each state, each counted up to COUNT_CAP (then an AtLeast), in one query."""
    soon = today + dt.timedelta(days=DUE_SOON_DAYS)
    items = items.order_by()
    subsets = {
        "total": items,
        "overdue": items.overdue(today),
        "due_soon": items.unfinished().filter(due_date__gte=today, due_date__lte=soon),
        **{status: items.filter(status=status) for status in ActionItemStatus.values},
    }
    parts, params = [], []
    for subset in subsets.values():
        sql, subset_params = subset.values("pk")[: COUNT_CAP + 1].query.sql_with_params()
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) s)")
        params.extend(subset_params)
    with connections[items.db].cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params)
        values = cursor.fetchone()
    return {name: AtLeast(COUNT_CAP) if n > COUNT_CAP else n for name, n in zip(subsets, values, strict=True)}


def _slo_table(rows: list[dict]) -> list[SloRow]:
    """Per priority: items within their deadline and late ones, and those without a due date."""
    by_priority: dict[str, dict[str, int]] = {}
    for row in rows:
        tally = by_priority.setdefault(row["priority"], {"within": 0, "late": 0, "no_due": 0})
        for name in tally:
            tally[name] += row["n"] if row[name] else 0
    table = []
    for value, label in [*Priority.choices, ("", "No priority")]:
        if value == "" and value not in by_priority:
            continue
        tally = by_priority.get(value, {"within": 0, "late": 0, "no_due": 0})
        table.append(
            SloRow(
                priority=value,
                label=label,
                slo_days=settings.ACTION_ITEM_SLO_DAYS.get(value),
                within=tally["within"],
                late=tally["late"],
                no_due_date=tally["no_due"],
            )
        )
    return table


def related_open_items_of(incident: Incident) -> ActionItemQuerySet:
    """Unfinished action items of older postmortems that share a tag with `incident` (not yet published)."""
    if incident.status == Status.PUBLISHED:
        return ActionItem.objects.none()
    tag_ids = [tag.pk for tag in incident.tags.all()]
    if not tag_ids:
        return ActionItem.objects.none()
    older = (
        Incident.objects.filter(tags__in=tag_ids, created_at__lt=incident.created_at)
        .exclude(pk=incident.pk)
        .values("pk")
    )
    return ActionItem.objects.unfinished().filter(incident__in=older)


def related_open_items(incident: Incident, user: User, *, limit: int = 20) -> list[ActionItem]:
    """What the “Open action items from related incidents” box shows `user`: only items they may see."""
    return list(
        related_open_items_of(incident)
        .visible_to(user)
        .select_related("incident", "owner")
        .order_by("due_date", "id")[:limit]
    )
