"""The daily reminders Celery beat sends (DESIGN.md section 8), and the notice about related open items.

Each person gets at most one email of each kind per day, however often the job runs: the key
``reminder:<kind>:<user id>:<date>`` is claimed in `SentNotification` by `notifications.send_once`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, OuterRef, Prefetch, Subquery
from django.utils import timezone
from taggit.models import TaggedItem

from accounts.models import User
from postmortems import followthrough, workflow
from postmortems.models import (
    ActionItem,
    Activity,
    ActivityVerb,
    FactorCategory,
    Incident,
    SentNotification,
    SignOff,
    Status,
    Visibility,
)
from postmortems.notifications import send_once

DUE_SOON_DAYS = followthrough.DUE_SOON_DAYS
# Overdue by more than this many days: the postmortem's owner and committee hear about it too.
ESCALATE_AFTER_DAYS = 14
# A postmortem waiting longer than this for a reviewer's sign-off earns them a reminder.
REVIEW_PENDING_DAYS = 3
# An action-item reminder lists at most this many items, then says how many more and links /action-items/:
# listing every one made one person's email 1 MB on large data.
MAX_ITEMS_PER_EMAIL = 20


# What the reminder email shows of an item and its postmortem (emails/reminder_action_items.txt), and
# what `visible_items` tests.
_DIGEST_ITEM_FIELDS = ("title", "due_date", "priority", "status", "owner", "incident")
_DIGEST_INCIDENT_FIELDS = ("title", "status", "visibility", "owner")


@dataclass
class ActionItemDigest:
    mine: list[ActionItem] = field(default_factory=list)
    escalated: list[ActionItem] = field(default_factory=list)


def action_item_digests(today: dt.date) -> dict[User, ActionItemDigest]:
    """Who hears about which unfinished items today: owners of items due within a week or overdue, and
    the owner and committee of postmortems whose items are overdue by more than two weeks."""
    due = ActionItem.objects.unfinished().filter(due_date__lte=today + dt.timedelta(days=DUE_SOON_DAYS))
    # What the emails and the visibility test read, and no more: with whole incidents and people joined to
    # every row, 100,000 overdue items took 26 s, most of it building objects and parsing their times.
    items = list(
        due.select_related("incident")
        .only(*_DIGEST_ITEM_FIELDS, *(f"incident__{name}" for name in _DIGEST_INCIDENT_FIELDS))
        .order_by("due_date", "id")
    )
    escalated = [item for item in items if (today - item.due_date).days > ESCALATE_AFTER_DAYS]
    committees = defaultdict(list)
    links = Incident.committee.through.objects.filter(incident__in=due.values("incident"))
    for incident_id, user_id in links.values_list("incident_id", "user_id"):
        committees[incident_id].append(user_id)
    people = User.objects.in_bulk(
        {item.owner_id for item in items}
        | {item.incident.owner_id for item in escalated}
        | {user_id for item in escalated for user_id in committees[item.incident_id]}
    )
    digests: dict[User, ActionItemDigest] = defaultdict(ActionItemDigest)
    for item in items:
        if item.owner_id is not None:
            item.owner = people[item.owner_id]  # one User per person, not one per row
            digests[item.owner].mine.append(item)
    for item in escalated:
        # The postmortem's owner and committee are involved in it, so they may always see it. A set: the
        # owner may sit on the committee too. (Asking `item not in escalated` instead made the job
        # quadratic: 130 s for 100,000 overdue items.)
        for person_id in {item.incident.owner_id, *committees[item.incident_id]}:
            if person_id != item.owner_id:
                digests[people[person_id]].escalated.append(item)
    # Owning an item does not grant sight of its incident: the owner is reminded of it wherever it is
    # (ActionItemQuerySet.reachable_by), but a draft's or a restricted postmortem's title reaches only
    # those who may see it (`incident_shown`); others' items, only where they may see them.
    result = {}
    for person, digest in digests.items():
        if not person.is_active:
            continue
        visible = visible_items(person, [*digest.mine, *digest.escalated])
        for item in digest.mine:
            item.incident_shown = item.pk in visible
        digest.escalated = [item for item in digest.escalated if item.pk in visible]
        if digest.mine or digest.escalated:
            result[person] = digest
    return result


def visible_items(person: User, items: list[ActionItem]) -> set[int]:
    """The ids of `items` whose incident `person` may see (ActionItem.objects.visible_to). Items of published
    postmortems with normal visibility are visible to everyone signed in: only the others cost a query."""
    if not person.is_active:
        return set()
    visible = {item.pk for item in items if item.incident.is_public}
    if others := {item.pk for item in items} - visible:
        visible |= set(
            ActionItem.objects.visible_to(person).filter(pk__in=others).values_list("pk", flat=True)
        )
    return visible


def action_item_email(digest: ActionItemDigest) -> dict:
    """What one reminder lists: the person's own items, then others' long overdue ones, each list most overdue
    first, at most MAX_ITEMS_PER_EMAIL in all; with each list's full count and how many are left out."""
    mine = sorted(digest.mine, key=_most_overdue_first)[:MAX_ITEMS_PER_EMAIL]
    escalated = sorted(digest.escalated, key=_most_overdue_first)[: MAX_ITEMS_PER_EMAIL - len(mine)]
    return {
        "mine": mine,
        "mine_count": len(digest.mine),
        "mine_more": len(digest.mine) - len(mine),
        "escalated": escalated,
        "escalated_count": len(digest.escalated),
        "escalated_more": len(digest.escalated) - len(escalated),
    }


