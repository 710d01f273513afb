"""Each input that once made a page answer 500 (issue 18's attack run), fixed at its root."""

import datetime as dt
import json

import pytest
from django.contrib import admin
from django.db import connection
from taggit.models import Tag

from postmortems import search
from postmortems.admin import IncidentAdmin
from postmortems.forms import IncidentBasicsForm, TagsField
from postmortems.importing import parse_record
from postmortems.models import Incident, Status
from tests.factories import IncidentFactory, TimelineEventFactory, UserFactory
from tests.postmortems.test_forms import basics_data, formset_data

pytestmark = pytest.mark.django_db


# 1. A tag made only of punctuation or emoji had an empty slug; every page showing it failed.


@pytest.mark.parametrize("tag", ["!!!", ">", "-", "🔥", "…"])
def test_a_tag_without_letters_or_digits_is_refused_by_the_form(user, tag):
    form = IncidentBasicsForm(basics_data(user, tags=f"database, {tag}"))
    assert not form.is_valid()
    assert "has no letter or digit" in form.errors["tags"][0]


def test_a_tag_in_another_script_is_kept(user):
    form = IncidentBasicsForm(basics_data(user, tags="データベース, café"))
    assert form.is_valid(), form.errors
    assert sorted(form.cleaned_data["tags"]) == ["café", "データベース"]


def test_a_page_showing_an_old_tag_without_slug_still_answers(client_for, user):
    incident = IncidentFactory(owner=user)
    tag = Tag.objects.create(name="🔥", slug="")
    incident.tags.add(tag)
    response = client_for(user).get(incident.get_absolute_url())
    assert response.status_code == 200
    assert "🔥" in response.content.decode()


def test_the_admin_refuses_such_tags_too():
    field = IncidentAdmin(Incident, admin.site).formfield_for_dbfield(Incident._meta.get_field("tags"), None)
    assert isinstance(field, TagsField)


def test_imported_tags_without_letters_are_dropped():
    line = {
        "url": "https://example.com/pm",
        "title": "Outage",
        "date": "2020-01-01",
        "tags": ["dns", "🔥", "x" * 80],
    }
    record = parse_record(json.dumps(line))
    assert record.tags == ["dns", "x" * 50]


# 3. A time of 0001-01-01 00:00 UTC could not be shown in a zone west of UTC (OverflowError).


@pytest.mark.parametrize(
    ("time_zone", "started"), [("UTC", "0001-01-01T00:00"), ("Pacific/Kiritimati", "9999-12-31T23:00")]
)
def test_times_outside_what_every_zone_can_show_are_refused(user, time_zone, started):
    form = IncidentBasicsForm(basics_data(user, time_zone=time_zone, started_at=started, detected_at=""))
    assert not form.is_valid()
    assert "edge of the calendar" in form.errors["started_at"][0]


def test_a_time_typed_with_an_offset_at_the_edge_is_refused_too(user):
    form = IncidentBasicsForm(basics_data(user, started_at="0001-01-01T05:00+00:00", detected_at=""))
    assert not form.is_valid()
    assert "edge of the calendar" in form.errors["started_at"][0]


def test_a_stored_time_at_the_edge_is_shown_in_utc(client_for):
    reader = UserFactory(time_zone="America/Los_Angeles")
    incident = IncidentFactory(started_at=dt.datetime(1, 1, 1, tzinfo=dt.UTC), time_zone="America/New_York")
    TimelineEventFactory(incident=incident, occurred_at=dt.datetime(1, 1, 1, 2, tzinfo=dt.UTC))
    response = client_for(reader).get(incident.get_absolute_url())
    assert response.status_code == 200
    page = response.content.decode()
    assert '<time datetime="0001-01-01T00:00:00+00:00"' in page
    assert '00:00 <span class="text-body-secondary">UTC (America/New_York)</span>' in page


# 4. A tag longer than 100 characters was a database error on save.


def test_a_tag_longer_than_the_limit_is_refused_by_the_form(user):
    form = IncidentBasicsForm(basics_data(user, tags="t" * 101))
    assert not form.is_valid()
    assert "101 characters long; a tag has at most 50" in form.errors["tags"][0]


