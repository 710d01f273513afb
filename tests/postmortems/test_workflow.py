"""The review workflow's transitions (postmortems/workflow.py), their rules, and the emails they send."""

from __future__ import annotations

from smtplib import SMTPException

import pytest
from django.core import mail
from django.db import transaction

from postmortems import tasks, workflow
from postmortems.models import (
    Activity,
    ActivityVerb,
    Comment,
    Decision,
    Section,
    SentNotification,
    SignOff,
    Status,
)
from tests.factories import ActionItemFactory, UserFactory
from tests.postmortems.reviewing import edit, make_cast, postmortem, sign

pytestmark = pytest.mark.django_db


@pytest.fixture
def cast():
    return make_cast()


# --- every legal transition ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "co_author"])
def test_request_review_puts_a_draft_in_review(cast, role):
    incident = postmortem(cast)

    workflow.request_review(incident, by=cast[role])

    incident.refresh_from_db()
    assert incident.status == Status.IN_REVIEW
    activity = incident.activities.get(verb=ActivityVerb.REVIEW_REQUESTED)
    assert activity.actor == cast[role]
    assert "Ada Reviewer" in activity.detail
    assert activity.revision == incident.revision


def test_withdraw_returns_to_draft_and_makes_sign_offs_stale(cast):
    incident = postmortem(cast, status=Status.IN_REVIEW, approved_by=[cast.reviewer_a])
    before = incident.revision

    workflow.withdraw(incident, by=cast.owner)

    incident.refresh_from_db()
    assert incident.status == Status.DRAFT
    assert incident.revision == before + 1
    kept = SignOff.objects.get(incident=incident, reviewer=cast.reviewer_a)
    assert kept.is_current
    assert kept.is_stale()
    assert incident.activities.filter(verb=ActivityVerb.WITHDRAWN, actor=cast.owner).exists()


def test_approve_records_a_current_sign_off_with_a_snapshot(cast):
    incident = postmortem(cast, status=Status.IN_REVIEW)

    sign_off = workflow.approve(incident, by=cast.reviewer_a, revision=incident.revision, comment="Clear.")

    assert sign_off.decision == Decision.APPROVE
    assert sign_off.is_current
    assert sign_off.revision == incident.revision
    assert sign_off.snapshot["summary"] == incident.summary
    assert "Timeline event number 1" in sign_off.snapshot["timeline"]
    activity = incident.activities.get(verb=ActivityVerb.APPROVED)
    assert (activity.actor, activity.detail) == (cast.reviewer_a, "Clear.")


def test_signing_off_again_keeps_the_earlier_sign_off_as_history(cast):
    incident = postmortem(cast, status=Status.IN_REVIEW)
    first = workflow.request_changes(
        incident, by=cast.reviewer_a, revision=incident.revision, comment="Add the detection time."
    )
    edit(incident, summary="Now with the detection time.")

    second = workflow.approve(incident, by=cast.reviewer_a, revision=incident.revision)

    first.refresh_from_db()
    assert not first.is_current
    assert second.is_current
    assert SignOff.objects.filter(incident=incident, reviewer=cast.reviewer_a).count() == 2


def test_request_changes_keeps_the_comment(cast):
    incident = postmortem(cast, status=Status.IN_REVIEW)

    sign_off = workflow.request_changes(
        incident, by=cast.reviewer_b, revision=incident.revision, comment="  Name the config change.  "
    )

    assert sign_off.decision == Decision.REQUEST_CHANGES
    assert sign_off.comment == "Name the config change."
    assert incident.activities.get(verb=ActivityVerb.CHANGES_REQUESTED).detail == "Name the config change."


def test_publish_when_every_reviewer_approved_the_current_revision(cast):
    incident = postmortem(cast, status=Status.IN_REVIEW, approved_by=[cast.reviewer_a, cast.reviewer_b])

    workflow.publish(incident, by=cast.owner)

    incident.refresh_from_db()
    assert incident.status == Status.PUBLISHED
    assert incident.published_at is not None
    assert not incident.can_edit(cast.owner)
    activity = incident.activities.get(verb=ActivityVerb.PUBLISHED)
    assert activity.actor == cast.owner
    assert not activity.is_staff_action


