"""The notification outbox (postmortems/notifications.py, tasks.deliver*): recorded with the change, sent
after commit, kept when the broker refuses it, caught up later, each email once.

A real broker going down and coming back, with a real worker, is in tests/config/test_outages.py.
"""

from __future__ import annotations

import logging
from smtplib import SMTPException

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from postmortems import tasks, workflow
from postmortems.models import ActivityVerb, Notification, NotificationKind, SignOff, Status
from tests.factories import UserFactory
from tests.postmortems.reviewing import make_cast, postmortem

pytestmark = pytest.mark.django_db


@pytest.fixture
def cast():
    return make_cast()


@pytest.fixture
def broker_down(monkeypatch):
    """Every enqueue fails as Celery's does when Redis refuses the connection."""

    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.send_notification, "delay", refuse)


def test_a_transition_records_its_notification_before_it_commits(cast, django_capture_on_commit_callbacks):
    incident = postmortem(cast)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        workflow.request_review(incident, by=cast.owner)

    activity = incident.activities.get(verb=ActivityVerb.REVIEW_REQUESTED)
    [notification] = Notification.objects.all()
    assert (notification.kind, notification.object_id) == (NotificationKind.REVIEW_REQUESTED, activity.pk)
    assert notification.sent_at is None
    assert mail.outbox == []

    for callback in callbacks:  # the commit: without a broker, Celery runs the task in-process
        callback()

    notification.refresh_from_db()
    assert notification.sent_at is not None
    assert len(mail.outbox) == 2


def test_a_rolled_back_change_records_no_notification(cast, django_capture_on_commit_callbacks):
    incident = postmortem(cast)

    def request_then_fail():
        with transaction.atomic():
            workflow.request_review(incident, by=cast.owner)
            raise RuntimeError("later in the same request")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        request_then_fail()

    assert not Notification.objects.exists()
    assert mail.outbox == []


def test_a_refused_enqueue_is_logged_and_the_action_stands(
    cast, broker_down, django_capture_on_commit_callbacks, caplog
):
    incident = postmortem(cast, status=Status.IN_REVIEW)

    with django_capture_on_commit_callbacks(execute=True), caplog.at_level(logging.WARNING):
        sign_off = workflow.approve(incident, by=cast.reviewer_a, revision=incident.revision)

    assert SignOff.objects.filter(pk=sign_off.pk, is_current=True).exists()
    assert incident.activities.filter(verb=ActivityVerb.APPROVED).exists()
    [notification] = Notification.objects.pending()
    assert (notification.kind, notification.object_id) == (NotificationKind.SIGNED_OFF, sign_off.pk)
    [record] = [r for r in caplog.records if r.name == "postmortems.notifications"]
    assert record.levelno == logging.WARNING
    assert f"notification {notification.pk} not sent now" in record.getMessage()
    assert "Connection refused" in caplog.text
    assert mail.outbox == []


def test_the_reviewer_is_not_shown_an_error_when_the_broker_is_down(
    cast, broker_down, client, django_capture_on_commit_callbacks
):
    incident = postmortem(cast, status=Status.IN_REVIEW)
    client.force_login(cast.reviewer_b)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("postmortems:request_changes", args=[incident.pk]),
            {"revision": incident.revision, "comment": "The timeline has no time zones."},
        )

    assert response.status_code == 302
    assert response.url.startswith(incident.get_absolute_url())
    assert SignOff.objects.get(incident=incident, reviewer=cast.reviewer_b).comment.startswith("The timeline")
    assert Notification.objects.pending().count() == 1


