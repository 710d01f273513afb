"""postmortems/caching.py: what outlives a draft's autosave, and every change that must not."""

import datetime as dt

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from taggit.models import Tag

from postmortems import caching, followthrough, workflow
from postmortems.models import ActionItemStatus, Comment, Incident, Status, TimelineEvent, Visibility
from tests.factories import (
    ActionItemFactory,
    IncidentFactory,
    TeamFactory,
    TimelineEventFactory,
    UserFactory,
)
from tests.postmortems.test_forms import formset_data

pytestmark = pytest.mark.django_db


def listed(client, url="/postmortems/") -> str:
    return client.get(url).content.decode().split('data-testid="result-count"')[1]


def keys(user) -> tuple[str, str]:
    snapshot = caching.Snapshot(user)
    return snapshot.key("list", ()), snapshot.published_key("list", ())


def test_a_drafts_autosave_leaves_published_pages_cached(client_for):
    """While someone writes, their autosaves (the incident, its timeline rows, its activity line) change
    what drafts show, not what lists of published incidents show: those stay cached."""
    reader, author = UserFactory(), UserFactory()
    IncidentFactory(title="Published long ago", tags=["dns"])
    draft = IncidentFactory(owner=author, status=Status.DRAFT, time_zone="UTC")
    everything, published = keys(reader)
    reading = client_for(reader)
    assert "Published long ago" in listed(reading)

    autosave_timeline(author, draft, "Paged")
    assert TimelineEvent.objects.filter(incident=draft, description="Paged").exists()

    after_everything, after_published = keys(reader)
    assert after_everything != everything  # the draft's own pages follow its autosave
    assert after_published == published  # lists, searches, tag pages and insights stay cached


@pytest.mark.parametrize("how", ["reopened", "retitled", "restricted", "tagged", "timeline", "deleted"])
def test_every_change_to_a_published_incident_reaches_cached_lists(client_for, how):
    reader = UserFactory()
    incident = IncidentFactory(title="Once published", tags=["dns"], summary="Nothing about pools")
    IncidentFactory(title="Saved since", tags=["kubernetes"])  # the latest save of a published one
    client = client_for(reader)
    assert "Once published" in listed(client)
    assert "Once published" in listed(client, "/tags/dns/")
    assert "Once published" not in listed(client, "/postmortems/?tag=kubernetes")
    assert 'data-testid="count-dns">1<' in client.get("/tags/").content.decode()
    before = keys(reader)[1]

    if how == "reopened":
        workflow.reopen(Incident.objects.get(pk=incident.pk), by=incident.owner, reason="Wrong root cause")
        assert "Once published" not in listed(client)
    elif how == "retitled":
        incident = Incident.objects.get(pk=incident.pk)
        incident.title = "Published and retitled"
        incident.save()
        assert "Published and retitled" in listed(client)
    elif how == "restricted":
        incident.visibility = Visibility.RESTRICTED
        incident.save()
        assert "Once published" not in listed(client)
        assert 'data-testid="count-dns"' not in client.get("/tags/").content.decode()
    elif how == "tagged":
        Incident.objects.get(pk=incident.pk).tags.add("kubernetes")
        assert "Once published" in listed(client, "/postmortems/?tag=kubernetes")
        assert 'data-testid="count-kubernetes">2<' in client.get("/tags/").content.decode()
    elif how == "timeline":
        TimelineEventFactory(incident=Incident.objects.get(pk=incident.pk), description="pgbouncer saturated")
    elif how == "deleted":
        incident.delete()
        assert "Once published" not in listed(client)
    assert keys(reader)[1] != before


def test_follow_through_on_a_published_incident_reaches_the_open_items_narrowing(client_for):
    reader = UserFactory()
    incident = IncidentFactory(title="With one open item")
    item = ActionItemFactory(incident=incident, owner=incident.owner)
    client = client_for(reader)
    assert "With one open item" in listed(client, "/postmortems/?open=on")
    followthrough.update_action_item(
        item, by=incident.owner, status=ActionItemStatus.DONE, backlog_link="", wont_do_reason=""
    )
    assert "With one open item" not in listed(client, "/postmortems/?open=on")


