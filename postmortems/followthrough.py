"""Follow-through: action items after the postmortem (DESIGN.md sections 4 and 8).

A published postmortem is frozen, its action items are not: their owner and the postmortem's owner and
co-authors change status and backlog link at any time. Each change is logged as Activity on the incident
and never bumps the incident's revision, so it does not make review approvals stale.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Count, F, IntegerField, Q, Value, When
from django.utils import timezone

from accounts.models import User
from postmortems.models import (
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
        locked = ActionItem.objects.select_for_update(of=("self",)).select_related("incident").get(pk=item.pk)
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
            incident = locked.incident
            Activity.objects.create(
                incident=incident,
                actor=by,
                verb=ActivityVerb.ACTION_ITEM_UPDATED,
                detail=f"“{locked.title}”: " + "; ".join(changes),
                revision=incident.revision,
            )
    for name in ("status", "completed_at", "wont_do_reason", "backlog_link", "updated_at"):
        setattr(item, name, getattr(locked, name))
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
    """Overdue first, then due soonest, then those without a due date; finished ones last."""
    unfinished = Q(status__in=[ActionItemStatus.OPEN, ActionItemStatus.IN_PROGRESS])
    return items.annotate(
        urgency=Case(
            When(unfinished & Q(due_date__lt=today), then=Value(0)),
            When(unfinished & Q(due_date__isnull=False), then=Value(1)),
            When(unfinished, then=Value(2)),
            default=Value(3),
            output_field=IntegerField(),
        )
    ).order_by("urgency", "due_date", "id")


def counts(items: ActionItemQuerySet, today: dt.date) -> dict[str, int]:
    """How many items are in each state, in one query."""
    unfinished = Q(status__in=[ActionItemStatus.OPEN, ActionItemStatus.IN_PROGRESS])
    soon = today + dt.timedelta(days=DUE_SOON_DAYS)
    return items.order_by().aggregate(
        total=Count("pk"),
        overdue=Count("pk", filter=unfinished & Q(due_date__lt=today)),
        due_soon=Count("pk", filter=unfinished & Q(due_date__gte=today, due_date__lte=soon)),
        open=Count("pk", filter=Q(status=ActionItemStatus.OPEN)),
        in_progress=Count("pk", filter=Q(status=ActionItemStatus.IN_PROGRESS)),
        done=Count("pk", filter=Q(status=ActionItemStatus.DONE)),
        wont_do=Count("pk", filter=Q(status=ActionItemStatus.WONT_DO)),
    )


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


def slo_table(items: ActionItemQuerySet, today: dt.date) -> list[SloRow]:
    """Per priority: items within their deadline (done by it, or not yet due) and late ones, in one query.

    Won't-do items are left out: they have no deadline left to keep.
    """
    done = Q(status=ActionItemStatus.DONE)
    unfinished = Q(status__in=[ActionItemStatus.OPEN, ActionItemStatus.IN_PROGRESS])
    has_due = Q(due_date__isnull=False)
    rows = (
        items.order_by()
        .values("priority")
        .annotate(
            done_on_time=Count("pk", filter=has_due & done & Q(completed_at__date__lte=F("due_date"))),
            done_late=Count("pk", filter=has_due & done & Q(completed_at__date__gt=F("due_date"))),
            open_in_time=Count("pk", filter=has_due & unfinished & Q(due_date__gte=today)),
            open_late=Count("pk", filter=has_due & unfinished & Q(due_date__lt=today)),
            no_due=Count("pk", filter=Q(due_date__isnull=True) & ~Q(status=ActionItemStatus.WONT_DO)),
        )
    )
    by_priority = {row["priority"]: row for row in rows}
    table = []
    for value, label in [*Priority.choices, ("", "No priority")]:
        row = by_priority.get(value)
        if row is None and value == "":
            continue
        row = row or {"done_on_time": 0, "done_late": 0, "open_in_time": 0, "open_late": 0, "no_due": 0}
        table.append(
            SloRow(
                priority=value,
                label=label,
                slo_days=settings.ACTION_ITEM_SLO_DAYS.get(value),
                within=row["done_on_time"] + row["open_in_time"],
                late=row["done_late"] + row["open_late"],
                no_due_date=row["no_due"],
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
