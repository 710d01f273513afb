"""Saving what an author writes, one step of the postmortem at a time, never over someone else's save.

Every content save runs in one transaction that locks the incident row, refuses a stale version of the
step (`EditConflict`), writes the step's forms, bumps `Incident.revision` and logs an Activity line. The
review workflow (postmortems/workflow.py) locks the same row, so approvals and edits serialise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.forms import BaseForm, BaseFormSet, ModelForm
from django.forms.models import construct_instance
from django.utils import timezone

from accounts.models import User
from integrations import webhooks
from integrations.models import Event
from postmortems import notifications, search, workflow
from postmortems.forms import may_change_owner
from postmortems.models import (
    ActionItem,
    Activity,
    ActivityVerb,
    ContributingFactor,
    Incident,
    Lesson,
    NotificationKind,
    Status,
    TimelineEvent,
)


@dataclass(frozen=True)
class Step:
    slug: str
    label: str


STEPS: tuple[Step, ...] = (
    Step("basics", "Basics"),
    Step("impact", "Impact"),
    Step("timeline", "Timeline"),
    Step("analysis", "Analysis"),
    Step("factors", "Contributing factors"),
    Step("lessons", "Lessons learned"),
    Step("actions", "Action items"),
    Step("review", "Review"),
)
STEP_SLUGS = tuple(step.slug for step in STEPS)
STEP_LABELS = {step.slug: step.label for step in STEPS}

# Autosaves of the same step by the same person within this window share one Activity line.
AUTOSAVE_ACTIVITY_WINDOW = timedelta(minutes=10)


class EditConflict(Exception):
    """Someone saved this step after the version the author started from."""

    def __init__(self, current: Incident):
        super().__init__(f"Revision {current.revision} of “{current}” changed this step since you opened it.")
        self.current = current


class EditRefused(Exception):
    """The postmortem can no longer be edited (it was published meanwhile)."""


def next_step(step: str) -> str:
    index = STEP_SLUGS.index(step)
    return STEP_SLUGS[min(index + 1, len(STEP_SLUGS) - 1)]


def create_incident(form: ModelForm, *, by) -> Incident:
    """Create the draft from a valid basics form: revision 1, created by `by`, logged."""
    with transaction.atomic():
        incident = form.save(commit=False)
        incident.status = Status.DRAFT
        incident.revision = 1
        incident.last_step = next_step("basics")
        incident.step_revisions = {"basics": 1}
        incident.save()
        form.save_m2m()
        if incident.owner_id != by.pk:
            # Whoever starts a postmortem for someone else stays able to edit it.
            incident.co_authors.add(by)
        Activity.objects.create(incident=incident, actor=by, verb=ActivityVerb.CREATED, revision=1)
        _update_search_vector(incident.pk)
        # Owners of open action items on older postmortems with a tag in common hear about this one.
        notifications.record(NotificationKind.RELATED_OPEN_ITEMS, incident.pk)
    return incident


def save_step(
    incident: Incident,
    *,
    step: str,
    forms: Sequence[BaseForm | BaseFormSet],
    by,
    expected_revision: int,
    resume_at: str | None = None,
    autosave: bool = False,
) -> int:
    """Save one step's valid forms and return the incident's revision afterwards.

    `forms` are the step's ModelForm of the incident and/or its model formsets. Raises EditConflict when
    the step changed after `expected_revision` (the revision the page was rendered with) and EditRefused
    when the postmortem is published. A save that changes nothing neither bumps the revision nor logs.
    """
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        if locked.status == Status.PUBLISHED:
            raise EditRefused("A published postmortem is read-only; reopen it to edit.")
        for form in forms:
            _keep_owner_unless_allowed(form, locked, by)
        changed = any(form.has_changed() for form in forms)
        if changed and locked.step_revisions.get(step, 0) > expected_revision:
            raise EditConflict(locked)
        locked.last_step = resume_at or step
        if not changed:
            locked.save(update_fields=["last_step"])
            return locked.revision
        for form in forms:
            if isinstance(form, BaseFormSet):
                form.save()
                if step == "actions":
                    _action_item_events(form, locked, by)
            else:
                _save_incident_form(form, locked)
        revision = locked.bump_revision(steps=[step], also=("last_step",))
        _log_edit(locked, step=step, by=by, revision=revision, autosave=autosave)
        _update_search_vector(locked.pk)
        if step == "basics":
            notifications.record(NotificationKind.RELATED_OPEN_ITEMS, locked.pk)
    incident.revision = revision
    return revision


def add_timeline_events(
    incident: Incident, *, events: Sequence[dict], by, expected_revision: int, source: str = ""
) -> tuple[int, int]:
    """Add accepted imported events (dicts of TimelineEvent fields) in one save; returns (added, skipped).

    Like `save_step` of the timeline: the row is locked, a timeline saved after `expected_revision` is an
    EditConflict, the revision goes up once, one Activity line, the search vector follows. An event already
    on the timeline (same instant, same text) is skipped, so importing twice adds nothing twice.
    """
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        if locked.status == Status.PUBLISHED:
            raise EditRefused("A published postmortem is read-only; reopen it to edit.")
        if locked.step_revisions.get("timeline", 0) > expected_revision:
            raise EditConflict(locked)
        seen = {
            (occurred_at, " ".join(description.split()))
            for occurred_at, description in locked.timeline_events.values_list("occurred_at", "description")
        }
        new = []
        for event in events:
            key = (event["occurred_at"], " ".join(event["description"].split()))
            if key not in seen:
                seen.add(key)
                new.append(TimelineEvent(incident=locked, **event))
        if not new:
            return 0, len(events)
        TimelineEvent.objects.bulk_create(new)
        revision = locked.bump_revision(steps=["timeline"])
        detail = f"{STEP_LABELS['timeline']} (imported {len(new)} event{'s' if len(new) != 1 else ''}"
        detail += f" from {source})" if source else ")"
        Activity.objects.create(
            incident=locked, actor=by, verb=ActivityVerb.EDITED, detail=detail, revision=revision
        )
        _update_search_vector(locked.pk)
    incident.revision = revision
    return len(new), len(events) - len(new)


def _action_item_events(formset: BaseFormSet, incident: Incident, by) -> None:
    """Webhook events for the items this save added or changed (integrations/webhooks.py)."""
    for item in formset.new_objects:
        webhooks.emit(Event.ACTION_ITEM_CREATED, incident=incident, actor=by, item=item)
    for item, changed in formset.changed_objects:
        webhooks.emit(
            Event.ACTION_ITEM_UPDATED, incident=incident, actor=by, item=item, extra={"changes": changed}
        )


def _keep_owner_unless_allowed(form, locked: Incident, by) -> None:
    """Only the owner (or staff) changes `owner`: from anyone else a posted owner is ignored."""
    if isinstance(form, BaseFormSet) or "owner" not in form.fields or may_change_owner(locked, by):
        return
    form.cleaned_data["owner"] = locked.owner
    if "owner" in form.changed_data:
        form.changed_data.remove("owner")  # so an owner-only "change" neither saves nor bumps the revision


def _save_incident_form(form: ModelForm, locked: Incident) -> None:
    """Write only the form's own fields onto the locked row, so a concurrent status change survives.

    When the owner hands the postmortem over, the previous owner stays on it as a co-author.
    """
    owner_before = locked.owner_id
    construct_instance(form, locked, form._meta.fields, form._meta.exclude)
    names = [
        field.name
        for field in locked._meta.concrete_fields
        if field.name in form.cleaned_data and not field.many_to_many
    ]
    locked.save(update_fields=names)
    form.instance = locked
    committee_before = (
        set(locked.committee.values_list("pk", flat=True)) if "committee" in form.fields else set()
    )
    form._save_m2m()
    if owner_before is not None and locked.owner_id != owner_before:
        locked.co_authors.add(owner_before)
    if "committee" in form.fields:
        removed = committee_before - set(locked.committee.values_list("pk", flat=True))
        if removed:
            # Whoever left the committee no longer has a sign-off that counts.
            workflow.drop_sign_offs(locked, reviewers=User.objects.filter(pk__in=removed))


def _log_edit(incident: Incident, *, step: str, by, revision: int, autosave: bool) -> None:
    detail = STEP_LABELS[step]
    if autosave:
        latest = incident.activities.order_by("-created_at", "-id").first()
        if (
            latest is not None
            and latest.verb == ActivityVerb.EDITED
            and latest.actor_id == by.pk
            and latest.detail == detail
            and latest.created_at > timezone.now() - AUTOSAVE_ACTIVITY_WINDOW
        ):
            return
    Activity.objects.create(
        incident=incident, actor=by, verb=ActivityVerb.EDITED, detail=detail, revision=revision
    )


def _update_search_vector(pk: int) -> None:
    # Inside the transaction: the stored vector changes together with the text it indexes.
    search.update_search_vector(pk)


def with_progress(queryset: QuerySet) -> QuerySet:
    """Annotate what `progress` needs, so that the progress bar costs no extra query."""
    has = {
        "has_timeline": TimelineEvent,
        "has_factors": ContributingFactor,
        "has_lessons": Lesson,
        "has_actions": ActionItem,
    }
    return queryset.annotate(
        **{name: Exists(model.objects.filter(incident=OuterRef("pk"))) for name, model in has.items()}
    )


def progress(incident: Incident) -> list[tuple[Step, bool]]:
    """Each step, and whether its part of the template is filled in (`incident` comes from with_progress)."""
    done = {
        "basics": bool(incident.title and incident.incident_date),
        "impact": bool(incident.summary.strip() and incident.customer_impact.strip())
        and incident.impacted_customers is not None,
        "timeline": incident.has_timeline,
        "analysis": bool(incident.response_analysis.strip() and incident.post_incident_analysis.strip()),
        "factors": incident.has_factors,
        "lessons": incident.has_lessons,
        "actions": incident.has_actions,
    }
    done["review"] = all(done.values())
    return [(step, done[step.slug]) for step in STEPS]