def test_reopen_takes_a_published_postmortem_back_to_draft_with_its_reason(cast):
    incident = postmortem(cast, status=Status.PUBLISHED, approved_by=[cast.reviewer_a, cast.reviewer_b])
    before = incident.revision

    workflow.reopen(incident, by=cast.owner, reason="The trigger was misidentified.")

    incident.refresh_from_db()
    assert incident.status == Status.DRAFT
    assert incident.published_at is None
    assert incident.revision == before + 1  # the old approvals no longer count
    activity = incident.activities.get(verb=ActivityVerb.REOPENED)
    assert activity.detail == "The trigger was misidentified."
    assert not activity.is_staff_action


def test_staff_reopen_is_logged_as_a_staff_action(cast):
    incident = postmortem(cast, status=Status.PUBLISHED)

    workflow.reopen(incident, by=cast.staff, reason="Contains a customer's name.")

    activity = incident.activities.get(verb=ActivityVerb.REOPENED)
    assert activity.actor == cast.staff
    assert activity.is_staff_action


def test_staff_withdraw_follows_the_owners_rules_and_is_logged_as_a_staff_action(cast):
    incident = postmortem(cast, status=Status.IN_REVIEW, approved_by=[cast.reviewer_a, cast.reviewer_b])
    before = incident.revision

    workflow.withdraw(incident, by=cast.staff)

    incident.refresh_from_db()
    assert incident.status == Status.DRAFT
    assert incident.revision == before + 1
    activity = incident.activities.get(verb=ActivityVerb.WITHDRAWN)
    assert (activity.actor, activity.detail) == (cast.staff, "earlier sign-offs are now stale")
    assert activity.is_staff_action
    assert SignOff.objects.filter(incident=incident, is_current=True).count() == 2  # kept, but stale

    # Back in review, the approvals of the earlier revision do not count: publishing waits for new ones.
    workflow.request_review(incident, by=cast.owner)
    with pytest.raises(workflow.WorkflowError, match=f"Ada Reviewer approved revision {before}; it is now"):
        workflow.publish(incident, by=cast.owner)
    for reviewer in (cast.reviewer_a, cast.reviewer_b):
        workflow.approve(incident, by=reviewer, revision=incident.revision)
    workflow.publish(incident, by=cast.owner)
    assert incident.status == Status.PUBLISHED


def test_owners_withdraw_is_not_a_staff_action_even_when_they_are_staff(cast):
    cast.owner.is_staff = True
    cast.owner.save(update_fields=["is_staff"])
    incident = postmortem(cast, status=Status.IN_REVIEW)
    workflow.withdraw(incident, by=cast.owner)
    assert not incident.activities.get(verb=ActivityVerb.WITHDRAWN).is_staff_action


def test_staff_may_publish_from_the_admin_as_a_logged_staff_action(cast):
    incident = postmortem(cast, status=Status.IN_REVIEW, approved_by=[cast.reviewer_a, cast.reviewer_b])
    workflow.publish(incident, by=cast.staff, as_staff=True)
    incident.refresh_from_db()
    assert incident.status == Status.PUBLISHED
    assert incident.activities.get(verb=ActivityVerb.PUBLISHED).is_staff_action


@pytest.mark.parametrize("role", ["reviewer_a", "owner", "co_author"])
def test_comment_on_a_section_is_kept_and_logged(cast, role):
    incident = postmortem(cast, status=Status.IN_REVIEW)

    remark = workflow.comment(incident, by=cast[role], section=Section.TIMELINE, text="When was it paged?")

    assert Comment.objects.get(pk=remark.pk).text == "When was it paged?"
    assert remark.revision == incident.revision
    activity = incident.activities.get(verb=ActivityVerb.COMMENTED)
    assert activity.detail == "on Timeline: When was it paged?"


def test_an_edit_makes_earlier_approvals_stale_and_publishing_waits_for_them(cast):
    incident = postmortem(cast, status=Status.IN_REVIEW, approved_by=[cast.reviewer_a, cast.reviewer_b])
    edit(incident, summary="A corrected summary.")

    with pytest.raises(
        workflow.WorkflowError, match="Ada Reviewer approved revision 1; it is now revision 2"
    ):
        workflow.publish(incident, by=cast.owner)

    for reviewer in (cast.reviewer_a, cast.reviewer_b):
        workflow.approve(incident, by=reviewer, revision=incident.revision)
    workflow.publish(incident, by=cast.owner)
    assert incident.status == Status.PUBLISHED


