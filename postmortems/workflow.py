"""The review workflow (DESIGN.md section 5): every status change and sign-off, one function each.

Each transition runs in `transaction.atomic`, locks the incident row with `select_for_update` (the authoring
save locks the same row, so an edit and a sign-off never interleave), checks its rules against the locked
row, writes Activity, and records its notifications in the same transaction (`notifications.record`): they
are enqueued once it commits, so nothing is sent for a rolled-back change and nothing lost when the broker is
down. A broken rule raises `WorkflowError` with a message a person can act on; `NotAllowed` (a subclass)
means the user has no part in this action at all.

For the authoring side: when reviewers are taken off the committee, call `drop_sign_offs` in the same
transaction, so that their sign-offs stop counting.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from integrations import webhooks
from integrations.models import Event
from postmortems import changes, checks, notifications
from postmortems.models import (
    Activity,
    ActivityVerb,
    Comment,
    Decision,
    Incident,
    NotificationKind,
    Section,
    SignOff,
    Status,
)


class WorkflowError(Exception):
    """A rule of the workflow refused the action; the message says what to do about it."""


class NotAllowed(WorkflowError):
    """The user has no part in this action (not the owner, not on the committee, …)."""


# Filled before review is requested; the rest is enforced by the blocking checks at publishing.
REQUIRED_FOR_REVIEW = {
    "summary": "Write the summary (step “impact”).",
    "customer_impact": "Describe the customer impact (step “impact”).",
}


# --- who is who --------------------------------------------------------------------------------------------
# These read `incident.co_authors.all()` / `committee.all()`, so prefetched relations save the queries.


def is_author(incident: Incident, user) -> bool:
    """The owner or a co-author."""
    if not user.is_authenticated:
        return False
    return incident.owner_id == user.pk or any(u.pk == user.pk for u in incident.co_authors.all())


def is_reviewer(incident: Incident, user) -> bool:
    """On the committee and not an author: nobody signs off their own postmortem."""
    if not user.is_authenticated or is_author(incident, user):
        return False
    return any(u.pk == user.pk for u in incident.committee.all())


def may_comment(incident: Incident, user) -> bool:
    """Authors, the committee and staff discuss a postmortem (while it is not published)."""
    return is_author(incident, user) or is_reviewer(incident, user) or user.is_staff


def may_reopen(incident: Incident, user) -> bool:
    """The owner or staff (a published postmortem)."""
    return user.is_authenticated and (incident.owner_id == user.pk or user.is_staff)


def review_blockers(incident: Incident) -> list[str]:
    """Why review cannot be requested yet (empty when it can)."""
    problems = []
    committee = list(incident.committee.all())
    minimum = settings.POSTMORTEM_MIN_REVIEWERS
    if len(committee) < minimum:
        problems.append(
            f"Choose at least {minimum} reviewer{'s' if minimum != 1 else ''} for the peer-review committee "
            f"(step “basics”); it has {len(committee)}."
        )
    authors = [m for m in committee if is_author(incident, m)]
    if authors:
        names = ", ".join(str(m) for m in authors)
        problems.append(
            f"Nobody reviews their own postmortem: take {names} off the committee, or choose other reviewers."
        )
    problems.extend(
        message for name, message in REQUIRED_FOR_REVIEW.items() if not getattr(incident, name).strip()
    )
    return problems


def approval_gaps(incident: Incident, current_sign_offs: Iterable[SignOff]) -> list[str]:
    """Each committee member whose current sign-off is not an approval of the current revision, and why."""
    by_reviewer = {s.reviewer_id: s for s in current_sign_offs}
    gaps = []
    committee = list(incident.committee.all())
    minimum = settings.POSTMORTEM_MIN_REVIEWERS
    if len(committee) < minimum:
        gaps.append(f"The committee needs at least {minimum} member{'s' if minimum != 1 else ''}.")
    for member in committee:
        sign_off = by_reviewer.get(member.pk)
        if sign_off is None:
            gaps.append(f"{member} has not signed off yet.")
        elif sign_off.decision == Decision.REQUEST_CHANGES:
            gaps.append(f"{member} requested changes (revision {sign_off.revision}).")
        elif sign_off.revision != incident.revision:
            gaps.append(
                f"{member} approved revision {sign_off.revision}; it is now revision {incident.revision}, "
                "so they must approve again."
            )
    return gaps


def publish_blockers(
    incident: Incident, *, current_sign_offs: Iterable[SignOff], findings: Sequence[checks.Finding]
) -> list[str]:
    """Everything that stands between this incident and publishing: missing approvals, then failing checks."""
    problems = approval_gaps(incident, current_sign_offs)
    problems.extend(f"Check fails: {finding.message}" for finding in checks.blocking(findings))
    return problems


# --- the transitions ---------------------------------------------------------------------------------------


def _lock(incident: Incident) -> Incident:
    """The incident's row, locked until the transaction ends, as it is now (not as the caller read it)."""
    return Incident.objects.select_for_update().get(pk=incident.pk)


