"""/action-items/: the list, its filters and counts, in-place updates, the SLO table, related open items."""

import datetime as dt
import re

import pytest
from django.template import RequestContext, Template
from django.urls import reverse
from django.utils import timezone

from postmortems import followthrough
from postmortems.followthrough_forms import ActionItemUpdateForm
from postmortems.models import (
    ActionItem,
    ActionItemStatus,
    Activity,
    ActivityVerb,
    Decision,
    Priority,
    Status,
    Visibility,
    default_due_date,
)
from tests.factories import (
    ActionItemFactory,
    IncidentFactory,
    SignOffFactory,
    TeamFactory,
    UserFactory,
    full_incident,
)
from tests.postmortems.test_forms import formset_data

URL = "/action-items/"


def update_url(item) -> str:
    return reverse("postmortems:action_item_update", args=[item.pk])


def post_update(client, item, **data):
    # The version the person saw: the item as it is in the database now, unless the test says otherwise.
    seen = ActionItem.objects.get(pk=item.pk).updated_at.isoformat()
    payload = {
        "status": item.status,
        "backlog_link": item.backlog_link,
        "wont_do_reason": "",
        "next": "",
        "seen": seen,
    }
    payload.update(data)
    return client.post(update_url(item), {f"item-{item.pk}-{k}": v for k, v in payload.items()})


@pytest.fixture
def me(db):
    return UserFactory(username="me", display_name="Mia Me")


# --- the model-level deadline policy -----------------------------------------------------------------------


@pytest.mark.parametrize(("priority", "days"), [("P1", 28), ("P2", 56), ("P3", 90), ("P4", 180)])
def test_default_due_date_follows_the_priority_policy(priority, days):
    assert default_due_date(priority, start=dt.date(2026, 1, 1)) == dt.date(2026, 1, 1) + dt.timedelta(
        days=days
    )


def test_default_due_date_reads_the_setting(settings):
    settings.ACTION_ITEM_SLO_DAYS = {"P1": 7}
    assert default_due_date("P1", start=dt.date(2026, 1, 1)) == dt.date(2026, 1, 8)
    assert default_due_date("", start=dt.date(2026, 1, 1)) is None


# --- the list ----------------------------------------------------------------------------------------------


def test_action_items_needs_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_action_items_lists_mine_overdue_first_then_due_soonest(client_for, me):
    today = timezone.localdate()
    later = ActionItemFactory(owner=me, title="Later one", due_date=today + dt.timedelta(days=40))
    soon = ActionItemFactory(owner=me, title="Soon one", due_date=today + dt.timedelta(days=2))
    overdue = ActionItemFactory(owner=me, title="Overdue one", due_date=today - dt.timedelta(days=3))
    undated = ActionItemFactory(owner=me, title="Undated one", due_date=None)
    ActionItemFactory(
        owner=me, title="Finished one", status=ActionItemStatus.DONE, completed_at=timezone.now()
    )
    ActionItemFactory(title="Someone else's")

    response = client_for(me).get(URL)

    items = list(response.context["items"])
    assert items == [overdue, soon, later, undated]
    content = response.content.decode()
    assert "Someone else&#x27;s" not in content
    assert "Someone else's" not in content
    assert "overdue 3\xa0days" in content
    assert "due in 2\xa0days" in content
    assert response.context["counts"]["overdue"] == 1
    assert response.context["counts"]["due_soon"] == 1
    assert response.context["counts"]["done"] == 1


def test_action_items_shows_others_items_only_of_incidents_i_may_see(client_for, me):
    hidden = IncidentFactory(status=Status.PUBLISHED, visibility=Visibility.RESTRICTED)
    ActionItemFactory(incident=hidden, title="Someone's secret fix")
    draft = IncidentFactory(status=Status.DRAFT)
    ActionItemFactory(incident=draft, title="Draft fix")
    ActionItemFactory(title="Public fix")

    response = client_for(me).get(URL, {"scope": "all"})

    titles = [item.title for item in response.context["items"]]
    assert titles == ["Public fix"]