def test_who_may_see_a_published_incident_reaches_cached_lists(client_for):
    reader = UserFactory()
    incident = IncidentFactory(title="Team only", visibility=Visibility.RESTRICTED, tags=["secret-project"])
    client = client_for(reader)

    def tag_index_shows_it() -> bool:
        return 'data-testid="count-secret-project">1<' in client.get("/tags/").content.decode()

    assert "Team only" not in listed(client)
    assert not tag_index_shows_it()
    incident.co_authors.add(reader)  # a link, not a save of the incident
    assert "Team only" in listed(client)
    assert tag_index_shows_it()
    incident.co_authors.remove(reader)
    assert "Team only" not in listed(client)
    assert not tag_index_shows_it()
    team = TeamFactory(members=[reader])
    incident.teams.add(team)
    assert "Team only" in listed(client)
    assert tag_index_shows_it()


def test_a_renamed_tag_reaches_cached_lists(client_for):
    client = client_for(UserFactory())
    IncidentFactory(title="Tagged", tags=["dns"])
    assert "dns" in listed(client)
    assert '/tags/dns/">dns</a>' in client.get("/tags/").content.decode()
    tag = Tag.objects.get(slug="dns")
    tag.name = "Domain names"
    tag.save()
    assert "Domain names" in listed(client)
    assert '/tags/dns/">Domain names</a>' in client.get("/tags/").content.decode()


def test_a_reopening_is_bumped_again_when_it_commits(django_capture_on_commit_callbacks):
    """A page computed between the reopening and its commit read the incident as published: the
    published generation moves again once the change is visible."""
    incident = IncidentFactory()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        workflow.reopen(incident, by=incident.owner, reason="New evidence")
    during = caching.generations()
    for callback in callbacks:
        callback()
    assert caching.generations()[1] > during[1]


def test_a_drafts_parts_are_told_from_memory_without_a_query(django_assert_num_queries):
    draft = IncidentFactory(status=Status.DRAFT)
    event = TimelineEventFactory.build(incident=draft)
    with django_assert_num_queries(1):  # the insert; the draft is in memory, read with its status
        event.save()


def autosave_timeline(author, draft, description: str) -> None:
    writing = Client()
    writing.force_login(author)
    row = {"occurred_at": "2026-03-04T10:00", "zone": "UTC", "kind": "detection", "description": description}
    data = formset_data("timeline", [row]) | {"expected_revision": str(draft.revision), "_autosave": "1"}
    response = writing.post(reverse("postmortems:edit", args=[draft.pk, "timeline"]), data)
    assert response.status_code == 200, response.content
    draft.refresh_from_db()


def test_a_published_page_stays_cached_while_a_draft_is_written_and_a_draft_page_follows(
    client_for, django_assert_max_num_queries
):
    reader, author = UserFactory(), UserFactory()
    published = IncidentFactory(title="Read while others write")
    draft = IncidentFactory(owner=author, status=Status.DRAFT, time_zone="UTC", title="Being written")
    reading = client_for(reader)
    reading.get(published.get_absolute_url())
    own = Client()
    own.force_login(author)
    assert "First line" not in own.get(draft.get_absolute_url()).content.decode()

    autosave_timeline(author, draft, "First line")
    # Session, user, the fingerprint and what the reader may do: no incident, parts or related incidents.
    with django_assert_max_num_queries(4):
        page = reading.get(published.get_absolute_url()).content.decode()
    assert "Read while others write" in page
    assert "First line" in own.get(draft.get_absolute_url()).content.decode()


def test_a_published_page_follows_its_follow_through_and_its_reopening(client_for):
    reader = UserFactory()
    incident = IncidentFactory(title="Followed through")
    item = ActionItemFactory(incident=incident, owner=incident.owner, title="Add a canary")
    client = client_for(reader)
    assert 'class="action-status">Open' in client.get(incident.get_absolute_url()).content.decode()
    followthrough.update_action_item(
        item, by=incident.owner, status=ActionItemStatus.DONE, backlog_link="", wont_do_reason=""
    )
    assert 'class="action-status">Done' in client.get(incident.get_absolute_url()).content.decode()
    workflow.reopen(Incident.objects.get(pk=incident.pk), by=incident.owner, reason="Wrong root cause")
    assert client.get(incident.get_absolute_url()).status_code == 404  # a draft again: not the reader's