def test_a_long_tag_posted_to_the_new_draft_page_is_a_message_not_a_500(client_for, user):
    response = client_for(user).post("/postmortems/new/", basics_data(user, tags="x" * 300))
    assert response.status_code == 200
    assert "a tag has at most 50" in response.content.decode()
    assert not Incident.objects.exists()


# 7. An autosave of an invalid formset step treated the formset's errors (a list) as a dict.


@pytest.mark.parametrize(
    ("step", "row"),
    [
        ("timeline", {"occurred_at": "not a time", "zone": "UTC", "kind": "other", "description": "x"}),
        ("factors", {"description": "", "category": "nonsense"}),
        ("lessons", {"text": "x", "action_items": "999"}),
        ("actions", {"title": "", "priority": "P9"}),
    ],
)
def test_an_autosave_of_an_invalid_formset_step_answers_400_with_messages(client_for, user, step, row):
    incident = IncidentFactory(owner=user, status=Status.DRAFT)
    data = formset_data(step, [row]) | {"expected_revision": "1", "_autosave": "1"}
    response = client_for(user).post(f"/postmortems/{incident.pk}/edit/{step}/", data)
    assert response.status_code == 400
    errors = json.loads(response.content)["errors"]
    assert errors
    assert all(message.startswith("Row 1, ") for message in errors), errors


def test_an_autosave_with_a_broken_management_form_says_so(client_for, user):
    incident = IncidentFactory(owner=user, status=Status.DRAFT)
    data = {"timeline-TOTAL_FORMS": "x", "expected_revision": "1", "_autosave": "1"}
    response = client_for(user).post(f"/postmortems/{incident.pk}/edit/timeline/", data)
    assert response.status_code == 400
    assert any(message.startswith("Rows: ") for message in json.loads(response.content)["errors"])


# 5. A NUL byte in a query string or in a tag's address (tests/config/test_hardening.py tests the others).


def test_a_nul_byte_in_a_tag_page_address_is_a_400(client_for, user):
    response = client_for(user).get("/tags/data%00loss/")
    assert response.status_code == 400


# 6. About 2 MB of distinct words in one section went past PostgreSQL's 1 MB limit on a search vector.


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="search vectors are PostgreSQL's")
def test_a_section_of_two_megabytes_of_distinct_words_is_saved_stored_whole_and_searchable(client_for, user):
    paste = "zebracorn " + " ".join(f"tok{i:x}q" for i in range(250_000))  # ~2.3 MB, all distinct
    incident = IncidentFactory(owner=user, supporting_data=paste, summary="A log paste")
    for section in ("response_analysis", "post_incident_analysis", "customer_impact"):
        setattr(incident, section, paste)
    incident.save()
    TimelineEventFactory(incident=incident, description=paste)

    search.update_search_vector(incident.pk)

    incident.refresh_from_db()
    assert incident.supporting_data == paste
    assert list(Incident.objects.search("zebracorn").values_list("pk", flat=True)) == [incident.pk]
    response = client_for(user).get(incident.get_absolute_url())
    assert response.status_code == 200
    assert "tok3d08fq" in response.content.decode()  # shown whole, far past the searchable part


# 2. An unknown tag on /insights/ answers with the page and a message.


@pytest.mark.parametrize("tag", ["no-such-tag", "_"])
def test_insights_for_an_unknown_tag_answer_with_the_page_and_a_message(client_for, user, tag):
    IncidentFactory(status=Status.PUBLISHED)
    response = client_for(user).get("/insights/", {"tag": tag})
    assert response.status_code == 200
    assert f"No tag is called “{tag}”" in response.content.decode()


@pytest.mark.parametrize("tag", ["🔥", "x" * 150, "a b"])
def test_insights_for_a_tag_that_cannot_be_one_say_so_next_to_the_field(client_for, user, tag):
    response = client_for(user).get("/insights/", {"tag": tag})
    assert response.status_code == 200
    assert "invalid-feedback" in response.content.decode()


def test_insights_for_a_tag_in_another_script_are_found(client_for, user):
    incident = IncidentFactory(status=Status.PUBLISHED)
    incident.tags.add("データベース")
    response = client_for(user).get("/insights/", {"tag": "データベース"})
    assert response.status_code == 200
    assert "invalid-feedback" not in response.content.decode()
    assert "No tag is called" not in response.content.decode()
