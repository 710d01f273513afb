"""/insights/: figures computed right on a known data set, shown with their sample sizes."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from postmortems import insights
from postmortems.models import ActionItemStatus, Incident, Severity, Status, Visibility
from tests.factories import ActionItemFactory, IncidentFactory, TeamFactory, UserFactory

URL = "/insights/"
START = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
PERIOD = {"from": "2026-01-01", "to": "2026-03-31"}


def monthly_total(response) -> int:
    """The sample size the page shows beside "Incidents per month"."""
    found = re.search(
        r'id="monthly-heading">Incidents per month <span class="sample">n = (\d+)<', response.content.decode()
    )
    return int(found.group(1))


def published(**kwargs) -> Incident:
    defaults = {
        "status": Status.PUBLISHED,
        "incident_date": dt.date(2026, 1, 5),
        "published_at": dt.datetime(2026, 1, 12, 9, 0, tzinfo=dt.UTC),
    }
    return IncidentFactory(**(defaults | kwargs))


@pytest.fixture
def known(db):
    """Ten published incidents detected after 10, 20, … 100 minutes; five with mitigation times."""
    team = TeamFactory(name="Storage", slug="storage")
    made = []
    for i in range(1, 11):
        made.append(
            published(
                title=f"Known {i}",
                incident_date=dt.date(2026, 1 + (i % 3), 5),
                started_at=START,
                detected_at=START + dt.timedelta(minutes=10 * i),
                mitigated_at=START + dt.timedelta(hours=i) if i <= 5 else None,
                published_at=START + dt.timedelta(days=i),
                severity=Severity.SEV1 if i <= 4 else Severity.SEV3,
                tags=["database"] if i % 2 else ["database", "network"],
                teams=[team] if i <= 3 else [],
            )
        )
    # Never counted: a draft, a postmortem from before the period, and one the reader may not see.
    IncidentFactory(
        status=Status.DRAFT, incident_date=dt.date(2026, 1, 5), started_at=START, detected_at=START
    )
    published(incident_date=dt.date(2025, 6, 1), started_at=START, detected_at=START + dt.timedelta(days=9))
    published(visibility=Visibility.RESTRICTED, started_at=START, detected_at=START + dt.timedelta(days=9))
    return made


def figures(user, **filters):
    incidents = insights.incidents_for(
        user, date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 3, 31), **filters
    )
    return {d.name: d for d in insights.distributions(incidents)}


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([1, 2, 3, 4], 50, 2.5),
        ([1, 2, 3, 4], 90, 3.7),
        ([5], 90, 5),
        ([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 50, 55),
        ([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 90, 91),
        ([], 50, None),
    ],
)
def test_percentile_interpolates_between_closest_ranks(values, p, expected):
    result = insights.percentile(values, p)
    assert result == pytest.approx(expected) if expected is not None else result is None


def test_time_to_detect_median_and_p90_are_exact(known, user):
    detect = figures(user)["detect"]
    assert detect.n == 10
    assert detect.median == 55 * 60
    assert detect.p90 == pytest.approx(91 * 60)
    assert not detect.too_small


def test_histogram_counts_each_incident_once(known, user):
    detect = dict(figures(user)["detect"].histogram)
    assert detect == {
        "< 5 min": 0,
        "5–15 min": 1,
        "15–30 min": 1,
        "30–60 min": 3,
        "1–2 h": 5,
        "2–4 h": 0,
        "4–8 h": 0,
        "8–24 h": 0,
        "1–3 d": 0,
        "> 3 d": 0,
    }


def test_incidents_without_times_are_left_out_and_small_samples_flagged(known, user):
    mitigate = figures(user)["mitigate"]
    assert mitigate.n == 5
    assert mitigate.median == 3 * 3600
    assert mitigate.too_small
    assert figures(user)["resolve"].n == 0


def test_days_to_publication(known, user):
    publish = figures(user)["publish"]
    # published i days after START; incident dates are in January to March, so only some are ≥ 0 days.
    expected = sorted(
        (timezone.localdate(i.published_at) - i.incident_date).days
        for i in known
        if timezone.localdate(i.published_at) >= i.incident_date
    )
    # On PostgreSQL the figures come from SQL (percentile_cont), not from a list of values.
    assert publish.n == len(expected)
    assert publish.median == insights.percentile(expected, 50)
    assert publish.p90 == pytest.approx(insights.percentile(expected, 90))


def test_filters_by_tag_team_and_severity(known, user):
    assert figures(user, tag="network")["detect"].n == 5
    assert figures(user, severity=Severity.SEV1)["detect"].n == 4
    assert figures(user, team=known[0].teams.get())["detect"].n == 3


def test_incidents_per_month_includes_empty_months(known, user):
    incidents = insights.incidents_for(user, date_from=dt.date(2025, 12, 1), date_to=dt.date(2026, 4, 30))
    monthly = insights.incidents_per_month(incidents, dt.date(2025, 12, 1), dt.date(2026, 4, 30))
    assert monthly == [
        (dt.date(2025, 12, 1), 0),
        (dt.date(2026, 1, 1), 3),
        (dt.date(2026, 2, 1), 4),
        (dt.date(2026, 3, 1), 3),
        (dt.date(2026, 4, 1), 0),
    ]


def test_recurring_tags_count_incidents(known, user):
    incidents = insights.incidents_for(user, date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 3, 31))
    tags = [(row["tag__slug"], row["n"]) for row in insights.recurring_tags(incidents)]
    assert tags == [("database", 10), ("network", 5)]


def test_share_of_action_items_done_within_deadline(db, user):
    incident = published()
    today = timezone.localdate()
    due = today - dt.timedelta(days=5)
    on_time = timezone.now() - dt.timedelta(days=6)
    late = timezone.now() - dt.timedelta(days=1)
    for _ in range(3):
        ActionItemFactory(incident=incident, due_date=due, status=ActionItemStatus.DONE, completed_at=on_time)
    ActionItemFactory(incident=incident, due_date=due, status=ActionItemStatus.DONE, completed_at=late)
    ActionItemFactory(incident=incident, due_date=due)  # unfinished past its date: late
    ActionItemFactory(incident=incident, due_date=today + dt.timedelta(days=5))  # not due yet: not counted
    ActionItemFactory(incident=incident, due_date=due, status=ActionItemStatus.WONT_DO, wont_do_reason="No")
    ActionItemFactory(incident=incident, due_date=None)

    result = insights.follow_through(Incident.objects.filter(pk=incident.pk), today)

    assert (result.on_time, result.late, result.n) == (3, 2, 5)
    assert result.share == pytest.approx(0.6)
    assert result.too_small
    assert result.by_priority == [("P2 — high", 3, 2)]


# --- the page ----------------------------------------------------------------------------------------------


def test_insights_needs_sign_in(client):
    assert client.get(URL)["Location"].startswith("/accounts/login/")


def test_insights_page_shows_figures_charts_and_sample_sizes(known, user, client_for):
    response = client_for(user).get(URL, PERIOD)
    content = response.content.decode()
    assert 'data-testid="chart-monthly"' in content
    assert 'role="img"' in content
    assert '<title id="monthly-title">Incidents per month</title>' in content
    assert "Jan 26: 3; Feb 26: 4; Mar 26: 3" in content  # the chart's text alternative
    assert 'data-testid="median-detect">55 min<' in content
    assert 'data-testid="p90-detect">1 h 31 min<' in content
    assert 'Time to mitigate <span class="sample">n = 5</span>' in content
    assert "Too few to read: time to mitigate (only 5 values)" in content
    spans = content[content.index('id="spans"') : content.index('id="follow-through"')]
    assert spans.count('class="small-sample') == 1  # one warning for the group of charts
    assert "Known 1" not in content  # figures, not a list of incidents
    assert monthly_total(response) == 10


def test_insights_bad_dates_say_so_next_to_the_field(user, client_for):
    response = client_for(user).get(URL, {"from": "2026-05-01", "to": "2026-01-01"})
    assert "The end of the period must be after its start." in response.content.decode()
    response = client_for(user).get(URL, {"from": "yesterday"})
    assert "Enter a date like 2025-01-31." in response.content.decode()
    assert response.status_code == 200


def test_insights_queries_do_not_grow_with_incidents(db, client_for, django_assert_max_num_queries):
    reader = UserFactory()
    owner = UserFactory()
    for i in range(40):
        incident = published(
            owner=owner,
            incident_date=dt.date(2026, 1 + i % 3, 1 + i % 27),
            started_at=START,
            detected_at=START + dt.timedelta(minutes=i),
            tags=[f"tag{i % 4}", "shared"],
        )
        ActionItemFactory(incident=incident, owner=owner, due_date=dt.date(2026, 2, 1))
    client = client_for(reader)
    # The session (in the database in tests), the user, the version of the published incidents, the
    # restricted incidents the reader may see, the teams of the filter; and 4 to tally the public ones.
    with django_assert_max_num_queries(9):
        response = client.get(URL, PERIOD)
    assert monthly_total(response) == 40
    with django_assert_max_num_queries(5):  # the public tally from the cache
        again = client.get(URL, PERIOD)
    assert monthly_total(again) == 40


def test_insights_team_select_keeps_the_choice(db, client_for):
    TeamFactory(name="Storage", slug="storage")
    TeamFactory(name="Edge <net>", slug="edge")
    page = client_for(UserFactory()).get(URL, {"team": "storage"}).content.decode()
    select = page.split('id="id_team"')[1].split("</select>")[0]
    assert '<option value="">Any team</option>' in select
    assert '<option value="storage" selected>Storage</option>' in select
    assert '<option value="edge">Edge &lt;net&gt;</option>' in select


def test_insights_figures_follow_a_change_at_once(db, client_for):
    reader = UserFactory()
    published(owner=UserFactory(), incident_date=dt.date(2026, 1, 5), started_at=START)
    client = client_for(reader)
    assert monthly_total(client.get(URL, PERIOD)) == 1
    published(owner=UserFactory(), incident_date=dt.date(2026, 1, 6), started_at=START)
    assert monthly_total(client.get(URL, PERIOD)) == 2


def test_insights_cache_is_not_shared_with_someone_who_sees_more(db, client_for):
    insider, outsider = UserFactory(), UserFactory()
    published(owner=UserFactory(), incident_date=dt.date(2026, 1, 5), started_at=START)
    published(
        owner=insider, incident_date=dt.date(2026, 1, 6), started_at=START, visibility=Visibility.RESTRICTED
    )
    assert monthly_total(client_for(outsider).get(URL, PERIOD)) == 1
    assert monthly_total(client_for(insider).get(URL, PERIOD)) == 2
    assert monthly_total(client_for(outsider).get(URL, PERIOD)) == 1


@pytest.mark.parametrize("query", [{"to": "0001-01-01"}, {"to": "9999-12-31"}, {"from": "0001-01-01"}])
def test_insights_out_of_range_dates_are_refused_next_to_the_field(db, client_for, query):
    response = client_for(UserFactory()).get(URL, query)
    assert response.status_code == 200
    assert "Choose a date between 1970-01-01" in response.content.decode()


def test_insights_leave_out_a_restricted_incident_once_i_leave_its_team(db, client_for):
    reader = UserFactory()
    team = TeamFactory(members=[reader])
    published(owner=UserFactory(), incident_date=dt.date(2026, 1, 5), started_at=START, tags=["dns"])
    secret = published(
        owner=UserFactory(),
        incident_date=dt.date(2026, 1, 6),
        started_at=START,
        detected_at=START + dt.timedelta(minutes=5),
        visibility=Visibility.RESTRICTED,
        teams=[team],
        tags=["dns", "secret-breach"],
    )
    ActionItemFactory(incident=secret, due_date=dt.date(2026, 1, 1))
    client = client_for(reader)
    before = client.get(URL, PERIOD)
    assert monthly_total(before) == 2
    assert before.context["follow_through"].n == 1
    assert [(t["tag__slug"], t["n"]) for t in before.context["recurring_tags"]] == [("dns", 2)]

    team.members.remove(reader)

    after = client.get(URL, PERIOD)
    assert monthly_total(after) == 1
    assert after.context["distributions"][0].n == 0  # its time to detect is gone too
    assert after.context["follow_through"].n == 0
    assert after.context["recurring_tags"] == []


def test_insights_figures_of_public_and_restricted_incidents_add_up(known, client_for):
    """Someone who may see a restricted incident gets the public figures with it added: the same as
    computing them over everything they may see."""
    restricted = Incident.objects.get(visibility=Visibility.RESTRICTED)
    client = client_for(restricted.owner)
    response = client.get(URL, PERIOD)
    incidents = insights.incidents_for(
        restricted.owner, date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 3, 31)
    )
    assert monthly_total(response) == incidents.count() == 11
    shown = {d.name: (d.n, d.median, d.p90, d.histogram) for d in response.context["distributions"]}
    direct = {d.name: (d.n, d.median, d.p90, d.histogram) for d in insights.distributions(incidents)}
    assert shown == direct


def test_insights_unknown_tag_shows_no_figures(known, client_for, user):
    response = client_for(user).get(URL, {**PERIOD, "tag": "no-such-tag"})
    assert response.status_code == 200
    assert monthly_total(response) == 0
    assert "No incident in this selection records these times." in response.content.decode()