def _sync(incident: Incident, locked: Incident) -> None:
    """Let the caller's instance see what the transition changed."""
    for name in ("status", "revision", "published_at", "updated_at"):
        setattr(incident, name, getattr(locked, name))


def _log(incident: Incident, by: User, verb: str, detail: str = "", *, staff: bool = False) -> Activity:
    return Activity.objects.create(
        incident=incident,
        actor=by,
        verb=verb,
        detail=detail,
        revision=incident.revision,
        is_staff_action=staff,
    )


_STATUS_HINTS = {
    (Status.DRAFT, Status.IN_REVIEW): "it is already in review.",
    (Status.DRAFT, Status.PUBLISHED): "it is published; reopen it first.",
    (Status.IN_REVIEW, Status.DRAFT): "it is a draft; request review first.",
    (Status.IN_REVIEW, Status.PUBLISHED): "it is already published.",
    (Status.PUBLISHED, Status.DRAFT): "it is a draft, not published.",
    (Status.PUBLISHED, Status.IN_REVIEW): "it is in review, not published.",
}


def _require_status(incident: Incident, status: str, doing: str) -> None:
    if incident.status != status:
        raise WorkflowError(f"Cannot {doing}: {_STATUS_HINTS[(status, incident.status)]}")


def request_review(incident: Incident, *, by: User) -> Incident:
    """Draft → in review: the committee is asked (by email) to sign off the current revision."""
    with transaction.atomic():
        locked = _lock(incident)
        if not is_author(locked, by):
            raise NotAllowed("Only the owner or a co-author can request review.")
        _require_status(locked, Status.DRAFT, "request review")
        problems = review_blockers(locked)
        if problems:
            raise WorkflowError("Review cannot be requested yet: " + " ".join(problems))
        locked.status = Status.IN_REVIEW
        locked.save(update_fields=["status", "updated_at"])
        committee = ", ".join(str(member) for member in locked.committee.all())
        activity = _log(locked, by, ActivityVerb.REVIEW_REQUESTED, f"from {committee}")
        notifications.record(NotificationKind.REVIEW_REQUESTED, activity.pk)
        webhooks.emit(Event.REVIEW_REQUESTED, incident=locked, actor=by)
    _sync(incident, locked)
    return incident


def withdraw(incident: Incident, *, by: User) -> Incident:
    """In review → draft, by the owner or staff (logged as a staff action). Sign-offs are kept but become
    stale: the revision moves on."""
    with transaction.atomic():
        locked = _lock(incident)
        staff = by.is_staff and locked.owner_id != by.pk
        if locked.owner_id != by.pk and not staff:
            raise NotAllowed("Only the owner or staff can withdraw the postmortem from review.")
        _require_status(locked, Status.IN_REVIEW, "withdraw it")
        locked.status = Status.DRAFT
        locked.revision += 1
        locked.save(update_fields=["status", "revision", "updated_at"])
        _log(locked, by, ActivityVerb.WITHDRAWN, "earlier sign-offs are now stale", staff=staff)
    _sync(incident, locked)
    return incident


