import pytest

from postmortems import checks
from postmortems.models import Incident, Status, TimelineEventKind
from tests.factories import (
    ActionItemFactory,
    ContributingFactorFactory,
    IncidentFactory,
    LessonFactory,
    TimelineEventFactory,
    full_incident,
)

pytestmark = pytest.mark.django_db


def loaded(incident) -> Incident:
    return Incident.objects.prefetch_related(*checks.CHECK_PREFETCH).get(pk=incident.pk)


def codes(findings) -> set[str]:
    return {finding.code for finding in findings}


def draft(**kwargs):
    defaults = {"status": Status.DRAFT, "summary": "s", "customer_impact": "c", "impacted_customers": 3}
    return IncidentFactory(**(defaults | kwargs))


def test_complete_postmortem_has_no_blocking_finding():
    incident = loaded(full_incident())
    assert checks.blocking(checks.run_checks(incident)) == []


def test_checks_read_from_memory_once_prefetched(django_assert_num_queries):
    incident = loaded(full_incident())
    with django_assert_num_queries(0):
        checks.run_checks(incident)


def test_missing_summary_blocks():
    findings = checks.check_summary(loaded(draft(summary="  ")))
    assert [(f.code, f.blocking, f.step) for f in findings] == [("summary_missing", True, "impact")]


def test_missing_customer_impact_and_number_block():
    findings = checks.check_customer_impact(loaded(draft(customer_impact="", impacted_customers=None)))
    assert codes(findings) == {"customer_impact_missing", "impacted_customers_missing"}
    assert all(f.blocking for f in findings)


def test_zero_impacted_customers_is_an_answer():
    assert checks.check_customer_impact(loaded(draft(impacted_customers=0))) == []


def test_empty_timeline_blocks():
    assert [f.code for f in checks.check_timeline(loaded(draft()))] == ["timeline_empty"]


def test_timeline_without_detection_or_mitigation_warns():
    incident = draft()
    TimelineEventFactory(incident=incident, kind=TimelineEventKind.TRIGGER)
    (finding,) = checks.check_timeline(loaded(incident))
    assert (finding.code, finding.blocking) == ("timeline_without_detection_or_mitigation", False)
    assert "detection or mitigation" in finding.message


def test_timeline_with_detection_and_mitigation_passes():
    incident = draft()
    TimelineEventFactory(incident=incident, kind=TimelineEventKind.DETECTION)
    TimelineEventFactory(incident=incident, kind=TimelineEventKind.MITIGATION)
    assert checks.check_timeline(loaded(incident)) == []


def test_no_factor_blocks():
    assert [f.code for f in checks.check_factors(loaded(draft()))] == ["factors_missing"]


def test_single_factor_warns_there_is_no_single_cause():
    incident = draft()
    ContributingFactorFactory(incident=incident)
    (finding,) = checks.check_factors(loaded(incident))
    assert (finding.code, finding.blocking) == ("single_factor", False)


def test_human_error_without_why_blocks_and_with_a_child_passes():
    incident = draft()
    human = ContributingFactorFactory(incident=incident, is_human_error=True, description="Operator typo")
    ContributingFactorFactory(incident=incident)
    (finding,) = checks.check_factors(loaded(incident))
    assert (finding.code, finding.blocking) == ("human_error_without_why", True)
    assert "Operator typo" in finding.message
    ContributingFactorFactory(incident=incident, parent=human)
    assert checks.check_factors(loaded(incident)) == []


@pytest.mark.parametrize(
    "text",
    [
        "Bob was careless with the config",
        "It was her fault",
        "Human error by the on-call",
        "He forgot to check",
    ],
)
def test_blaming_language_warns(text):
    incident = draft()
    ContributingFactorFactory(incident=incident, description=text)
    (finding,) = checks.check_blameless_language(loaded(incident))
    assert (finding.code, finding.blocking) == ("factor_blames_a_person", False)


def test_blameless_language_passes():
    incident = draft()
    ContributingFactorFactory(incident=incident, description="No validation of pool sizes in CI")
    assert checks.check_blameless_language(loaded(incident)) == []


def test_no_action_item_blocks():
    assert [f.code for f in checks.check_action_items(loaded(draft()))] == ["action_items_missing"]


def test_incomplete_action_item_blocks_and_names_what_is_missing():
    incident = draft()
    ActionItemFactory(
        incident=incident, title="Add alert", owner=None, due_date=None, priority="", backlog_link="x"
    )
    (finding,) = checks.check_action_items(loaded(incident))
    assert (finding.code, finding.blocking) == ("action_item_incomplete", True)
    assert "needs an owner, a due date and a priority" in finding.message


def test_action_item_without_backlog_link_warns():
    incident = draft()
    ActionItemFactory(incident=incident, backlog_link="")
    (finding,) = checks.check_action_items(loaded(incident))
    assert (finding.code, finding.blocking, finding.step) == (
        "action_item_without_backlog_link",
        False,
        "actions",
    )


def test_leaf_factor_not_addressed_blocks_but_its_parent_need_not_be():
    incident = draft()
    root = ContributingFactorFactory(incident=incident, description="Root")
    leaf = ContributingFactorFactory(incident=incident, parent=root, description="Leaf")
    (finding,) = checks.check_leaf_factors_addressed(loaded(incident))
    assert (finding.code, finding.blocking) == ("factor_not_addressed", True)
    assert "Leaf" in finding.message
    ActionItemFactory(incident=incident, factors=[leaf])
    assert checks.check_leaf_factors_addressed(loaded(incident)) == []


def test_lesson_without_action_item_warns():
    incident = draft()
    LessonFactory(incident=incident, text="Reviews matter")
    (finding,) = checks.check_lessons(loaded(incident))
    assert (finding.code, finding.blocking, finding.step) == ("lesson_without_action_item", False, "lessons")


def test_run_checks_lists_blocking_findings_first():
    incident = draft(summary="")
    LessonFactory(incident=incident)
    findings = checks.run_checks(loaded(incident))
    levels = [f.blocking for f in findings]
    assert levels == sorted(levels, reverse=True)
    assert "summary_missing" in codes(checks.blocking(findings))
    assert "lesson_without_action_item" in codes(findings) - codes(checks.blocking(findings))


def test_every_finding_points_at_a_real_step():
    from postmortems.editing import STEP_SLUGS

    incident = draft(summary="", customer_impact="", impacted_customers=None)
    ContributingFactorFactory(incident=incident, is_human_error=True, description="human error")
    LessonFactory(incident=incident)
    ActionItemFactory(incident=incident, owner=None, backlog_link="")
    assert {f.step for f in checks.run_checks(loaded(incident))} <= set(STEP_SLUGS)
