"""The snapshot taken at each sign-off and the diff a returning reviewer reads (postmortems/changes.py)."""

import datetime as dt

import pytest

from postmortems import changes
from postmortems.models import Incident
from tests.factories import (
    ActionItemFactory,
    ContributingFactorFactory,
    LessonFactory,
    TimelineEventFactory,
    full_incident,
)

pytestmark = pytest.mark.django_db


def _snapshot(incident):
    return changes.snapshot(Incident.objects.prefetch_related(*changes.SNAPSHOT_PREFETCH).get(pk=incident.pk))


def test_snapshot_holds_every_part_in_readable_text():
    incident = full_incident()
    snap = _snapshot(incident)

    assert list(snap) == list(changes.PARTS)
    assert "Title: Checkout API failed, affecting customers in the EU region" in snap["basics"]
    assert "Tags: configuration, database" in snap["basics"]
    assert "Started: 2026-03-04 09:00 CET" in snap["basics"]  # in the incident's own zone
    assert snap["customer_impact"].startswith("Impacted customers: 1234\nEU customers could not check out.")
    assert snap["timeline"].splitlines()[1] == "2026-03-04 09:05 CET · Detection · Timeline event number 1"
    assert snap["factors"].splitlines() == [
        "- Pool size set to 5 in production [Technology]",
        "  - Why 1: no review of config values [Technology]",
        "    - Why 2: no review of config values [Technology]",
    ]
    assert "Validate pool sizes in CI 0 (owner " in snap["action_items"]
    assert snap["lessons"].startswith("Config changes need the same review as code. → Validate pool sizes")


def test_snapshot_reads_from_prefetched_rows(django_assert_num_queries):
    incident = full_incident()
    loaded = Incident.objects.prefetch_related(*changes.SNAPSHOT_PREFETCH).get(pk=incident.pk)
    with django_assert_num_queries(0):
        changes.snapshot(loaded)


def test_diff_of_equal_snapshots_is_empty():
    snap = _snapshot(full_incident())
    assert changes.diff(snap, dict(snap)) == []


def test_diff_shows_added_and_removed_lines_per_part_in_template_order():
    incident = full_incident()
    before = _snapshot(incident)
    Incident.objects.filter(pk=incident.pk).update(
        summary="A pool change.\n\nSecond paragraph.", impacted_customers=0
    )
    TimelineEventFactory(
        incident=incident, occurred_at=dt.datetime(2026, 3, 4, 12, 0, tzinfo=dt.UTC), description="All clear"
    )
    root = incident.factors.get(parent=None)
    human = ContributingFactorFactory(incident=incident, parent=root, description="Typo", is_human_error=True)
    ActionItemFactory(incident=incident, title="Lint configs", factors=[human])
    LessonFactory(incident=incident, text="Review configs")

    diff = changes.diff(before, _snapshot(incident))

    assert [part.key for part in diff] == [
        "summary",
        "customer_impact",
        "timeline",
        "factors",
        "lessons",
        "action_items",
    ]
    summary = diff[0]
    assert [(line.kind, line.text) for line in summary.lines] == [
        ("removed", "A **connection-pool** change exhausted database connections."),
        ("added", "A pool change."),
        ("added", ""),
        ("added", "Second paragraph."),
    ]
    assert (summary.added, summary.removed) == (3, 1)
    impact = {(line.kind, line.text) for line in diff[1].lines}
    assert {("removed", "Impacted customers: 1234"), ("added", "Impacted customers: 0")} <= impact
    assert ("added", "2026-03-04 13:00 CET · Other · All clear") in [
        (line.kind, line.text) for line in diff[2].lines
    ]
    assert ("added", "  - Typo [Technology, human error]") in [
        (line.kind, line.text) for line in diff[3].lines
    ]


def test_diff_keeps_a_little_context_and_marks_gaps():
    old = {"timeline": "\n".join(f"event {n}" for n in range(20))}
    new = {
        "timeline": old["timeline"].replace("event 2\n", "event two\n").replace("event 17", "event seventeen")
    }

    [part] = changes.diff(old, new, context=1)

    assert [line.kind for line in part.lines] == [
        "context", "removed", "added", "context", "gap", "context", "removed", "added", "context",
    ]  # fmt: skip
    assert part.lines[4].sign == "…"


def test_diff_treats_lines_starting_with_dashes_as_content():
    [part] = changes.diff({"summary": "--- a rule\nkeep"}, {"summary": "keep"})
    assert [(line.kind, line.text) for line in part.lines] == [("removed", "--- a rule"), ("context", "keep")]