def _most_overdue_first(item: ActionItem) -> tuple:
    return (item.due_date, item.pk)


def action_item_reminders(today: dt.date) -> int:
    sent = 0
    for person, digest in action_item_digests(today).items():
        sent += send_once(
            f"reminder:action-items:{person.pk}:{today.isoformat()}",
            to=person,
            template="reminder_action_items",
            context={**action_item_email(digest), "today": today},
        )
    return sent


def waiting_reviews(now: dt.datetime) -> dict[User, list[Incident]]:
    """Each reviewer with postmortems in review that have waited more than three days for their sign-off
    on the current revision (waiting since review was requested or the revision changed, the later)."""
    requested = Activity.objects.filter(incident=OuterRef("pk"), verb=ActivityVerb.REVIEW_REQUESTED).order_by(
        "-created_at"
    )
    revised = Activity.objects.filter(incident=OuterRef("pk"), revision=OuterRef("revision")).order_by(
        "created_at"
    )
    incidents = (
        Incident.objects.filter(status=Status.IN_REVIEW)
        .annotate(
            requested_at=Subquery(requested.values("created_at")[:1]),
            revised_at=Subquery(revised.values("created_at")[:1]),
        )
        .prefetch_related(
            "committee",
            "co_authors",
            Prefetch(
                "sign_offs", queryset=SignOff.objects.filter(is_current=True), to_attr="current_sign_offs"
            ),
        )
        .order_by("updated_at", "id")
    )
    deadline = now - dt.timedelta(days=REVIEW_PENDING_DAYS)
    waiting: dict[User, list[Incident]] = defaultdict(list)
    for incident in incidents:
        since = max(filter(None, [incident.requested_at, incident.revised_at]), default=incident.updated_at)
        if since >= deadline:
            continue
        incident.waiting_since = since
        signed = {s.reviewer_id for s in incident.current_sign_offs if s.revision == incident.revision}
        for member in incident.committee.all():
            if member.is_active and member.pk not in signed and workflow.is_reviewer(incident, member):
                waiting[member].append(incident)
    # Committee members are involved, so they may see the postmortem; checked through the one gate anyway.
    result = {}
    for member, waiting_for in waiting.items():
        visible = set(
            Incident.objects.visible_to(member)
            .filter(pk__in=[incident.pk for incident in waiting_for])
            .values_list("pk", flat=True)
        )
        if kept := [incident for incident in waiting_for if incident.pk in visible]:
            result[member] = kept
    return result


def review_reminders(now: dt.datetime) -> int:
    today = timezone.localdate(now)
    sent = 0
    for reviewer, incidents in waiting_reviews(now).items():
        sent += send_once(
            f"reminder:reviews:{reviewer.pk}:{today.isoformat()}",
            to=reviewer,
            template="reminder_reviews",
            context={"incidents": incidents, "now": now},
        )
    return sent


# Related open items are e-mailed only when the relation is strong (issue 17): at least this many tags in
# common, not counting the most common tags, or a contributing-factor category in common; and an item is
# mentioned to its owner at most once in RELATED_ITEM_QUIET_DAYS, whichever postmortem brings it up.
RELATED_MIN_UNCOMMON_TAGS = 2
RELATED_COMMON_TAGS = 10
RELATED_ITEM_QUIET_DAYS = 7


