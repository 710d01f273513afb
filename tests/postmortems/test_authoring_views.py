import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from postmortems import editing
from postmortems.forms import IncidentImpactForm
from postmortems.models import (
    ActionItem,
    Activity,
    ActivityVerb,
    ContributingFactor,
    Incident,
    Lesson,
    Status,
    TimelineEvent,
)
from tests.factories import (
    ActionItemFactory,
    ContributingFactorFactory,
    IncidentFactory,
    LessonFactory,
    SignOffFactory,
    TimelineEventFactory,
    UserFactory,
)
from tests.postmortems.test_forms import basics_data, formset_data

pytestmark = pytest.mark.django_db

STEPS = list(editing.STEP_SLUGS)


@pytest.fixture
def owner():
    return UserFactory(username="olivia", display_name="Olivia Owner")


@pytest.fixture
def incident(owner):
    return IncidentFactory(
        owner=owner,
        status=Status.DRAFT,
        time_zone="Europe/Berlin",
        summary="Original summary",
        customer_impact="Some checkouts failed.",
    )


def edit_url(incident, step):
    return reverse("postmortems:edit", args=[incident.pk, step])


def impact_data(incident, **changes):
    data = {
        "summary": incident.summary,
        "supporting_data": incident.supporting_data,
        "customer_impact": incident.customer_impact,
        "impacted_customers": "" if incident.impacted_customers is None else str(incident.impacted_customers),
        "expected_revision": str(incident.revision),
    }
    return data | changes


# --- who may edit --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["/postmortems/new/", "/postmortems/drafts/", "/postmortems/1/edit/impact/", "/postmortems/tags.json"],
)
def test_anonymous_visitor_is_sent_to_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("step", STEPS)
def test_stranger_gets_404_on_every_step(client_for, incident, step):
    client = client_for(UserFactory())
    assert client.get(edit_url(incident, step)).status_code == 404
    assert client.post(edit_url(incident, step), {}).status_code == 404


@pytest.mark.parametrize("step", STEPS)
def test_committee_member_sees_but_gets_403_on_every_step(client_for, incident, step):
    reviewer = UserFactory()
    incident.committee.add(reviewer)
    client = client_for(reviewer)
    assert client.get(incident.get_absolute_url()).status_code == 200
    assert client.get(edit_url(incident, step)).status_code == 403
    assert client.post(edit_url(incident, step), impact_data(incident, summary="Hijack")).status_code == 403
    incident.refresh_from_db()
    assert incident.summary == "Original summary"


@pytest.mark.parametrize("step", STEPS)
def test_co_author_may_open_every_step(client_for, incident, step):
    co_author = UserFactory()
    incident.co_authors.add(co_author)
    response = client_for(co_author).get(edit_url(incident, step))
    assert response.status_code == 200
    assert response.context["step"] == step
    assert incident.title in response.content.decode()


@pytest.mark.parametrize("step", STEPS)
def test_published_postmortem_is_read_only_for_its_owner(client_for, incident, owner, step):
    Incident.objects.filter(pk=incident.pk).update(status=Status.PUBLISHED)
    client = client_for(owner)
    assert client.get(edit_url(incident, step)).status_code == 403
    assert client.post(edit_url(incident, step), impact_data(incident, summary="Changed")).status_code == 403
    incident.refresh_from_db()
    assert incident.summary == "Original summary"


def test_unknown_step_is_404(client_for, incident, owner):
    assert client_for(owner).get(f"/postmortems/{incident.pk}/edit/nonsense/").status_code == 404


def test_detail_page_shows_edit_only_to_authors(client_for, incident, owner):
    reviewer = UserFactory()
    incident.committee.add(reviewer)
    edit_link = reverse("postmortems:edit_start", args=[incident.pk])
    assert edit_link in client_for(owner).get(incident.get_absolute_url()).content.decode()
    assert edit_link not in client_for(reviewer).get(incident.get_absolute_url()).content.decode()


# --- creating the draft --------------------------------------------------------------------------


def test_new_postmortem_form_starts_with_my_zone_and_today(client_for):
    me = UserFactory(time_zone="Asia/Tokyo")
    response = client_for(me).get("/postmortems/new/")
    form = response.context["forms"][0]
    assert form["time_zone"].value() == "Asia/Tokyo"
    assert form["owner"].value() == me.pk
    assert "New postmortem" in response.content.decode()


