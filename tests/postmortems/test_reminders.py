"""The daily reminders: who gets which email, once per person and day however often the job runs."""

import datetime as dt
import re
import time

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.core import mail
from django.utils import timezone

from postmortems import reminders, tasks
from postmortems.models import (
    ActionItem,
    ActionItemStatus,
    Activity,
    ActivityVerb,
    Decision,
    Incident,
    Priority,
    SentNotification,
    Status,
    Visibility,
)
from tests.factories import (
    ActionItemFactory,
    ContributingFactorFactory,
    IncidentFactory,
    SignOffFactory,
    TeamFactory,
    UserFactory,
)

# The real-worker fixtures of the review workflow's test: a `celery -A config worker` process on Redis.
from tests.postmortems.test_celery_worker import broker_queue, worker  # noqa: F401


def emails_to(user) -> list:
    return [message for message in mail.outbox if message.to == [user.email]]


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


# --- action items ------------------------------------------------------------------------------------------


def test_owner_gets_one_email_with_items_due_soon_or_overdue(db, clock):
    today = timezone.localdate()
    owner = UserFactory(username="olive")
    ActionItemFactory(owner=owner, title="Due in three days", due_date=today + days(3))
    ActionItemFactory(owner=owner, title="Overdue by two", due_date=today - days(2))
    ActionItemFactory(owner=owner, title="Due next month", due_date=today + days(30))
    ActionItemFactory(
        owner=owner, title="Done already", due_date=today, status=ActionItemStatus.DONE, completed_at=clock()
    )

    assert tasks.send_daily_reminders() == 1
    assert tasks.send_daily_reminders() == 0  # the job runs again the same morning

    [email] = emails_to(owner)
    assert "2 action items due soon or overdue" in email.subject
    assert "Due in three days" in email.body
    assert "Overdue by two" in email.body
    assert "OVERDUE" in email.body
    assert "Due next month" not in email.body
    assert "Done already" not in email.body
    assert SentNotification.objects.filter(
        key=f"reminder:action-items:{owner.pk}:{today.isoformat()}"
    ).exists()


def test_owner_is_reminded_again_the_next_day(db, clock):
    owner = UserFactory()
    ActionItemFactory(owner=owner, due_date=timezone.localdate() + days(1))

    reminders.send_daily_reminders()
    clock.advance(hours=6)
    reminders.send_daily_reminders()
    assert len(emails_to(owner)) == 1

    clock.advance(days=1)
    reminders.send_daily_reminders()
    reminders.send_daily_reminders()
    assert len(emails_to(owner)) == 2


def test_the_action_item_job_reads_the_same_queries_however_many_items(db, clock):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    today = timezone.localdate()
    pm_owner, reviewer, item_owner = UserFactory(), UserFactory(), UserFactory()

    def overdue_postmortems(n: int) -> None:
        for _ in range(n):
            incident = IncidentFactory(owner=pm_owner, committee=[reviewer])
            ActionItemFactory(incident=incident, owner=item_owner, due_date=today - days(30))

    def queries() -> int:
        mail.outbox.clear()
        SentNotification.objects.all().delete()
        with CaptureQueriesContext(connection) as captured:
            assert reminders.action_item_reminders(today) == 3
        return len(captured)

    overdue_postmortems(2)
    few = queries()
    overdue_postmortems(6)
    assert queries() == few
    assert emails_to(reviewer)[0].body.count("owned by") == 8


def test_an_owner_on_their_own_committee_hears_of_an_overdue_item_once(db, clock):
    today = timezone.localdate()
    pm_owner, item_owner = UserFactory(), UserFactory()
    incident = IncidentFactory(owner=pm_owner, committee=[pm_owner, UserFactory()])
    ActionItemFactory(incident=incident, owner=item_owner, title="Long overdue", due_date=today - days(30))

    [escalated] = reminders.action_item_digests(today)[pm_owner].escalated
    assert escalated.title == "Long overdue"
    reminders.send_daily_reminders()
    [email] = emails_to(pm_owner)
    assert email.body.count("Long overdue") == 1