@pytest.mark.parametrize("where", ["restricted", "draft"])
def test_my_item_on_a_postmortem_i_may_not_see_reaches_me_without_its_postmortem(client_for, me, where):
    if where == "restricted":
        hidden = IncidentFactory(
            title="Vault breach",
            status=Status.PUBLISHED,
            visibility=Visibility.RESTRICTED,
            summary="Keys leaked.",
        )
    else:
        hidden = IncidentFactory(title="Vault breach", status=Status.DRAFT)
    item = ActionItemFactory(incident=hidden, title="Rotate the keys", owner=me, due_date=dt.date(2026, 4, 1))
    client = client_for(me)

    page = client.get(URL)
    assert [row.title for row in page.context["items"]] == ["Rotate the keys"]
    body = page.content.decode()
    assert "a restricted postmortem" in body
    assert "Vault breach" not in body
    assert hidden.get_absolute_url() not in body
    assert client.get(hidden.get_absolute_url()).status_code == 404  # the postmortem stays out of reach

    form = client.get(update_url(item))
    assert form.status_code == 200
    assert "Vault breach" not in form.content.decode()
    response = post_update(
        client,
        item,
        status=ActionItemStatus.IN_PROGRESS,
        due_date="2026-05-15",
        backlog_link="https://tracker.example.com/OPS-1",
    )
    assert response.status_code == 302
    assert response["Location"] == URL  # not the postmortem's page, which they may not open
    item.refresh_from_db()
    assert item.status == ActionItemStatus.IN_PROGRESS
    assert item.due_date == dt.date(2026, 5, 15)
    assert item.backlog_link == "https://tracker.example.com/OPS-1"
    assert "due 2026-05-15" in hidden.activities.get(verb=ActivityVerb.ACTION_ITEM_UPDATED).detail


def test_someone_elses_item_on_a_postmortem_i_may_not_see_stays_a_404(client_for, me):
    hidden = IncidentFactory(status=Status.PUBLISHED, visibility=Visibility.RESTRICTED)
    item = ActionItemFactory(incident=hidden, title="Not mine")
    assert client_for(me).get(update_url(item)).status_code == 404
    assert post_update(client_for(me), item, status=ActionItemStatus.DONE).status_code == 404
    item.refresh_from_db()
    assert item.status == ActionItemStatus.OPEN


def test_action_items_team_scope_shows_teammates_items(client_for, me):
    mate = UserFactory(display_name="Tess Teammate")
    TeamFactory(members=[me, mate])
    ActionItemFactory(owner=mate, title="Teammate's item")
    ActionItemFactory(owner=me, title="My item")
    ActionItemFactory(title="Stranger's item")

    response = client_for(me).get(URL, {"scope": "team"})

    assert {item.title for item in response.context["items"]} == {"Teammate's item", "My item"}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "done"}, {"Done P1"}),
        ({"status": "wont_do"}, {"Dropped"}),
        ({"status": "any"}, {"Open P1", "Late P2", "Done P1", "Dropped"}),
        ({"priority": "P2"}, {"Late P2"}),
        ({"overdue": "on"}, {"Late P2"}),
        ({}, {"Open P1", "Late P2"}),
    ],
)
def test_action_items_filters(client_for, me, params, expected):
    today = timezone.localdate()
    ActionItemFactory(owner=me, title="Open P1", priority=Priority.P1)
    ActionItemFactory(owner=me, title="Late P2", priority=Priority.P2, due_date=today - dt.timedelta(days=1))
    ActionItemFactory(
        owner=me,
        title="Done P1",
        priority=Priority.P1,
        status=ActionItemStatus.DONE,
        completed_at=timezone.now(),
    )
    ActionItemFactory(owner=me, title="Dropped", status=ActionItemStatus.WONT_DO, wont_do_reason="Obsolete")

    response = client_for(me).get(URL, params)

    assert {item.title for item in response.context["items"]} == expected


def test_action_items_bad_filter_says_so_and_shows_defaults(client_for, me):
    ActionItemFactory(owner=me, title="Mine")
    response = client_for(me).get(URL, {"status": "bogus"})
    assert response.context["form"].errors["status"]
    assert [item.title for item in response.context["items"]] == ["Mine"]
    assert "Select a valid choice" in response.content.decode()


