"""The REST API with real personal tokens: what each role may read and do, and the IDOR cases."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.utils import timezone

from integrations.models import ApiToken, TokenAccess
from postmortems import search
from postmortems.models import (
    ActionItemStatus,
    Activity,
    ActivityVerb,
    Decision,
    Incident,
    SignOff,
    Status,
    Visibility,
)
from tests.factories import ActionItemFactory, IncidentFactory, TeamFactory, UserFactory
from tests.postmortems.reviewing import make_cast, postmortem, sign

pytestmark = pytest.mark.django_db

API = "/api/v1"


@pytest.fixture
def cast(db):
    return make_cast()


# --- tokens ------------------------------------------------------------------------------------------------


def test_api_without_a_token_is_refused_as_json(client):
    response = client.get(f"{API}/postmortems/")
    assert response.status_code == 401
    assert response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("state", ["unknown", "revoked", "expired", "inactive user"])
def test_api_refuses_a_token_that_does_not_work(client, user, state):
    token, secret = ApiToken.issue(user=user, name="t", access=TokenAccess.READ)
    if state == "unknown":
        secret = secret[:-2] + ("yy" if secret.endswith("xx") else "xx")  # never the secret itself
    elif state == "revoked":
        ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    elif state == "expired":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    else:
        user.is_active = False
        user.save()
    response = client.get(f"{API}/me/", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401
    assert "token" in response.json()["detail"]


def test_api_token_is_stored_hashed_and_its_last_use_recorded(api_as, user):
    api = api_as(user)
    token = ApiToken.objects.get(user=user)
    assert api.secret not in (token.key_hash, token.hint)
    assert token.hint == api.secret[:8]
    assert token.last_used_at is None

    response = api.get(f"{API}/me/")

    assert response.json_body == {
        "username": user.username, "name": str(user), "is_staff": False, "token": "test", "access": "write",
    }  # fmt: skip
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_read_only_token_cannot_write(api_as, cast):
    incident = postmortem(cast)
    api = api_as(cast.owner, access=TokenAccess.READ)

    assert api.get(f"{API}/postmortems/{incident.pk}/").status_code == 200
    response = api.post(f"{API}/postmortems/{incident.pk}/request-review/")

    assert response.status_code == 403
    assert "read-only" in response.json_body["detail"]
    incident.refresh_from_db()
    assert incident.status == Status.DRAFT


def test_api_is_throttled_per_token(api_as, user, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": "3/minute"}}
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    first, second = api_as(user), api_as(user)
    try:
        codes = [first.get(f"{API}/me/").status_code for _ in range(4)]
        other = second.get(f"{API}/me/").status_code
    finally:
        SimpleRateThrottle.THROTTLE_RATES = {"token": "600/minute"}
    assert codes == [200, 200, 200, 429]
    assert other == 200  # another token has its own budget


# --- reading -----------------------------------------------------------------------------------------------


DETAIL_ACCESS = [
    # (status, visibility, role, expected)
    (Status.DRAFT, Visibility.NORMAL, "owner", 200),
    (Status.DRAFT, Visibility.NORMAL, "co_author", 200),
    (Status.DRAFT, Visibility.NORMAL, "reviewer_a", 200),
    (Status.DRAFT, Visibility.NORMAL, "staff", 200),
    (Status.DRAFT, Visibility.NORMAL, "other", 404),
    (Status.IN_REVIEW, Visibility.NORMAL, "other", 404),
    (Status.PUBLISHED, Visibility.NORMAL, "other", 200),
    (Status.PUBLISHED, Visibility.RESTRICTED, "other", 404),
    (Status.PUBLISHED, Visibility.RESTRICTED, "team member", 200),
    (Status.PUBLISHED, Visibility.RESTRICTED, "staff", 200),
]


@pytest.mark.parametrize(("status", "visibility", "role", "expected"), DETAIL_ACCESS)
def test_api_detail_shows_what_the_browser_shows(
    api_as, client_for, cast, status, visibility, role, expected
):
    member = UserFactory(username="member")
    incident = postmortem(cast, status=status, visibility=visibility, teams=[TeamFactory(members=[member])])
    reader = member if role == "team member" else cast[role]

    response = api_as(reader).get(f"{API}/postmortems/{incident.pk}/")

    assert response.status_code == expected
    browser = client_for(reader).get(incident.get_absolute_url())
    assert browser.status_code == expected
    if expected == 200:
        body = response.json_body
        assert body["title"] == incident.title
        assert response["ETag"] == f'"{incident.revision}"'
    else:
        assert incident.title not in response.content.decode()


def test_api_detail_holds_the_whole_postmortem(api_as, cast):
    incident = postmortem(cast, status=Status.IN_REVIEW)
    sign(incident, cast.reviewer_a)

    body = api_as(cast.owner).get(f"{API}/postmortems/{incident.pk}/").json_body

    assert body["summary"].startswith("A **connection-pool**")
    assert body["impacted_customers"] == 1234
    assert len(body["timeline"]) == 3
    factors = body["factors"]
    assert next(f["parent"] for f in factors) is None
    assert factors[1]["parent"] == factors[0]["id"]
    assert len(body["action_items"]) == 2
    assert body["lessons"][0]["action_items"]
    assert body["committee"] == ["reva", "revb"]
    assert body["sign_offs"] == [
        {**body["sign_offs"][0], "reviewer": "reva", "decision": Decision.APPROVE, "is_stale": False}
    ]
    assert body["tags"] == ["configuration", "database"]


def test_api_list_shows_published_incidents_the_reader_may_see(api_as, cast):
    public = IncidentFactory(title="Public outage")
    restricted = IncidentFactory(title="Secret outage", visibility=Visibility.RESTRICTED)
    draft = postmortem(cast, title="Someone's draft")

    titles = [row["title"] for row in api_as(cast.other).get(f"{API}/postmortems/").json_body["results"]]
    all_titles = [
        row["title"]
        for row in api_as(cast.other).get(f"{API}/postmortems/", status="any").json_body["results"]
    ]
    owner_drafts = api_as(cast.owner).get(f"{API}/postmortems/", status="draft").json_body["results"]

    assert titles == [public.title]
    assert restricted.title not in all_titles
    assert draft.title not in all_titles
    assert [row["title"] for row in owner_drafts] == [draft.title]


def test_api_list_searches_and_filters_as_the_list_page(api_as, user):
    IncidentFactory(title="DNS resolver outage", tags=["dns"], severity="SEV1")
    IncidentFactory(title="Database failover", tags=["database"], severity="SEV2")
    IncidentFactory(title="DNS cache poisoning drill", tags=["dns"], severity="SEV3")
    search.update_search_vectors()
    api = api_as(user)

    def titles(**query):
        response = api.get(f"{API}/postmortems/", **query)
        assert response.status_code == 200, response.json_body
        return sorted(row["title"] for row in response.json_body["results"])

    assert titles(q="dns") == ["DNS cache poisoning drill", "DNS resolver outage"]
    assert titles(q="dns -drill") == ["DNS resolver outage"]
    assert titles(tag="dns", severity="SEV1") == ["DNS resolver outage"]
    assert titles(tag=["dns", "database"]) == []


def test_api_list_paginates_with_a_cursor(api_as, user):
    for n in range(5):
        IncidentFactory(title=f"Outage {n}")
    api = api_as(user)

    first = api.get(f"{API}/postmortems/", page_size=2).json_body
    second = api.client.get(first["next"], headers={"Authorization": f"Bearer {api.secret}"}).json()

    assert [row["title"] for row in first["results"]] == ["Outage 4", "Outage 3"]
    assert [row["title"] for row in second["results"]] == ["Outage 2", "Outage 1"]
    assert first["previous"] is None
    assert "cursor=" in first["next"]


@pytest.mark.parametrize(
    ("query", "field"),
    [({"from": "2026-13-01"}, "from"), ({"owner": "nobody"}, "owner"), ({"status": "lost"}, "status"),
     ({"severity": "SEV9"}, "severity"), ({"from": "2026-03-05", "to": "2026-03-01"}, "to")],
)  # fmt: skip
def test_api_list_refuses_bad_filters_with_field_messages(api_as, user, query, field):
    response = api_as(user).get(f"{API}/postmortems/", **query)
    assert response.status_code == 400
    assert response.json_body["errors"][field]


# --- writing -----------------------------------------------------------------------------------------------


def test_api_creates_a_draft_logged_as_through_the_api(api_as, cast):
    body = {
        "title": "Queue backlog delayed invoices",
        "incident_date": "2026-03-01",
        "committee": [cast.reviewer_a.pk],
        "tags": ["queue", "billing"],
        "started_at": "2026-03-01T10:00",
    }
    response = api_as(cast.owner).post(f"{API}/postmortems/", body)

    assert response.status_code == 201, response.json_body
    incident = Incident.objects.get(pk=response.json_body["id"])
    assert incident.status == Status.DRAFT
    assert incident.owner == cast.owner
    assert sorted(incident.tags.names()) == ["billing", "queue"]
    assert incident.started_at == dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)  # the owner's zone, UTC
    activity = incident.activities.get()
    assert activity.verb == ActivityVerb.CREATED
    assert activity.detail == "through the API"


@pytest.mark.parametrize(
    ("body", "field"),
    [({"title": "X", "incident_date": "yesterday"}, "incident_date"),
     ({"incident_date": "2026-03-01"}, "title"),
     ({"title": "X", "incident_date": "2026-03-01", "committee": [99999]}, "committee"),
     ({"title": "X", "incident_date": "2026-03-01", "started_at": "soon"}, "started_at"),
     ({"title": "X", "incident_date": "2026-03-01", "colour": "red"}, "colour")],
)  # fmt: skip
def test_api_create_refuses_bad_fields_with_their_messages(api_as, user, body, field):
    response = api_as(user).post(f"{API}/postmortems/", body)
    assert response.status_code == 400
    assert response.json_body["errors"][field]
    assert not Incident.objects.exists()


@pytest.mark.parametrize("body", ["[1, 2]", "not json", '"text"'])
def test_api_refuses_a_body_that_is_not_an_object(api_as, user, client, body):
    api = api_as(user)
    response = client.post(
        f"{API}/postmortems/",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.secret}"},
    )
    assert response.status_code == 400
    assert response.json()["detail"]


def test_api_writes_a_step_with_the_revision_read(api_as, cast):
    incident = postmortem(cast)
    api = api_as(cast.co_author)
    revision = api.get(f"{API}/postmortems/{incident.pk}/").json_body["revision"]

    response = api.patch(
        f"{API}/postmortems/{incident.pk}/steps/impact/",
        {"summary": "Pool exhausted.", "impacted_customers": 0},
        if_match=revision,
    )

    assert response.status_code == 200, response.json_body
    incident.refresh_from_db()
    assert incident.summary == "Pool exhausted."
    assert incident.impacted_customers == 0
    assert incident.customer_impact == "EU customers could not check out."  # untouched fields stay
    assert incident.revision == revision + 1
    assert response["ETag"] == f'"{revision + 1}"'
    edit = incident.activities.get(verb=ActivityVerb.EDITED)
    assert edit.actor == cast.co_author
    assert edit.detail == "Impact (through the API)"


def test_api_refuses_a_stale_step_write_with_412(api_as, cast):
    incident = postmortem(cast)
    api = api_as(cast.owner)
    read = incident.revision
    assert (
        api.patch(
            f"{API}/postmortems/{incident.pk}/steps/impact/", {"summary": "First."}, if_match=read
        ).status_code
        == 200
    )

    response = api.patch(
        f"{API}/postmortems/{incident.pk}/steps/impact/", {"summary": "Second."}, if_match=read
    )

    assert response.status_code == 412
    assert "now revision" in response.json_body["detail"]
    incident.refresh_from_db()
    assert incident.summary == "First."


def test_api_step_write_needs_if_match(api_as, cast):
    incident = postmortem(cast)
    response = api_as(cast.owner).patch(f"{API}/postmortems/{incident.pk}/steps/impact/", {"summary": "x"})
    assert response.status_code == 428
    assert "If-Match" in response.json_body["detail"]


@pytest.mark.parametrize(("role", "expected"), [("reviewer_a", 403), ("other", 404), ("staff", 403)])
def test_api_step_write_by_someone_who_may_not_edit(api_as, cast, role, expected):
    incident = postmortem(cast)
    response = api_as(cast[role]).patch(
        f"{API}/postmortems/{incident.pk}/steps/impact/", {"summary": "Hijacked."}, if_match=incident.revision
    )
    assert response.status_code == expected
    incident.refresh_from_db()
    assert incident.summary != "Hijacked."


def test_api_step_write_to_a_published_postmortem_is_refused(api_as, cast):
    incident = postmortem(cast, status=Status.PUBLISHED)
    response = api_as(cast.owner).patch(
        f"{API}/postmortems/{incident.pk}/steps/impact/", {"summary": "x"}, if_match=incident.revision
    )
    assert response.status_code == 403


def test_api_owner_field_ignored_from_a_co_author(api_as, cast):
    incident = postmortem(cast)
    response = api_as(cast.co_author).patch(
        f"{API}/postmortems/{incident.pk}/steps/basics/", {"owner": cast.co_author.pk, "title": "Renamed"},
        if_match=incident.revision,
    )  # fmt: skip
    assert response.status_code == 400  # a disabled field is not the API's to set
    (message,) = response.json_body["errors"]["owner"]
    assert message == "Only the owner hands a postmortem over to someone else."
    incident.refresh_from_db()
    assert incident.owner == cast.owner


def test_api_adds_changes_and_removes_timeline_events(api_as, cast):
    incident = postmortem(cast)
    api = api_as(cast.owner)
    url = f"{API}/postmortems/{incident.pk}/timeline/"

    added = api.post(
        url,
        {
            "occurred_at": "2026-03-04T10:30",
            "zone": "Europe/Berlin",
            "kind": "detection",
            "description": "Pager",
        },
        if_match=incident.revision,
    )

    assert added.status_code == 201, added.json_body
    event = incident.timeline_events.get(description="Pager")
    assert event.occurred_at == dt.datetime(2026, 3, 4, 9, 30, tzinfo=dt.UTC)
    assert added["Location"].endswith(f"/timeline/{event.pk}/")
    revision = added.json_body["revision"]

    changed = api.patch(f"{url}{event.pk}/", {"description": "Pager fired"}, if_match=revision)
    assert changed.status_code == 200, changed.json_body
    event.refresh_from_db()
    assert event.description == "Pager fired"
    assert incident.timeline_events.count() == 4

    removed = api.delete(f"{url}{event.pk}/", if_match=changed.json_body["revision"])
    assert removed.status_code == 200
    assert not incident.timeline_events.filter(pk=event.pk).exists()
    assert incident.timeline_events.count() == 3


def test_api_row_errors_name_the_field(api_as, cast):
    incident = postmortem(cast)
    response = api_as(cast.owner).post(
        f"{API}/postmortems/{incident.pk}/timeline/",
        {"occurred_at": "2026-03-29T02:30", "zone": "Europe/Berlin", "description": "In the DST gap"},
        if_match=incident.revision,
    )
    assert response.status_code == 400
    assert "does not exist" in response.json_body["errors"]["occurred_at"][0]


def test_api_row_of_another_incident_is_not_found(api_as, cast):
    mine, theirs = postmortem(cast), postmortem(cast, owner=cast.other, co_authors=[])
    event = theirs.timeline_events.first()
    response = api_as(cast.owner).patch(
        f"{API}/postmortems/{mine.pk}/timeline/{event.pk}/", {"description": "x"}, if_match=mine.revision
    )
    assert response.status_code == 404
    event.refresh_from_db()
    assert event.description != "x"


def test_api_adds_an_action_item_and_a_factor(api_as, cast):
    incident = postmortem(cast)
    api = api_as(cast.owner)
    factor = api.post(
        f"{API}/postmortems/{incident.pk}/factors/",
        {"description": "No canary", "category": "process", "parent": incident.factors.first().pk},
        if_match=incident.revision,
    )
    assert factor.status_code == 201, factor.json_body
    new_factor = incident.factors.get(description="No canary")

    item = api.post(
        f"{API}/postmortems/{incident.pk}/action-items/",
        {
            "title": "Add a canary stage",
            "owner": cast.co_author.pk,
            "priority": "P2",
            "factors": [new_factor.pk],
        },
        if_match=factor.json_body["revision"],
    )

    assert item.status_code == 201, item.json_body
    created = incident.action_items.get(title="Add a canary stage")
    assert created.owner == cast.co_author
    assert list(created.factors.all()) == [new_factor]
    assert created.due_date is not None  # the priority's default, as in the form


# --- the workflow ------------------------------------------------------------------------------------------


def test_api_runs_the_whole_review(api_as, cast):
    incident = postmortem(cast)
    owner, reva, revb = api_as(cast.owner), api_as(cast.reviewer_a), api_as(cast.reviewer_b)
    base = f"{API}/postmortems/{incident.pk}"

    assert owner.post(f"{base}/request-review/").json_body["status"] == Status.IN_REVIEW
    revision = reva.get(f"{base}/").json_body["revision"]
    assert reva.post(f"{base}/approve/", {"revision": revision}).status_code == 200
    changes = revb.post(f"{base}/request-changes/", {"revision": revision, "comment": "Add the graph."})
    assert changes.status_code == 200
    refused = owner.post(f"{base}/publish/")
    assert refused.status_code == 409
    assert "requested changes" in refused.json_body["detail"]
    assert revb.post(f"{base}/approve/", if_match=revision).status_code == 200
    published = owner.post(f"{base}/publish/")

    assert published.status_code == 200, published.json_body
    assert published.json_body["status"] == Status.PUBLISHED
    verbs = dict(incident.activities.values_list("verb", "detail"))
    assert verbs[ActivityVerb.PUBLISHED] == "through the API"
    assert verbs[ActivityVerb.CHANGES_REQUESTED] == "Add the graph. (through the API)"
    reopened = owner.post(f"{base}/reopen/", {"reason": "New data"})
    assert reopened.json_body["status"] == Status.DRAFT


@pytest.mark.parametrize(
    ("action", "role", "status", "expected"),
    [("request-review", "reviewer_a", Status.DRAFT, 403),
     ("request-review", "other", Status.DRAFT, 404),
     ("approve", "other", Status.IN_REVIEW, 404),           # not on the committee and cannot see it
     ("approve", "staff", Status.IN_REVIEW, 403),           # sees it, but is not on the committee
     ("approve", "owner", Status.IN_REVIEW, 403),           # nobody approves their own
     ("request-changes", "co_author", Status.IN_REVIEW, 403),
     ("publish", "reviewer_a", Status.IN_REVIEW, 403),
     ("publish", "co_author", Status.IN_REVIEW, 403),
     ("reopen", "other", Status.PUBLISHED, 403),            # sees the published postmortem, may not reopen
     ("reopen", "reviewer_a", Status.PUBLISHED, 403),
     ("withdraw", "reviewer_a", Status.IN_REVIEW, 403),
     ("approve", "reviewer_a", Status.DRAFT, 409),
     ("publish", "owner", Status.DRAFT, 409)],
)  # fmt: skip
def test_api_refuses_workflow_actions_the_person_may_not_take(api_as, cast, action, role, status, expected):
    incident = postmortem(cast, status=status)
    body = {"revision": incident.revision, "comment": "Needs work", "reason": "Because"}

    response = api_as(cast[role]).post(f"{API}/postmortems/{incident.pk}/{action}/", body)

    assert response.status_code == expected, response.json_body
    assert response.json_body["detail"]
    incident.refresh_from_db()
    assert incident.status == status
    assert not SignOff.objects.filter(incident=incident).exists()


def test_api_approve_of_a_stale_revision_is_refused(api_as, cast):
    incident = postmortem(cast, status=Status.IN_REVIEW)
    response = api_as(cast.reviewer_a).post(
        f"{API}/postmortems/{incident.pk}/approve/", {"revision": incident.revision - 1 or 99}
    )
    assert response.status_code == 409
    assert "changed while you were reading" in response.json_body["detail"]


def test_api_sign_off_needs_the_revision(api_as, cast):
    incident = postmortem(cast, status=Status.IN_REVIEW)
    response = api_as(cast.reviewer_a).post(f"{API}/postmortems/{incident.pk}/approve/", {})
    assert response.status_code == 428
    bad = api_as(cast.reviewer_a).post(f"{API}/postmortems/{incident.pk}/approve/", {"revision": "seven"})
    assert bad.status_code == 400
    assert bad.json_body["errors"]["revision"]


# --- action items ------------------------------------------------------------------------------------------


def test_api_lists_action_items_as_the_action_items_page(api_as, client_for, user):
    mine = ActionItemFactory(owner=user, title="Mine")
    ActionItemFactory(title="Someone else's")
    on_a_draft = ActionItemFactory(
        owner=user, title="Mine, on a draft I have no part in", incident=IncidentFactory(status=Status.DRAFT)
    )
    hidden = ActionItemFactory(title="Not mine, on a draft", incident=on_a_draft.incident)
    api = api_as(user)

    mine_titles = [row["title"] for row in api.get(f"{API}/action-items/").json_body["results"]]
    all_titles = [row["title"] for row in api.get(f"{API}/action-items/", scope="all").json_body["results"]]

    # The work assigned to someone never disappears from them (issue 19), the rest of a hidden draft does.
    assert mine_titles == [mine.title, on_a_draft.title]
    assert "Someone else's" in all_titles
    assert hidden.title not in all_titles
    page = client_for(user).get("/action-items/").content.decode()
    assert on_a_draft.title in page
    assert api.get(f"{API}/action-items/{hidden.pk}/").status_code == 404
    mine_there = api.get(f"{API}/action-items/{on_a_draft.pk}/").json_body
    assert mine_there["title"] == on_a_draft.title
    assert api.get(f"{API}/postmortems/{on_a_draft.incident_id}/").status_code == 404


def test_api_moves_an_action_items_due_date(api_as, user, today):
    item = ActionItemFactory(owner=user)
    later = today + dt.timedelta(days=60)
    response = api_as(user).patch(f"{API}/action-items/{item.pk}/", {"due_date": later.isoformat()})
    assert response.status_code == 200, response.json_body
    item.refresh_from_db()
    assert item.due_date == later


def test_api_updates_an_action_item_after_publication(api_as, user):
    item = ActionItemFactory(owner=user)
    revision = item.incident.revision

    response = api_as(user).patch(
        f"{API}/action-items/{item.pk}/",
        {"status": "done", "backlog_link": "https://tracker.example.com/OPS-1"},
    )

    assert response.status_code == 200, response.json_body
    assert response.json_body["status"] == ActionItemStatus.DONE
    item.refresh_from_db()
    assert item.completed_at is not None
    assert item.backlog_link.endswith("OPS-1")
    item.incident.refresh_from_db()
    assert item.incident.revision == revision
    logged = Activity.objects.get(incident=item.incident, verb=ActivityVerb.ACTION_ITEM_UPDATED)
    assert logged.detail.endswith("(through the API)")


@pytest.mark.parametrize(
    ("body", "field"),
    [({"status": "wont_do"}, "wont_do_reason"), ({"status": "finished"}, "status"),
     ({"backlog_link": "not a link"}, "backlog_link")],
)  # fmt: skip
def test_api_action_item_update_refuses_bad_values(api_as, user, body, field):
    item = ActionItemFactory(owner=user)
    response = api_as(user).patch(f"{API}/action-items/{item.pk}/", body)
    assert response.status_code == 400
    assert response.json_body["errors"][field]


def test_api_action_item_of_someone_else_cannot_be_updated(api_as, user):
    item = ActionItemFactory()  # published, visible to everyone, owned by someone else
    restricted = ActionItemFactory(owner=user, incident=IncidentFactory(visibility=Visibility.RESTRICTED))
    restricted.owner = None
    restricted.save()
    api = api_as(user)

    refused = api.patch(f"{API}/action-items/{item.pk}/", {"status": "done"})
    hidden = api.patch(f"{API}/action-items/{restricted.pk}/", {"status": "done"})

    assert refused.status_code == 403
    assert hidden.status_code == 404
    item.refresh_from_db()
    assert item.status == ActionItemStatus.OPEN


def test_api_unknown_routes_and_rows_are_json_404s(api_as, cast):
    incident = postmortem(cast)
    api = api_as(cast.owner)
    assert api.patch(f"{API}/postmortems/{incident.pk}/steps/colour/", {}, if_match=1).status_code == 404
    assert api.post(f"{API}/postmortems/{incident.pk}/widgets/", {}, if_match=1).status_code == 404
    assert api.get(f"{API}/postmortems/999999/").status_code == 404


def test_api_list_and_detail_queries_do_not_grow_with_rows(api_as, cast, django_assert_max_num_queries):
    for _ in range(3):
        postmortem(cast, status=Status.PUBLISHED)
    api = api_as(cast.other)
    with django_assert_max_num_queries(6):
        few = api.get(f"{API}/postmortems/")
    for _ in range(12):
        postmortem(cast, status=Status.PUBLISHED)
    with django_assert_max_num_queries(6):
        many = api.get(f"{API}/postmortems/")
    assert len(few.json_body["results"]) == 3
    assert len(many.json_body["results"]) == 15
    with django_assert_max_num_queries(16):
        assert api.get(f"{API}/postmortems/{many.json_body['results'][0]['id']}/").status_code == 200


def test_schema_validates_and_docs_are_served_to_signed_in_people(client_for, client, user):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", os.devnull)
    assert client.get("/api/docs/").status_code == 302  # signed out: to the sign-in page
    signed_in = client_for(user)
    schema = signed_in.get("/api/schema/", {"format": "json"}).json()
    docs = signed_in.get("/api/docs/")
    assert "/api/v1/postmortems/{id}/approve/" in schema["paths"]
    assert schema["components"]["securitySchemes"]["personalToken"]["scheme"] == "bearer"
    assert docs.status_code == 200
    assert "swagger-ui" in docs.content.decode()


@pytest.mark.parametrize(("role", "expected"), [("reviewer_a", 403), ("other", 404), ("staff", 403)])
@pytest.mark.parametrize("method", ["post", "patch", "delete"])
def test_api_rows_by_someone_who_may_not_edit(api_as, cast, role, expected, method):
    incident = postmortem(cast)
    event = incident.timeline_events.first()
    api = api_as(cast[role])
    url = f"{API}/postmortems/{incident.pk}/timeline/"
    body = {"occurred_at": "2026-03-04T10:30", "zone": "UTC", "description": "Injected"}
    if method == "post":
        response = api.post(url, body, if_match=incident.revision)
    elif method == "patch":
        response = api.patch(f"{url}{event.pk}/", {"description": "Injected"}, if_match=incident.revision)
    else:
        response = api.delete(f"{url}{event.pk}/", if_match=incident.revision)
    assert response.status_code == expected
    assert incident.timeline_events.count() == 3
    assert not incident.timeline_events.filter(description="Injected").exists()
    assert not incident.activities.filter(verb=ActivityVerb.EDITED).exists()
