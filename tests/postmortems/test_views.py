import re

import pytest
from django.urls import reverse

from postmortems.models import ActionItem, Comment, ContributingFactor, Incident, Status, Visibility
from tests.factories import (
    ActionItemFactory,
    ContributingFactorFactory,
    IncidentFactory,
    LessonFactory,
    TeamFactory,
    TimelineEventFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    ["/postmortems/", "/postmortems/1/", "/accounts/password/", "/markdownx/markdownify/"],
)
def test_anonymous_visitor_is_sent_to_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_root_redirects_to_the_list(client, user):
    client.force_login(user)
    response = client.get("/")
    assert response["Location"] == reverse("postmortems:list")


def test_sign_in_page_is_open_and_signs_in(client):
    UserFactory(username="alice", password="hindsight-demo")
    page = client.get("/accounts/login/")
    assert b"Sign in" in page.content
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": "hindsight-demo"}, follow=True
    )
    assert response.context["user"].username == "alice"
    assert b"Signed in as" in response.content


def test_sign_in_with_a_wrong_password_keeps_the_username_and_says_why(client):
    UserFactory(username="alice", password="hindsight-demo")
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert not response.context["user"].is_authenticated
    assert b'value="alice"' in response.content
    assert b"correct username and password" in response.content


def test_detail_shows_every_section_in_template_order(client_for, full_incident):
    incident = full_incident
    body = client_for(UserFactory()).get(incident.get_absolute_url()).content.decode()
    expected_in_order = [
        incident.title,
        "Incident date",
        "Wednesday, 4 March 2026",
        "Owner",
        str(incident.owner),
        "Peer-review committee",
        "Rita Reviewer",
        "Tags",
        "database",
        "Summary",
        "<strong>connection-pool</strong>",
        "Supporting data",
        "<td>4512</td>",
        "Customer impact",
        "1234 impacted customers",
        "EU customers could not check out.",
        "Incident response analysis",
        "<strong>Detection</strong> took twelve minutes.",
        "Post-incident analysis",
        "The config push skipped staging.",
        "Timeline",
        "Timeline event number 0",
        "Contributing factors",
        "Pool size set to 5 in production",
        "Why 2: no review of config values",
        "Lessons learned",
        "Config changes need the same review as code.",
        "Action items",
        "Validate pool sizes in CI 0",
        "https://tracker.example.com/OPS-100",
    ]
    position = 0
    for text in expected_in_order:
        found = body.find(text, position)
        assert found != -1, f"{text!r} missing, or not after the previous section"
        position = found


def test_detail_shows_times_in_the_incident_zone_with_its_name(client_for, full_incident):
    viewer = UserFactory(time_zone="America/New_York")
    body = client_for(viewer).get(full_incident.get_absolute_url()).content.decode()
    # 08:00 UTC is 09:00 in Berlin in March; the reader's zone is on hover.
    assert "2026-03-04 09:00" in body
    assert "CET (Europe/Berlin)" in body
    assert "2026-03-04 03:00 EST in your zone (America/New_York)" in body
    assert "time to detect 12 min" in body


def test_detail_renders_markdown_sanitised(client_for):
    incident = IncidentFactory(
        summary='Hi <script>alert("x")</script>[a](javascript:alert(1)) <b onclick="x">b</b>'
    )
    body = client_for(UserFactory()).get(incident.get_absolute_url()).content.decode()
    assert "<script>alert" not in body
    assert "javascript:alert" not in body
    assert "onclick" not in body


def test_detail_of_someone_elses_draft_is_not_found(client_for):
    draft = IncidentFactory(status=Status.DRAFT)
    response = client_for(UserFactory()).get(draft.get_absolute_url())
    assert response.status_code == 404


def test_detail_of_restricted_incident_is_not_found_for_outsiders(client_for):
    incident = IncidentFactory(visibility=Visibility.RESTRICTED)
    assert client_for(UserFactory()).get(incident.get_absolute_url()).status_code == 404