def test_saving_basics_creates_the_draft_and_continues(client_for):
    me = UserFactory()
    response = client_for(me).post("/postmortems/new/", basics_data(me) | {"_save": "continue"})
    incident = Incident.objects.get()
    assert response["Location"] == edit_url(incident, "impact")
    assert incident.status == Status.DRAFT
    assert incident.owner == me
    assert incident.revision == 1
    assert incident.started_at == dt.datetime(2026, 3, 4, 8, 0, tzinfo=dt.UTC)
    assert sorted(tag.name for tag in incident.tags.all()) == ["configuration", "database"]
    assert incident.activities.get().verb == ActivityVerb.CREATED


def test_save_draft_on_new_stays_on_basics(client_for):
    me = UserFactory()
    response = client_for(me).post("/postmortems/new/", basics_data(me) | {"_save": "draft"})
    assert response["Location"] == edit_url(Incident.objects.get(), "basics")


def test_starting_a_postmortem_for_someone_else_keeps_me_as_co_author(client_for):
    me, them = UserFactory(), UserFactory()
    client_for(me).post("/postmortems/new/", basics_data(them))
    incident = Incident.objects.get()
    assert incident.owner == them
    assert list(incident.co_authors.all()) == [me]
    assert incident.can_edit(me)


def test_invalid_basics_keep_every_value_and_say_why(client_for):
    me = UserFactory()
    response = client_for(me).post(
        "/postmortems/new/", basics_data(me, mitigated_at="2026-03-04T08:00", title="Kept title")
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert not Incident.objects.exists()
    assert "The mitigated time cannot be before the started time." in body
    assert 'value="Kept title"' in body
    assert 'value="2026-03-04T08:00"' in body
    assert 'value="database, configuration"' in body


# --- saving steps --------------------------------------------------------------------------------


def test_saving_a_step_bumps_the_revision_and_logs_it(client_for, incident, owner):
    response = client_for(owner).post(
        edit_url(incident, "impact"),
        impact_data(incident, summary="New summary", impacted_customers="1200", _save="continue"),
    )
    assert response["Location"] == edit_url(incident, "timeline")
    incident.refresh_from_db()
    assert incident.summary == "New summary"
    assert incident.impacted_customers == 1200
    assert incident.revision == 2
    assert incident.last_step == "timeline"
    activity = incident.activities.get()
    assert (activity.verb, activity.detail, activity.revision, activity.actor) == (
        ActivityVerb.EDITED,
        "Impact",
        2,
        owner,
    )


def test_save_draft_stays_on_the_step(client_for, incident, owner):
    response = client_for(owner).post(
        edit_url(incident, "impact"), impact_data(incident, summary="Draft text", _save="draft"), follow=True
    )
    assert response.redirect_chain[-1][0] == edit_url(incident, "impact")
    assert "Draft text" in response.content.decode()
    assert "Saved." in response.content.decode()


def test_saving_unchanged_step_does_not_bump_the_revision(client_for, incident, owner):
    client_for(owner).post(edit_url(incident, "impact"), impact_data(incident, _save="continue"))
    incident.refresh_from_db()
    assert incident.revision == 1
    assert not incident.activities.exists()
    assert incident.last_step == "timeline"


def test_edit_in_review_bumps_the_revision_and_keeps_the_status(client_for, incident, owner):
    Incident.objects.filter(pk=incident.pk).update(status=Status.IN_REVIEW)
    client_for(owner).post(edit_url(incident, "impact"), impact_data(incident, summary="Better"))
    incident.refresh_from_db()
    assert (incident.status, incident.revision, incident.summary) == (Status.IN_REVIEW, 2, "Better")


def test_invalid_impact_keeps_the_text_and_marks_the_field(client_for, incident, owner):
    response = client_for(owner).post(
        edit_url(incident, "impact"), impact_data(incident, summary="Half-written", impacted_customers="-5")
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "cannot be negative" in body
    assert "Half-written" in body
    assert 'value="-5"' in body
    incident.refresh_from_db()
    assert incident.summary == "Original summary"


def test_missing_revision_is_not_a_500(client_for, incident, owner):
    data = impact_data(incident, summary="x")
    del data["expected_revision"]
    response = client_for(owner).post(edit_url(incident, "impact"), data)
    assert response.status_code == 200
    assert "lost its revision number" in response.content.decode()


# --- conflicts -----------------------------------------------------------------------------------


def test_stale_save_shows_both_versions_and_overwrites_nothing(client_for, incident, owner):
    co_author = UserFactory(display_name="Carla Coauthor")
    incident.co_authors.add(co_author)
    client_for(co_author).post(edit_url(incident, "impact"), impact_data(incident, summary="Carla's summary"))
    client = client_for(owner)
    response = client.post(edit_url(incident, "impact"), impact_data(incident, summary="Olivia's summary"))
    body = response.content.decode()
    assert response.status_code == 409
    assert "Someone else saved this step" in body
    assert "Saved by Carla Coauthor" in body
    assert "Carla&#x27;s summary" in body
    assert "Olivia&#x27;s summary" in body
    assert response.context["revision_form"].initial["expected_revision"] == 2
    incident.refresh_from_db()
    assert (incident.summary, incident.revision) == ("Carla's summary", 2)

    merged = client.post(
        edit_url(incident, "impact"), impact_data(incident, summary="Merged summary", expected_revision="2")
    )
    assert merged.status_code == 302
    incident.refresh_from_db()
    assert (incident.summary, incident.revision) == ("Merged summary", 3)


def test_edits_of_different_steps_do_not_conflict(client_for, incident, owner):
    co_author = UserFactory()
    incident.co_authors.add(co_author)
    client_for(co_author).post(
        edit_url(incident, "analysis"),
        {"response_analysis": "Detected late", "post_incident_analysis": "", "expected_revision": "1"},
    )
    response = client_for(owner).post(edit_url(incident, "impact"), impact_data(incident, summary="Mine"))
    assert response.status_code == 302
    incident.refresh_from_db()
    assert (incident.summary, incident.response_analysis, incident.revision) == ("Mine", "Detected late", 3)


def test_stale_formset_save_is_a_conflict_with_the_saved_rows(client_for, incident, owner):
    TimelineEventFactory(incident=incident, description="Saved by someone")
    Incident.objects.filter(pk=incident.pk).update(revision=2, step_revisions={"timeline": 2})
    data = formset_data(
        "timeline",
        [{"occurred_at": "2026-03-04T10:00", "zone": "UTC", "kind": "detection", "description": "Mine"}],
    ) | {"expected_revision": "1"}
    response = client_for(owner).post(edit_url(incident, "timeline"), data)
    body = response.content.decode()
    assert response.status_code == 409
    assert "Saved by someone" in body
    assert "Mine" in body
    assert TimelineEvent.objects.filter(incident=incident).count() == 1


# --- autosave ------------------------------------------------------------------------------------


def test_autosave_answers_json_with_the_new_revision(client_for, incident, owner):
    response = client_for(owner).post(
        edit_url(incident, "impact"), impact_data(incident, summary="Typed", _autosave="1")
    )
    body = json.loads(response.content)
    assert body["revision"] == 2
    assert len(body["saved_at"]) == 5
    incident.refresh_from_db()
    assert incident.summary == "Typed"


def test_autosaves_share_one_activity_line(client_for, incident, owner):
    client = client_for(owner)
    for revision, text in enumerate(["a", "ab", "abc"], start=1):
        client.post(
            edit_url(incident, "impact"),
            impact_data(incident, summary=text, _autosave="1", expected_revision=str(revision)),
        )
    incident.refresh_from_db()
    assert (incident.summary, incident.revision) == ("abc", 4)
    assert incident.activities.filter(verb=ActivityVerb.EDITED).count() == 1


def test_autosave_conflict_is_409_json(client_for, incident, owner):
    Incident.objects.filter(pk=incident.pk).update(revision=5, step_revisions={"impact": 5})
    response = client_for(owner).post(
        edit_url(incident, "impact"),
        impact_data(incident, summary="Stale", _autosave="1", expected_revision="3"),
    )
    assert response.status_code == 409
    assert json.loads(response.content) == {"conflict": True, "revision": 5}


def test_autosave_of_invalid_input_is_400_json_with_messages(client_for, incident, owner):
    response = client_for(owner).post(
        edit_url(incident, "impact"), impact_data(incident, impacted_customers="-1", _autosave="1")
    )
    assert response.status_code == 400
    assert "cannot be negative" in json.loads(response.content)["errors"][0]


# --- formset steps -------------------------------------------------------------------------------


def test_timeline_rows_are_added_edited_and_removed(client_for, incident, owner):
    old = TimelineEventFactory(incident=incident, description="Old")
    gone = TimelineEventFactory(incident=incident, description="Gone")
    data = formset_data(
        "timeline",
        [
            {"id": str(old.pk), "occurred_at": "2026-03-04T09:00", "zone": "Europe/Berlin", "kind": "trigger",
             "description": "Old, edited"},
            {"id": str(gone.pk), "occurred_at": "2026-03-04T09:05", "zone": "UTC", "kind": "other",
             "description": "Gone", "DELETE": "on"},
            {"occurred_at": "2026-03-04T09:30", "zone": "Europe/Berlin", "kind": "detection",
             "description": "Alert fired", "link": "https://grafana.example.com/d/1"},
        ],
        initial=2,
    ) | {"expected_revision": "1"}  # fmt: skip
    response = client_for(owner).post(edit_url(incident, "timeline"), data)
    assert response.status_code == 302
    events = list(incident.timeline_events.order_by("occurred_at"))
    assert [(e.description, e.occurred_at) for e in events] == [
        ("Old, edited", dt.datetime(2026, 3, 4, 8, 0, tzinfo=dt.UTC)),
        ("Alert fired", dt.datetime(2026, 3, 4, 8, 30, tzinfo=dt.UTC)),
    ]
    incident.refresh_from_db()
    assert incident.revision == 2


def test_add_row_without_javascript_saves_and_offers_one_blank_row(client_for, incident, owner):
    data = formset_data(
        "timeline",
        [{"occurred_at": "2026-03-04T09:00", "zone": "UTC", "kind": "trigger", "description": "First"}],
    ) | {"expected_revision": "1", "_save": "add"}
    client = client_for(owner)
    response = client.post(edit_url(incident, "timeline"), data)
    assert response["Location"] == edit_url(incident, "timeline") + "?add=1"
    page = client.get(response["Location"])
    formset = page.context["forms"][0]
    assert len(formset.initial_forms) == 1
    assert len(formset.extra_forms) == 1  # the one asked for; a step with rows has no standing blank row


def test_why_button_saves_and_prefills_the_parent(client_for, incident, owner):
    root = ContributingFactorFactory(incident=incident, description="Pool exhausted")
    data = formset_data(
        "factors",
        [{"id": str(root.pk), "description": "Pool exhausted", "category": "technology", "parent": ""}],
        initial=1,
    ) | {"expected_revision": "1", "_save": f"why-{root.pk}"}
    client = client_for(owner)
    response = client.post(edit_url(incident, "factors"), data)
    assert response["Location"] == edit_url(incident, "factors") + f"?why={root.pk}#new-row"
    page = client.get(edit_url(incident, "factors") + f"?why={root.pk}")
    new_form = page.context["forms"][0].extra_forms[0]
    assert new_form["parent"].value() == root.pk
    assert 'id="new-row"' in page.content.decode()


def test_factor_tree_is_saved_three_levels_deep(client_for, incident, owner):
    root = ContributingFactorFactory(incident=incident, description="Root")
    child = ContributingFactorFactory(incident=incident, description="Child", parent=root)
    data = formset_data(
        "factors",
        [
            {"id": str(root.pk), "description": "Root", "category": "technology"},
            {"id": str(child.pk), "description": "Child", "category": "process", "parent": str(root.pk),
             "is_human_error": "on"},
            {"description": "Grandchild: no review step", "category": "process", "parent": str(child.pk)},
        ],
        initial=2,
    ) | {"expected_revision": "1"}  # fmt: skip
    client_for(owner).post(edit_url(incident, "factors"), data)
    grandchild = ContributingFactor.objects.get(description__startswith="Grandchild")
    assert grandchild.parent.parent == root
    child.refresh_from_db()
    assert child.is_human_error


def test_factor_rows_render_in_tree_order(client_for, incident, owner):
    root = ContributingFactorFactory(incident=incident, description="Root")
    other_root = ContributingFactorFactory(incident=incident, description="Second root")
    child = ContributingFactorFactory(incident=incident, description="Child of root", parent=root)
    rows = client_for(owner).get(edit_url(incident, "factors")).context["factor_rows"]
    assert [(form.instance.pk, depth) for form, depth in rows[:3]] == [
        (root.pk, 0),
        (child.pk, 1),
        (other_root.pk, 0),
    ]


def test_actions_default_due_date_and_link_factors_and_lessons(client_for, incident, owner):
    factor = ContributingFactorFactory(incident=incident)
    lesson = LessonFactory(incident=incident)
    data = formset_data(
        "actions",
        [{"title": "Validate pool sizes", "owner": str(owner.pk), "priority": "P1", "due_date": "",
          "backlog_link": "https://tracker.example.com/OPS-1", "factors": [str(factor.pk)],
          "lessons": [str(lesson.pk)]}],
    ) | {"expected_revision": "1"}  # fmt: skip
    response = client_for(owner).post(edit_url(incident, "actions"), data)
    assert response.status_code == 302
    item = ActionItem.objects.get()
    assert item.due_date == timezone.localdate() + dt.timedelta(days=28)
    assert list(item.factors.all()) == [factor]
    assert list(item.lessons.all()) == [lesson]


def test_lessons_link_action_items(client_for, incident, owner):
    item = ActionItemFactory(incident=incident)
    data = formset_data("lessons", [{"text": "Configs need review", "action_items": [str(item.pk)]}]) | {
        "expected_revision": "1"
    }
    client_for(owner).post(edit_url(incident, "lessons"), data)
    assert list(Lesson.objects.get().action_items.all()) == [item]


def test_circular_why_chain_is_a_message_not_a_500(client_for, incident, owner):
    a = ContributingFactorFactory(incident=incident, description="A")
    b = ContributingFactorFactory(incident=incident, description="B")
    data = formset_data(
        "factors",
        [
            {"id": str(a.pk), "description": "A", "category": "process", "parent": str(b.pk)},
            {"id": str(b.pk), "description": "B", "category": "process", "parent": str(a.pk)},
        ],
        initial=2,
    ) | {"expected_revision": "1"}
    response = client_for(owner).post(edit_url(incident, "factors"), data)
    assert response.status_code == 200
    assert "cannot answer “why?” for itself, even through other factors" in response.content.decode()
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.parent_id, b.parent_id) == (None, None)
    incident.refresh_from_db()
    assert incident.revision == 1


# --- review, drafts, resume ----------------------------------------------------------------------


def test_review_step_shows_the_checklist_with_links_to_steps(client_for, incident, owner):
    body = client_for(owner).get(edit_url(incident, "review")).content.decode()
    assert "Add at least one timeline event." in body
    assert edit_url(incident, "timeline") in body
    assert "Blocks publishing" in body
    assert "Original summary" in body


def test_my_drafts_resume_where_i_left(client_for, incident, owner):
    Incident.objects.filter(pk=incident.pk).update(last_step="factors")
    IncidentFactory(status=Status.DRAFT, title="Someone else's draft")
    body = client_for(owner).get("/postmortems/drafts/").content.decode()
    assert edit_url(incident, "factors") in body
    assert "Someone else&#x27;s draft" not in body


def test_edit_start_resumes_at_the_last_step(client_for, incident, owner):
    Incident.objects.filter(pk=incident.pk).update(last_step="lessons")
    response = client_for(owner).get(reverse("postmortems:edit_start", args=[incident.pk]))
    assert response["Location"] == edit_url(incident, "lessons")


def test_tag_suggestions_come_only_from_visible_incidents(client_for, incident, owner):
    incident.tags.add("database")
    IncidentFactory(status=Status.DRAFT, tags=["datacenter-secret"])
    IncidentFactory(status=Status.PUBLISHED, tags=["dataflow"])
    body = json.loads(client_for(owner).get("/postmortems/tags.json?q=DAT").content)
    assert body == {"tags": ["database", "dataflow"]}


# --- query budgets -------------------------------------------------------------------------------


@pytest.fixture
def busy_incident(incident):
    factors = []
    parent = None
    for i in range(10):
        parent = ContributingFactorFactory(incident=incident, parent=parent if i % 2 else None)
        factors.append(parent)
    for _ in range(10):
        TimelineEventFactory(incident=incident)
        item = ActionItemFactory(incident=incident, factors=factors[:3])
        LessonFactory(incident=incident).action_items.add(item)
    return incident


@pytest.mark.parametrize(("step", "budget"), [
    ("basics", 14), ("impact", 8), ("timeline", 8), ("analysis", 8),
    ("factors", 9), ("lessons", 11), ("actions", 14), ("review", 16),
])  # fmt: skip
def test_step_pages_stay_within_query_budget(client_for, busy_incident, owner, step, budget,
                                             django_assert_max_num_queries):  # fmt: skip
    client = client_for(owner)
    with django_assert_max_num_queries(budget):
        response = client.get(edit_url(busy_incident, step))
    assert response.status_code == 200


def test_activity_is_written_in_the_save_transaction(incident, owner):
    """A failed save writes nothing (the activity line and the revision go with the content)."""
    Incident.objects.filter(pk=incident.pk).update(step_revisions={"impact": 9})
    form = IncidentImpactForm(impact_data(incident, summary="Lost?"), instance=incident)
    assert form.is_valid()
    with pytest.raises(editing.EditConflict):
        editing.save_step(incident, step="impact", forms=[form], by=owner, expected_revision=1)
    assert not Activity.objects.exists()
    incident.refresh_from_db()
    assert (incident.summary, incident.revision) == ("Original summary", 1)


def test_removing_a_committee_member_drops_their_sign_off(client_for, owner):
    leaving, staying = UserFactory(), UserFactory()
    incident = IncidentFactory(owner=owner, status=Status.IN_REVIEW, committee=[leaving, staying])
    SignOffFactory(incident=incident, reviewer=leaving)
    kept = SignOffFactory(incident=incident, reviewer=staying)
    data = basics_data(owner, committee=[str(staying.pk)], expected_revision=str(incident.revision))
    response = client_for(owner).post(edit_url(incident, "basics"), data)
    assert response.status_code == 302
    assert list(incident.committee.all()) == [staying]
    assert not incident.sign_offs.filter(reviewer=leaving, is_current=True).exists()
    assert incident.sign_offs.filter(reviewer=leaving).exists()  # history is kept
    assert incident.sign_offs.get(is_current=True) == kept


# --- review fixes: who changes the owner, odd digits in counts, per-person autosave keys ------------------


def basics_post(incident, owner, **changes):
    return basics_data(owner, expected_revision=str(incident.revision), **changes)


def test_co_author_cannot_take_over_the_postmortem(client_for, incident, owner):
    co_author = UserFactory()
    incident.co_authors.add(co_author)
    client = client_for(co_author)
    page = client.get(edit_url(incident, "basics")).content.decode()
    assert 'data-testid="owner-readonly"' in page
    assert '<select name="owner"' not in page
    response = client.post(
        edit_url(incident, "basics"),
        basics_post(incident, co_author, title="Retitled", co_authors=[str(co_author.pk)]),
    )
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.owner == owner
    assert incident.title == "Retitled"
    assert set(incident.co_authors.all()) == {co_author}
    assert incident.can_edit(owner)


def test_co_author_posting_only_a_new_owner_changes_nothing(client_for, incident, owner):
    co_author = UserFactory()
    incident.co_authors.add(co_author)
    keep = {"co_authors": [str(co_author.pk)]}
    client_for(owner).post(edit_url(incident, "basics"), basics_post(incident, owner, **keep))
    incident.refresh_from_db()
    revision = incident.revision
    client_for(co_author).post(edit_url(incident, "basics"), basics_post(incident, co_author, **keep))
    incident.refresh_from_db()
    assert (incident.owner, incident.revision) == (owner, revision)


def test_owner_hands_over_and_stays_a_co_author(client_for, incident, owner):
    successor = UserFactory()
    client = client_for(owner)
    page = client.get(edit_url(incident, "basics")).content.decode()
    assert 'data-testid="owner-readonly"' not in page
    client.post(edit_url(incident, "basics"), basics_post(incident, successor))
    incident.refresh_from_db()
    assert incident.owner == successor
    assert owner in incident.co_authors.all()
    assert incident.can_edit(owner)
    assert 'data-testid="owner-readonly"' in client.get(edit_url(incident, "basics")).content.decode()


def test_staff_co_author_may_change_the_owner(client_for, incident, owner):
    staff, successor = UserFactory(is_staff=True), UserFactory()
    incident.co_authors.add(staff)
    client_for(staff).post(
        edit_url(incident, "basics"), basics_post(incident, successor, co_authors=[str(staff.pk)])
    )
    incident.refresh_from_db()
    assert incident.owner == successor
    assert set(incident.co_authors.all()) == {staff, owner}


@pytest.mark.parametrize("query", ["?add=²", "?why=²", "?add=١٢", "?add=abc"])
def test_non_ascii_digits_in_row_counts_are_ignored(client_for, incident, owner, query):
    response = client_for(owner).get(edit_url(incident, "factors") + query)
    assert response.status_code == 200
    formset = response.context["forms"][0]
    assert len(formset.extra_forms) == 1
    assert formset.extra_forms[0]["parent"].value() is None


def test_why_button_with_non_ascii_digits_just_saves(client_for, incident, owner):
    data = formset_data("factors", []) | {"expected_revision": "1", "_save": "why-²"}
    response = client_for(owner).post(edit_url(incident, "factors"), data)
    assert response["Location"] == edit_url(incident, "factors")


def test_add_after_non_ascii_count_offers_one_row(client_for, incident, owner):
    data = formset_data("timeline", []) | {"expected_revision": "1", "_save": "add"}
    response = client_for(owner).post(edit_url(incident, "timeline") + "?add=²", data)
    assert response["Location"] == edit_url(incident, "timeline") + "?add=1"


@pytest.mark.parametrize("typed", ["garbage", "99999-01-01T00:00", "0001-01-01T00:00", "9999-12-31T23:59"])
def test_bad_basics_time_is_an_error_next_to_the_field_not_a_500(client_for, incident, owner, typed):
    data = basics_post(incident, owner, time_zone="Asia/Tokyo", started_at=typed)
    if typed.startswith("9999"):
        data["time_zone"] = "America/New_York"
    response = client_for(owner).post(edit_url(incident, "basics"), data)
    assert response.status_code == 200
    assert response.context["forms"][0].errors["started_at"]
    assert f'value="{typed}"' in response.content.decode()


def test_bad_timeline_time_is_an_error_next_to_the_field_not_a_500(client_for, incident, owner):
    data = formset_data(
        "timeline", [{"occurred_at": "garbage", "zone": "UTC", "kind": "trigger", "description": "x"}]
    ) | {"expected_revision": "1"}
    response = client_for(owner).post(edit_url(incident, "timeline"), data)
    assert response.status_code == 200
    assert "Enter a date and time like 2026-03-04 14:05" in response.content.decode()
    assert not TimelineEvent.objects.exists()


def test_autosave_key_names_the_person(client_for, incident, owner):
    co_author = UserFactory()
    incident.co_authors.add(co_author)
    page = client_for(co_author).get(edit_url(incident, "impact")).content.decode()
    assert f'data-storage-key="hindsight:{co_author.pk}:{incident.pk}:impact"' in page
    page = client_for(owner).get("/postmortems/new/").content.decode()
    assert f'data-storage-key="hindsight:{owner.pk}:new:basics"' in page
    assert f'data-sign-out="{owner.pk}"' in page


def test_why_under_a_new_row_saves_it_and_answers_it(client_for, incident, owner):
    row = {"description": "Pool exhausted", "category": "technology", "parent": ""}
    data = formset_data("factors", [row])
    data |= {"expected_revision": "1", "_save": "why-row-0"}
    response = client_for(owner).post(edit_url(incident, "factors"), data)
    saved = ContributingFactor.objects.get(incident=incident)
    assert response["Location"] == edit_url(incident, "factors") + f"?why={saved.pk}#new-row"


def test_why_under_a_malformed_row_just_saves(client_for, incident, owner):
    row = {"description": "Pool exhausted", "category": "technology", "parent": ""}
    data = formset_data("factors", [row])
    data |= {"expected_revision": "1", "_save": "why-row-x"}
    response = client_for(owner).post(edit_url(incident, "factors"), data)
    assert response["Location"] == edit_url(incident, "factors")
    assert ContributingFactor.objects.filter(incident=incident).count() == 1
