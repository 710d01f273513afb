"""Search on both databases (issue 14): what matches, what ranks first, what the page says."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import connection

from postmortems import search
from postmortems.models import Status, Visibility
from tests.factories import IncidentFactory, TimelineEventFactory, UserFactory

pytestmark = pytest.mark.django_db

on_postgres = connection.vendor == "postgresql"


def indexed(**fields):
    incident = IncidentFactory(**fields)
    search.update_search_vector(incident.pk)
    return incident


def found(client, q: str) -> list[str]:
    return [incident.title for incident in client.get("/postmortems/", {"q": q}).context["incidents"]]


@pytest.mark.parametrize(
    "q",
    [
        "blog",
        "github.com",
        "github.com/blog",
        "1111",
        "syslog",
        "/var/log",
        "oncall",
        "example.com",
        "oncall@example.com",
        "api",
        "api.internal.example.net",
        "connection-pool",
        "pool",
        "http 500",
        "HTTP-500",
        "therac-25",
    ],
)
def test_words_inside_urls_addresses_hosts_and_paths_are_found_by_parts_and_whole(client_for, q):
    indexed(
        title="Deploy broke the blog",
        summary="See https://github.com/blog/1111-new-runners and /var/log/syslog; mail "
        "oncall@example.com; api.internal.example.net timed out; the connection-pool ran dry; HTTP-500 "
        "errors, as on the Therac-25.",
    )
    indexed(title="Unrelated", summary="Nothing to see.")
    assert found(client_for(UserFactory()), q) == ["Deploy broke the blog"]


def test_a_query_of_stop_words_only_finds_what_contains_them(client_for):
    indexed(title="Pages down for an hour", summary="Everything was off.")
    indexed(title="Unrelated", summary="Nothing to see.")
    client = client_for(UserFactory())
    assert found(client, "down") == ["Pages down for an hour"]
    assert found(client, "off") == ["Pages down for an hour"]
    response = client.get("/postmortems/", {"q": "down"})
    assert "0 postmortems" not in response.content.decode()


def test_stop_words_beside_other_words_are_named_and_rank_what_has_them_first(client_for):
    indexed(title="Pages slow", summary="Pages were slow.", incident_date=dt.date(2026, 1, 1))
    indexed(title="Pages down", summary="Pages went down.", incident_date=dt.date(2020, 1, 1))
    client = client_for(UserFactory())
    response = client.get("/postmortems/", {"q": "pages down"})
    assert found(client, "pages down")[0] == "Pages down"
    if on_postgres:  # SQLite's FTS5 index keeps every word: nothing is left out there
        assert response.context["ignored_words"] == ["down"]
        assert "Left out as too common to search for" in response.content.decode()


def test_quoted_phrase_needs_the_words_together(client_for):
    indexed(title="Pool", summary="The connection-pool ran dry.")
    indexed(title="Scattered", summary="A pool of workers lost its database connection.")
    assert found(client_for(UserFactory()), '"connection pool"') == ["Pool"]


def test_unquoted_words_side_by_side_outrank_the_same_words_scattered(client_for):
    indexed(
        title="Scattered",
        summary="The pool of the cache lost a connection.",
        incident_date=dt.date(2026, 1, 1),
    )
    indexed(title="Together", summary="The cache lost a connection pool.", incident_date=dt.date(2020, 1, 1))
    assert found(client_for(UserFactory()), "connection pool") == ["Together", "Scattered"]


def test_minus_excludes_and_or_takes_either(client_for):
    indexed(title="DNS on kubernetes", summary="CoreDNS in kubernetes failed.")
    indexed(title="DNS alone", summary="The resolver failed.")
    indexed(title="Postgres failover", summary="Primary lost.")
    indexed(title="MySQL replica lag", summary="Replica lagged.")
    client = client_for(UserFactory())
    assert found(client, "dns -kubernetes") == ["DNS alone"]
    assert sorted(found(client, "postgres or mysql")) == ["MySQL replica lag", "Postgres failover"]


def test_a_short_summary_outranks_a_long_one_that_repeats_the_word(client_for):
    filler = " ".join(f"the checkout team looked at dashboard {n} and graph {n}" for n in range(40))
    indexed(
        title="Long story",
        summary=f"An outage began. {filler} The outage went on. {filler} The outage ended.",
        incident_date=dt.date(2026, 1, 1),
    )
    indexed(title="Short one", summary="Major service outage.", incident_date=dt.date(2020, 1, 1))
    assert found(client_for(UserFactory()), "outage") == ["Short one", "Long story"]


def test_an_old_incident_is_found_behind_a_common_word(client_for, monkeypatch):
    monkeypatch.setattr(search, "RANK_CANDIDATES", 5)  # more matches than are ranked, here too
    for n in range(12):
        incident = indexed(
            title=f"Checkout incident {n}",
            summary="Checkout was slow.",
            incident_date=dt.date(2025, 1, 1 + n),
        )
        TimelineEventFactory(incident=incident, description="An error rate alert fired.")
        search.update_search_vector(incident.pk)
    indexed(title="Error budget exhausted", summary="Error budget gone.", incident_date=dt.date(2012, 1, 1))
    assert found(client_for(UserFactory()), "error")[0] == "Error budget exhausted"


def test_restricted_and_draft_incidents_never_match_for_others(client_for):
    owner = UserFactory()
    indexed(title="Quokka leak restricted", visibility=Visibility.RESTRICTED, owner=owner)
    indexed(title="Quokka leak draft", status=Status.DRAFT, owner=owner)
    indexed(title="Quokka leak public")
    assert found(client_for(UserFactory()), "quokka") == ["Quokka leak public"]
    assert found(client_for(UserFactory()), "quokka or leak") == ["Quokka leak public"]
    assert "Quokka leak restricted" in found(client_for(owner), "quokka")


def test_a_search_nothing_matches_whole_shows_what_has_some_of_its_words(client_for):
    indexed(title="Quokka cache meltdown", summary="The cache melted.")
    response = client_for(UserFactory()).get("/postmortems/", {"q": "quokka zebra"})
    assert [i.title for i in response.context["incidents"]] == ["Quokka cache meltdown"]
    assert "No postmortem you can see has all of these words" in response.content.decode()


def test_snippets_are_plain_text_with_the_matches_marked(client_for):
    indexed(
        title="Pool",
        summary="The **connection pool** ran `dry`; see [the runbook](https://example.com/runbook).\n\n"
        "# Heading\n\n- a list item",
    )
    html = client_for(UserFactory()).get("/postmortems/", {"q": "pool"}).content.decode()
    snippet = html.split('class="snippet')[1].split("</p>")[0]
    assert "<mark>pool</mark>" in snippet
    for syntax in ("**", "`", "](", "# ", "- a"):
        assert syntax not in snippet
    assert "the runbook" in snippet


@pytest.mark.parametrize("q", ['"connection pool"', "dns -kubernetes", "postgres or mysql"])
def test_the_help_texts_examples_find_demo_postmortems(client_for, q, settings, tmp_path):
    settings.PUBLIC_POSTMORTEMS_DIR = str(tmp_path)  # the demo's own postmortems only
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    response = client_for(UserFactory()).get("/postmortems/", {"q": q})
    assert response.context["incidents"]
    assert not response.context["widened"]