def most_common_tag_ids(limit: int = RELATED_COMMON_TAGS) -> set[int]:
    """The ids of the `limit` tags on the most postmortems: a tag everyone uses relates nothing."""
    rows = (
        TaggedItem.objects.filter(content_type=ContentType.objects.get_for_model(Incident))
        .values("tag_id")
        .annotate(n=Count("id"))
        .order_by("-n", "tag_id")[:limit]
    )
    return {row["tag_id"] for row in rows}


def _mentioned_lately(now: dt.datetime) -> set[tuple[int, int]]:
    """(item id, owner id) of related items mentioned to their owner within the quiet period."""
    keys = SentNotification.objects.filter(
        key__startswith="related-open-item:", sent_at__gte=now - dt.timedelta(days=RELATED_ITEM_QUIET_DAYS)
    ).values_list("key", flat=True)
    return {tuple(int(part) for part in key.split(":")[1:3]) for key in keys}


def related_open_items_emails(incident_id: int) -> int:
    """Owners of unfinished action items on older postmortems strongly related to this new one hear about
    it, once per (postmortem, owner), and of each item at most once a week. Restricted postmortems are left
    out. The new postmortem is a draft, visible only to its people (DESIGN.md section 6), so the email does
    not name it or its owner; and each owner hears only of their items on incidents they may see.
    """
    incident = (
        Incident.objects.exclude(status=Status.PUBLISHED)
        .exclude(visibility=Visibility.RESTRICTED)
        .prefetch_related("tags", "factors")
        .filter(pk=incident_id)
        .first()
    )
    if incident is None:
        return 0
    items = (
        followthrough.related_open_items_of(incident)
        .filter(owner__isnull=False, owner__is_active=True)
        .exclude(owner=incident.owner)
        .select_related("owner", "incident")
        .prefetch_related("incident__tags", "incident__factors", "factors")
        .order_by("due_date", "id")
    )
    tags = {tag.pk for tag in incident.tags.all()}
    common = most_common_tag_ids()
    categories = {factor.category for factor in incident.factors.all()}
    now = timezone.now()
    quiet = _mentioned_lately(now)
    by_owner: dict[User, list[ActionItem]] = defaultdict(list)
    for item in items:
        shared = [tag for tag in item.incident.tags.all() if tag.pk in tags]
        uncommon = [tag for tag in shared if tag.pk not in common]
        # The categories of the factors the item addresses, or else of its postmortem's factors.
        item_categories = {f.category for f in item.factors.all()} or {
            f.category for f in item.incident.factors.all()
        }
        strong = len(uncommon) >= RELATED_MIN_UNCOMMON_TAGS or bool(categories & item_categories)
        if not strong or (item.pk, item.owner_id) in quiet:
            continue
        item.shared_tags = [tag.name for tag in shared]
        item.shared_categories = sorted(FactorCategory(c).label.lower() for c in categories & item_categories)
        by_owner[item.owner].append(item)
    sent = 0
    for owner, owned in by_owner.items():
        visible = visible_items(owner, owned)
        owned = [item for item in owned if item.pk in visible]
        if not owned:
            continue
        if send_once(
            f"related-open-items:{incident.pk}:{owner.pk}",
            to=owner,
            template="related_open_items",
            context={
                "items": owned,
                "shared_tags": sorted({name for item in owned for name in item.shared_tags}),
            },
        ):
            sent += 1
            SentNotification.objects.bulk_create(
                [
                    SentNotification(key=f"related-open-item:{item.pk}:{owner.pk}:{incident.pk}")
                    for item in owned
                ],
                ignore_conflicts=True,
            )
    return sent


def related_open_items_notices() -> int:
    """Catch up, daily, on postmortems being written that share tags with older ones' open items."""
    candidates = (
        Incident.objects.exclude(status=Status.PUBLISHED)
        .exclude(visibility=Visibility.RESTRICTED)
        .filter(tags__isnull=False)
        .order_by()
        .values_list("pk", flat=True)
        .distinct()
    )
    return sum(related_open_items_emails(pk) for pk in candidates)


def send_daily_reminders() -> int:
    """Everything the morning job sends; safe to run any number of times a day. Returns emails sent now."""
    now = timezone.now()
    return (
        action_item_reminders(timezone.localdate(now)) + review_reminders(now) + related_open_items_notices()
    )