def test_my_drafts_box_follows_my_drafts(client_for):
    me = UserFactory()
    client = client_for(me)
    IncidentFactory(title="Published")
    assert "my-drafts-heading" not in client.get("/postmortems/").content.decode()
    draft = IncidentFactory(owner=me, status=Status.DRAFT, title="Half written")
    assert "Half written" in client.get("/postmortems/").content.decode()
    draft.title = "Three quarters written"
    draft.save()
    assert "Three quarters written" in client.get("/postmortems/").content.decode()
    other = IncidentFactory(status=Status.DRAFT, title="Someone else's")
    other.co_authors.add(me)
    assert "Someone else&#x27;s" in client.get("/postmortems/").content.decode()


def test_a_published_pages_sections_are_kept_per_time_zone(client_for):
    """Sections 2 to 13 are kept as HTML; each time on them says when it was in the reader's zone too."""
    started = dt.datetime(2026, 1, 15, 10, 0, tzinfo=dt.UTC)
    incident = IncidentFactory(title="Read around the world", started_at=started)
    comment = Comment.objects.create(
        incident=incident, section="summary", author=incident.owner, text="Seen", revision=1
    )
    Comment.objects.filter(pk=comment.pk).update(created_at=started)
    tokyo = UserFactory(time_zone="Asia/Tokyo")
    berlin = UserFactory(time_zone="Europe/Berlin")
    for reader, local in (
        (tokyo, "2026-01-15 19:00 JST"),
        (berlin, "2026-01-15 11:00 CET"),
        (tokyo, "2026-01-15 19:00 JST"),
    ):
        page = client_for(reader).get(incident.get_absolute_url()).content.decode()
        dates = page.split('id="incident-date"')[1].split("</table>")[0]
        assert f"{local} in your zone ({reader.time_zone})" in dates
        comments = page.split('id="comments-summary"')[1].split("</ul>")[0]
        assert local[:-4] in comments
        assert "Seen" in comments


def test_a_reopening_in_another_process_reaches_cached_lists(client_for):
    """Without a shared cache each process has its own counters: what one process reopened, the others
    see through the published fingerprint, which the reopening's activity entry moves."""
    reader = UserFactory()
    incident = IncidentFactory(title="Reopened elsewhere")
    IncidentFactory(title="Saved since")  # the latest save of a published incident stays this one's
    client = client_for(reader)
    assert "Reopened elsewhere" in listed(client)
    counters = caching.generations()
    workflow.reopen(Incident.objects.get(pk=incident.pk), by=incident.owner, reason="Wrong root cause")
    everything, published = counters  # as in a process whose cache never saw the bumps
    cache.set_many({caching.GENERATION_KEY: everything, caching.PUBLISHED_GENERATION_KEY: published}, None)
    assert "Reopened elsewhere" not in listed(client)


def test_someone_elses_autosave_leaves_my_action_items_cached_and_my_drafts_do_not(client_for):
    me, stranger = UserFactory(), UserFactory()
    ActionItemFactory(owner=me, incident=IncidentFactory(title="Published with my item"))
    theirs = IncidentFactory(owner=stranger, status=Status.DRAFT, time_zone="UTC")
    mine = IncidentFactory(owner=UserFactory(), status=Status.DRAFT, time_zone="UTC")
    mine.co_authors.add(me)
    ActionItemFactory(owner=me, incident=mine, title="Item on a draft I write")

    def key():
        return caching.Snapshot(me).involved_key("action-items", ())

    before = key()
    autosave_timeline(stranger, theirs, "Their words")
    assert key() == before  # a draft I may not see
    autosave_timeline(mine.owner, mine, "Words on my draft")
    assert key() != before
    page = client_for(me).get("/action-items/", {"scope": "all"}).content.decode()
    assert "Item on a draft I write" in page


def test_my_action_items_follow_the_drafts_i_join_and_their_follow_through(client_for):
    me = UserFactory()
    draft = IncidentFactory(status=Status.DRAFT, title="Not mine yet")
    item = ActionItemFactory(incident=draft, owner=draft.owner, title="Their item")
    client = client_for(me)
    assert "Their item" not in client.get("/action-items/", {"scope": "all"}).content.decode()
    draft.co_authors.add(me)  # a link, not a save of the draft
    assert "Their item" in client.get("/action-items/", {"scope": "all"}).content.decode()
    followthrough.update_action_item(
        item, by=draft.owner, status=ActionItemStatus.DONE, backlog_link="", wont_do_reason=""
    )
    page = client.get("/action-items/", {"scope": "all"}).content.decode()
    assert "Their item" not in page  # done leaves "open or in progress"