def _sign_off(incident: Incident, *, by: User, decision: str, revision: int, comment: str) -> SignOff:
    comment = comment.strip()
    with transaction.atomic():
        locked = _lock(incident)
        if not is_reviewer(locked, by):
            if is_author(locked, by):
                raise NotAllowed("Nobody signs off their own postmortem: ask the committee.")
            raise NotAllowed("Only members of the peer-review committee can sign off.")
        _require_status(locked, Status.IN_REVIEW, "sign off")
        if revision != locked.revision:
            raise WorkflowError(
                f"The postmortem changed while you were reading it: you read revision {revision}, "
                f"it is now revision {locked.revision}. Re-read it (see what changed) and sign off again."
            )
        if decision == Decision.REQUEST_CHANGES and not comment:
            raise WorkflowError("Say what needs to change: a comment is required to request changes.")
        content = Incident.objects.prefetch_related(*changes.SNAPSHOT_PREFETCH).get(pk=locked.pk)
        SignOff.objects.filter(incident=locked, reviewer=by, is_current=True).update(is_current=False)
        sign_off = SignOff.objects.create(
            incident=locked,
            reviewer=by,
            decision=decision,
            comment=comment,
            revision=locked.revision,
            snapshot=changes.snapshot(content),
        )
        verb = ActivityVerb.APPROVED if decision == Decision.APPROVE else ActivityVerb.CHANGES_REQUESTED
        _log(locked, by, verb, comment)
        notifications.record(NotificationKind.SIGNED_OFF, sign_off.pk)
        webhooks.sign_off_event(sign_off)
    return sign_off


def approve(incident: Incident, *, by: User, revision: int, comment: str = "") -> SignOff:
    """A committee member approves the revision they read (`revision`, from the form they submitted)."""
    return _sign_off(incident, by=by, decision=Decision.APPROVE, revision=revision, comment=comment)


def request_changes(incident: Incident, *, by: User, revision: int, comment: str) -> SignOff:
    """A committee member asks for changes to the revision they read; the comment says which."""
    return _sign_off(incident, by=by, decision=Decision.REQUEST_CHANGES, revision=revision, comment=comment)


def publish(incident: Incident, *, by: User, as_staff: bool = False) -> Incident:
    """In review → published: frozen, stamped, visible to its readers, the committee told."""
    with transaction.atomic():
        locked = _lock(incident)
        staff = as_staff and by.is_staff and locked.owner_id != by.pk
        if locked.owner_id != by.pk and not staff:
            raise NotAllowed("Only the owner can publish the postmortem.")
        _require_status(locked, Status.IN_REVIEW, "publish")
        content = Incident.objects.prefetch_related("committee", *checks.CHECK_PREFETCH).get(pk=locked.pk)
        current = SignOff.objects.filter(incident=locked, is_current=True).select_related("reviewer")
        problems = publish_blockers(content, current_sign_offs=current, findings=checks.run_checks(content))
        if problems:
            raise WorkflowError("Not ready to publish: " + " ".join(problems))
        locked.status = Status.PUBLISHED
        locked.published_at = timezone.now()
        locked.save(update_fields=["status", "published_at", "updated_at"])
        activity = _log(locked, by, ActivityVerb.PUBLISHED, staff=staff)
        notifications.record(NotificationKind.PUBLISHED, activity.pk)
        webhooks.emit(Event.PUBLISHED, incident=locked, actor=by)
    _sync(incident, locked)
    return incident