def test_without_a_broker_a_failed_send_in_the_request_waits_too(
    cast, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    incident = postmortem(cast, status=Status.IN_REVIEW)

    def refuse(self, fail_silently=False):
        raise SMTPException("421 try again later")

    monkeypatch.setattr(mail.EmailMessage, "send", refuse)
    with django_capture_on_commit_callbacks(execute=True), caplog.at_level(logging.WARNING):
        workflow.approve(incident, by=cast.reviewer_a, revision=incident.revision)  # runs the task in-process

    [waiting] = Notification.objects.pending()
    assert waiting.failures == 1
    assert "421 try again later" in caplog.text


def test_the_catch_up_sends_what_waited_once(cast, broker_down, django_capture_on_commit_callbacks):
    incident = postmortem(cast, status=Status.IN_REVIEW)
    with django_capture_on_commit_callbacks(execute=True):
        workflow.approve(incident, by=cast.reviewer_a, revision=incident.revision)
        workflow.approve(incident, by=cast.reviewer_b, revision=incident.revision)
        workflow.publish(incident, by=cast.owner)
    assert Notification.objects.pending().count() == 3

    assert tasks.send_pending_notifications() == 4  # two approvals to the owner, publication to both
    assert tasks.send_pending_notifications() == 0
    for notification in Notification.objects.all():  # a task the broker did take after all
        assert tasks.send_notification(notification.pk) == 0

    assert not Notification.objects.pending().exists()
    assert sorted(m.to[0] for m in mail.outbox) == [
        "owner@example.com",
        "owner@example.com",
        "reva@example.com",
        "revb@example.com",
    ]


def test_a_notification_sent_in_part_sends_only_the_rest(
    cast, broker_down, django_capture_on_commit_callbacks
):
    incident = postmortem(cast)
    with django_capture_on_commit_callbacks(execute=True):
        workflow.request_review(incident, by=cast.owner)
    activity = incident.activities.get(verb=ActivityVerb.REVIEW_REQUESTED)
    assert tasks.review_requested_emails(activity.pk) == 2  # e.g. a task queued by the previous release

    assert tasks.send_pending_notifications() == 0

    assert len(mail.outbox) == 2
    assert not Notification.objects.pending().exists()


def test_a_failed_send_waits_for_the_next_catch_up_and_the_others_still_go(
    cast, broker_down, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    first = postmortem(cast, status=Status.IN_REVIEW, title="First")
    second = postmortem(cast, status=Status.IN_REVIEW, title="Second")
    with django_capture_on_commit_callbacks(execute=True):
        workflow.approve(first, by=cast.reviewer_a, revision=first.revision)
        workflow.approve(second, by=cast.reviewer_a, revision=second.revision)
    send = mail.EmailMessage.send

    def refuse_the_first(self, fail_silently=False):
        if "First" in self.subject:
            raise SMTPException("421 try again later")
        return send(self, fail_silently)

    monkeypatch.setattr(mail.EmailMessage, "send", refuse_the_first)
    with caplog.at_level(logging.WARNING):
        assert tasks.deliver_pending() == 1

    [waiting] = Notification.objects.pending()
    assert waiting.failures == 1
    assert "421 try again later" in caplog.text
    assert [m.subject for m in mail.outbox] == ["Approved: Second"]

    monkeypatch.setattr(mail.EmailMessage, "send", send)
    assert tasks.deliver_pending() == 1
    assert [m.subject for m in mail.outbox] == ["Approved: Second", "Approved: First"]
    assert not Notification.objects.pending().exists()


def test_the_catch_up_leaves_what_it_has_no_time_for(cast, broker_down, django_capture_on_commit_callbacks):
    incident = postmortem(cast, status=Status.IN_REVIEW)
    with django_capture_on_commit_callbacks(execute=True):
        workflow.approve(incident, by=cast.reviewer_a, revision=incident.revision)

    assert tasks.deliver_pending(seconds=-1) == 0

    assert Notification.objects.pending().count() == 1


def test_a_notification_about_a_vanished_row_is_done(cast):
    notification = Notification.objects.create(kind=NotificationKind.PUBLISHED, object_id=10**9)

    assert tasks.send_notification(notification.pk) == 0

    notification.refresh_from_db()
    assert notification.sent_at is not None


def test_the_command_sends_what_waits(cast, broker_down, django_capture_on_commit_callbacks, capsys):
    incident = postmortem(cast, status=Status.IN_REVIEW)
    with django_capture_on_commit_callbacks(execute=True):
        workflow.approve(incident, by=cast.reviewer_a, revision=incident.revision)

    call_command("send_pending_notifications")

    assert "1 emails sent; 0 notifications still waiting." in capsys.readouterr().out
    assert len(mail.outbox) == 1


def test_beat_runs_the_catch_up_every_minute_without_piling_up():
    entry = settings.CELERY_BEAT_SCHEDULE["pending-notifications"]
    assert entry["task"] == tasks.send_pending_notifications.name
    assert entry["schedule"] == 60
    assert entry["options"]["expires"] < 60


def test_a_new_postmortem_records_the_related_items_notice(client, user, django_capture_on_commit_callbacks):
    client.force_login(user)

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            reverse("postmortems:new"),
            {
                "title": "Queue backed up",
                "incident_date": "2026-03-01",
                "severity": "SEV3",
                "owner": user.pk,
                "time_zone": "UTC",
                "visibility": "normal",
            },
        )

    assert response.status_code == 302
    [notification] = Notification.objects.all()
    assert notification.kind == NotificationKind.RELATED_OPEN_ITEMS


def test_staff_see_in_the_admin_what_waits(client):
    Notification.objects.create(kind=NotificationKind.SIGNED_OFF, object_id=1)
    Notification.objects.create(kind=NotificationKind.PUBLISHED, object_id=2, sent_at=timezone.now())
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    response = client.get(reverse("admin:postmortems_notification_changelist"), {"sent_at__isempty": "1"})

    assert [n.kind for n in response.context["cl"].result_list] == [NotificationKind.SIGNED_OFF]
