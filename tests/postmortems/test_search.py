import datetime as dt
import json
import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Q
from django.http import QueryDict
from django.urls import reverse
from taggit.models import Tag

from postmortems import followthrough, search, workflow
from postmortems.forms import SearchForm
from postmortems.importing import RecordError, parse_record
from postmortems.models import ActionItemStatus, Incident, Severity, Status, Visibility
from postmortems.pagination import CappedPaginator
from tests.factories import (
    ActionItemFactory,
    IncidentFactory,
    TeamFactory,
    TimelineEventFactory,
    UserFactory,
    full_incident,
)

pytestmark = pytest.mark.django_db

on_postgres = connection.vendor == "postgresql"


def titles(response) -> list[str]:
    return [incident.title for incident in response.context["incidents"]]


def indexed(incident: Incident) -> Incident:
    """Factories save without the search vector; the app's writers call this, so tests do too."""
    search.update_search_vector(incident.pk)
    return incident


# --- the query language ---------------------------------------------------------------------------


def test_parse_terms_reads_phrases_exclusions_and_or():
    groups = search.parse_terms('"connection pool" dns -kubernetes postgres or mysql')
    assert [[(t.text, t.exclude) for t in group] for group in groups] == [
        [("connection pool", False)],
        [("dns", False)],
        [("kubernetes", True)],
        [("postgres", False), ("mysql", False)],
    ]


def test_highlight_escapes_the_text_and_marks_only_matches():
    marked = f"a < b & <script>x</script> the {search.MARK_START}pool{search.MARK_STOP} ran dry"
    assert search.highlight(marked) == "a &lt; b &amp; x the <mark>pool</mark> ran dry"


# --- text search on either database ---------------------------------------------------------------


def test_search_needs_every_word_and_excludes_minus_words(client_for):
    both = indexed(IncidentFactory(title="Database failover stalled checkout", summary="Replica lag."))
    indexed(IncidentFactory(title="Checkout slow", summary="CDN cache misses."))
    excluded = indexed(IncidentFactory(title="Database failover in DNS", summary="checkout and dns both"))
    client = client_for(UserFactory())
    found = titles(client.get("/postmortems/", {"q": "database checkout"}))
    assert set(found) == {both.title, excluded.title}
    assert titles(client.get("/postmortems/", {"q": "database checkout -dns"})) == [both.title]


def test_search_finds_words_in_child_rows(client_for):
    incident = indexed(full_incident(title="Quiet title"))
    TimelineEventFactory(incident=incident, description="Pager fired for the zookeeper ensemble")
    search.update_search_vector(incident.pk)
    response = client_for(UserFactory()).get("/postmortems/", {"q": "zookeeper"})
    assert titles(response) == ["Quiet title"]


def test_search_never_shows_drafts_or_restricted_incidents_to_others(client_for):
    owner = UserFactory()
    indexed(IncidentFactory(title="Kafka draft", summary="kafka", status=Status.DRAFT, owner=owner))
    indexed(
        IncidentFactory(title="Kafka secret", summary="kafka", visibility=Visibility.RESTRICTED, owner=owner)
    )
    indexed(IncidentFactory(title="Kafka public", summary="kafka"))
    outsider = titles(client_for(UserFactory()).get("/postmortems/", {"q": "kafka"}))
    assert outsider == ["Kafka public"]


def test_search_shows_a_highlighted_snippet(client_for):
    indexed(IncidentFactory(title="Pool", summary="The connection pool <b>ran dry</b> under load."))
    body = client_for(UserFactory()).get("/postmortems/", {"q": "pool"}).content.decode()
    snippet = re.search(r'<p class="snippet[^"]*">(.*?)</p>', body, re.S).group(1)
    assert "<mark>pool</mark>" in snippet
    assert "<b>" not in snippet  # the summary's own HTML is never interpreted


# --- filters and chips ----------------------------------------------------------------------------