def test_adding_a_committee_member_adds_a_required_approval(cast):
    incident = postmortem(cast, status=Status.IN_REVIEW, approved_by=[cast.reviewer_a, cast.reviewer_b])
    newcomer = UserFactory(display_name="Nia Newcomer")
    incident.committee.add(newcomer)

    with pytest.raises(workflow.WorkflowError, match="Nia Newcomer has not signed off yet"):
        workflow.publish(incident, by=cast.owner)


def test_removing_a_committee_member_drops_their_sign_off(cast):
    incident = postmortem(cast, status=Status.IN_REVIEW, approved_by=[cast.reviewer_a])
    sign(incident, cast.reviewer_b, decision=Decision.REQUEST_CHANGES)

    incident.committee.remove(cast.reviewer_b)
    dropped = workflow.drop_sign_offs(incident, reviewers=[cast.reviewer_b])

    assert dropped == 1
    assert not SignOff.objects.filter(incident=incident, reviewer=cast.reviewer_b, is_current=True).exists()
    assert SignOff.objects.filter(incident=incident, reviewer=cast.reviewer_b).count() == 1  # history kept
    workflow.publish(incident, by=cast.owner)
    assert incident.status == Status.PUBLISHED


# --- every illegal transition -------------------------------------------------------------------------------


def _approve(cast, incident, who="reviewer_a", revision=None):
    return workflow.approve(incident, by=cast[who], revision=revision or incident.revision)


def _approve_both(cast, incident):
    sign(incident, cast.reviewer_a)
    sign(incident, cast.reviewer_b)


def _blank_summary(cast, incident):
    incident.summary = ""
    incident.save(update_fields=["summary"])


