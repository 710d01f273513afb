import datetime as dt

import factory
from django.utils import timezone

from accounts.models import Team, User
from postmortems.models import (
    ActionItem,
    ActionItemStatus,
    Activity,
    ActivityVerb,
    ContributingFactor,
    Decision,
    FactorCategory,
    Incident,
    Lesson,
    Priority,
    Severity,
    SignOff,
    Status,
    TimelineEvent,
    TimelineEventKind,
)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    display_name = factory.Faker("name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    time_zone = "UTC"
    password = factory.django.Password("correct-horse-battery")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")

    @factory.post_generation
    def members(self, create, extracted, **kwargs):
        if create and extracted:
            self.members.add(*extracted)


class IncidentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Incident
        skip_postgeneration_save = True

    title = factory.Sequence(lambda n: f"Service {n} failed, affecting customers in the EU region")
    incident_date = factory.LazyFunction(lambda: dt.date(2026, 3, 4))
    severity = Severity.SEV2
    owner = factory.SubFactory(UserFactory)
    status = Status.PUBLISHED
    summary = "The checkout API returned errors."

    @factory.post_generation
    def committee(self, create, extracted, **kwargs):
        if create and extracted:
            self.committee.add(*extracted)

    @factory.post_generation
    def co_authors(self, create, extracted, **kwargs):
        if create and extracted:
            self.co_authors.add(*extracted)

    @factory.post_generation
    def teams(self, create, extracted, **kwargs):
        if create and extracted:
            self.teams.add(*extracted)

    @factory.post_generation
    def tags(self, create, extracted, **kwargs):
        if create and extracted:
            self.tags.add(*extracted)


class TimelineEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TimelineEvent

    incident = factory.SubFactory(IncidentFactory)
    occurred_at = factory.Sequence(
        lambda n: dt.datetime(2026, 3, 4, 9, 0, tzinfo=dt.UTC) + dt.timedelta(minutes=n)
    )
    kind = TimelineEventKind.OTHER
    description = factory.Sequence(lambda n: f"Event {n} happened")


class ContributingFactorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContributingFactor

    incident = factory.SubFactory(IncidentFactory)
    description = factory.Sequence(lambda n: f"Factor {n}")
    category = FactorCategory.TECHNOLOGY


class ActionItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ActionItem
        skip_postgeneration_save = True

    incident = factory.SubFactory(IncidentFactory)
    title = factory.Sequence(lambda n: f"Action item {n}")
    owner = factory.SubFactory(UserFactory)
    due_date = factory.LazyFunction(lambda: timezone.localdate() + dt.timedelta(days=30))
    priority = Priority.P2
    status = ActionItemStatus.OPEN

    @factory.post_generation
    def factors(self, create, extracted, **kwargs):
        if create and extracted:
            self.factors.add(*extracted)


class LessonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lesson

    incident = factory.SubFactory(IncidentFactory)
    text = factory.Sequence(lambda n: f"Lesson {n}")


class SignOffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SignOff

    incident = factory.SubFactory(IncidentFactory)
    reviewer = factory.SubFactory(UserFactory)
    decision = Decision.APPROVE
    revision = factory.LazyAttribute(lambda s: s.incident.revision)


def full_incident(*, events=3, factors=3, action_items=2, **kwargs) -> Incident:
    """An incident with every section filled, for pages that show them all."""
    reviewer = UserFactory(display_name="Rita Reviewer")
    defaults = {
        "title": "Checkout API failed, affecting customers in the EU region",
        "time_zone": "Europe/Berlin",
        "started_at": dt.datetime(2026, 3, 4, 8, 0, tzinfo=dt.UTC),
        "detected_at": dt.datetime(2026, 3, 4, 8, 12, tzinfo=dt.UTC),
        "mitigated_at": dt.datetime(2026, 3, 4, 9, 5, tzinfo=dt.UTC),
        "resolved_at": dt.datetime(2026, 3, 4, 11, 0, tzinfo=dt.UTC),
        "summary": "A **connection-pool** change exhausted database connections.",
        "supporting_data": "| minute | errors |\n|---|---|\n| 08:00 | 12 |\n| 08:10 | 4512 |",
        "customer_impact": "EU customers could not check out.",
        "impacted_customers": 1234,
        "response_analysis": "**Detection** took twelve minutes.",
        "post_incident_analysis": "The config push skipped staging.",
        "committee": [reviewer],
        "tags": ["database", "configuration"],
    }
    incident = IncidentFactory(**(defaults | kwargs))
    for i in range(events):
        TimelineEventFactory(
            incident=incident,
            occurred_at=incident.started_at + dt.timedelta(minutes=5 * i),
            kind=[TimelineEventKind.TRIGGER, TimelineEventKind.DETECTION, TimelineEventKind.MITIGATION][
                i % 3
            ],
            description=f"Timeline event number {i}",
        )
    root = ContributingFactorFactory(incident=incident, description="Pool size set to 5 in production")
    parent = root
    made = [root]
    for i in range(1, factors):
        parent = ContributingFactorFactory(
            incident=incident, parent=parent, description=f"Why {i}: no review of config values"
        )
        made.append(parent)
    items = []
    for i in range(action_items):
        items.append(
            ActionItemFactory(
                incident=incident,
                title=f"Validate pool sizes in CI {i}",
                backlog_link=f"https://tracker.example.com/OPS-{100 + i}",
                factors=[made[-1]],
            )
        )
    lesson = LessonFactory(incident=incident, text="Config changes need the same review as code.")
    lesson.action_items.add(*items)
    return incident


class ActivityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Activity

    incident = factory.SubFactory(IncidentFactory)
    actor = factory.SubFactory(UserFactory)
    verb = ActivityVerb.EDITED