def test_filters_combine_tags_severity_dates_owner_team_and_open_actions(client_for):
    owner = UserFactory(username="olga")
    team = TeamFactory(name="Payments", slug="payments")
    match = IncidentFactory(
        title="The one",
        tags=["dns", "network", "aws"],
        severity=Severity.SEV1,
        incident_date=dt.date(2024, 5, 1),
        owner=owner,
        teams=[team],
    )
    ActionItemFactory(incident=match, status=ActionItemStatus.OPEN)
    near_misses = [
        {"tags": ["dns", "network"]},
        {"severity": Severity.SEV3},
        {"incident_date": dt.date(2023, 5, 1)},
        {"owner": UserFactory()},
        {"teams": []},
    ]
    for i, change in enumerate(near_misses):
        fields = {
            "title": f"Near miss {i}",
            "tags": ["dns", "network", "aws"],
            "severity": Severity.SEV1,
            "incident_date": dt.date(2024, 5, 1),
            "owner": owner,
            "teams": [team],
        } | change
        ActionItemFactory(incident=IncidentFactory(**fields), status=ActionItemStatus.OPEN)
    closed = IncidentFactory(
        title="Closed items", tags=["dns", "network", "aws"], severity=Severity.SEV1,
        incident_date=dt.date(2024, 5, 1), owner=owner, teams=[team],
    )  # fmt: skip
    ActionItemFactory(
        incident=closed, status=ActionItemStatus.DONE, completed_at=dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    )
    query = (
        "?tag=dns&tag=network&tag=aws&severity=SEV1&severity=SEV2&from=2024-01-01&to=2024-12-31"
        "&owner=olga&team=payments&open=on"
    )
    response = client_for(UserFactory()).get("/postmortems/" + query)
    assert titles(response) == ["The one"]
    chips = dict(response.context["chips"])
    assert set(chips) == {
        "tag: dns", "tag: network", "tag: aws", "severity: SEV1", "severity: SEV2", "from 2024-01-01",
        "to 2024-12-31", f"owner: {owner}", "team: Payments", "has open action items",
    }  # fmt: skip
    # Removing a chip keeps every other narrowing.
    assert "tag=dns" not in chips["tag: dns"]
    assert "tag=network" in chips["tag: dns"]
    assert "open=on" in chips["tag: dns"]
    assert "open" not in chips["has open action items"]
    assert "owner=olga" not in chips[f"owner: {owner}"]


@pytest.mark.parametrize("few_tagged", [1, 5_000], ids=["every tag common", "tags read through"])
def test_several_tags_are_an_and_however_common_each_tag_is(monkeypatch, few_tagged):
    """A rare tag is read through its own rows, a common one tested per incident: the same answer."""
    monkeypatch.setattr("postmortems.models.FEW_TAGGED", few_tagged)
    both = IncidentFactory(title="Both", tags=["dns", "rare"])
    IncidentFactory(title="Only common", tags=["dns"])
    IncidentFactory(title="Only rare", tags=["rare"])
    IncidentFactory(title="Neither", tags=["aws"])

    assert list(Incident.objects.with_tags(["dns", "rare"])) == [both]
    assert set(Incident.objects.with_tags(["rare"]).values_list("title", flat=True)) == {"Both", "Only rare"}
    assert not Incident.objects.with_tags(["dns", "no-such-tag"]).exists()


@pytest.mark.parametrize("restricted", [[], "theirs"])
def test_restricted_ids_as_one_array_narrow_like_a_list(restricted):
    member = UserFactory()
    team = TeamFactory(members=[member])
    theirs = IncidentFactory(title="Their restricted", visibility=Visibility.RESTRICTED, teams=[team])
    IncidentFactory(title="Someone else's restricted", visibility=Visibility.RESTRICTED)
    IncidentFactory(title="Everyone's")
    ids = [theirs.pk] if restricted == "theirs" else []

    shown = Incident.objects.published().filter(Q(visibility=Visibility.NORMAL) | Q(pk__any_of=ids))

    expected = {"Everyone's"} | ({"Their restricted"} if ids else set())
    assert set(shown.values_list("title", flat=True)) == expected


def test_narrowing_that_matches_nothing_says_so(client_for):
    IncidentFactory(title="Tagged dns", tags=["dns"])
    IncidentFactory(title="Tagged aws", tags=["aws"])
    content = client_for(UserFactory()).get("/postmortems/", {"tag": ["dns", "aws"]}).content.decode()
    assert "No postmortem you can see matches" in content
    assert "No published postmortems yet" not in content


def test_tag_typed_by_name_narrows_like_its_slug(client_for):
    IncidentFactory(title="Nodes", tags=["notready nodes"])
    IncidentFactory(title="Other", tags=["dns"])
    response = client_for(UserFactory()).get("/postmortems/", {"tag": ["", "NotReady Nodes"]})
    assert titles(response) == ["Nodes"]