def test_long_overdue_items_go_to_postmortem_owner_and_committee_too(db, clock):
    today = timezone.localdate()
    pm_owner, reviewer, item_owner = UserFactory(), UserFactory(), UserFactory()
    incident = IncidentFactory(owner=pm_owner, committee=[reviewer])
    ActionItemFactory(incident=incident, owner=item_owner, title="Long overdue", due_date=today - days(15))
    ActionItemFactory(
        incident=incident, owner=item_owner, title="Recently overdue", due_date=today - days(14)
    )

    reminders.send_daily_reminders()
    reminders.send_daily_reminders()

    [to_item_owner] = emails_to(item_owner)
    assert "Long overdue" in to_item_owner.body
    assert "Recently overdue" in to_item_owner.body
    for person in (pm_owner, reviewer):
        [email] = emails_to(person)
        assert "Long overdue" in email.body
        assert "Recently overdue" not in email.body
        assert "more than two weeks" in email.body


def test_one_email_per_person_when_they_own_items_and_a_long_overdue_postmortem(db, clock):
    today = timezone.localdate()
    person = UserFactory()
    ActionItemFactory(owner=person, title="My own", due_date=today + days(2))
    ActionItemFactory(incident=IncidentFactory(owner=person), title="Theirs", due_date=today - days(20))

    reminders.send_daily_reminders()

    [email] = emails_to(person)
    assert "My own" in email.body
    assert "Theirs" in email.body


def test_owner_hears_of_every_item_of_theirs_but_only_titles_of_postmortems_they_may_see(
    db, clock, django_assert_max_num_queries
):
    today = timezone.localdate()
    owner, teammate_only = UserFactory(), UserFactory()
    team = TeamFactory(members=[owner])
    soon = today + days(2)
    ActionItemFactory(owner=owner, title="Public item", due_date=soon)
    secret = IncidentFactory(title="Secret breach", visibility=Visibility.RESTRICTED)
    ActionItemFactory(incident=secret, owner=owner, title="Restricted item", due_date=soon)
    ActionItemFactory(incident=secret, owner=teammate_only, title="Only theirs", due_date=soon)
    other_draft = IncidentFactory(title="Someone else's draft", status=Status.DRAFT)
    ActionItemFactory(incident=other_draft, owner=owner, title="Draft item", due_date=today - days(3))
    mine_through_team = IncidentFactory(title="Team outage", visibility=Visibility.RESTRICTED, teams=[team])
    ActionItemFactory(incident=mine_through_team, owner=owner, title="Team item", due_date=soon)

    with django_assert_max_num_queries(12):
        digests = reminders.action_item_digests(today)
    assert [item.title for item in digests[owner].mine] == [
        "Draft item",
        "Public item",
        "Restricted item",
        "Team item",
    ]
    assert [item.title for item in digests[teammate_only].mine] == ["Only theirs"]

    assert reminders.send_daily_reminders() == 2
    [email] = emails_to(owner)
    assert "4 action items due soon or overdue" in email.subject
    for own in ("Public item", "Restricted item", "Draft item", "Team item", "Team outage"):
        assert own in email.body
    assert email.body.count("from a restricted postmortem") == 2
    for hidden in ("Secret breach", "Someone else's draft"):
        assert hidden not in email.body
    [theirs] = emails_to(teammate_only)
    assert "Only theirs" in theirs.body
    assert "Secret breach" not in theirs.body
    assert f"/action-items/{secret.action_items.get(title='Only theirs').pk}/" in theirs.body


def test_long_overdue_items_of_a_restricted_draft_reach_its_people_and_its_owner_without_its_title(db, clock):
    today = timezone.localdate()
    pm_owner, reviewer, item_owner = UserFactory(), UserFactory(), UserFactory()
    incident = IncidentFactory(
        owner=pm_owner,
        committee=[reviewer],
        title="Quiet draft",
        status=Status.DRAFT,
        visibility=Visibility.RESTRICTED,
    )
    ActionItemFactory(incident=incident, owner=item_owner, title="Long overdue", due_date=today - days(20))

    reminders.send_daily_reminders()

    [email] = emails_to(item_owner)  # reminded of their own item, not told the draft's title
    assert "Long overdue" in email.body
    assert "Quiet draft" not in email.body
    for person in (pm_owner, reviewer):  # involved, so they may see it
        [email] = emails_to(person)
        assert "Long overdue" in email.body
        assert "Quiet draft" in email.body


def _long(text: str) -> str:
    """`text` padded to the 200 characters a title may hold: the largest email the data allows."""
    return (text + " " + "and the runbook step that would have caught it " * 5)[:200]


