import pytest

from postmortems.models import Incident, Status, Visibility
from tests.factories import IncidentFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    return {
        name: UserFactory(username=name) for name in ("owner", "coauthor", "reviewer", "teammate", "other")
    }


@pytest.fixture
def incidents(people):
    team = TeamFactory(members=[people["teammate"]])
    common = {
        "owner": people["owner"],
        "co_authors": [people["coauthor"]],
        "committee": [people["reviewer"]],
        "teams": [team],
    }
    return {
        "draft": IncidentFactory(status=Status.DRAFT, **common),
        "in_review": IncidentFactory(status=Status.IN_REVIEW, **common),
        "published": IncidentFactory(status=Status.PUBLISHED, **common),
        "restricted": IncidentFactory(status=Status.PUBLISHED, visibility=Visibility.RESTRICTED, **common),
        "restricted_draft": IncidentFactory(status=Status.DRAFT, visibility=Visibility.RESTRICTED, **common),
    }


EVERYTHING = {"draft", "in_review", "published", "restricted", "restricted_draft"}


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        ("owner", EVERYTHING),
        ("coauthor", EVERYTHING),
        ("reviewer", EVERYTHING),
        ("teammate", {"published", "restricted"}),
        ("other", {"published"}),
    ],
)
def test_visible_to(people, incidents, who, sees):
    visible = set(Incident.objects.visible_to(people[who]).values_list("pk", flat=True))
    assert visible == {incidents[name].pk for name in sees}


def test_visible_to_staff_sees_everything(incidents):
    staff = UserFactory(is_staff=True)
    assert Incident.objects.visible_to(staff).count() == len(incidents)


def test_visible_to_anonymous_sees_nothing(incidents):
    from django.contrib.auth.models import AnonymousUser

    assert not Incident.objects.visible_to(AnonymousUser()).exists()


def test_visible_to_inactive_user_sees_nothing(incidents):
    assert not Incident.objects.visible_to(UserFactory(is_active=False)).exists()


def test_visible_to_returns_each_incident_once(people):
    team = TeamFactory(members=[people["owner"]])
    incident = IncidentFactory(
        owner=people["owner"], co_authors=[people["owner"]], committee=[people["owner"]], teams=[team]
    )
    assert list(Incident.objects.visible_to(people["owner"])) == [incident]


@pytest.mark.parametrize("who", ["owner", "coauthor", "reviewer", "teammate", "other", "staff", "inactive"])
def test_hidden_from_is_exactly_what_visible_to_leaves_out(people, incidents, who):
    """hidden_from, written for speed, hides exactly what the visibility filter hides."""
    user = people[who] if who in people else UserFactory(is_staff=who == "staff", is_active=who != "inactive")
    IncidentFactory(status=Status.DRAFT, owner=UserFactory())  # nobody's business here
    hidden = set(Incident.objects.hidden_from(user))
    assert hidden == set(Incident.objects.exclude(pk__in=Incident.objects.visible_to(user).values("pk")))
