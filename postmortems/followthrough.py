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
from django.db.models import (
    BooleanField,
    Case,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    Value,
    When,
)
from django.db.models.query import EmptyQuerySet
from django.utils import timezone

from accounts.models import User
from integrations import webhooks
from integrations.models import Event
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
    Visibility,
)
from postmortems.pagination import COUNT_CAP, CappedPaginator

DUE_SOON_DAYS = 7


class FollowThroughError(Exception):
    """The change was refused; the message says what to do about it."""


class NotAllowed(FollowThroughError):
    """The user may not update this action item."""


def update_action_item(
    item: ActionItem,
    *,
    by: User,
    status: str,
    backlog_link: str,
    wont_do_reason: str = "",
    due_date: dt.date | None = None,
) -> list[str]:
    """Change an item's status, backlog link and due date (None: as it is) and log it; returns what
    changed (empty: nothing did)."""
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
        if due_date is not None and due_date != locked.due_date:
            changes.append(f"due {due_date:%Y-%m-%d}")
            locked.due_date = due_date
        if backlog_link != locked.backlog_link:
            changes.append(f"backlog link {backlog_link}" if backlog_link else "backlog link removed")
            locked.backlog_link = backlog_link
        if changes:
            locked.save(
                update_fields=[
                    "status",
                    "completed_at",
                    "wont_do_reason",
                    "backlog_link",
                    "due_date",
                    "updated_at",
                ]
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
            webhooks.emit(
                Event.ACTION_ITEM_UPDATED,
                incident=incident,
                actor=by,
                item=locked,
                extra={"changes": changes},
            )
    for name in ("status", "completed_at", "wont_do_reason", "backlog_link", "due_date", "updated_at"):
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


# The incident of an item is public: everyone signed in may see it (models.PUBLIC, through the item).
PUBLIC_INCIDENT = Q(incident__status=Status.PUBLISHED, incident__visibility=Visibility.NORMAL)


def in_scope(user: User, scope: str) -> ActionItemQuerySet:
    """Action items of incidents `user` may see, and their own anywhere (ActionItemQuerySet.reachable_by):
    their own, their teams' members', or all of them."""
    items = ActionItem.objects.reachable_by(user)
    if scope == Scope.MINE:
        return items.filter(owner=user)
    if scope == Scope.TEAM:
        # The owners as a list of ids: given them as a subquery, PostgreSQL cannot tell how few they are
        # and walks every item in urgency order looking for theirs (measured: a one-person team's page
        # read every open item).
        teammates = User.objects.filter(teams__members=user).values_list("pk", flat=True)
        return items.filter(owner__in={user.pk, *teammates})
    return items


def urgency(today: dt.date) -> Case:
    """0 overdue, 1 due later, 2 no due date, 3 finished: what the badges of /action-items/ tell apart."""
    return Case(
        When(UNFINISHED & Q(due_date__lt=today), then=Value(0)),
        When(UNFINISHED & Q(due_date__isnull=False), then=Value(1)),
        When(UNFINISHED, then=Value(2)),
        default=Value(3),
        output_field=IntegerField(),
    )


def urgency_order(
    items: ActionItemQuerySet, today: dt.date, *, one_status: bool = False
) -> ActionItemQuerySet:
    """Overdue first, then due soonest, then those without a due date; finished ones last.

    Among unfinished items "overdue first, then due soonest" is simply the due date, earliest first, so
    the order is (finished?, due date, id): an index holds it, and a page stops after its rows.
    `one_status`: the items all have one status, so the order is the due date alone, which the index of
    (status, due date, id) holds; finished-last first would read every unfinished item before the first
    done one. `urgency` is for the page's badges.
    """
    order = [F("due_date").asc(nulls_last=True), "id"]
    if not one_status:
        order.insert(0, FINISHED_LAST)
    return items.annotate(urgency=urgency(today)).order_by(*order)


def listing(
    user: User,
    *,
    scope: str,
    status: str,
    priority: str,
    overdue: bool,
    today: dt.date,
    per_page: int,
) -> tuple[Figures, CappedPaginator]:
    """What /action-items/ shows of the items in `user`'s `scope` for one choice of filters: the counts
    and deadline table of the whole scope, and the chosen items in urgency order, paginated (a page loads
    its rows with `page_rows`). `status`: one of them, "unfinished" or "any"."""
    scoped = in_scope(user, scope)
    items = scoped
    if status == "unfinished":
        items = items.unfinished()
    elif status != "any":
        items = items.filter(status=status)
    if priority:
        items = items.filter(priority=priority)
    if overdue:
        items = items.overdue(today)
    ordered = urgency_order(items, today, one_status=status not in ("unfinished", "any"))
    paginator = CappedPaginator(
        ordered, per_page, load_rows=lambda ids: page_rows(ids, user=user, today=today)
    )
    return figures(scoped, today), paginator


# What a row of /action-items/ shows and what ActionItem.can_update reads: not the incident's long
# sections and search vectors, a few kilobytes each.
ROW_FIELDS = (
    "title",
    "owner",
    # What the owner's name is made of (User.__str__), not their password hash and sign-in times.
    "owner__username",
    "owner__display_name",
    "owner__first_name",
    "owner__last_name",
    "due_date",
    "priority",
    "backlog_link",
    "status",
    "wont_do_reason",
    "completed_at",
    "incident__title",
    "incident__status",
    "incident__owner",
)


def page_rows(ids: list[int], *, user: User, today: dt.date) -> ActionItemQuerySet:
    """The rows of one page of /action-items/, by the ids `CappedPaginator` read from the query
    scoped to what `user` may see: its filters and visibility subqueries need not run again.

    `may_update` (whether the row shows its update form) is ActionItem.can_update(user) asked in the same
    query: the method itself needs every incident's co-authors, one more query.
    """
    # An item on the page that is not the person's own is there because they may see its postmortem;
    # their own may be on one they may not see (ActionItemQuerySet.reachable_by), asked for those alone.
    seen = Incident.objects.visible_to(user).filter(pk=OuterRef("incident_id"))
    incident_shown = Case(
        When(~Q(owner=user) | PUBLIC_INCIDENT, then=Value(True)),
        default=Exists(seen),
        output_field=BooleanField(),
    )
    return (
        ActionItem.objects.filter(pk__in=ids)
        .with_may_update(user)
        .annotate(urgency=urgency(today), incident_shown=incident_shown)
        .select_related("incident", "owner")
        .only(*ROW_FIELDS)
        .order_by()
    )


# Counting every item of a large instance costs several times the rest of the page. Up to EXACT_LIMIT items
# in a scope the counts and the deadline table are exact; past it the counts stop at COUNT_CAP (“1,000+”)
# and the table is left out.
EXACT_LIMIT = 10_000


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


# Where an item's due date falls, as the counts and the deadline table tell items apart.
NO_DUE_DATE, PAST_DUE, DUE_SOON, DUE_LATER = range(4)
_COLUMNS = ("status", "priority", "due", "done_in_time")


def _bucketed(items: ActionItemQuerySet, today: dt.date) -> ActionItemQuerySet:
    """Each item with where its due date falls and whether it was done by it: two small columns to group
    by, which `_states` turns into the states counted (measured: fewer groups, and faster, than a
    true/false column per state)."""
    soon = today + dt.timedelta(days=DUE_SOON_DAYS)
    return items.order_by().annotate(
        due=Case(
            When(due_date__isnull=True, then=Value(NO_DUE_DATE)),
            When(due_date__lt=today, then=Value(PAST_DUE)),
            When(due_date__lte=soon, then=Value(DUE_SOON)),
            default=Value(DUE_LATER),
        ),
        done_in_time=ExpressionWrapper(Q(completed_at__date__lte=F("due_date")), output_field=BooleanField()),
    )


def _states(row: dict) -> dict[str, bool]:
    """Which states the items of a grouped row are in."""
    unfinished = row["status"] in (ActionItemStatus.OPEN, ActionItemStatus.IN_PROGRESS)
    done = row["status"] == ActionItemStatus.DONE
    has_due, past = row["due"] != NO_DUE_DATE, row["due"] == PAST_DUE
    in_time = bool(row["done_in_time"])
    return {
        "overdue": unfinished and past,
        "due_soon": unfinished and row["due"] == DUE_SOON,
        # Within the deadline: done by it, or not yet due. Late: done after it, or unfinished past it.
        "within": has_due and ((done and in_time) or (unfinished and not past)),
        "late": has_due and ((done and not in_time) or (unfinished and past)),
        # Won't-do items have no deadline left to keep.
        "no_due": not has_due and row["status"] != ActionItemStatus.WONT_DO,
    }


def _grouped_count(sample: ActionItemQuerySet, columns: tuple[str, ...]) -> list[dict]:
    """COUNT(*) of a sliced values() queryset grouped by its columns (the ORM cannot group over a LIMIT)."""
    sql, params = sample.query.sql_with_params()
    quoted = ", ".join(f's."{column}"' for column in columns)
    with connections[sample.db].cursor() as cursor:
        cursor.execute(f"SELECT {quoted}, COUNT(*) FROM ({sql}) s GROUP BY {quoted}", params)
        return [dict(zip((*columns, "n"), row, strict=True)) for row in cursor.fetchall()]


def _tallied(items: ActionItemQuerySet, today: dt.date, *, limit: int | None = None) -> list[dict]:
    """How many of `items` (of the first `limit` of them) there are per status, priority and due-date
    bucket, each row with the states its items are in."""
    sample = _bucketed(items, today).values(*_COLUMNS)
    if limit is not None:
        sample = sample[:limit]
    return [row | _states(row) for row in _grouped_count(sample, _COLUMNS)]


def figures(items: ActionItemQuerySet, today: dt.date) -> Figures:
    """Counts per state and the deadline table per priority, from one query of at most a few dozen rows;
    past EXACT_LIMIT items, capped counts and no table."""
    rows = _tallied(items, today, limit=EXACT_LIMIT + 1)
    counts = {"total": 0, "overdue": 0, "due_soon": 0, **dict.fromkeys(ActionItemStatus.values, 0)}
    for row in rows:
        counts["total"] += row["n"]
        counts[row["status"]] += row["n"]
        counts["overdue"] += row["n"] if row["overdue"] else 0
        counts["due_soon"] += row["n"] if row["due_soon"] else 0
    if counts["total"] > EXACT_LIMIT:
        # These rows are a sample of the items: a state past the cap in it is past the cap in all of them,
        # and only the others are counted again.
        past_cap = [name for name, n in counts.items() if n > COUNT_CAP]
        capped = capped_counts(items, today, leave_out=past_cap)
        return Figures(counts={name: capped.get(name, AtLeast(COUNT_CAP)) for name in counts}, slo=None)
    return Figures(counts=counts, slo=_slo_table(rows))


def slo_table(items: ActionItemQuerySet, today: dt.date) -> list[SloRow]:
    """The deadline table of `items`, exact however many there are (one query)."""
    return _slo_table(_tallied(items, today))


def capped_counts(items: ActionItemQuerySet, today: dt.date, *, leave_out=()) -> dict[str, int]:
    """How many items are in each state but those in `leave_out`, each counted up to COUNT_CAP (then an
    AtLeast), in one query (none when every state is left out).

    `items` is compiled once and each state is a condition on its rows: compiling its visibility
    subqueries again for each of the seven states took longer than running all the counts (measured), and
    the ORM cannot count a LIMITed subquery per condition in one statement.
    """
    day = connections[items.db].ops.adapt_datefield_value
    soon = today + dt.timedelta(days=DUE_SOON_DAYS)
    unfinished = "s.status IN (%s, %s)"
    unfinished_params = [ActionItemStatus.OPEN.value, ActionItemStatus.IN_PROGRESS.value]
    states = {
        "total": ("1 = 1", []),
        "overdue": (f"{unfinished} AND s.due_date < %s", [*unfinished_params, day(today)]),
        "due_soon": (
            f"{unfinished} AND s.due_date >= %s AND s.due_date <= %s",
            [*unfinished_params, day(today), day(soon)],
        ),
        **{status: ("s.status = %s", [status]) for status in ActionItemStatus.values},
    }
    states = {name: state for name, state in states.items() if name not in leave_out}
    if not states:
        return {}
    sql, params = items.order_by().values("status", "due_date").query.sql_with_params()
    parts, all_params = [], []
    for condition, condition_params in states.values():
        parts.append(
            f"(SELECT COUNT(*) FROM (SELECT 1 FROM ({sql}) s WHERE {condition} LIMIT {COUNT_CAP + 1}) c)"
        )
        all_params.extend([*params, *condition_params])
    with connections[items.db].cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), all_params)
        values = cursor.fetchone()
    return {name: AtLeast(COUNT_CAP) if n > COUNT_CAP else n for name, n in zip(states, values, strict=True)}


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
    items = related_open_items_of(incident)
    if isinstance(items, EmptyQuerySet):
        return []  # a published incident, or one without tags: no need to build the visibility filter
    return list(items.visible_to(user).select_related("incident", "owner").order_by("due_date", "id")[:limit])