ILLEGAL = [
    # request review
    (
        "request_review_in_review",
        Status.IN_REVIEW,
        None,
        lambda c, i: workflow.request_review(i, by=c.owner),
        "already in review",
        False,
    ),
    (
        "request_review_published",
        Status.PUBLISHED,
        None,
        lambda c, i: workflow.request_review(i, by=c.owner),
        "reopen it first",
        False,
    ),
    (
        "request_review_by_reviewer",
        Status.DRAFT,
        None,
        lambda c, i: workflow.request_review(i, by=c.reviewer_a),
        "Only the owner or a co-author",
        True,
    ),
    (
        "request_review_by_other",
        Status.DRAFT,
        None,
        lambda c, i: workflow.request_review(i, by=c.other),
        "Only the owner or a co-author",
        True,
    ),
    (
        "request_review_by_staff",
        Status.DRAFT,
        None,
        lambda c, i: workflow.request_review(i, by=c.staff),
        "Only the owner or a co-author",
        True,
    ),
    (
        "request_review_no_committee",
        Status.DRAFT,
        lambda c, i: i.committee.clear(),
        lambda c, i: workflow.request_review(i, by=c.owner),
        "Choose at least 1 reviewer",
        False,
    ),
    (
        "request_review_owner_on_committee",
        Status.DRAFT,
        lambda c, i: i.committee.add(c.owner),
        lambda c, i: workflow.request_review(i, by=c.owner),
        "Nobody reviews their own postmortem: take Olga Owner off",
        False,
    ),
    (
        "request_review_coauthor_on_committee",
        Status.DRAFT,
        lambda c, i: i.committee.add(c.co_author),
        lambda c, i: workflow.request_review(i, by=c.owner),
        "take Cole Author off",
        False,
    ),
    (
        "request_review_no_summary",
        Status.DRAFT,
        _blank_summary,
        lambda c, i: workflow.request_review(i, by=c.owner),
        "Write the summary",
        False,
    ),
    # withdraw
    (
        "withdraw_draft",
        Status.DRAFT,
        None,
        lambda c, i: workflow.withdraw(i, by=c.owner),
        "it is a draft; request review first",
        False,
    ),
    (
        "withdraw_published",
        Status.PUBLISHED,
        None,
        lambda c, i: workflow.withdraw(i, by=c.owner),
        "already published",
        False,
    ),
    (
        "withdraw_by_co_author",
        Status.IN_REVIEW,
        None,
        lambda c, i: workflow.withdraw(i, by=c.co_author),
        "Only the owner or staff can withdraw",
        True,
    ),
    (
        "withdraw_by_reviewer",
        Status.IN_REVIEW,
        None,
        lambda c, i: workflow.withdraw(i, by=c.reviewer_a),
        "Only the owner or staff can withdraw",
        True,
    ),
    # approve / request changes
    ("approve_draft", Status.DRAFT, None, _approve, "request review first", False),
    ("approve_published", Status.PUBLISHED, None, _approve, "already published", False),
    (
        "approve_by_owner",
        Status.IN_REVIEW,
        None,
        lambda c, i: _approve(c, i, "owner"),
        "Nobody signs off their own postmortem",
        True,
    ),
    (
        "approve_by_co_author",
        Status.IN_REVIEW,
        None,
        lambda c, i: _approve(c, i, "co_author"),
        "Nobody signs off their own postmortem",
        True,
    ),
    (
        "approve_by_other",
        Status.IN_REVIEW,
        None,
        lambda c, i: _approve(c, i, "other"),
        "Only members of the peer-review committee",
        True,
    ),
    (
        "approve_by_staff",
        Status.IN_REVIEW,
        None,
        lambda c, i: _approve(c, i, "staff"),
        "Only members of the peer-review committee",
        True,
    ),
    (
        "approve_by_removed_member",
        Status.IN_REVIEW,
        lambda c, i: i.committee.remove(c.reviewer_a),
        _approve,
        "Only members of the peer-review committee",
        True,
    ),
    (
        "approve_stale_revision",
        Status.IN_REVIEW,
        lambda c, i: edit(i, summary="Edited meanwhile."),
        lambda c, i: _approve(c, i, revision=i.revision - 1),
        "you read revision 1, it is now revision 2. Re-read it",
        False,
    ),
    (
        "request_changes_without_comment",
        Status.IN_REVIEW,
        None,
        lambda c, i: workflow.request_changes(i, by=c.reviewer_a, revision=i.revision, comment="   "),
        "a comment is required to request changes",
        False,
    ),
    # publish
    (
        "publish_draft",
        Status.DRAFT,
        _approve_both,
        lambda c, i: workflow.publish(i, by=c.owner),
        "it is a draft; request review first",
        False,
    ),
    (
        "publish_published",
        Status.PUBLISHED,
        _approve_both,
        lambda c, i: workflow.publish(i, by=c.owner),
        "already published",
        False,
    ),
    (
        "publish_by_co_author",
        Status.IN_REVIEW,
        _approve_both,
        lambda c, i: workflow.publish(i, by=c.co_author),
        "Only the owner can publish",
        True,
    ),
    (
        "publish_by_reviewer",
        Status.IN_REVIEW,
        _approve_both,
        lambda c, i: workflow.publish(i, by=c.reviewer_a),
        "Only the owner can publish",
        True,
    ),
    (
        "publish_by_staff_outside_admin",
        Status.IN_REVIEW,
        _approve_both,
        lambda c, i: workflow.publish(i, by=c.staff),
        "Only the owner can publish",
        True,
    ),
    (
        "publish_missing_approvals",
        Status.IN_REVIEW,
        lambda c, i: sign(i, c.reviewer_a),
        lambda c, i: workflow.publish(i, by=c.owner),
        "Ben Reviewer has not signed off yet",
        False,
    ),
    (
        "publish_changes_requested",
        Status.IN_REVIEW,
        lambda c, i: (sign(i, c.reviewer_a), sign(i, c.reviewer_b, decision=Decision.REQUEST_CHANGES)),
        lambda c, i: workflow.publish(i, by=c.owner),
        "Ben Reviewer requested changes",
        False,
    ),
    (
        "publish_stale_approval",
        Status.IN_REVIEW,
        lambda c, i: (_approve_both(c, i), edit(i, summary="Changed after approval.")),
        lambda c, i: workflow.publish(i, by=c.owner),
        "Ada Reviewer approved revision 1; it is now revision 2",
        False,
    ),
    (
        "publish_blocking_check",
        Status.IN_REVIEW,
        lambda c, i: (ActionItemFactory(incident=i, title="Add alerts", owner=None), _approve_both(c, i)),
        lambda c, i: workflow.publish(i, by=c.owner),
        "Check fails: Action item “Add alerts” needs an owner",
        False,
    ),
    # reopen
    (
        "reopen_draft",
        Status.DRAFT,
        None,
        lambda c, i: workflow.reopen(i, by=c.owner, reason="Why not"),
        "it is a draft, not published",
        False,
    ),
    (
        "reopen_in_review",
        Status.IN_REVIEW,
        None,
        lambda c, i: workflow.reopen(i, by=c.owner, reason="Why not"),
        "it is in review, not published",
        False,
    ),
    (
        "reopen_by_co_author",
        Status.PUBLISHED,
        None,
        lambda c, i: workflow.reopen(i, by=c.co_author, reason="Typo"),
        "Only the owner or staff",
        True,
    ),
    (
        "reopen_by_reviewer",
        Status.PUBLISHED,
        None,
        lambda c, i: workflow.reopen(i, by=c.reviewer_a, reason="Typo"),
        "Only the owner or staff",
        True,
    ),
    (
        "reopen_without_reason",
        Status.PUBLISHED,
        None,
        lambda c, i: workflow.reopen(i, by=c.owner, reason=" "),
        "a reason is required",
        False,
    ),
    # comment
    (
        "comment_published",
        Status.PUBLISHED,
        None,
        lambda c, i: workflow.comment(i, by=c.reviewer_a, section="summary", text="Hm"),
        "published and frozen",
        False,
    ),
    (
        "comment_by_other",
        Status.IN_REVIEW,
        None,
        lambda c, i: workflow.comment(i, by=c.other, section="summary", text="Hm"),
        "Only the owner, co-authors and the committee",
        True,
    ),
    (
        "comment_empty",
        Status.IN_REVIEW,
        None,
        lambda c, i: workflow.comment(i, by=c.reviewer_a, section="summary", text=" "),
        "Write a comment first",
        False,
    ),
    (
        "comment_unknown_section",
        Status.IN_REVIEW,
        None,
        lambda c, i: workflow.comment(i, by=c.reviewer_a, section="nope", text="Hm"),
        "Choose the section",
        False,
    ),
]