KINDS = {
    "draft": {"status": Status.DRAFT},
    "in review, restricted": {"status": Status.IN_REVIEW, "visibility": Visibility.RESTRICTED},
    "published": {"status": Status.PUBLISHED},
    "published, restricted": {"status": Status.PUBLISHED, "visibility": Visibility.RESTRICTED},
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("who", ["owner", "coauthor", "reviewer", "teammate", "other", "staff"])
def test_detail_is_found_exactly_by_those_who_may_see_it(client_for, kind, who):
    people = {
        name: UserFactory(is_staff=name == "staff")
        for name in ("owner", "coauthor", "reviewer", "teammate", "other", "staff")
    }
    incident = IncidentFactory(
        owner=people["owner"],
        co_authors=[people["coauthor"]],
        committee=[people["reviewer"]],
        teams=[TeamFactory(members=[people["teammate"]])],
        **KINDS[kind],
    )
    may_see = Incident.objects.visible_to(people[who]).filter(pk=incident.pk).exists()
    response = client_for(people[who]).get(incident.get_absolute_url())
    assert response.status_code == (200 if may_see else 404)


def test_detail_of_a_missing_incident_is_not_found(client_for):
    assert client_for(UserFactory()).get("/postmortems/999999/").status_code == 404


def test_detail_links_factors_lessons_and_action_items_as_stored(client_for):
    incident = IncidentFactory()
    root = ContributingFactorFactory(incident=incident, description="Root factor")
    child = ContributingFactorFactory(incident=incident, parent=root, description="Child factor")
    lonely = ContributingFactorFactory(incident=incident, description="Lonely factor")
    later = ActionItemFactory(incident=incident, title="Later item", factors=[root, child])
    sooner = ActionItemFactory(
        incident=incident, title="Sooner item", factors=[child], due_date=later.due_date.replace(day=1)
    )
    ActionItemFactory(incident=incident, title="Unlinked item")
    lesson = LessonFactory(incident=incident, text="A lesson")
    lesson.action_items.add(later, sooner)
    LessonFactory(incident=incident, text="Another lesson")

    shown = client_for(UserFactory()).get(incident.get_absolute_url()).context["incident"]

    for factor in shown.factors.all():
        assert list(factor.action_items.all()) == list(ActionItem.objects.filter(factors=factor))
    for item in shown.action_items.all():
        assert list(item.factors.all()) == list(ContributingFactor.objects.filter(action_items=item))
    for each in shown.lessons.all():
        assert list(each.action_items.all()) == list(ActionItem.objects.filter(lessons=each))
    assert [item.title for item in lesson.action_items.all()] == ["Sooner item", "Later item"]
    assert lonely.pk not in {f.pk for item in shown.action_items.all() for f in item.factors.all()}


def test_detail_shows_links_to_another_postmortems_rows(client_for):
    # Only the admin can link across postmortems; such a link still shows on both pages.
    here, there = IncidentFactory(), IncidentFactory()
    ContributingFactorFactory(incident=here, description="Local factor")
    faraway = ContributingFactorFactory(incident=there, description="Faraway factor")
    ActionItemFactory(incident=here, title="Item from here", factors=[faraway])
    LessonFactory(incident=there, text="Lesson there").action_items.add(*here.action_items.all())
    client = client_for(UserFactory())

    body_here = client.get(here.get_absolute_url()).content.decode()
    body_there = client.get(there.get_absolute_url()).content.decode()

    assert "Faraway factor" in body_here
    assert "→ Item from here" in body_there
    assert re.search(r"Leads to: <a [^>]*>Item from here</a>", body_there)


def test_related_incidents_leave_out_drafts_and_restricted_ones_i_may_not_see(client_for):
    teammate = UserFactory()
    this = IncidentFactory(tags=["dns"])
    IncidentFactory(
        title="Restricted one",
        tags=["dns"],
        visibility=Visibility.RESTRICTED,
        teams=[TeamFactory(members=[teammate])],
    )
    IncidentFactory(title="A draft", tags=["dns"], status=Status.DRAFT, owner=teammate)

    def related_for(user):
        return [other.title for other in client_for(user).get(this.get_absolute_url()).context["related"]]

    assert related_for(teammate) == ["Restricted one"]
    assert related_for(UserFactory()) == []


def test_list_shows_published_and_my_drafts_only(client_for):
    me = UserFactory()
    published = IncidentFactory(title="Published one")
    mine = IncidentFactory(title="My own draft", owner=me, status=Status.DRAFT)
    IncidentFactory(title="Someone else's draft", status=Status.DRAFT)
    body = client_for(me).get("/postmortems/").content.decode()
    assert published.title in body
    assert mine.title in body
    assert "My drafts" in body
    assert "Someone else&#x27;s draft" not in body


def test_list_filters_by_several_tags_with_and(client_for):
    IncidentFactory(title="Both tags", tags=["dns", "network"])
    IncidentFactory(title="Only dns", tags=["dns"])
    body = client_for(UserFactory()).get("/postmortems/?tag=dns&tag=network").content.decode()
    assert "Both tags" in body
    assert "Only dns" not in body


def _populate(count):
    people = [UserFactory() for _ in range(3)]
    incidents = []
    for i in range(count):
        incident = IncidentFactory(
            owner=people[i % 3], committee=[people[(i + 1) % 3]], tags=[f"t{i}", "shared"]
        )
        for _ in range(10):
            TimelineEventFactory(incident=incident)
        factors = [ContributingFactorFactory(incident=incident) for _ in range(5)]
        for f in factors:
            ActionItemFactory(incident=incident, owner=people[i % 3], factors=[f])
        incidents.append(incident)
    return incidents


def test_list_queries_do_not_grow_with_rows(client_for, django_assert_max_num_queries):
    _populate(30)
    client = client_for(UserFactory())
    with django_assert_max_num_queries(10):
        response = client.get("/postmortems/")
    assert len(response.context["incidents"]) == 20


def test_detail_queries_do_not_grow_with_rows(client_for, django_assert_max_num_queries):
    incidents = _populate(30)
    client = client_for(UserFactory())
    # The session and user, the incident, its tags, people, timeline, factors, items and lessons with their
    # links, sign-offs, comments, activity and related incidents: each one query, however many rows.
    with django_assert_max_num_queries(17):
        response = client.get(incidents[0].get_absolute_url())
    body = response.content.decode()
    assert body.count('class="kind-') == 10
    assert len(re.findall(r'id="action-\d+"', body)) == 5


def test_detail_of_my_draft_keeps_its_query_budget(client_for, django_assert_max_num_queries):
    incidents = _populate(5)
    draft = incidents[-1]  # the newest: the others' open items are related
    draft.status = Status.DRAFT
    draft.save()
    client = client_for(draft.owner)
    with django_assert_max_num_queries(18):
        response = client.get(draft.get_absolute_url())
    body = response.content.decode()
    assert "Open action items from related incidents" in body
    assert len(re.findall(r'id="action-\d+"', body)) == 5


def test_markdownx_preview_uses_the_sanitising_renderer(client_for):
    response = client_for(UserFactory()).post(
        "/markdownx/markdownify/", {"content": "**ok** <script>alert(1)</script><img src=x onerror=alert(1)>"}
    )
    html = response.content.decode()
    assert "<strong>ok</strong>" in html
    assert "<script" not in html
    assert "onerror" not in html


def test_markdown_preview_without_content_is_empty_not_an_error(client_for):
    response = client_for(UserFactory()).post("/markdownx/markdownify/", {})
    assert response.status_code == 200
    assert response.content == b""


def test_a_draft_page_seen_by_its_owner_is_not_shown_to_someone_else(client_for):
    owner, other = UserFactory(), UserFactory()  # the same audience: neither sees a restricted incident
    draft = IncidentFactory(owner=owner, status=Status.DRAFT, title="Not yet for everyone")
    assert client_for(owner).get(draft.get_absolute_url()).status_code == 200
    assert client_for(other).get(draft.get_absolute_url()).status_code == 404


def test_a_detail_page_shows_a_new_comment_that_did_not_save_the_incident(client_for):
    reader = UserFactory()
    incident = IncidentFactory(title="Commented on")
    client = client_for(reader)
    assert "Check the failover runbook" not in client.get(incident.get_absolute_url()).content.decode()
    Comment.objects.create(
        incident=incident, section="summary", author=reader, text="Check the failover runbook", revision=1
    )  # a comment does not save the incident
    assert "Check the failover runbook" in client.get(incident.get_absolute_url()).content.decode()