def test_bad_filter_input_is_explained_next_to_the_field_not_a_500(client_for):
    IncidentFactory(title="Still listed")
    response = client_for(UserFactory()).get(
        "/postmortems/?from=2024-05-01&to=2024-01-01&owner=nobody&severity=SEV9"
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["date_to"] == ["The end of the range is before its start."]
    assert "owner" in form.errors
    assert "severity" in form.errors
    body = response.content.decode()
    assert "The end of the range is before its start." in body
    # Invalid narrowings are ignored, the valid one still applies.
    assert titles(response) == ["Still listed"]
    response = client_for(UserFactory()).get("/postmortems/?from=not-a-date")
    assert "Enter a valid date." in response.content.decode()
    assert titles(response) == ["Still listed"]


def test_the_url_holds_the_whole_search(client_for):
    IncidentFactory(title="Shared link", tags=["dns"], severity=Severity.SEV2)
    response = client_for(UserFactory()).get("/postmortems/?q=&tag=dns&severity=SEV2")
    body = response.content.decode()
    assert titles(response) == ["Shared link"]
    assert '<input type="hidden" name="tag" value="dns">' in body
    assert re.search(r'value="SEV2"[^>]*checked', body)


# --- tags -----------------------------------------------------------------------------------------


def test_tag_index_counts_only_incidents_the_user_may_see(client_for):
    IncidentFactory(tags=["dns", "aws"])
    IncidentFactory(tags=["dns"])
    IncidentFactory(tags=["dns", "secret-project"], visibility=Visibility.RESTRICTED)
    IncidentFactory(tags=["dns"], status=Status.DRAFT)
    response = client_for(UserFactory()).get("/tags/")
    counts = {tag.name: tag.num for tag in response.context["tags"]}
    assert counts == {"dns": 2, "aws": 1}
    assert [tag.name for tag in response.context["tags"]] == ["dns", "aws"]
    assert "secret-project" not in response.content.decode()


def test_tag_index_adds_the_restricted_incidents_a_person_may_see(client_for):
    member = UserFactory()
    team = TeamFactory(members=[member])
    IncidentFactory(tags=["dns", "aws"])
    IncidentFactory(tags=["dns", "secret-project"], visibility=Visibility.RESTRICTED, teams=[team])
    IncidentFactory(tags=["secret-project"], visibility=Visibility.RESTRICTED)  # another team's
    IncidentFactory(
        tags=["secret-project"], visibility=Visibility.RESTRICTED, teams=[team], status=Status.DRAFT
    )
    staff = UserFactory(is_staff=True)
    expected = {
        member: {"dns": 2, "aws": 1, "secret-project": 1},
        staff: {"dns": 2, "aws": 1, "secret-project": 2},
        UserFactory(): {"dns": 1, "aws": 1},
    }
    for user, counts in expected.items():
        response = client_for(user).get("/tags/")
        assert {tag.slug: tag.num for tag in response.context["tags"]} == counts
        for slug, num in counts.items():
            assert f'<a class="tag-link" href="/tags/{slug}/">' in response.content.decode()
            assert f'data-testid="count-{slug}">{num}<' in response.content.decode()


def test_tag_index_links_as_reverse_writes_them(client_for):
    IncidentFactory(tags=["Zürich DC"])
    response = client_for(UserFactory()).get("/tags/?sort=name")
    (tag,) = response.context["tags"]
    assert f'href="{reverse("postmortems:tag", args=[tag.slug])}"' in response.content.decode()


def test_list_rows_say_what_the_incident_and_its_owner_say(client_for):
    named = UserFactory(display_name="Ada L.")
    full = UserFactory(display_name="", first_name="Grace", last_name="Hopper")
    bare = UserFactory(display_name="", first_name="", last_name="")
    for owner in (named, full, bare):
        IncidentFactory(owner=owner, tags=["dns", "aws"], severity=Severity.SEV2)
    client = client_for(UserFactory())
    response = client.get("/postmortems/")
    rows = response.context["incidents"]
    assert len(rows) == 3
    rendered = response.content.decode().split('<li class="card')[1:]
    assert len(rendered) == 3
    for row, html in zip(rows, rendered, strict=True):
        assert f'href="{row.get_absolute_url()}">{row.title}</a>' in html
        assert f"· {row.owner}</span>" in html
        assert 'title="SEV2 — major">SEV2</span>' in html
        assert "Published</span>" not in html  # the list is of published ones: status only when it is not
        assert re.findall(r'tag-link" href="/postmortems/\?tag=(\w+)"', html) == ["dns", "aws"]
    assert {str(row.owner) for row in rows} == {"Ada L.", "Grace Hopper", bare.username}
    Incident.objects.filter(pk=rows[0].pk).update(severity="SEV9")  # a choice since removed, say
    assert 'title="SEV9"' in client.get("/postmortems/").content.decode()


def test_a_tag_page_names_its_tag_without_asking_again(client_for, django_assert_num_queries):
    IncidentFactory(tags=["Domain Name System"])
    client = client_for(UserFactory())
    client.get("/postmortems/")  # the session
    # Session, user, the tag, its size, ids, rows, tags, and the owner and team choices of the form (no
    # longer cached as HTML).
    with django_assert_num_queries(9):
        response = client.get("/tags/domain-name-system/")
    assert "tag: Domain Name System" in response.content.decode()


def test_tag_index_a_to_z(client_for):
    IncidentFactory(tags=["zookeeper", "aws", "Kafka", "Élan", "etcd"])
    IncidentFactory(tags=["aws"])
    response = client_for(UserFactory()).get("/tags/?sort=name")
    assert [tag.name for tag in response.context["tags"]] == ["aws", "Élan", "etcd", "Kafka", "zookeeper"]
    assert [letter for letter, _ in response.context["letters"]] == ["A", "E", "K", "Z"]


def test_tag_page_lists_that_tags_incidents_and_unknown_tag_is_404(client_for):
    IncidentFactory(title="Tagged", tags=["dns"])
    IncidentFactory(title="Untagged", tags=["aws"])
    client = client_for(UserFactory())
    response = client.get(reverse("postmortems:tag", args=["dns"]))
    assert titles(response) == ["Tagged"]
    assert "Tagged <span" in response.content.decode()
    assert client.get(reverse("postmortems:tag", args=["nope"])).status_code == 404


def test_every_tag_on_the_detail_page_links_to_its_tag_page(client_for, full_incident):
    body = client_for(UserFactory()).get(full_incident.get_absolute_url()).content.decode()
    assert 'href="/tags/database/"' in body
    assert 'href="/tags/configuration/"' in body


# --- related, export, print, healthz --------------------------------------------------------------


def test_related_incidents_most_tags_in_common_first_and_only_visible(client_for):
    this = IncidentFactory(tags=["dns", "aws", "etcd"])
    two = IncidentFactory(title="Two in common", tags=["dns", "aws"])
    IncidentFactory(title="One in common", tags=["etcd"])
    IncidentFactory(title="Hidden three", tags=["dns", "aws", "etcd"], visibility=Visibility.RESTRICTED)
    IncidentFactory(title="Nothing in common", tags=["gke"])
    response = client_for(UserFactory()).get(this.get_absolute_url())
    related = response.context["related"]
    assert [(r.title, r.common) for r in related] == [("Two in common", 2), ("One in common", 1)]
    assert two.get_absolute_url() in response.content.decode()


def test_related_incidents_are_not_crowded_out_by_newer_drafts(client_for, monkeypatch):
    # Only the two newest incidents of each tag are compared.
    monkeypatch.setattr("postmortems.models.RELATED_PER_TAG", 2)
    this = IncidentFactory(tags=["dns"])
    IncidentFactory(title="Published earlier", tags=["dns"])
    for _ in range(3):
        IncidentFactory(status=Status.DRAFT, tags=["dns"])  # newer ids than every published one
    response = client_for(UserFactory()).get(this.get_absolute_url())
    assert [r.title for r in response.context["related"]] == ["Published earlier"]


def test_export_markdown_in_template_order(client_for, full_incident):
    response = client_for(UserFactory()).get(reverse("postmortems:export", args=[full_incident.pk]))
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"].startswith(f'attachment; filename="postmortem-{full_incident.pk}-')
    text = response.content.decode()
    headings = re.findall(r"^#+ .*$", text, re.M)
    assert headings == [
        f"# {full_incident.title}",
        "## 2. Incident date",
        "## 3. Owner",
        "## 4. Peer-review committee",
        "## 5. Tags",
        "## 6. Summary",
        "## 7. Supporting data",
        "## 8. Customer impact",
        "## 9. Incident response analysis",
        "## 10. Post-incident analysis",
        "## 11. Timeline",
        "## 12. Contributing factors",
        "## 13. Lessons learned",
        "## 14. Action items",
    ]
    assert "- Started: 2026-03-04 09:00 CET" in text
    assert "Number of impacted customers: 1234" in text
    assert "    - why? Why 1: no review of config values [Technology]" in text
    assert "| Validate pool sizes in CI 0 |" in text


def test_export_and_print_of_someone_elses_draft_are_not_found(client_for):
    draft = IncidentFactory(status=Status.DRAFT)
    client = client_for(UserFactory())
    assert client.get(reverse("postmortems:export", args=[draft.pk])).status_code == 404
    assert client.get(reverse("postmortems:print", args=[draft.pk])).status_code == 404


def test_print_page_renders_every_section_without_navigation(client_for, full_incident):
    body = (
        client_for(UserFactory()).get(reverse("postmortems:print", args=[full_incident.pk])).content.decode()
    )
    assert "<h2>14. Action items</h2>" in body
    assert "<strong>connection-pool</strong>" in body
    assert "navbar" not in body


def test_healthz_needs_no_login_and_no_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.content == b"ok\n"


# --- query budgets --------------------------------------------------------------------------------


@pytest.fixture
def many_incidents(db):
    people = [UserFactory() for _ in range(3)]
    team = TeamFactory(members=people)
    made = []
    for i in range(30):
        incident = IncidentFactory(
            title=f"Checkout outage number {i}",
            summary="The checkout database connection pool ran dry.",
            owner=people[i % 3],
            tags=["dns", "aws", "etcd", f"t{i}"],
            teams=[team],
        )
        for _ in range(3):
            TimelineEventFactory(incident=incident)
        ActionItemFactory(incident=incident, owner=people[i % 3])
        made.append(incident)
    search.update_search_vectors()
    return made


@pytest.mark.parametrize(
    "url",
    [
        "/postmortems/",
        "/postmortems/?q=checkout+database",
        "/postmortems/?tag=dns&tag=aws&tag=etcd",
        "/postmortems/?q=checkout&tag=dns&tag=aws&tag=etcd&severity=SEV2&open=on&from=2020-01-01",
        "/tags/dns/",
    ],
)
def test_list_query_count_does_not_grow_with_rows(
    client_for, many_incidents, django_assert_max_num_queries, url
):
    client = client_for(UserFactory())
    # Session, user, the tags' sizes and names, the ids, the rows, their tags, my drafts, the owner and
    # team choices: computed afresh on every request, nothing grows with the rows.
    with django_assert_max_num_queries(10):
        response = client.get(url)
    assert len(response.context["incidents"]) == 20
    assert all(len(incident.tags.all()) == 4 for incident in response.context["incidents"])


# --- every request computed afresh ----------------------------------------------------------------


def listed(client, url="/postmortems/") -> str:
    return client.get(url).content.decode().split('data-testid="result-count"')[1]


def test_results_follow_every_change_of_the_data(client_for):
    client = client_for(UserFactory())
    first = IncidentFactory(title="Listed first", tags=["dns"])
    assert "Listed first" in listed(client)

    IncidentFactory(title="Published after the first listing")
    assert "Published after the first listing" in listed(client)

    first.title = "Retitled in place"
    first.save()
    assert "Retitled in place" in listed(client)
    assert "Listed first" not in listed(client)

    tag = Tag.objects.get(slug="dns")
    tag.name = "Domain names"
    tag.save()  # a renamed tag does not touch any incident
    assert "Domain names" in listed(client)

    first.delete()  # neither does a deletion
    assert "Retitled in place" not in listed(client)


def test_results_are_never_shared_with_someone_who_sees_less(client_for):
    insider, outsider = UserFactory(), UserFactory()
    team = TeamFactory(members=[insider])
    IncidentFactory(title="Everyone sees this")
    IncidentFactory(title="Team secret", visibility=Visibility.RESTRICTED, teams=[team])
    assert "Team secret" in listed(client_for(insider))
    seen_by_outsider = listed(client_for(outsider))
    assert "Everyone sees this" in seen_by_outsider
    assert "Team secret" not in seen_by_outsider

    team.members.add(outsider)  # joining the team is a change of audience
    assert "Team secret" in listed(client_for(outsider))
    team.members.remove(outsider)  # and so is leaving it
    assert "Team secret" not in listed(client_for(outsider))


@pytest.mark.parametrize("how", ["reopened", "restricted", "co-author", "team"])
def test_who_may_see_a_published_incident_shows_on_the_next_request(client_for, how):
    reader = UserFactory()
    incident = IncidentFactory(title="Once published", tags=["dns", "secret-project"])
    restricted = how in ("co-author", "team")
    if restricted:
        Incident.objects.filter(pk=incident.pk).update(visibility=Visibility.RESTRICTED)
    client = client_for(reader)

    def shown() -> tuple[bool, bool, bool]:
        counts = {tag.slug: tag.num for tag in client.get("/tags/").context["tags"]}
        return (
            "Once published" in listed(client),
            client.get("/tags/secret-project/").status_code == 200,
            counts.get("secret-project") == 1,
        )

    assert shown() == ((False,) * 3 if restricted else (True,) * 3)
    if how == "reopened":
        workflow.reopen(Incident.objects.get(pk=incident.pk), by=incident.owner, reason="Wrong root cause")
    elif how == "restricted":
        incident.visibility = Visibility.RESTRICTED
        incident.save()
    elif how == "co-author":
        incident.co_authors.add(reader)  # a link, not a save of the incident
    else:
        incident.teams.add(TeamFactory(members=[reader]))
    assert shown() == ((True,) * 3 if restricted else (False,) * 3)


def test_follow_through_reaches_the_open_items_narrowing(client_for):
    incident = IncidentFactory(title="With one open item")
    item = ActionItemFactory(incident=incident, owner=incident.owner)
    client = client_for(UserFactory())
    assert "With one open item" in listed(client, "/postmortems/?open=on")
    followthrough.update_action_item(
        item, by=incident.owner, status=ActionItemStatus.DONE, backlog_link="", wont_do_reason=""
    )
    assert "With one open item" not in listed(client, "/postmortems/?open=on")


def test_leaving_the_team_of_a_restricted_incident_hides_it_on_the_next_request(client_for):
    person, teammate = UserFactory(), UserFactory()
    team = TeamFactory(members=[person, teammate])
    indexed(
        IncidentFactory(
            title="Quokka breach", tags=["quokka", "dns"], visibility=Visibility.RESTRICTED, teams=[team]
        )
    )
    indexed(IncidentFactory(title="Everyone's outage", tags=["dns"]))
    client = client_for(person)

    def seen() -> dict:
        tags = client.get("/tags/")
        tag_page = client.get("/tags/quokka/")
        return {
            "list": "Quokka breach" in client.get("/postmortems/").content.decode(),
            "search": "Quokka breach" in client.get("/postmortems/", {"q": "quokka"}).content.decode(),
            "tag page": tag_page.status_code == 200 and "Quokka breach" in tag_page.content.decode(),
            "tag counts": {tag.slug: tag.num for tag in tags.context["tags"]},
        }

    assert seen() == {"list": True, "search": True, "tag page": True, "tag counts": {"dns": 2, "quokka": 1}}

    team.members.remove(person)

    assert seen() == {"list": False, "search": False, "tag page": False, "tag counts": {"dns": 1}}
    assert client_for(teammate).get("/tags/quokka/").status_code == 200


def test_tag_index_query_count_does_not_grow(client_for, many_incidents, django_assert_max_num_queries):
    client = client_for(UserFactory())
    # Session, user, the published incidents' version, the public counts, the restricted incidents seen
    # (none here; their counts are one more query when there are some).
    with django_assert_max_num_queries(5):
        response = client.get("/tags/")
    assert len(response.context["tags"]) == 33
    with django_assert_max_num_queries(4):  # the public counts kept: they are everyone's
        response = client.get("/tags/")
    assert 'data-testid="count-dns">30<' in response.content.decode()


def test_detail_query_count_with_related_box(client_for, many_incidents, django_assert_max_num_queries):
    client = client_for(UserFactory())
    with django_assert_max_num_queries(20):
        response = client.get(many_incidents[0].get_absolute_url())
    assert len(response.context["related"]) == 5


def test_export_query_count_does_not_grow(client_for, many_incidents, django_assert_max_num_queries):
    client = client_for(UserFactory())
    with django_assert_max_num_queries(12):
        response = client.get(reverse("postmortems:export", args=[many_incidents[0].pk]))
    assert response.content.decode().count("— **Other**") == 3


# --- PostgreSQL: the stored vector, ranking, and the public data --------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(not on_postgres, reason="full-text search needs PostgreSQL (DATABASE_URL)")
def test_update_search_vector_covers_tags_and_child_rows():
    incident = IncidentFactory(title="Plain", summary="Nothing here.")
    assert not Incident.objects.search("kubelet").exists()
    incident.tags.add("kubelet")
    ActionItemFactory(incident=incident, title="Rotate the etcd certificates")
    search.update_search_vector(incident.pk)
    assert list(Incident.objects.search("kubelet")) == [incident]
    assert list(Incident.objects.search("certificate")) == [incident]  # stemmed


@pytest.mark.postgres
@pytest.mark.skipif(not on_postgres, reason="full-text search needs PostgreSQL (DATABASE_URL)")
def test_title_and_tag_matches_rank_above_body_matches(client_for):
    old_title_match = indexed(
        IncidentFactory(title="Memcached eviction storm", incident_date=dt.date(2020, 1, 1))
    )
    new_body_match = indexed(full_incident(title="Unrelated", incident_date=dt.date(2026, 1, 1)))
    TimelineEventFactory(incident=new_body_match, description="memcached restarted")
    search.update_search_vector(new_body_match.pk)
    found = titles(client_for(UserFactory()).get("/postmortems/", {"q": "memcached"}))
    assert found == [old_title_match.title, "Unrelated"]


def _records(folder):
    """What the importer makes of the public files: one record per url, dated ones only."""
    by_url = {}
    for name in ("icco_postmortems.jsonl", "k8s_failure_stories.jsonl", "github_status_sample.jsonl"):
        for line in (folder / name).read_text(encoding="utf-8").splitlines():
            try:
                record = parse_record(line)
            except RecordError:
                continue
            by_url.setdefault(record.url, record)
    return list(by_url.values())


@pytest.fixture
def public_incidents(public_data_dir):
    if not on_postgres:
        pytest.skip("full-text search quality needs PostgreSQL (DATABASE_URL)")
    files = [
        public_data_dir / n
        for n in ("icco_postmortems.jsonl", "k8s_failure_stories.jsonl", "github_status_sample.jsonl")
    ]
    call_command("import_postmortems", *files, stdout=open("/dev/null", "w"), stderr=open("/dev/null", "w"))  # noqa: SIM115
    return _records(public_data_dir)


@pytest.mark.postgres
def test_public_data_tag_count_equals_records_carrying_it(client_for, public_incidents):
    expected = sum(1 for record in public_incidents if "config-change" in record.tags)
    assert expected > 50
    response = client_for(UserFactory()).get("/tags/")
    counts = {tag.slug: tag.num for tag in response.context["tags"]}
    assert counts["config-change"] == expected
    assert f'data-testid="count-config-change">{expected}<' in response.content.decode()


@pytest.mark.postgres
def test_public_data_phrase_from_a_summary_finds_it_first(client_for, public_incidents):
    client = client_for(UserFactory())
    title = "Etsy site outage caused by multicast rsync"
    record = next(r for r in public_incidents if r.title == title)
    response = client.get("/postmortems/", {"q": '"multicast traffic without properly configuring"'})
    assert titles(response)[0] == record.title
    assert "<mark>" in response.content.decode()
    # A status-page update from GitHub's timeline is searchable too.
    response = client.get("/postmortems/", {"q": '"hosted runners" "longer than normal"'})
    assert "Incident with Actions and Git Operations" in titles(response)


@pytest.mark.postgres
def test_public_data_minus_excludes_and_or_widens(client_for, public_incidents):
    client = client_for(UserFactory())
    dns = set(Incident.objects.search("dns").values_list("pk", flat=True))
    dns_not_k8s = set(Incident.objects.search("dns -kubernetes").values_list("pk", flat=True))
    assert dns_not_k8s
    assert dns_not_k8s < dns
    for incident in Incident.objects.filter(pk__in=dns - dns_not_k8s):
        assert "'kubernet'" in incident.search_vector  # the stemmed word was in what was excluded
    page = titles(client.get("/postmortems/", {"q": "dns -kubernetes"}))
    assert set(page) <= set(Incident.objects.filter(pk__in=dns_not_k8s).values_list("title", flat=True))
    either = client.get("/postmortems/", {"q": "postgres or mysql"}).context["paginator"].count
    postgres = client.get("/postmortems/", {"q": "postgres"}).context["paginator"].count
    mysql = client.get("/postmortems/", {"q": "mysql"}).context["paginator"].count
    assert either >= max(postgres, mysql) > 0


@pytest.mark.postgres
def test_public_data_restricted_and_drafts_never_appear_to_others(client_for, public_incidents):
    owner = UserFactory()
    secret = Incident.objects.filter(tags__slug="config-change").first()
    secret.visibility, secret.owner = Visibility.RESTRICTED, owner
    secret.save()
    draft = Incident.objects.filter(tags__slug="config-change").exclude(pk=secret.pk).first()
    draft.status, draft.owner = Status.DRAFT, owner
    draft.save()
    expected = sum(1 for record in public_incidents if "config-change" in record.tags) - 2
    client = client_for(UserFactory())
    counts = {tag.slug: tag.num for tag in client.get("/tags/").context["tags"]}
    assert counts["config-change"] == expected
    outsider = client_for(UserFactory())
    for hidden in (secret, draft):
        response = outsider.get("/postmortems/", {"q": f'"{hidden.title}"'})
        assert hidden.pk not in [i.pk for i in response.context["incidents"]]
    assert outsider.get("/postmortems/").context["my_drafts"] == []  # the box shows on the plain list
    response = client_for(owner).get("/postmortems/", {"q": f'"{secret.title}"'})
    assert secret.pk in [i.pk for i in response.context["incidents"]]
    assert [i.pk for i in client_for(owner).get("/postmortems/").context["my_drafts"]] == [draft.pk]


def test_imported_incident_json_is_searchable_on_either_database(client_for, tmp_path):
    line = json.dumps(
        {"title": "Quokka cache meltdown", "company": "Acme", "date": "2022-02-02", "tags": ["cache"],
         "summary": "The quokka cache melted.", "url": "https://example.com/q"}
    )  # fmt: skip
    path = tmp_path / "one.jsonl"
    path.write_text(line + "\n")
    call_command("import_postmortems", str(path), stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert titles(client_for(UserFactory()).get("/postmortems/", {"q": "quokka"})) == [
        "Quokka cache meltdown"
    ]


# --- the paginator and the tag links ------------------------------------------------------------


def test_capped_paginator_pages_come_from_one_id_query_in_order(client_for, many_incidents, monkeypatch):
    monkeypatch.setattr(CappedPaginator, "cap", 25)
    client = client_for(UserFactory())
    newest_first = sorted(many_incidents, key=lambda i: (i.incident_date, i.pk), reverse=True)
    first = client.get("/postmortems/")
    last = client.get("/postmortems/", {"page": 2})
    assert first.context["paginator"].is_capped
    assert "More than 25" in first.content.decode()
    assert titles(first) == [i.title for i in newest_first[:20]]
    # Past the cap the last page holds what is left of the COUNT_CAP + 1 rows, and there is no page 3.
    assert titles(last) == [i.title for i in newest_first[20:26]]
    assert client.get("/postmortems/", {"page": 3}).status_code == 404


def test_tag_links_keep_the_search_and_add_the_tag_after_the_tags_in_force():
    form = SearchForm(QueryDict("q=dns&tag=aws&severity=SEV1&page=2"))
    assert form.add_tag_url("etcd") == "/postmortems/?q=dns&tag=aws&tag=etcd&severity=SEV1"
    assert form.add_tag_url("aws") == "/postmortems/?q=dns&tag=aws&severity=SEV1"
    assert SearchForm(QueryDict("")).add_tag_url("a b") == "/postmortems/?tag=a+b"


def test_filter_selects_keep_the_choice_and_explain_a_bad_one(client_for):
    UserFactory(username="zed", display_name="Zed Zulu")
    UserFactory(username="zed2", display_name="Zed <b>Two</b>")
    page = client_for(UserFactory()).get("/postmortems/", {"owner": "zed", "team": "nope"}).content.decode()
    assert '<option value="zed" selected>Zed Zulu</option>' in page
    assert '<option value="zed2">Zed &lt;b&gt;Two&lt;/b&gt;</option>' in page
    assert page.count(" selected>") == 1
    assert '<option value="">Anyone</option>' in page
    assert '<option value="" selected>Any team</option>' not in page
    assert 'aria-describedby="id_team_error"' in page
    assert 'id="id_team_error">No team by that name.</div>' in page


def test_tag_page_of_a_tag_only_on_hidden_incidents_is_not_found(client_for):
    from postmortems.models import Status, Visibility

    IncidentFactory(tags=["topsecret"], visibility=Visibility.RESTRICTED)
    IncidentFactory(tags=["draftonly"], status=Status.DRAFT)
    IncidentFactory(tags=["public"])
    client = client_for(UserFactory())
    assert client.get("/tags/topsecret/").status_code == 404
    assert client.get("/tags/draftonly/").status_code == 404
    assert client.get("/tags/public/").status_code == 200


def test_list_pages_link_to_the_next_and_previous_page_keeping_the_search(client_for):
    for i in range(25):
        IncidentFactory(
            title=f"Incident {i:02d}", tags=["dns"], incident_date=dt.date(2024, 1, 1) + dt.timedelta(i)
        )
    client = client_for(UserFactory())

    first = client.get("/postmortems/", {"tag": "dns"}).content.decode()
    second = client.get("/postmortems/", {"tag": "dns", "page": "2"}).content.decode()

    assert "Page 1 of 2" in first
    assert 'href="?tag=dns&amp;page=2">Older</a>' in first
    assert "Incident 24" in first
    assert "Incident 04" not in first
    assert "Page 2 of 2" in second
    assert 'href="?tag=dns&amp;page=1">Newer</a>' in second
    assert "Incident 04" in second
    assert "Incident 24" not in second
