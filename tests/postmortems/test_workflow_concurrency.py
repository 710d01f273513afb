"""The workflow's rules under real concurrent transactions: PostgreSQL, threads with their own connections.

The main thread holds the incident's row lock while the competing actions start, and waits until PostgreSQL
shows them blocked on it, so that they really run at the same moment rather than one after the other.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.core import mail
from django.db import connection, transaction

from postmortems import changes, editing, workflow
from postmortems.forms import IncidentImpactForm
from postmortems.models import ActivityVerb, Decision, Incident, SignOff, Status
from tests.postmortems.reviewing import make_cast, postmortem, sign

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: row locks and concurrent transactions (SQLite locks the whole file)")


@pytest.fixture
def cast():
    return make_cast()


class Racer(threading.Thread):
    """Runs one action in its own thread and database connection; keeps its result or its exception."""

    def __init__(self, action):
        super().__init__(daemon=True)
        self.action = action
        self.result = None
        self.error: BaseException | None = None

    def run(self):
        try:
            self.result = self.action()
        except BaseException as error:
            self.error = error
        finally:
            connection.close()


def wait_until_blocked(count: int, timeout: float = 10) -> None:
    """Until `count` other sessions of this database wait for a lock."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            # Inside a transaction the activity view is a snapshot; take a fresh one on every look.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] >= count:
                return
            time.sleep(0.02)
    raise AssertionError(f"{count} sessions never blocked on the incident's row lock")


def race(incident: Incident, *actions) -> list[Racer]:
    """Start every action while this thread holds the row lock, wait until all block on it, then let go."""
    racers = [Racer(action) for action in actions]
    with transaction.atomic():
        Incident.objects.select_for_update().get(pk=incident.pk)
        for racer in racers:
            racer.start()
        wait_until_blocked(len(racers))
    for racer in racers:
        racer.join(timeout=30)
        assert not racer.is_alive()
    return racers


def impact_edit(incident: Incident, by, summary: str):
    """The authoring 'impact' step's real save, as the form would make it."""
    form = IncidentImpactForm(
        data={
            "summary": summary,
            "supporting_data": incident.supporting_data,
            "customer_impact": incident.customer_impact,
            "impacted_customers": incident.impacted_customers,
        },
        instance=Incident.objects.get(pk=incident.pk),
    )
    assert form.is_valid(), form.errors
    return editing.save_step(
        incident, step="impact", forms=[form], by=by, expected_revision=incident.revision
    )


def test_two_reviewers_approving_at_the_same_moment_both_count(cast):
    incident = postmortem(cast, status=Status.IN_REVIEW)
    read = incident.revision

    racers = race(
        incident,
        lambda: workflow.approve(incident, by=cast.reviewer_a, revision=read),
        lambda: workflow.approve(incident, by=cast.reviewer_b, revision=read),
    )

    assert [racer.error for racer in racers] == [None, None]
    current = SignOff.objects.filter(incident=incident, is_current=True, decision=Decision.APPROVE)
    assert {s.reviewer_id for s in current} == {cast.reviewer_a.pk, cast.reviewer_b.pk}
    assert incident.activities.filter(verb=ActivityVerb.APPROVED).count() == 2
    workflow.publish(incident, by=cast.owner)
    assert incident.status == Status.PUBLISHED


def test_one_reviewer_double_submitting_leaves_one_current_sign_off(cast):
    incident = postmortem(cast, status=Status.IN_REVIEW)

    racers = race(
        incident,
        lambda: workflow.approve(incident, by=cast.reviewer_a, revision=incident.revision),
        lambda: workflow.approve(incident, by=cast.reviewer_a, revision=incident.revision),
    )

    assert [racer.error for racer in racers] == [None, None]
    assert SignOff.objects.filter(incident=incident, reviewer=cast.reviewer_a).count() == 2
    assert SignOff.objects.filter(incident=incident, reviewer=cast.reviewer_a, is_current=True).count() == 1


