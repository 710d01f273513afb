"""The people and postmortems the review-workflow tests share."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import User
from postmortems import changes
from postmortems.models import Decision, Incident, SignOff, Status
from tests.factories import UserFactory, full_incident


@dataclass
class Cast:
    owner: User
    co_author: User
    reviewer_a: User
    reviewer_b: User
    other: User
    staff: User

    def __getitem__(self, role: str) -> User:
        return getattr(self, role)


def make_cast() -> Cast:
    return Cast(
        owner=UserFactory(username="owner", display_name="Olga Owner"),
        co_author=UserFactory(username="coauthor", display_name="Cole Author"),
        reviewer_a=UserFactory(username="reva", display_name="Ada Reviewer"),
        reviewer_b=UserFactory(username="revb", display_name="Ben Reviewer"),
        other=UserFactory(username="other", display_name="Otto Other"),
        staff=UserFactory(username="staff", display_name="Stef Staff", is_staff=True),
    )


def postmortem(cast: Cast, *, status: str = Status.DRAFT, approved_by=(), **kwargs) -> Incident:
    """A complete postmortem (every blocking check passes) with two reviewers and a co-author."""
    defaults = {
        "owner": cast.owner,
        "co_authors": [cast.co_author],
        "committee": [cast.reviewer_a, cast.reviewer_b],
        "status": status,
    }
    incident = full_incident(**(defaults | kwargs))
    for reviewer in approved_by:
        sign(incident, reviewer)
    return incident


def sign(
    incident: Incident, reviewer: User, *, decision: str = Decision.APPROVE, revision: int | None = None
):
    """A current sign-off made directly (not through the workflow), as earlier sign-offs would be."""
    SignOff.objects.filter(incident=incident, reviewer=reviewer, is_current=True).update(is_current=False)
    content = Incident.objects.prefetch_related(*changes.SNAPSHOT_PREFETCH).get(pk=incident.pk)
    return SignOff.objects.create(
        incident=incident,
        reviewer=reviewer,
        decision=decision,
        comment="" if decision == Decision.APPROVE else "Please fix.",
        revision=revision or incident.revision,
        snapshot=changes.snapshot(content),
    )


def edit(incident: Incident, **fields) -> Incident:
    """A content save as the authoring forms make it: new content, revision + 1."""
    Incident.objects.filter(pk=incident.pk).update(revision=incident.revision + 1, **fields)
    incident.refresh_from_db()
    return incident
