"""Two saves of the same step at the same moment (PostgreSQL row locks): one wins, the other conflicts."""

import pytest
from django.db import connection

from postmortems import editing
from postmortems.models import Incident, Status
from tests.factories import IncidentFactory, UserFactory
from tests.postmortems.test_workflow_concurrency import impact_edit, race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: row locks and concurrent transactions (SQLite locks the whole file)")


def test_two_saves_of_the_same_stale_step_never_overwrite_each_other():
    owner, co_author = UserFactory(), UserFactory()
    incident = IncidentFactory(owner=owner, co_authors=[co_author], status=Status.DRAFT, summary="Before")

    first, second = race(
        incident,
        lambda: impact_edit(Incident.objects.get(pk=incident.pk), owner, "Owner's summary"),
        lambda: impact_edit(Incident.objects.get(pk=incident.pk), co_author, "Co-author's summary"),
    )

    outcomes = sorted([type(first.error).__name__, type(second.error).__name__])
    assert outcomes == ["EditConflict", "NoneType"]
    winner = first if first.error is None else second
    incident.refresh_from_db()
    assert incident.revision == 2
    assert incident.summary == ("Owner's summary" if winner is first else "Co-author's summary")
    assert incident.activities.count() == 1
    loser = second if winner is first else first
    assert isinstance(loser.error, editing.EditConflict)
    assert loser.error.current.revision == 2