@pytest.mark.parametrize(
    ("status", "setup", "action", "message", "not_allowed"),
    [case[1:] for case in ILLEGAL],
    ids=[case[0] for case in ILLEGAL],
)
def test_illegal_transition_is_refused_and_changes_nothing(
    cast, django_capture_on_commit_callbacks, status, setup, action, message, not_allowed
):
    incident = postmortem(cast, status=status)
    if setup:
        setup(cast, incident)
    incident.refresh_from_db()
    before = (incident.status, incident.revision, incident.published_at)
    sign_offs = list(SignOff.objects.filter(incident=incident).values_list("pk", "is_current"))
    activities = Activity.objects.filter(incident=incident).count()

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(workflow.WorkflowError) as refused:
        action(cast, incident)

    assert message in str(refused.value)
    assert isinstance(refused.value, workflow.NotAllowed) == not_allowed
    incident.refresh_from_db()
    assert (incident.status, incident.revision, incident.published_at) == before
    assert list(SignOff.objects.filter(incident=incident).values_list("pk", "is_current")) == sign_offs
    assert Activity.objects.filter(incident=incident).count() == activities
    assert not Comment.objects.filter(incident=incident).exists()
    assert callbacks == []


def test_review_cannot_be_requested_below_the_configured_committee_size(cast, settings):
    settings.POSTMORTEM_MIN_REVIEWERS = 3
    incident = postmortem(cast)

    with pytest.raises(workflow.WorkflowError, match=r"Choose at least 3 reviewers .* it has 2"):
        workflow.request_review(incident, by=cast.owner)


# --- notifications: enqueued on commit only, sent once ------------------------------------------------------


def test_request_review_emails_each_reviewer_after_commit(cast, django_capture_on_commit_callbacks):
    incident = postmortem(cast)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        workflow.request_review(incident, by=cast.owner)
    assert len(callbacks) == 1
    assert mail.outbox == []  # nothing before the commit

    callbacks[0]()

    assert sorted(m.to[0] for m in mail.outbox) == ["reva@example.com", "revb@example.com"]
    message = mail.outbox[0]
    assert message.subject == f"Please review: {incident.title}"
    assert f"http://127.0.0.1:8000/postmortems/{incident.pk}/" in message.body
    assert "Olga Owner asks you to review" in message.body


def test_nothing_is_enqueued_when_the_transaction_rolls_back(cast, django_capture_on_commit_callbacks):
    incident = postmortem(cast)

    def request_then_fail():
        with transaction.atomic():
            workflow.request_review(incident, by=cast.owner)
            raise RuntimeError("something later in the same request failed")

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        request_then_fail()

    assert callbacks == []
    assert mail.outbox == []
    incident.refresh_from_db()
    assert incident.status == Status.DRAFT