def reopen(incident: Incident, *, by: User, reason: str) -> Incident:
    """Published → draft, for the owner or staff, with a reason; it goes through review again."""
    reason = reason.strip()
    with transaction.atomic():
        locked = _lock(incident)
        if not may_reopen(locked, by):
            raise NotAllowed("Only the owner or staff can reopen a published postmortem.")
        staff = locked.owner_id != by.pk
        _require_status(locked, Status.PUBLISHED, "reopen it")
        if not reason:
            raise WorkflowError("Say why it is reopened: a reason is required.")
        locked.status = Status.DRAFT
        locked.published_at = None
        locked.revision += 1
        locked.save(update_fields=["status", "published_at", "revision", "updated_at"])
        _log(locked, by, ActivityVerb.REOPENED, reason, staff=staff)
        webhooks.emit(Event.REOPENED, incident=locked, actor=by, extra={"reason": reason})
    _sync(incident, locked)
    return incident


def comment(incident: Incident, *, by: User, section: str, text: str) -> Comment:
    """A remark on one section, by someone involved, while it is a draft or in review."""
    text = text.strip()
    with transaction.atomic():
        locked = _lock(incident)
        if not may_comment(locked, by):
            raise NotAllowed("Only the owner, co-authors and the committee can comment.")
        if locked.status == Status.PUBLISHED:
            raise WorkflowError("It is published and frozen: reopen it to discuss changes.")
        if section not in Section.values:
            raise WorkflowError("Choose the section you are commenting on.")
        if not text:
            raise WorkflowError("Write a comment first.")
        remark = Comment.objects.create(
            incident=locked, section=section, author=by, text=text, revision=locked.revision
        )
        involved = is_author(locked, by) or is_reviewer(locked, by)
        _log(locked, by, ActivityVerb.COMMENTED, f"on {Section(section).label}: {text}", staff=not involved)
    return remark


def drop_sign_offs(incident: Incident, *, reviewers: Iterable[User]) -> int:
    """Reviewers left the committee: their current sign-offs stop counting (history is kept).

    Call it from the authoring 'basics' save, inside its transaction, with the members removed. Adding a
    member needs nothing here: publishing requires an approval from every member of the committee.
    """
    return SignOff.objects.filter(incident=incident, reviewer__in=list(reviewers), is_current=True).update(
        is_current=False
    )


# --- what the detail page offers ---------------------------------------------------------------------------


@dataclass
class Actions:
    """Which workflow buttons a user gets on one incident, and why a shown button is disabled."""

    request_review: bool = False
    review_blockers: list[str] = field(default_factory=list)
    withdraw: bool = False
    sign_off: bool = False
    my_sign_off: SignOff | None = None
    publish: bool = False
    publish_blockers: list[str] = field(default_factory=list)
    reopen: bool = False
    comment: bool = False
    # Staff who are not the owner: what they press (withdraw, reopen) is logged as a staff action.
    as_staff: bool = False

    @property
    def any(self) -> bool:
        return self.request_review or self.withdraw or self.sign_off or self.publish or self.reopen


def actions_for(
    incident: Incident, user, *, current_sign_offs: Sequence[SignOff], findings: Sequence[checks.Finding]
) -> Actions:
    """The buttons for `user`, from loaded data: the transitions themselves re-check every rule."""
    author = is_author(incident, user)
    reviewer = is_reviewer(incident, user)
    owner = incident.owner_id == user.pk
    actions = Actions(as_staff=user.is_staff and not owner)
    if incident.status == Status.DRAFT:
        actions.request_review = author
        if author:
            actions.review_blockers = review_blockers(incident)
    elif incident.status == Status.IN_REVIEW:
        actions.withdraw = owner or user.is_staff
        actions.sign_off = reviewer
        actions.publish = owner
        if owner:
            actions.publish_blockers = publish_blockers(
                incident, current_sign_offs=current_sign_offs, findings=findings
            )
    else:
        actions.reopen = may_reopen(incident, user)
    if reviewer:
        actions.my_sign_off = next((s for s in current_sign_offs if s.reviewer_id == user.pk), None)
    actions.comment = incident.status != Status.PUBLISHED and may_comment(incident, user)
    return actions