def test_action_items_queries_do_not_grow_with_rows(client_for, me, django_assert_max_num_queries):
    owners = [UserFactory() for _ in range(3)]
    for i in range(30):
        incident = IncidentFactory(co_authors=[owners[i % 3]], tags=["database"])
        ActionItemFactory(incident=incident, owner=me if i % 2 else owners[i % 3])
    client = client_for(me)
    # Session, user, counts, the ids in order, the page's rows: on every request, nothing from a cache.
    for _ in range(2):
        with django_assert_max_num_queries(5):
            response = client.get(URL, {"scope": "all", "status": "any"})
        assert len(response.context["items"]) == 25  # a full page: an N+1 would show


def shown_ids(response) -> list[int]:
    return [
        int(pk) for pk in re.findall(r'id="item-(\d+)" data-testid="action-item"', response.content.decode())
    ]


def test_row_forms_post_with_the_sessions_csrf_token(me):
    from django.test import Client

    item = ActionItemFactory(owner=me, title="Rotate the keys")
    client = Client(enforce_csrf_checks=True)
    client.force_login(me)
    page = client.get(URL).content.decode()
    row_form = re.search(rf'data-testid="action-item-form-{item.pk}".*?</form>', page, re.S)[0]
    token = re.search(r'name="csrfmiddlewaretoken" value="(\w+)"', row_form)[1]
    seen = re.search(rf'name="item-{item.pk}-seen" value="([^"]+)"', row_form)[1]

    response = client.post(
        update_url(item),
        {
            f"item-{item.pk}-status": "done",
            f"item-{item.pk}-next": URL,
            f"item-{item.pk}-seen": seen,
            "csrfmiddlewaretoken": token,
        },
    )

    assert response.status_code == 302
    item.refresh_from_db()
    assert item.status == ActionItemStatus.DONE
    assert shown_ids(client.get(URL)) == []  # done leaves "unfinished"


def test_two_people_who_see_the_same_items_get_their_own_rows(client_for, me):
    """Only the owner gets the item's form."""
    item = ActionItemFactory(owner=me, incident=IncidentFactory(status=Status.PUBLISHED))
    mine = client_for(me).get(URL, {"scope": "all"}).content.decode()
    other = UserFactory()
    theirs = client_for(other).get(URL, {"scope": "all"}).content.decode()
    assert f'data-testid="action-item-form-{item.pk}"' in mine
    assert f'id="item-{item.pk}"' in theirs
    assert f'data-testid="action-item-form-{item.pk}"' not in theirs


def test_action_items_counts_follow_a_change(client_for, me):
    item = ActionItemFactory(owner=me, title="Mine")
    client = client_for(me)
    assert client.get(URL).context["counts"]["done"] == 0
    item.status, item.completed_at = ActionItemStatus.DONE, timezone.now()
    item.save()
    response = client.get(URL)
    assert response.context["counts"]["done"] == 1
    assert [i.title for i in response.context["items"]] == []  # finished items leave "unfinished"


def test_action_items_leave_out_a_restricted_incident_once_i_leave_its_team(client_for, me):
    team = TeamFactory(members=[me])
    secret = IncidentFactory(status=Status.PUBLISHED, visibility=Visibility.RESTRICTED, teams=[team])
    ActionItemFactory(incident=secret, title="Rotate secret keys", owner=UserFactory())
    ActionItemFactory(title="Public fix")
    client = client_for(me)
    titles = {item.title for item in client.get(URL, {"scope": "all"}).context["items"]}
    assert titles == {"Rotate secret keys", "Public fix"}

    team.members.remove(me)

    response = client.get(URL, {"scope": "all"})
    assert [item.title for item in response.context["items"]] == ["Public fix"]
    assert response.context["counts"]["total"] == 1
    assert "Rotate secret keys" not in response.content.decode()


def test_action_items_team_scope_follows_who_is_in_the_team(client_for, me):
    teammate = UserFactory()
    team = TeamFactory(members=[me])
    ActionItemFactory(owner=teammate, title="Teammate's item")
    client = client_for(me)
    assert client.get(URL, {"scope": "team"}).context["items"] == []
    team.members.add(teammate)
    assert [i.title for i in client.get(URL, {"scope": "team"}).context["items"]] == ["Teammate's item"]


def test_action_items_team_scope_without_a_team_shows_mine(client_for, me):
    ActionItemFactory(owner=me, title="My item")
    ActionItemFactory(title="Stranger's item")

    response = client_for(me).get(URL, {"scope": "team"})

    assert [item.title for item in response.context["items"]] == ["My item"]