def test_a_reminder_of_500_items_lists_the_20_most_overdue_then_how_many_more(db, clock):
    today = timezone.localdate()
    owner, pm_owner = UserFactory(username="olive"), UserFactory(username="pat")
    incident = IncidentFactory(owner=pm_owner, title=_long("Checkout failed for every EU customer"))
    # Item 0 is the most overdue (498 days); item 499 is due in two days. Created out of order on purpose.
    ActionItem.objects.bulk_create(
        ActionItem(
            incident=incident,
            owner=owner,
            title=_long(f"Item {n:03d}: add an alert on the replica lag"),
            due_date=today - days(500 - n) + days(2),
            priority=Priority.P1,
        )
        for n in reversed(range(500))
    )

    assert reminders.send_daily_reminders() == 2

    [email] = emails_to(owner)
    assert email.subject == "500 action items due soon or overdue"
    listed = re.findall(r"^- (Item \d{3})", email.body, flags=re.MULTILINE)
    assert listed == [f"Item {n:03d}" for n in range(20)]
    assert f"… and 480 more of yours: {settings.SITE_URL}/action-items/\n" in email.body
    assert len(email.message().as_bytes()) < 50_000

    # The postmortem's owner hears of the 484 overdue by over two weeks: the 20 most overdue, then a count.
    [escalation] = emails_to(pm_owner)
    assert escalation.subject == "484 action items long overdue on postmortems you own or reviewed"
    assert re.findall(r"^- (Item \d{3})", escalation.body, flags=re.MULTILINE) == listed
    assert f"… and 464 more: {settings.SITE_URL}/action-items/?scope=all\n" in escalation.body
    assert len(escalation.message().as_bytes()) < 50_000


def test_a_reminder_lists_the_persons_own_items_before_others_long_overdue_ones(db, clock):
    today = timezone.localdate()
    person, item_owner = UserFactory(), UserFactory()
    for n in range(15):
        ActionItemFactory(owner=person, title=f"Mine {n:02d}", due_date=today + days(n % 7))
    theirs = IncidentFactory(owner=person)
    for n in range(10):
        ActionItemFactory(
            incident=theirs, owner=item_owner, title=f"Theirs {n:02d}", due_date=today - days(30 + n)
        )

    reminders.send_daily_reminders()

    [email] = emails_to(person)
    assert email.subject == "15 action items due soon or overdue, and 10 long overdue on your postmortems"
    listed = re.findall(r"^- (\w+ \d{2})", email.body, flags=re.MULTILINE)
    assert listed[:15] == sorted(listed[:15], key=lambda title: (int(title[-2:]) % 7, title))
    assert listed[15:] == ["Theirs 09", "Theirs 08", "Theirs 07", "Theirs 06", "Theirs 05"]
    assert "more of yours" not in email.body
    assert f"… and 5 more: {settings.SITE_URL}/action-items/?scope=all" in email.body


def test_a_reminder_of_20_items_or_fewer_lists_them_all(db, clock):
    today = timezone.localdate()
    owner = UserFactory()
    for n in range(20):
        ActionItemFactory(owner=owner, due_date=today - days(n))

    reminders.send_daily_reminders()

    [email] = emails_to(owner)
    assert email.body.count("OVERDUE since") == 19
    assert email.body.count("\n- ") == 20
    assert "… and" not in email.body


def test_nobody_is_reminded_of_nothing(db, clock):
    ActionItemFactory(due_date=timezone.localdate() + days(20))
    ActionItemFactory(due_date=None)
    assert reminders.send_daily_reminders() == 0
    assert mail.outbox == []


# --- reviews pending ---------------------------------------------------------------------------------------


def in_review(owner, committee, *, requested_days_ago: int, clock):
    now = clock()
    clock.set(now - days(requested_days_ago))
    incident = IncidentFactory(owner=owner, committee=committee, status=Status.IN_REVIEW, revision=2)
    Activity.objects.create(
        incident=incident, actor=owner, verb=ActivityVerb.REVIEW_REQUESTED, revision=incident.revision
    )
    clock.set(now)
    return incident


def test_reviewers_who_have_not_signed_off_the_current_revision_are_reminded(db, clock):
    owner, approved, stale, silent = UserFactory(), UserFactory(), UserFactory(), UserFactory()
    incident = in_review(owner, [approved, stale, silent], requested_days_ago=4, clock=clock)
    SignOffFactory(incident=incident, reviewer=approved, decision=Decision.APPROVE, revision=2)
    SignOffFactory(incident=incident, reviewer=stale, decision=Decision.APPROVE, revision=1)

    reminders.send_daily_reminders()
    reminders.send_daily_reminders()

    assert emails_to(approved) == []
    for reviewer in (stale, silent):
        [email] = emails_to(reviewer)
        assert "waiting for your sign-off" in email.subject
        assert incident.title in email.body
    assert emails_to(owner) == []


