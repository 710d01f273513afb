"""Staff act on the workflow from the admin; what they do is logged as a staff action."""

import pytest
from django.urls import reverse

from postmortems.models import ActivityVerb, Status
from tests.postmortems.reviewing import make_cast, postmortem

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:postmortems_incident_changelist")


@pytest.fixture
def cast():
    return make_cast()


@pytest.fixture
def staff_client(client, cast):
    cast.staff.is_superuser = True
    cast.staff.save()
    client.force_login(cast.staff)
    return client


def test_staff_publishes_from_the_admin_as_a_staff_action(staff_client, cast):
    incident = postmortem(cast, status=Status.IN_REVIEW, approved_by=[cast.reviewer_a, cast.reviewer_b])

    response = staff_client.post(
        CHANGELIST, {"action": "publish_as_staff", "_selected_action": [incident.pk]}, follow=True
    )

    incident.refresh_from_db()
    assert incident.status == Status.PUBLISHED
    activity = incident.activities.get(verb=ActivityVerb.PUBLISHED)
    assert activity.actor == cast.staff
    assert activity.is_staff_action
    assert "Published: 1 postmortem(s)." in response.content.decode()


def test_admin_publish_still_needs_the_approvals(staff_client, cast):
    incident = postmortem(cast, status=Status.IN_REVIEW, approved_by=[cast.reviewer_a])

    response = staff_client.post(
        CHANGELIST, {"action": "publish_as_staff", "_selected_action": [incident.pk]}, follow=True
    )

    incident.refresh_from_db()
    assert incident.status == Status.IN_REVIEW
    assert "Ben Reviewer has not signed off yet." in response.content.decode()


def test_staff_withdraws_from_the_admin(staff_client, cast):
    incident = postmortem(cast, status=Status.IN_REVIEW)
    staff_client.post(CHANGELIST, {"action": "withdraw_from_review", "_selected_action": [incident.pk]})
    incident.refresh_from_db()
    assert incident.status == Status.DRAFT
    assert incident.activities.get(verb=ActivityVerb.WITHDRAWN).is_staff_action


def test_staff_reopen_asks_for_a_reason_first(staff_client, cast):
    incident = postmortem(cast, status=Status.PUBLISHED)

    asked = staff_client.post(CHANGELIST, {"action": "reopen_as_staff", "_selected_action": [incident.pk]})
    assert "Reason for reopening" in asked.content.decode()
    incident.refresh_from_db()
    assert incident.status == Status.PUBLISHED

    staff_client.post(
        CHANGELIST,
        {"action": "reopen_as_staff", "_selected_action": [incident.pk], "reason": "Names a customer."},
    )
    incident.refresh_from_db()
    assert incident.status == Status.DRAFT
    activity = incident.activities.get(verb=ActivityVerb.REOPENED)
    assert activity.detail == "Names a customer."
    assert activity.is_staff_action


def test_status_cannot_be_edited_directly_in_the_admin(staff_client, cast):
    incident = postmortem(cast, status=Status.DRAFT)
    page = staff_client.get(reverse("admin:postmortems_incident_change", args=[incident.pk])).content.decode()
    assert 'name="status"' not in page