@pytest.mark.parametrize("status", ["done", "open"])
def test_action_items_of_one_status_come_by_due_date(client_for, me, status):
    today = timezone.localdate()
    done = {"status": status, "completed_at": timezone.now() if status == "done" else None}
    undated = ActionItemFactory(owner=me, due_date=None, **done)
    later = ActionItemFactory(owner=me, due_date=today + dt.timedelta(days=5), **done)
    earlier = ActionItemFactory(owner=me, due_date=today - dt.timedelta(days=5), **done)
    same_day = ActionItemFactory(owner=me, due_date=today + dt.timedelta(days=5), **done)

    response = client_for(me).get(URL, {"status": status})

    assert list(response.context["items"]) == [earlier, later, same_day, undated]


@pytest.mark.parametrize(
    ("role", "item_has_owner", "shown"),
    [
        ("item_owner", True, True),
        ("incident_owner", True, True),
        ("co_author", True, True),
        ("reader", True, False),
        ("incident_owner", False, True),
        ("co_author", False, True),
        ("reader", False, False),
    ],
)
def test_action_items_shows_each_form_to_who_may_update(db, client_for, role, item_has_owner, shown):
    item_owner, incident_owner, co_author, reader = (UserFactory() for _ in range(4))
    incident = IncidentFactory(owner=incident_owner, co_authors=[co_author])
    item = ActionItemFactory(incident=incident, owner=item_owner if item_has_owner else None)
    user = {"item_owner": item_owner, "incident_owner": incident_owner, "co_author": co_author}.get(
        role, reader
    )

    content = client_for(user).get(URL, {"scope": "all"}).content.decode()

    assert (f'data-testid="action-item-form-{item.pk}"' in content) is shown
    assert item.can_update(user) is shown  # the page answers as the model does


def test_row_form_is_the_update_form_as_it_renders_itself(rf, me):
    """The form a row builds from the item is the one the update view reads: the same names, values
    and `next`, whether the tag builds it or is given it."""
    item = ActionItemFactory(
        owner=me,
        status=ActionItemStatus.WONT_DO,
        wont_do_reason='Replaced by the "new" <pool>',
        backlog_link="https://tracker.example.com/OPS-1?a=1&b=2",
    )
    request = rf.get(URL, {"scope": "all", "page": "2"})
    request.user = me
    real = ActionItemUpdateForm(
        prefix=f"item-{item.pk}",
        initial={
            "status": item.status,
            "wont_do_reason": item.wont_do_reason,
            "backlog_link": item.backlog_link,
            "due_date": item.due_date,
            "next": f"{request.get_full_path()}#item-{item.pk}",
            "seen": item.updated_at.isoformat(),
        },
    )
    context = {"item": item, "form": real}

    drawn = Template("{% load followthrough %}{% action_item_form item anchor='item' %}").render(
        RequestContext(request, context)
    )
    built = Template("{% load followthrough %}{% action_item_form item anchor='item' form=form %}").render(
        RequestContext(request, context)
    )

    def unmasked(html: str) -> str:  # each render masks the CSRF token afresh
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', 'name="csrfmiddlewaretoken"', html)

    assert 'name="csrfmiddlewaretoken" value="' in drawn
    assert unmasked(drawn) == unmasked(built)
    assert f'name="item-{item.pk}-status"' in drawn
    assert '<option value="wont_do" selected>' in drawn


# --- updating an item --------------------------------------------------------------------------------------


def test_owner_marks_item_done_on_a_published_postmortem(client_for, me):
    incident = full_incident()
    item = incident.action_items.first()
    item.owner = me
    item.save()
    revision = incident.revision

    response = post_update(client_for(me), item, status="done", next=URL)

    assert response.status_code == 302
    assert response["Location"] == URL
    item.refresh_from_db()
    incident.refresh_from_db()
    assert item.status == ActionItemStatus.DONE
    assert item.completed_at is not None
    assert incident.revision == revision
    assert incident.status == Status.PUBLISHED
    activity = Activity.objects.get(incident=incident, verb=ActivityVerb.ACTION_ITEM_UPDATED)
    assert activity.actor == me
    assert "Open → Done" in activity.detail