def test_reviews_requested_three_days_ago_or_less_are_not_reminded(db, clock):
    reviewer = UserFactory()
    in_review(UserFactory(), [reviewer], requested_days_ago=3, clock=clock)
    reminders.send_daily_reminders()
    assert emails_to(reviewer) == []

    clock.advance(hours=1)
    reminders.send_daily_reminders()
    assert len(emails_to(reviewer)) == 1


def test_a_new_revision_restarts_the_wait(db, clock):
    owner, reviewer = UserFactory(), UserFactory()
    incident = in_review(owner, [reviewer], requested_days_ago=10, clock=clock)
    incident.revision = 3
    incident.save(update_fields=["revision"])
    clock.advance(days=-1)
    Activity.objects.create(incident=incident, actor=owner, verb=ActivityVerb.EDITED, revision=3)
    clock.advance(days=1)

    reminders.send_daily_reminders()

    assert emails_to(reviewer) == []


def test_reviewers_of_a_restricted_postmortem_are_reminded_they_may_see_it(db, clock):
    owner, reviewer = UserFactory(), UserFactory()
    incident = in_review(owner, [reviewer], requested_days_ago=5, clock=clock)
    incident.visibility = Visibility.RESTRICTED
    incident.save(update_fields=["visibility"])

    assert reminders.waiting_reviews(clock()) == {reviewer: [incident]}
    reminders.send_daily_reminders()
    [email] = emails_to(reviewer)
    assert incident.title in email.body


# --- related open action items -----------------------------------------------------------------------------


def test_owners_of_related_open_items_are_told_once(db, clock):
    item_owner = UserFactory()
    older = IncidentFactory(tags=["dns", "cache"], title="Older DNS outage")
    ContributingFactorFactory(incident=older, category="process")
    ActionItemFactory(incident=older, owner=item_owner, title="Lower the TTL", due_date=None)
    ActionItemFactory(
        incident=older, owner=item_owner, title="Finished", status=ActionItemStatus.DONE, completed_at=clock()
    )
    clock.advance(minutes=1)
    draft_owner = UserFactory(display_name="Dora Drafter")
    draft = IncidentFactory(status=Status.DRAFT, tags=["dns"], title="DNS again", owner=draft_owner)
    ContributingFactorFactory(incident=draft, category="process")  # a strong relation: the same kind

    assert tasks.send_related_open_items(draft.pk) == 1
    assert tasks.send_related_open_items(draft.pk) == 0
    reminders.send_daily_reminders()

    [email] = emails_to(item_owner)
    assert "Lower the TTL" in email.body
    assert "Older DNS outage" in email.body
    assert "Finished" not in email.body
    assert "shared tags: dns" in email.body, email.body
    assert "it shares the tag dns with them" in email.body
    assert "contributing factors of the same kind: process" in email.body
    # The draft is visible only to its people (DESIGN.md section 6): neither its title nor its owner.
    assert "DNS again" not in email.body + email.subject
    assert "Dora Drafter" not in email.body + email.subject
    assert draft.get_absolute_url() not in email.body


def test_related_open_items_of_incidents_the_owner_may_not_see_are_left_out(db, clock):
    item_owner, hidden_only = UserFactory(), UserFactory()
    ActionItemFactory(incident=IncidentFactory(tags=["dns"], title="Public DNS outage"), owner=item_owner)
    secret = IncidentFactory(tags=["dns"], title="Secret DNS breach", visibility=Visibility.RESTRICTED)
    ActionItemFactory(incident=secret, owner=item_owner, title="Rotate secret keys")
    ActionItemFactory(incident=secret, owner=hidden_only, title="Audit access")
    other_draft = IncidentFactory(tags=["dns"], title="Unpublished DNS draft", status=Status.DRAFT)
    ActionItemFactory(incident=other_draft, owner=item_owner, title="Draft item")
    clock.advance(minutes=1)
    new = IncidentFactory(status=Status.DRAFT, tags=["dns"])
    ContributingFactorFactory(incident=new)  # technology, as every factor above: a strong relation
    for incident in Incident.objects.exclude(pk=new.pk):
        ContributingFactorFactory(incident=incident)

    assert tasks.send_related_open_items(new.pk) == 1

    [email] = emails_to(item_owner)
    assert "Public DNS outage" in email.body
    for hidden in ("Secret DNS breach", "Rotate secret keys", "Unpublished DNS draft", "Draft item"):
        assert hidden not in email.body
    assert emails_to(hidden_only) == []


