import json
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


def test_seed_demo_names_each_public_record_it_skips_and_why(tmp_path):
    good = {
        "title": "Queue backlog",
        "url": "https://example.com/pm/1",
        "date": "2024-05-02",
        "tags": ["queue"],
    }
    (tmp_path / "icco_postmortems.jsonl").write_text(
        "\n".join(
            [
                json.dumps({"title": "Power loss", "url": "https://example.com/pm/0", "date": None}),
                json.dumps(good),
                "",
                "{not json",
                json.dumps({"title": "Bad date", "url": "https://example.com/pm/2", "date": "May 2024"}),
            ]
        )
        + "\n"
    )
    out = StringIO()

    call_command("seed_demo", public_data=tmp_path, stdout=out)

    lines = out.getvalue().splitlines()
    summary = next(line for line in lines if line.startswith("Public postmortems:"))
    assert summary == "Public postmortems: 1 created, 0 already there, 3 skipped:"
    reasons = lines[lines.index(summary) + 1 :]
    assert reasons == [
        "  icco_postmortems.jsonl line 1: no date (neither date, start time nor year)",
        "  icco_postmortems.jsonl line 4: not valid JSON (Expecting property name enclosed in double quotes)",
        "  icco_postmortems.jsonl line 5: date 'May 2024' is not YYYY-MM-DD",
    ]
    assert "unreadable" not in out.getvalue()
    assert Incident.objects.get(source_url="https://example.com/pm/1").title == "Queue backlog"


def test_seed_demo_says_nothing_was_skipped_when_every_record_reads(tmp_path):
    record = {"title": "Queue backlog", "url": "https://example.com/pm/1", "date": "2024-05-02"}
    (tmp_path / "icco_postmortems.jsonl").write_text(json.dumps(record) + "\n")
    out = StringIO()
    call_command("seed_demo", public_data=tmp_path, stdout=out)
    assert "Public postmortems: 1 created, 0 already there, 0 skipped." in out.getvalue()
