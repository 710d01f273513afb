from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import Team, User
from postmortems.models import (
    ActionItem,
    Activity,
    ContributingFactor,
    Incident,
    Lesson,
    SignOff,
    Status,
    TimelineEvent,
)

pytestmark = pytest.mark.django_db

COUNTED = [User, Team, Incident, TimelineEvent, ContributingFactor, ActionItem, Lesson, SignOff, Activity]


def _counts():
    return {model.__name__: model.objects.count() for model in COUNTED}


def test_seed_demo_without_public_data_creates_complete_demo(tmp_path):
    out = StringIO()
    call_command("seed_demo", public_data=tmp_path / "absent", stdout=out)
    assert "skipping" in out.getvalue()
    assert set(User.objects.values_list("username", flat=True)) >= {"alice", "bob", "carol"}
    alice = User.objects.get(username="alice")
    assert alice.check_password("hindsight-demo")
    published = Incident.objects.published()
    assert published.count() >= 12
    for incident in published:
        assert incident.summary
        assert incident.supporting_data
        assert incident.customer_impact
        assert incident.response_analysis
        assert incident.post_incident_analysis
        assert incident.impacted_customers is not None
        assert incident.timeline_events.exists()
        assert incident.factors.filter(parent__isnull=False).exists()
        assert incident.lessons.exists()
        assert incident.action_items.exists()
        assert incident.tags.exists()
    for name in ("alice", "bob", "carol"):
        mine = Incident.objects.filter(owner__username=name)
        assert mine.filter(status=Status.DRAFT).exists()
        assert mine.filter(status=Status.IN_REVIEW).exists()


def test_seed_demo_twice_creates_nothing_twice(tmp_path):
    call_command("seed_demo", public_data=tmp_path / "absent", stdout=StringIO())
    first = _counts()
    call_command("seed_demo", public_data=tmp_path / "absent", stdout=StringIO())
    assert _counts() == first


def test_seed_demo_adds_public_records_once(public_data_dir):
    call_command("seed_demo", public_data=public_data_dir, stdout=StringIO())
    imported = Incident.objects.exclude(source_url="")
    first = imported.count()
    assert 30 <= first <= 60
    github = imported.filter(company="GitHub").first()
    assert github.timeline_events.exists()
    call_command("seed_demo", public_data=public_data_dir, stdout=StringIO())
    assert Incident.objects.exclude(source_url="").count() == first