def _common_tags(n: int = 10) -> None:
    """n tags on more postmortems than any tag of the test: the most common ones, which relate nothing."""
    for _ in range(3):
        IncidentFactory(tags=[f"common-{i}" for i in range(n)])


def test_one_generic_shared_tag_emails_nobody(db, clock):
    item_owner = UserFactory()
    _common_tags()
    older = IncidentFactory(tags=["common-0", "dns"], title="Older outage")
    ActionItemFactory(incident=older, owner=item_owner)
    clock.advance(minutes=1)
    draft = IncidentFactory(status=Status.DRAFT, tags=["common-0", "common-1", "dns"])
    assert tasks.send_related_open_items(draft.pk) == 0  # one uncommon tag in common is not enough
    assert mail.outbox == []


def test_two_uncommon_shared_tags_email_the_owner(db, clock):
    item_owner = UserFactory()
    _common_tags()
    older = IncidentFactory(tags=["common-0", "dns", "cache"], title="Older outage")
    ActionItemFactory(incident=older, owner=item_owner, title="Lower the TTL")
    clock.advance(minutes=1)
    draft = IncidentFactory(status=Status.DRAFT, tags=["common-0", "dns", "cache"])
    assert tasks.send_related_open_items(draft.pk) == 1
    [email] = emails_to(item_owner)
    assert "Lower the TTL" in email.body


def test_a_related_item_is_mentioned_at_most_once_a_week(db, clock):
    item_owner = UserFactory()
    older = IncidentFactory(tags=["dns"])
    ContributingFactorFactory(incident=older)
    ActionItemFactory(incident=older, owner=item_owner, title="Lower the TTL")
    clock.advance(minutes=1)
    first, second, third = (IncidentFactory(status=Status.DRAFT, tags=["dns"]) for _ in range(3))
    for draft in (first, second, third):
        ContributingFactorFactory(incident=draft)
    assert tasks.send_related_open_items(first.pk) == 1
    clock.advance(days=6)
    assert tasks.send_related_open_items(second.pk) == 0
    clock.advance(days=1, minutes=1)
    assert tasks.send_related_open_items(third.pk) == 1
    assert len(emails_to(item_owner)) == 2


def test_restricted_postmortems_do_not_announce_themselves(db, clock):
    item_owner = UserFactory()
    ActionItemFactory(incident=IncidentFactory(tags=["dns"]), owner=item_owner)
    clock.advance(minutes=1)
    secret = IncidentFactory(status=Status.DRAFT, tags=["dns"], visibility=Visibility.RESTRICTED)
    assert tasks.send_related_open_items(secret.pk) == 0
    assert mail.outbox == []


# --- beat --------------------------------------------------------------------------------------------------


def test_beat_runs_the_reminders_every_morning():
    entry = settings.CELERY_BEAT_SCHEDULE["daily-reminders"]
    assert entry["task"] == tasks.send_daily_reminders.name
    assert isinstance(entry["schedule"], crontab)
    assert entry["schedule"].hour == {7}
    assert entry["schedule"].minute == {0}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_beat_entry_runs_on_a_real_worker_once_per_day(worker):  # noqa: F811 — the imported fixture
    outbox, log = worker
    owner = UserFactory(username="wendy")
    ActionItemFactory(owner=owner, title="Rotate the signing key", due_date=timezone.localdate() + days(1))
    from config.celery import app

    name = settings.CELERY_BEAT_SCHEDULE["daily-reminders"]["task"]
    app.send_task(name)
    app.send_task(name)  # beat, or a person, runs it twice

    key = f"reminder:action-items:{owner.pk}:{timezone.localdate().isoformat()}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and log.read_text().count(f"Task {name}[") < 4:
        time.sleep(0.25)  # each run logs "received" and "succeeded"
    texts = [path.read_text() for path in outbox.glob("*.log")]
    text = "\n".join(texts)
    assert text.count("To: wendy@example.com") == 1, log.read_text()[-3000:]
    assert "Rotate the signing key" in text
    assert SentNotification.objects.filter(key=key).count() == 1