@pytest.mark.parametrize("decision", [Decision.APPROVE, Decision.REQUEST_CHANGES])
def test_the_owner_is_emailed_about_each_sign_off(cast, django_capture_on_commit_callbacks, decision):
    incident = postmortem(cast, status=Status.IN_REVIEW)
    action = workflow.approve if decision == Decision.APPROVE else workflow.request_changes

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        action(incident, by=cast.reviewer_b, revision=incident.revision, comment="Timeline needs zones.")

    assert len(callbacks) == 1
    [message] = mail.outbox
    assert message.to == ["owner@example.com"]
    expected = "Approved" if decision == Decision.APPROVE else "Changes requested"
    assert message.subject == f"{expected}: {incident.title}"
    assert "Timeline needs zones." in message.body


def test_publishing_emails_the_committee(cast, django_capture_on_commit_callbacks):
    incident = postmortem(cast, status=Status.IN_REVIEW, approved_by=[cast.reviewer_a, cast.reviewer_b])

    with django_capture_on_commit_callbacks(execute=True):
        workflow.publish(incident, by=cast.owner)

    assert sorted(m.to[0] for m in mail.outbox) == ["reva@example.com", "revb@example.com"]
    assert all(m.subject == f"Published: {incident.title}" for m in mail.outbox)
    assert "visible to everyone" in mail.outbox[0].body


def test_review_requested_task_sends_once_however_often_it_runs(cast):
    incident = postmortem(cast)
    workflow.request_review(incident, by=cast.owner)  # on_commit never fires inside the test transaction
    activity = incident.activities.get(verb=ActivityVerb.REVIEW_REQUESTED)

    assert tasks.send_review_requested(activity.pk) == 2
    assert tasks.send_review_requested(activity.pk) == 0

    assert len(mail.outbox) == 2
    assert SentNotification.objects.filter(key__startswith=f"review_requested:{activity.pk}:").count() == 2


def test_signed_off_and_published_tasks_send_once(cast):
    incident = postmortem(cast, status=Status.IN_REVIEW, approved_by=[cast.reviewer_a])
    sign_off = workflow.approve(incident, by=cast.reviewer_b, revision=incident.revision)
    assert tasks.send_signed_off(sign_off.pk) == 1
    assert tasks.send_signed_off(sign_off.pk) == 0
    workflow.publish(incident, by=cast.owner)
    published = incident.activities.get(verb=ActivityVerb.PUBLISHED)
    assert tasks.send_published(published.pk) == 2
    assert tasks.send_published(published.pk) == 0
    assert len(mail.outbox) == 3


def test_a_failed_send_is_not_recorded_so_the_retry_sends_it(cast, monkeypatch):
    incident = postmortem(cast, status=Status.IN_REVIEW)
    sign_off = workflow.approve(incident, by=cast.reviewer_a, revision=incident.revision)

    def refuse(self, fail_silently=False):
        raise SMTPException("421 try again later")

    with monkeypatch.context() as patched:
        patched.setattr("django.core.mail.EmailMessage.send", refuse)
        with pytest.raises(SMTPException):
            tasks.signed_off_emails(sign_off.pk)
    assert not SentNotification.objects.exists()

    assert tasks.signed_off_emails(sign_off.pk) == 1
    assert len(mail.outbox) == 1


def test_tasks_retry_smtp_errors_with_backoff_and_have_limits():
    for task in (tasks.send_review_requested, tasks.send_signed_off, tasks.send_published):
        assert task.acks_late is True
        assert SMTPException in task.autoretry_for
        assert task.retry_backoff
        assert task.max_retries
        assert task.time_limit
        assert task.soft_time_limit < task.time_limit


def test_tasks_skip_people_without_an_address_and_vanished_rows(cast):
    cast.reviewer_b.email = ""
    cast.reviewer_b.save()
    incident = postmortem(cast)
    workflow.request_review(incident, by=cast.owner)
    activity = incident.activities.get(verb=ActivityVerb.REVIEW_REQUESTED)

    assert tasks.send_review_requested(activity.pk) == 1
    assert [m.to for m in mail.outbox] == [["reva@example.com"]]
    assert tasks.send_review_requested(10**9) == 0
    assert tasks.send_signed_off(10**9) == 0
