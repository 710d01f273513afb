"""postmortems/aggregates.py: the cached public figures follow every change a published incident undergoes,
on the very next request (tag counts of /tags/ and the figures of /insights/)."""

import datetime as dt

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.urls import reverse

from postmortems import followthrough, workflow
from postmortems.models import ActionItemStatus, Incident, Visibility
from tests.factories import ActionItemFactory, IncidentFactory, UserFactory

pytestmark = pytest.mark.django_db

PERIOD = {"from": "2026-01-01", "to": "2026-06-30"}


def _reopen(incident, staff):
    workflow.reopen(incident, by=incident.owner, reason="More to learn")


def _restrict(incident, staff):
    row = Incident.objects.get(pk=incident.pk)  # as the admin reads it
    row.visibility = Visibility.RESTRICTED
    row.save()


def _delete_in_the_admin(incident, staff):
    LogEntry.objects.log_actions(staff.pk, [incident], CHANGE, change_message="Deleted")
    Incident.objects.filter(pk=incident.pk).delete()


@pytest.mark.parametrize("change", [_reopen, _restrict, _delete_in_the_admin])
def test_public_figures_drop_an_incident_that_stops_being_public(client_for, change):
    staff, reader = UserFactory(is_staff=True), UserFactory()
    incident = IncidentFactory(tags=["vault"], incident_date=dt.date(2026, 3, 4))
    IncidentFactory(tags=["disk"], incident_date=dt.date(2026, 3, 5))
    client = client_for(reader)
    assert "vault" in client.get(reverse("postmortems:tags")).content.decode()
    assert "n = 2" in client.get(reverse("postmortems:insights"), PERIOD).content.decode()

    change(incident, staff)

    assert "vault" not in client.get(reverse("postmortems:tags")).content.decode()
    assert "n = 1" in client.get(reverse("postmortems:insights"), PERIOD).content.decode()


def test_follow_through_on_a_published_incident_reaches_the_insights_at_once(client_for):
    owner = UserFactory()
    incident = IncidentFactory(owner=owner, incident_date=dt.date(2026, 3, 4))
    item = ActionItemFactory(incident=incident, owner=owner, due_date=dt.date.today() + dt.timedelta(days=30))
    client = client_for(UserFactory())
    before = client.get(reverse("postmortems:insights"), PERIOD).context["follow_through"]
    assert (before.on_time, before.late) == (0, 0)  # not due yet

    followthrough.update_action_item(item, by=owner, status=ActionItemStatus.DONE, backlog_link="")

    after = client.get(reverse("postmortems:insights"), PERIOD).context["follow_through"]
    assert (after.on_time, after.late) == (1, 0)
