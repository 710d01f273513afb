import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from postmortems.models import ActionItemStatus, Decision, Incident
from tests.factories import (
    ActionItemFactory,
    ContributingFactorFactory,
    IncidentFactory,
    SignOffFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def test_impacted_customers_cannot_be_negative_in_the_database():
    incident = IncidentFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Incident.objects.filter(pk=incident.pk).update(impacted_customers=-1)


def test_impacted_customers_zero_is_an_answer_and_blank_is_not_stated():
    incident = IncidentFactory(impacted_customers=0)
    incident.refresh_from_db()
    assert incident.impacted_customers == 0
    assert IncidentFactory(impacted_customers=None).impacted_customers is None


def test_one_current_sign_off_per_reviewer():
    incident = IncidentFactory()
    reviewer = UserFactory()
    SignOffFactory(incident=incident, reviewer=reviewer)
    with pytest.raises(IntegrityError), transaction.atomic():
        SignOffFactory(incident=incident, reviewer=reviewer)


def test_sign_off_history_is_kept_beside_the_current_one():
    incident = IncidentFactory()
    reviewer = UserFactory()
    SignOffFactory(incident=incident, reviewer=reviewer, is_current=False)
    SignOffFactory(incident=incident, reviewer=reviewer, is_current=False)
    SignOffFactory(incident=incident, reviewer=reviewer)
    assert incident.sign_offs.filter(reviewer=reviewer).count() == 3


def test_request_changes_needs_a_comment_in_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        SignOffFactory(decision=Decision.REQUEST_CHANGES, comment="")


def test_factor_parent_must_belong_to_the_same_incident():
    parent = ContributingFactorFactory()
    other_incident = IncidentFactory()
    with pytest.raises(ValidationError, match="same incident"):
        ContributingFactorFactory(incident=other_incident, parent=parent)
    assert not other_incident.factors.exists()


def test_factor_cannot_become_its_own_ancestor():
    root = ContributingFactorFactory()
    child = ContributingFactorFactory(incident=root.incident, parent=root)
    root.parent = child
    with pytest.raises(ValidationError, match="itself"):
        root.save()


def test_wont_do_needs_a_reason_in_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        ActionItemFactory(status=ActionItemStatus.WONT_DO, wont_do_reason="")


def test_done_needs_completed_at_in_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        ActionItemFactory(status=ActionItemStatus.DONE, completed_at=None)


def test_times_out_of_order_are_refused_by_clean():
    start = dt.datetime(2026, 3, 4, 9, 0, tzinfo=dt.UTC)
    incident = IncidentFactory.build(
        owner=UserFactory(), started_at=start, mitigated_at=start - dt.timedelta(minutes=5)
    )
    with pytest.raises(ValidationError) as excinfo:
        incident.clean()
    assert "mitigated_at" in excinfo.value.message_dict


def test_derived_durations():
    start = dt.datetime(2026, 3, 4, 9, 0, tzinfo=dt.UTC)
    incident = IncidentFactory(
        started_at=start,
        detected_at=start + dt.timedelta(minutes=12),
        mitigated_at=start + dt.timedelta(hours=1),
        resolved_at=None,
    )
    assert incident.time_to_detect == dt.timedelta(minutes=12)
    assert incident.time_to_mitigate == dt.timedelta(hours=1)
    assert incident.time_to_resolve is None