def test_approval_and_edit_racing_never_approve_a_revision_the_reviewer_did_not_read(cast):
    for attempt in range(4):
        incident = postmortem(cast, status=Status.IN_REVIEW, title=f"Race {attempt}")
        read = incident.revision
        read_summary = incident.summary

        approval, edit = race(
            incident,
            lambda incident=incident, read=read: workflow.approve(
                incident, by=cast.reviewer_a, revision=read
            ),
            lambda incident=incident, n=attempt: impact_edit(incident, cast.owner, f"Edited in race {n}."),
        )

        assert edit.error is None
        incident.refresh_from_db()
        assert incident.revision == read + 1
        if approval.error is None:  # the approval went first: it stands for what was read, and is now stale
            sign_off = approval.result
            assert (sign_off.revision, sign_off.snapshot["summary"]) == (read, read_summary)
            sign_off.refresh_from_db()
            assert sign_off.is_current
            assert sign_off.is_stale()
        else:  # the edit went first: the approval is refused, and nothing was recorded
            assert isinstance(approval.error, workflow.WorkflowError)
            assert "Re-read it" in str(approval.error)
            assert not SignOff.objects.filter(incident=incident).exists()


def test_an_edit_waits_for_an_approval_in_progress_and_makes_it_stale(cast, monkeypatch):
    incident = postmortem(cast, status=Status.IN_REVIEW)
    read = incident.revision
    inside, go_on = threading.Event(), threading.Event()
    real_snapshot = changes.snapshot

    def slow_snapshot(loaded):
        inside.set()
        assert go_on.wait(10)
        return real_snapshot(loaded)

    monkeypatch.setattr(changes, "snapshot", slow_snapshot)
    approval = Racer(lambda: workflow.approve(incident, by=cast.reviewer_a, revision=read))
    approval.start()
    assert inside.wait(10)  # the approval holds the row lock now
    edit = Racer(lambda: impact_edit(incident, cast.owner, "Edited while approving."))
    edit.start()
    wait_until_blocked(1)
    go_on.set()
    approval.join(10)
    edit.join(10)

    assert approval.error is None
    assert edit.error is None
    sign_off = SignOff.objects.get(incident=incident)
    assert sign_off.revision == read
    assert sign_off.snapshot["summary"] == incident.summary
    incident.refresh_from_db()
    assert incident.revision == read + 1
    assert incident.summary == "Edited while approving."
    assert sign_off.is_stale()


def test_an_approval_waits_for_an_edit_in_progress_and_is_refused(cast, monkeypatch):
    incident = postmortem(cast, status=Status.IN_REVIEW)
    read = incident.revision
    inside, go_on = threading.Event(), threading.Event()
    real_log = editing._log_edit

    def slow_log(*args, **kwargs):
        real_log(*args, **kwargs)
        inside.set()
        assert go_on.wait(10)

    monkeypatch.setattr(editing, "_log_edit", slow_log)
    edit = Racer(lambda: impact_edit(incident, cast.owner, "Edited before the approval landed."))
    edit.start()
    assert inside.wait(10)  # the edit holds the row lock, revision already bumped but not committed
    approval = Racer(lambda: workflow.approve(incident, by=cast.reviewer_a, revision=read))
    approval.start()
    wait_until_blocked(1)
    go_on.set()
    edit.join(10)
    approval.join(10)

    assert edit.error is None
    assert isinstance(approval.error, workflow.WorkflowError)
    assert f"you read revision {read}, it is now revision {read + 1}" in str(approval.error)
    assert not SignOff.objects.filter(incident=incident).exists()


def test_publishing_twice_at_once_publishes_once(cast):
    incident = postmortem(cast, status=Status.IN_REVIEW)
    sign(incident, cast.reviewer_a)
    sign(incident, cast.reviewer_b)
    mail.outbox.clear()

    racers = race(
        incident,
        lambda: workflow.publish(Incident.objects.get(pk=incident.pk), by=cast.owner),
        lambda: workflow.publish(Incident.objects.get(pk=incident.pk), by=cast.owner),
    )

    errors = [racer.error for racer in racers if racer.error is not None]
    assert len(errors) == 1
    assert isinstance(errors[0], workflow.WorkflowError)
    assert "already published" in str(errors[0])
    incident.refresh_from_db()
    assert incident.status == Status.PUBLISHED
    assert incident.activities.filter(verb=ActivityVerb.PUBLISHED).count() == 1
    # Tasks run in-process after each commit here: one email per reviewer, not two.
    assert sorted(m.to[0] for m in mail.outbox if m.subject.startswith("Published")) == [
        "reva@example.com",
        "revb@example.com",
    ]