def test_reopening_a_done_item_clears_completed_at(me):
    item = ActionItemFactory(owner=me, status=ActionItemStatus.DONE, completed_at=timezone.now())
    followthrough.update_action_item(item, by=me, status=ActionItemStatus.IN_PROGRESS, backlog_link="")
    item.refresh_from_db()
    assert item.status == ActionItemStatus.IN_PROGRESS
    assert item.completed_at is None


def test_wont_do_needs_a_reason_shown_next_to_the_field(client_for, me):
    item = ActionItemFactory(owner=me)

    response = post_update(client_for(me), item, status="wont_do", wont_do_reason="  ")

    assert response.status_code == 400
    # next to the reason field, not only at the top of the page
    assert '<div class="invalid-feedback">Say why it won’t be done: a reason is required.</div>' in (
        response.content.decode()
    )
    item.refresh_from_db()
    assert item.status == ActionItemStatus.OPEN
    assert not Activity.objects.filter(verb=ActivityVerb.ACTION_ITEM_UPDATED).exists()


def test_wont_do_with_reason_is_logged(client_for, me):
    item = ActionItemFactory(owner=me)
    post_update(client_for(me), item, status="wont_do", wont_do_reason="The service is retired")
    item.refresh_from_db()
    assert item.status == ActionItemStatus.WONT_DO
    assert item.wont_do_reason == "The service is retired"
    detail = Activity.objects.get(verb=ActivityVerb.ACTION_ITEM_UPDATED).detail
    assert "Won’t do" in detail
    assert "The service is retired" in detail


def test_bad_backlog_link_is_refused_with_a_message(client_for, me):
    item = ActionItemFactory(owner=me, backlog_link="")
    response = post_update(client_for(me), item, backlog_link="not a link")
    assert response.status_code == 400
    assert "Enter the full address of the backlog item" in response.content.decode()
    item.refresh_from_db()
    assert item.backlog_link == ""


def test_backlog_link_edit_is_logged_without_bumping_revision(client_for, me):
    incident = IncidentFactory(owner=me)
    item = ActionItemFactory(incident=incident, backlog_link="")
    post_update(client_for(me), item, backlog_link="https://tracker.example.com/OPS-9")
    item.refresh_from_db()
    incident.refresh_from_db()
    assert item.backlog_link == "https://tracker.example.com/OPS-9"
    assert incident.revision == 1
    assert "OPS-9" in Activity.objects.get(verb=ActivityVerb.ACTION_ITEM_UPDATED).detail


def test_unchanged_update_logs_nothing(client_for, me):
    item = ActionItemFactory(owner=me)
    response = post_update(client_for(me), item)
    assert response.status_code == 302
    assert not Activity.objects.filter(verb=ActivityVerb.ACTION_ITEM_UPDATED).exists()


def test_item_update_before_publishing_makes_a_stale_actions_form_conflict(client_for, me):
    author = UserFactory()
    incident = IncidentFactory(
        owner=author, committee=[me], status=Status.DRAFT, step_revisions={"actions": 1}
    )
    item = ActionItemFactory(incident=incident, owner=me, title="Alert on pool size", backlog_link="")
    actions_url = reverse("postmortems:edit", args=[incident.pk, "actions"])
    assert client_for(author).get(actions_url).status_code == 200  # the author opens the step at revision 1

    post_update(client_for(me), item, backlog_link="https://tracker.example.com/OPS-7")

    incident.refresh_from_db()
    assert (incident.revision, incident.step_revisions["actions"]) == (2, 2)
    assert Activity.objects.get(verb=ActivityVerb.ACTION_ITEM_UPDATED).revision == 2
    # The author saves the form rendered at revision 1, which still has the empty backlog link.
    row = {
        "id": str(item.pk),
        "title": "Alert on pool size, per region",
        "owner": str(me.pk),
        "priority": item.priority,
        "due_date": item.due_date.isoformat(),
        "backlog_link": "",
    }
    data = formset_data("actions", [row], initial=1) | {"expected_revision": "1"}
    response = client_for(author).post(actions_url, data)

    assert response.status_code == 409
    assert "Someone else saved this step" in response.content.decode()
    item.refresh_from_db()
    assert (item.title, item.backlog_link) == ("Alert on pool size", "https://tracker.example.com/OPS-7")
    incident.refresh_from_db()
    assert incident.revision == 2


