"""The people picker (issue 17): a JSON type-ahead of active people and plain username fields that work
without JavaScript, fast and small with 10,000 people."""

import time

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from accounts.models import Team
from postmortems.forms import IncidentBasicsForm
from postmortems.importing import ARCHIVE_USERNAME
from postmortems.models import Incident, Status
from tests.factories import IncidentFactory, UserFactory
from tests.postmortems.test_forms import basics_data

pytestmark = pytest.mark.django_db
PEOPLE_URL = "/postmortems/people.json"


def _usernames(response) -> list[str]:
    return [person["username"] for person in response.json()["people"]]


def test_people_endpoint_needs_a_signed_in_user(client):
    response = client.get(PEOPLE_URL, {"q": "a"})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("query", ["rita", "Reviewer", "rita@example.org", "Payments"])
def test_people_endpoint_finds_by_username_name_email_and_team(client_for, user, query):
    rita = UserFactory(username="rita", display_name="Rita Reviewer", email="rita@example.org")
    Team.objects.create(name="Payments SRE").members.add(rita)
    UserFactory(username="someone", display_name="Someone Else", email="else@example.net")
    response = client_for(user).get(PEOPLE_URL, {"q": query})
    assert _usernames(response) == ["rita"]
    assert response.json()["people"][0] == {
        "username": "rita",
        "name": "Rita Reviewer",
        "email": "rita@example.org",
        "teams": ["Payments SRE"],
    }


def test_people_endpoint_never_offers_the_archive_or_inactive_people(client_for, user):
    UserFactory(username=ARCHIVE_USERNAME, display_name="Public postmortem archive")
    UserFactory(username="archived-ann", display_name="Ann Archive", is_active=False)
    UserFactory(username="archie", display_name="Archie Active")
    response = client_for(user).get(PEOPLE_URL, {"q": "archi"})
    assert _usernames(response) == ["archie"]


def test_people_endpoint_returns_at_most_twenty(client_for, user):
    for i in range(25):
        UserFactory(username=f"sam{i:02}", display_name=f"Sam {i:02}")
    assert len(_usernames(client_for(user).get(PEOPLE_URL, {"q": "sam"}))) == 20
    assert _usernames(client_for(user).get(PEOPLE_URL, {"q": " "})) == []


def test_basics_form_takes_usernames_typed_into_plain_fields(user):
    rita, ben = UserFactory(username="rita"), UserFactory(username="ben")
    data = basics_data(user, committee="rita, ben,", co_authors="") | {"owner": user.username}
    form = IncidentBasicsForm(data)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["owner"] == user
    assert set(form.cleaned_data["committee"]) == {rita, ben}


def test_basics_form_names_an_unknown_username_next_to_its_field(user):
    UserFactory(username=ARCHIVE_USERNAME)
    form = IncidentBasicsForm(basics_data(user, committee=f"nobody, {ARCHIVE_USERNAME}"))
    assert not form.is_valid()
    assert "No active person with the username “nobody”, “public-archive”." in form.errors["committee"][0]


def test_basics_step_shows_chosen_people_as_usernames(client_for):
    owner, rita = UserFactory(username="olga"), UserFactory(username="rita")
    incident = IncidentFactory(owner=owner, committee=[rita], status=Status.DRAFT)
    page = client_for(owner).get(reverse("postmortems:edit", args=[incident.pk, "basics"])).content.decode()
    assert 'name="committee" value="rita, "' in page
    assert 'name="owner" value="olga"' in page
    assert 'data-people-picker="many"' in page


def test_basics_step_stays_small_and_fast_with_ten_thousand_people(client_for):
    User = get_user_model()
    User.objects.bulk_create(
        User(username=f"person{i:05}", display_name=f"Person {i:05}", email=f"p{i}@example.org")
        for i in range(10_000)
    )
    owner = UserFactory(username="olga")
    incident = IncidentFactory(owner=owner, status=Status.DRAFT)
    client = client_for(owner)
    url = reverse("postmortems:edit", args=[incident.pk, "basics"])
    client.get(url)  # warm up templates
    took = []
    for _ in range(5):
        started = time.perf_counter()
        response = client.get(url)
        took.append(time.perf_counter() - started)
    assert response.status_code == 200
    assert len(response.content) < 50_000
    best, median = min(took) * 1000, sorted(took)[2] * 1000
    print(f"basics step: {len(response.content)} bytes, best {best:.1f} ms, median {median:.1f} ms")
    # The best of five: the machine's other work only ever adds time, so the minimum is this page's own.
    assert min(took) < 0.05
    new = client.get(reverse("postmortems:new"))
    assert len(new.content) < 50_000
    assert Incident.objects.count() == 1
