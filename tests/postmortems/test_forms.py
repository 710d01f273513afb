import datetime as dt
import zoneinfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from postmortems.forms import IncidentBasicsForm, IncidentImpactForm, attach_zone, step_forms
from postmortems.models import Priority, Status
from tests.factories import (
    ActionItemFactory,
    ContributingFactorFactory,
    IncidentFactory,
    LessonFactory,
    TimelineEventFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def basics_data(owner, **changes):
    data = {
        "title": "Checkout failed in the EU region",
        "incident_date": "2026-03-04",
        "severity": "SEV2",
        "time_zone": "Europe/Berlin",
        "started_at": "2026-03-04T09:00",
        "detected_at": "2026-03-04T09:12",
        "mitigated_at": "2026-03-04T10:05",
        "resolved_at": "",
        "owner": str(owner.pk),
        "tags": "database, configuration",
        "visibility": "normal",
    }
    return data | changes


def formset_data(prefix, rows, *, initial=0):
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        data |= {f"{prefix}-{i}-{key}": value for key, value in row.items()}
    return data


def draft(**kwargs):
    return IncidentFactory(status=Status.DRAFT, time_zone="Europe/Berlin", **kwargs)


def test_basics_times_are_read_in_the_chosen_zone(user):
    form = IncidentBasicsForm(basics_data(user))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["started_at"] == dt.datetime(2026, 3, 4, 8, 0, tzinfo=dt.UTC)
    assert form.cleaned_data["tags"] == ["configuration", "database"]


def test_basics_mitigation_before_start_is_refused_next_to_the_field_and_keeps_values(user):
    form = IncidentBasicsForm(basics_data(user, mitigated_at="2026-03-04T08:30"))
    assert not form.is_valid()
    assert form.errors["mitigated_at"] == ["The mitigated time cannot be before the started time."]
    html = form["mitigated_at"].as_widget()
    assert 'value="2026-03-04T08:30"' in html
    assert form["title"].value() == "Checkout failed in the EU region"


def test_basics_unknown_time_zone_is_refused(user):
    form = IncidentBasicsForm(basics_data(user, time_zone="Mars/Olympus"))
    assert not form.is_valid()
    assert "is not a time zone name" in form.errors["time_zone"][0]


def test_basics_time_skipped_by_daylight_saving_is_refused(user):
    form = IncidentBasicsForm(basics_data(user, incident_date="2026-03-29", started_at="2026-03-29T02:30"))
    assert not form.is_valid()
    assert "does not exist in Europe/Berlin" in form.errors["started_at"][0]


def test_attach_zone_refuses_an_ambiguous_time():
    with pytest.raises(Exception, match="happened twice"):
        attach_zone(dt.datetime(2026, 10, 25, 2, 30), "Europe/Berlin")


def test_basics_shows_stored_times_in_the_incident_zone():
    incident = draft(started_at=dt.datetime(2026, 3, 4, 8, 0, tzinfo=dt.UTC))
    form = IncidentBasicsForm(instance=incident)
    assert 'value="2026-03-04T09:00"' in form["started_at"].as_widget()


def test_impact_negative_customers_refused_with_a_clear_message():
    incident = draft()
    form = IncidentImpactForm(
        {"summary": "s", "supporting_data": "", "customer_impact": "c", "impacted_customers": "-3"},
        instance=incident,
    )
    assert not form.is_valid()
    assert "cannot be negative" in form.errors["impacted_customers"][0]
    assert form["summary"].value() == "s"


def test_impact_zero_customers_is_an_answer():
    form = IncidentImpactForm(
        {"summary": "s", "supporting_data": "", "customer_impact": "none", "impacted_customers": "0"},
        instance=draft(),
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["impacted_customers"] == 0


def test_timeline_row_without_zone_is_refused_and_keeps_the_typed_time():
    incident = draft()
    data = formset_data(
        "timeline",
        [
            {
                "occurred_at": "2026-03-04T09:00",
                "zone": "",
                "kind": "trigger",
                "description": "Deploy",
                "link": "",
            }
        ],
    )
    (formset,) = step_forms("timeline", incident, data=data)
    assert not formset.is_valid()
    assert "Choose the time zone" in formset.forms[0].errors["zone"][0]
    assert 'value="2026-03-04T09:00"' in formset.forms[0]["occurred_at"].as_widget()


def test_timeline_row_malformed_link_is_refused():
    data = formset_data(
        "timeline",
        [
            {
                "occurred_at": "2026-03-04T09:00",
                "zone": "UTC",
                "kind": "trigger",
                "description": "Deploy",
                "link": "http://exa mple",
            }
        ],
    )
    (formset,) = step_forms("timeline", draft(), data=data)
    assert not formset.is_valid()
    assert formset.forms[0].errors["link"] == ["Enter a full link, like https://grafana.example.com/d/abc."]


def test_timeline_row_in_another_zone_is_stored_aware():
    data = formset_data(
        "timeline",
        [
            {
                "occurred_at": "2026-03-04T09:00",
                "zone": "America/New_York",
                "kind": "detection",
                "description": "x",
            }
        ],
    )
    (formset,) = step_forms("timeline", draft(), data=data)
    assert formset.is_valid(), formset.errors
    assert formset.forms[0].cleaned_data["occurred_at"] == dt.datetime(2026, 3, 4, 14, 0, tzinfo=dt.UTC)


def test_action_item_due_date_in_the_past_is_refused():
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    data = formset_data(
        "actions", [{"title": "Add a check", "priority": "P2", "due_date": yesterday.isoformat()}]
    )
    (formset,) = step_forms("actions", draft(), data=data)
    assert not formset.is_valid()
    assert formset.forms[0].errors["due_date"] == ["The due date is in the past; pick today or a later day."]


def test_action_item_existing_overdue_date_does_not_block_saving_other_changes():
    incident = draft()
    item = ActionItemFactory(incident=incident, due_date=timezone.localdate() - dt.timedelta(days=10))
    data = formset_data(
        "actions",
        [
            {
                "id": str(item.pk),
                "title": "Renamed",
                "owner": str(item.owner_id),
                "priority": "P2",
                "due_date": item.due_date.isoformat(),
            }
        ],
        initial=1,
    )
    (formset,) = step_forms("actions", incident, data=data)
    assert formset.is_valid(), formset.errors


@pytest.mark.parametrize(("priority", "days"), [("P1", 28), ("P2", 56), ("P3", 90), ("P4", 180)])
def test_action_item_blank_due_date_defaults_from_priority(priority, days):
    data = formset_data("actions", [{"title": "Add a check", "priority": priority, "due_date": ""}])
    (formset,) = step_forms("actions", draft(), data=data)
    assert formset.is_valid(), formset.errors
    assert formset.forms[0].cleaned_data["due_date"] == timezone.localdate() + dt.timedelta(days=days)


def test_action_item_due_date_default_follows_the_setting(settings):
    settings.ACTION_ITEM_SLO_DAYS = {**settings.ACTION_ITEM_SLO_DAYS, Priority.P1: 7}
    data = formset_data("actions", [{"title": "Add a check", "priority": "P1", "due_date": ""}])
    (formset,) = step_forms("actions", draft(), data=data)
    assert formset.is_valid()
    assert formset.forms[0].cleaned_data["due_date"] == timezone.localdate() + dt.timedelta(days=7)


def test_factor_parent_must_belong_to_the_same_incident():
    incident = draft()
    foreign = ContributingFactorFactory(incident=draft())
    data = formset_data(
        "factors", [{"description": "Why?", "category": "process", "parent": str(foreign.pk)}]
    )
    (formset,) = step_forms("factors", incident, data=data)
    assert not formset.is_valid()
    assert "Select a valid choice" in formset.forms[0].errors["parent"][0]


def test_factor_cannot_answer_why_for_itself():
    incident = draft()
    factor = ContributingFactorFactory(incident=incident)
    child = ContributingFactorFactory(incident=incident, parent=factor)
    data = formset_data(
        "factors",
        [
            {"id": str(factor.pk), "description": "root", "category": "process", "parent": str(child.pk)},
            {"id": str(child.pk), "description": "child", "category": "process", "parent": str(factor.pk)},
        ],
        initial=2,
    )
    (formset,) = step_forms("factors", incident, data=data)
    assert not formset.is_valid()
    assert "cannot answer “why?” for itself" in formset.forms[0].errors["parent"][0]


def test_lesson_links_only_action_items_of_its_incident():
    incident = draft()
    other = ActionItemFactory(incident=draft())
    data = formset_data("lessons", [{"text": "Review configs", "action_items": [str(other.pk)]}])
    (formset,) = step_forms("lessons", incident, data=data)
    assert not formset.is_valid()
    assert "Select a valid choice" in formset.forms[0].errors["action_items"][0]


def test_formset_rows_share_one_query_per_choice_list(django_assert_max_num_queries):
    incident = draft()
    factors = [ContributingFactorFactory(incident=incident) for _ in range(3)]
    lessons = [LessonFactory(incident=incident) for _ in range(3)]
    for i in range(8):
        item = ActionItemFactory(incident=incident, factors=factors[:2])
        item.lessons.add(lessons[i % 3])
    TimelineEventFactory(incident=incident)
    with django_assert_max_num_queries(9):
        (formset,) = step_forms("actions", incident)
        html = "".join(str(form) for form in formset)
    assert html.count('type="checkbox"') > 8 * 5


def test_basics_form_lists_only_active_people():
    UserFactory(username="gone", is_active=False)
    form = IncidentBasicsForm()
    assert "gone" not in [user.username for user in form.fields["owner"].queryset]


# --- review fixes: malformed, out-of-range and offset times; who may change the owner ---------------------


@pytest.mark.parametrize("typed", ["garbage", "99999-01-01T00:00", "2026-13-01T00:00", "2026-02-30T10:00"])
def test_basics_unparseable_time_is_an_error_next_to_the_field(user, typed):
    form = IncidentBasicsForm(basics_data(user, detected_at=typed))
    assert not form.is_valid()
    assert form.errors["detected_at"] == ["Enter a date and time like 2026-03-04 14:05 (year 1 to 9999)."]


@pytest.mark.parametrize("typed", ["garbage", "99999-01-01T00:00"])
def test_timeline_unparseable_time_is_an_error_next_to_the_field(typed):
    data = formset_data(
        "timeline", [{"occurred_at": typed, "zone": "UTC", "kind": "trigger", "description": "x"}]
    )
    (formset,) = step_forms("timeline", draft(), data=data)
    assert not formset.is_valid()
    assert formset.forms[0].errors["occurred_at"] == [
        "Enter a date and time like 2026-03-04 14:05 (year 1 to 9999)."
    ]


@pytest.mark.parametrize(
    ("typed", "zone_name"), [("0001-01-01T00:00", "Asia/Tokyo"), ("9999-12-31T23:00", "America/New_York")]
)
def test_times_at_the_ends_of_the_calendar_are_refused_next_to_the_field(user, typed, zone_name):
    form = IncidentBasicsForm(basics_data(user, time_zone=zone_name, started_at=typed))
    assert not form.is_valid()
    assert "falls outside the calendar" in form.errors["started_at"][0]
    data = formset_data(
        "timeline", [{"occurred_at": typed, "zone": zone_name, "kind": "trigger", "description": "x"}]
    )
    (formset,) = step_forms("timeline", draft(), data=data)
    assert not formset.is_valid()
    assert "falls outside the calendar" in formset.forms[0].errors["occurred_at"][0]
    with pytest.raises(ValidationError):
        attach_zone(dt.datetime.fromisoformat(typed), zone_name)


def test_offset_time_beyond_the_calendar_is_refused(user):
    form = IncidentBasicsForm(basics_data(user, started_at="9999-12-31T23:00-05:00"))
    assert not form.is_valid()
    assert "outside the calendar" in form.errors["started_at"][0]


def test_basics_time_typed_with_an_offset_keeps_its_instant(user):
    form = IncidentBasicsForm(basics_data(user, time_zone="UTC", started_at="2026-03-04T10:00+05:00"))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["started_at"] == dt.datetime(2026, 3, 4, 5, 0, tzinfo=dt.UTC)
    assert form.cleaned_data["detected_at"] == dt.datetime(2026, 3, 4, 9, 12, tzinfo=dt.UTC)


def test_timeline_time_typed_with_an_offset_keeps_its_instant():
    incident = IncidentFactory(status=Status.DRAFT, time_zone="UTC")
    data = formset_data(
        "timeline",
        [{"occurred_at": "2026-03-04T10:00+05:00", "zone": "UTC", "kind": "trigger", "description": "x"}],
    )
    (formset,) = step_forms("timeline", incident, data=data)
    assert formset.is_valid(), formset.errors
    formset.save()
    event = incident.timeline_events.get()
    assert event.occurred_at == dt.datetime(2026, 3, 4, 5, 0, tzinfo=dt.UTC)


def test_stored_time_outside_the_zone_calendar_still_renders():
    incident = IncidentFactory(
        status=Status.DRAFT, time_zone="America/New_York", started_at=dt.datetime(1, 1, 1, tzinfo=dt.UTC)
    )
    form = IncidentBasicsForm(instance=incident)
    assert 'value="0001-01-01T00:00"' in str(form["started_at"])


def test_co_author_cannot_change_the_owner_in_the_form():
    owner, co_author = UserFactory(), UserFactory()
    incident = draft(owner=owner)
    incident.co_authors.add(co_author)
    form = IncidentBasicsForm(basics_data(co_author), instance=incident, editor=co_author)
    assert form.fields["owner"].disabled
    assert form.is_valid(), form.errors
    assert form.cleaned_data["owner"] == owner
    assert "owner" not in form.changed_data


@pytest.mark.parametrize("who", ["owner", "staff"])
def test_owner_and_staff_may_change_the_owner_in_the_form(who):
    owner, other = UserFactory(), UserFactory()
    editor = owner if who == "owner" else UserFactory(is_staff=True)
    form = IncidentBasicsForm(basics_data(other), instance=draft(owner=owner), editor=editor)
    assert not form.fields["owner"].disabled
    assert form.is_valid(), form.errors
    assert form.cleaned_data["owner"] == other


def test_anyone_picks_the_owner_of_a_new_postmortem(user):
    other = UserFactory()
    form = IncidentBasicsForm(basics_data(other), editor=user)
    assert not form.fields["owner"].disabled
    assert form.is_valid(), form.errors
    assert form.cleaned_data["owner"] == other


def test_basics_with_unchanged_times_is_not_a_change(user):
    form = IncidentBasicsForm(basics_data(user))
    assert form.is_valid(), form.errors
    incident = form.save()
    again = IncidentBasicsForm(basics_data(user), instance=incident, editor=user)
    assert again.changed_data == []
    moved = IncidentBasicsForm(basics_data(user, started_at="2026-03-04T09:01"), instance=incident)
    assert moved.changed_data == ["started_at"]
    same_instant = IncidentBasicsForm(
        basics_data(user, started_at="2026-03-04T08:00+00:00"), instance=incident
    )
    assert same_instant.changed_data == []