def test_item_update_in_review_makes_approvals_stale(me):
    reviewer = UserFactory()
    incident = IncidentFactory(owner=me, committee=[reviewer], status=Status.IN_REVIEW, revision=3)
    approval = SignOffFactory(incident=incident, reviewer=reviewer, decision=Decision.APPROVE, revision=3)
    item = ActionItemFactory(incident=incident)

    followthrough.update_action_item(item, by=me, status=ActionItemStatus.IN_PROGRESS, backlog_link="")

    incident.refresh_from_db()
    assert (incident.revision, incident.step_revisions["actions"]) == (4, 4)
    assert incident.status == Status.IN_REVIEW
    assert item.incident.revision == 4
    approval.refresh_from_db()
    assert approval.is_stale()


def test_item_update_on_a_published_postmortem_leaves_its_revision(me):
    incident = IncidentFactory(owner=me, revision=5, step_revisions={"actions": 4})
    item = ActionItemFactory(incident=incident)

    followthrough.update_action_item(
        item, by=me, status=ActionItemStatus.DONE, backlog_link="https://tracker.example.com/OPS-8"
    )

    incident.refresh_from_db()
    assert (incident.revision, incident.step_revisions, incident.status) == (5, {"actions": 4}, "published")
    assert Activity.objects.get(verb=ActivityVerb.ACTION_ITEM_UPDATED).revision == 5


@pytest.mark.parametrize("role", ["item_owner", "incident_owner", "co_author"])
def test_who_may_update(db, client_for, role):
    item_owner, incident_owner, co_author = UserFactory(), UserFactory(), UserFactory()
    incident = IncidentFactory(owner=incident_owner, co_authors=[co_author])
    item = ActionItemFactory(incident=incident, owner=item_owner)
    user = {"item_owner": item_owner, "incident_owner": incident_owner, "co_author": co_author}[role]
    post_update(client_for(user), item, status="in_progress")
    item.refresh_from_db()
    assert item.status == ActionItemStatus.IN_PROGRESS


def test_reader_who_is_not_involved_may_not_update(client_for, me):
    item = ActionItemFactory()
    response = post_update(client_for(me), item, status="done")
    assert response.status_code == 403
    item.refresh_from_db()
    assert item.status == ActionItemStatus.OPEN


def test_item_of_an_incident_i_may_not_see_is_a_404(client_for, me):
    item = ActionItemFactory(incident=IncidentFactory(status=Status.DRAFT))
    assert post_update(client_for(me), item, status="done").status_code == 404
    assert client_for(me).get(update_url(item)).status_code == 404


def test_next_must_stay_on_this_site(client_for, me):
    item = ActionItemFactory(owner=me)
    response = post_update(client_for(me), item, status="in_progress", next="https://evil.example.com/")
    assert response["Location"] == item.get_absolute_url()


def test_update_form_is_on_the_detail_page_for_those_who_may(client_for, me):
    incident = full_incident()
    item = incident.action_items.first()
    item.owner = me
    item.save()
    other = incident.action_items.exclude(pk=item.pk).first()

    content = client_for(me).get(incident.get_absolute_url()).content.decode()

    assert f'data-testid="action-item-form-{item.pk}"' in content
    assert f'data-testid="action-item-form-{other.pk}"' not in content


# --- the SLO table -----------------------------------------------------------------------------------------


def test_slo_table_counts_within_and_late_per_priority(me):
    today = timezone.localdate()
    now = timezone.now()
    ActionItemFactory(owner=me, priority="P1", due_date=today + dt.timedelta(days=3))  # within
    ActionItemFactory(owner=me, priority="P1", due_date=today - dt.timedelta(days=3))  # late
    ActionItemFactory(
        owner=me, priority="P1", due_date=today, status=ActionItemStatus.DONE, completed_at=now
    )  # within
    ActionItemFactory(
        owner=me,
        priority="P2",
        due_date=today - dt.timedelta(days=10),
        status=ActionItemStatus.DONE,
        completed_at=now,
    )  # late
    ActionItemFactory(owner=me, priority="P2", due_date=None)
    ActionItemFactory(owner=me, priority="P2", status=ActionItemStatus.WONT_DO, wont_do_reason="No")

    rows = {row.priority: row for row in followthrough.slo_table(ActionItem.objects.filter(owner=me), today)}

    assert (rows["P1"].within, rows["P1"].late, rows["P1"].slo_days) == (2, 1, 28)
    assert (rows["P2"].within, rows["P2"].late, rows["P2"].no_due_date) == (0, 1, 1)
    assert rows["P3"].measured == 0


def test_figures_agree_with_counting_item_by_item(me):
    today = timezone.localdate()
    days = dt.timedelta(days=1)
    for status in ActionItemStatus.values:
        for due in (None, today - 3 * days, today, today + 3 * days, today + 7 * days, today + 8 * days):
            for priority in ("P1", ""):
                ActionItemFactory(
                    owner=me,
                    status=status,
                    due_date=due,
                    priority=priority,
                    completed_at=timezone.now() if status == ActionItemStatus.DONE else None,
                    wont_do_reason="Obsolete" if status == ActionItemStatus.WONT_DO else "",
                )
    items = list(ActionItem.objects.filter(owner=me))

    found = followthrough.figures(ActionItem.objects.filter(owner=me), today)

    def unfinished(item):
        return not item.is_closed

    def done_in_time(item):
        return timezone.localtime(item.completed_at).date() <= item.due_date

    assert found.counts == {
        "total": len(items),
        "overdue": sum(unfinished(i) and i.due_date is not None and i.due_date < today for i in items),
        "due_soon": sum(
            unfinished(i) and i.due_date is not None and today <= i.due_date <= today + 7 * days
            for i in items
        ),
        **{status: sum(i.status == status for i in items) for status in ActionItemStatus.values},
    }
    for row in found.slo:
        mine = [i for i in items if i.priority == row.priority and i.due_date is not None]
        done = [i for i in mine if i.status == ActionItemStatus.DONE]
        open_ = [i for i in mine if unfinished(i)]
        assert row.within == sum(map(done_in_time, done)) + sum(i.due_date >= today for i in open_)
        assert row.late == len(done) - sum(map(done_in_time, done)) + sum(i.due_date < today for i in open_)
        assert row.no_due_date == sum(
            i.priority == row.priority and i.due_date is None and i.status != ActionItemStatus.WONT_DO
            for i in items
        )


@pytest.mark.parametrize(
    ("cap", "expected"),
    [
        # The sample (the first EXACT_LIMIT + 1 items) shows the total past the cap; the rest is counted.
        (3, {"total": "3+", "open": "3+", "in_progress": "3", "overdue": "3", "done": "1"}),
        # Nothing is past the cap in the sample: every state is counted, up to the cap.
        (20, {"total": "9", "open": "5", "in_progress": "3", "overdue": "3", "done": "1"}),
    ],
)
def test_counts_past_the_exact_limit_stop_at_the_cap(monkeypatch, me, cap, expected):
    monkeypatch.setattr(followthrough, "EXACT_LIMIT", 6)
    monkeypatch.setattr(followthrough, "COUNT_CAP", cap)
    today = timezone.localdate()
    for _ in range(3):
        ActionItemFactory(
            owner=me, status=ActionItemStatus.IN_PROGRESS, due_date=today - dt.timedelta(days=1)
        )
    ActionItemFactory(owner=me, status=ActionItemStatus.DONE, completed_at=timezone.now())
    for _ in range(5):
        ActionItemFactory(owner=me)

    found = followthrough.figures(ActionItem.objects.filter(owner=me), today)

    assert found.slo is None  # too many for the table
    assert {name: str(n) for name, n in found.counts.items()} == {"due_soon": "0", "wont_do": "0", **expected}


# --- open action items from related incidents --------------------------------------------------------------


def test_draft_shows_open_items_of_older_postmortems_sharing_a_tag(client_for, me):
    older = IncidentFactory(tags=["dns"], title="Older DNS outage")
    ActionItemFactory(incident=older, title="Lower the DNS TTL")
    ActionItemFactory(
        incident=older, title="Finished already", status=ActionItemStatus.DONE, completed_at=timezone.now()
    )
    unrelated = IncidentFactory(tags=["disk"])
    ActionItemFactory(incident=unrelated, title="Unrelated item")
    draft = IncidentFactory(owner=me, status=Status.DRAFT, tags=["dns"])

    content = client_for(me).get(draft.get_absolute_url()).content.decode()

    assert "Open action items from related incidents" in content
    assert "Lower the DNS TTL" in content
    assert "Finished already" not in content
    assert "Unrelated item" not in content


def test_related_open_items_box_leaves_out_incidents_i_may_not_see(client_for, me):
    secret = IncidentFactory(tags=["dns"], title="Secret DNS breach", visibility=Visibility.RESTRICTED)
    ActionItemFactory(incident=secret, title="Rotate secret keys")
    other_draft = IncidentFactory(tags=["dns"], status=Status.DRAFT)
    ActionItemFactory(incident=other_draft, title="Draft item")
    ActionItemFactory(incident=IncidentFactory(tags=["dns"]), title="Lower the DNS TTL")
    draft = IncidentFactory(owner=me, status=Status.DRAFT, tags=["dns"])

    content = client_for(me).get(draft.get_absolute_url()).content.decode()

    assert "Lower the DNS TTL" in content
    assert "Rotate secret keys" not in content
    assert "Secret DNS breach" not in content
    assert "Draft item" not in content


def test_published_postmortem_has_no_related_open_items_box(client_for, me):
    older = IncidentFactory(tags=["dns"])
    ActionItemFactory(incident=older, title="Lower the DNS TTL")
    newer = IncidentFactory(tags=["dns"])
    content = client_for(me).get(newer.get_absolute_url()).content.decode()
    assert "Open action items from related incidents" not in content


def test_related_open_items_show_five_and_fold_the_rest(client_for, me):
    older = IncidentFactory(tags=["dns"])
    for day in range(7):
        due = timezone.localdate() + dt.timedelta(days=day)
        ActionItemFactory(incident=older, title=f"Related item {day}", due_date=due)
    draft = IncidentFactory(owner=me, status=Status.DRAFT, tags=["dns"])

    content = client_for(me).get(draft.get_absolute_url()).content.decode()

    box = content[content.index('id="related-open-action-items"') :]
    folded = box[box.index("<details") :]
    assert "2 more, soonest due first" in folded
    assert "Related item 4" not in folded
    assert "Related item 5" in folded
    assert "Related item 6" in folded


# --- an update made on an older view of the item is refused, with the item as it is now ----------------


def test_a_change_made_on_an_older_view_is_refused_with_the_current_values(client_for, me):
    colleague = UserFactory()
    item = ActionItemFactory(owner=me, incident=IncidentFactory(status=Status.PUBLISHED, owner=colleague))
    seen = ActionItem.objects.get(pk=item.pk).updated_at.isoformat()
    link = "https://tracker.example.com/OPS-7"
    assert (
        post_update(client_for(colleague), item, status="in_progress", backlog_link=link).status_code == 302
    )

    response = post_update(client_for(me), item, status="done", seen=seen)

    assert response.status_code == 409
    item.refresh_from_db()
    assert item.status == ActionItemStatus.IN_PROGRESS  # the colleague's change stands
    assert item.backlog_link == link
    page = response.content.decode()
    assert "Someone changed this action item after you opened it" in page
    assert f'value="{link}"' in page
    assert re.search(r'<option value="in_progress" selected>', page)
    fresh = re.search(rf'name="item-{item.pk}-seen" value="([^"]+)"', page)[1]
    assert fresh == item.updated_at.isoformat()
    assert post_update(client_for(me), item, status="done", seen=fresh).status_code == 302
    item.refresh_from_db()
    assert item.status == ActionItemStatus.DONE


def test_an_authors_edit_of_the_item_also_makes_an_older_view_stale(client_for, me):
    item = ActionItemFactory(owner=me)
    seen = ActionItem.objects.get(pk=item.pk).updated_at.isoformat()
    ActionItem.objects.get(pk=item.pk).save()  # e.g. the actions step saved by an author
    response = post_update(client_for(me), item, status="done", seen=seen)
    assert response.status_code == 409
    item.refresh_from_db()
    assert item.status == ActionItemStatus.OPEN
    assert not Activity.objects.filter(verb=ActivityVerb.ACTION_ITEM_UPDATED).exists()


@pytest.mark.parametrize("seen", ["", "yesterday"])
def test_a_post_without_a_readable_version_is_refused(client_for, me, seen):
    item = ActionItemFactory(owner=me)
    response = post_update(client_for(me), item, status="done", seen=seen)
    assert response.status_code == 400
    assert "reload the page" in response.content.decode()
    item.refresh_from_db()
    assert item.status == ActionItemStatus.OPEN
