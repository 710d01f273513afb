"""Importing timeline events: the author's "Import events" page, and each draft's incoming alert webhook.

Parsing is integrations/timeline_import.py; saving the accepted events is postmortems/editing.py. Nothing
reaches the timeline before an author presses "Add selected events".
"""

from __future__ import annotations

import hmac
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations import timeline_import
from integrations.forms import CandidateFormSet, ImportSourceForm
from integrations.models import AlertInbox, PendingEvent, new_inbox_secret
from postmortems import editing
from postmortems.models import Incident, Status

MAX_ALERT_BYTES = 1024 * 1024
MAX_PENDING = 1000


def _editable(request, pk: int) -> Incident:
    incident = get_object_or_404(
        Incident.objects.visible_to(request.user).prefetch_related("co_authors"), pk=pk
    )
    if not incident.can_edit(request.user):
        raise PermissionDenied("Only the owner and co-authors edit a postmortem, until it is published.")
    return incident


def _wall_clock(value, incident: Incident) -> str:
    local = timezone.localtime(value, incident.tz)
    return local.strftime("%Y-%m-%d %H:%M:%S" if local.second else "%Y-%m-%d %H:%M")


def _initial(candidates, incident: Incident) -> list[dict]:
    """The candidate rows: chat messages (mostly talk) start unticked, alerts, status updates and pasted
    lines ticked, and what is on the timeline already unticked and marked."""
    on_timeline = {
        (occurred_at, " ".join(description.split()))
        for occurred_at, description in incident.timeline_events.values_list("occurred_at", "description")
    }
    rows = []
    for candidate in candidates:
        already = (candidate.occurred_at, " ".join(candidate.description.split())) in on_timeline
        rows.append(
            {
                "include": candidate.source != timeline_import.CHAT and not already,
                "occurred_at": _wall_clock(candidate.occurred_at, incident),
                "kind": candidate.kind,
                "description": candidate.description,
                "link": candidate.link,
                "pending": getattr(candidate, "pk", None),
                "already": already,
                "source": candidate.source,
            }
        )
    return rows


def import_events(request, pk: int):
    """/postmortems/<id>/edit/timeline/import/: read pasted lines or files, show the candidates, add the
    chosen ones."""
    incident = _editable(request, pk)
    action = request.POST.get("_action", "")
    source_form, formset, fmt, problems = ImportSourceForm(), None, "", []
    if request.method == "POST" and action == "read":
        source_form = ImportSourceForm(request.POST, request.FILES)
        if source_form.is_valid():
            try:
                result = _read(source_form.cleaned_data, incident)
            except timeline_import.Unreadable as error:
                source_form.add_error(None, str(error))
            else:
                fmt, problems = result.format, result.problems
                initial = _initial(result.candidates, incident)
                formset = CandidateFormSet(initial=initial, zone=incident.tz, prefix="c")
                if not initial:
                    source_form.add_error(None, "No events were found in what you gave.")
    elif request.method == "POST" and action == "accept":
        formset = CandidateFormSet(request.POST, zone=incident.tz, prefix="c")
        if formset.is_valid():
            return _accept(request, incident, formset)
        fmt = request.POST.get("_format", "")
    elif request.method == "POST" and action == "discard":
        deleted, _ = incident.pending_events.all().delete()
        messages.success(request, f"{deleted} queued alert event{'s' if deleted != 1 else ''} discarded.")
        return redirect("integrations:timeline_import", incident.pk)
    if formset is None:
        pending = list(incident.pending_events.all()[:MAX_PENDING])
        if pending:
            fmt = timeline_import.ALERT_INBOX
            formset = CandidateFormSet(initial=_initial(pending, incident), zone=incident.tz, prefix="c")
    context = {
        "incident": incident,
        "source_form": source_form,
        "formset": formset,
        "format": fmt,
        "problems": problems,
        "revision": request.POST.get("_revision") if action == "accept" else incident.revision,
        "inbox": AlertInbox.objects.filter(incident=incident).first(),
        "pending_count": incident.pending_events.count(),
    }
    return TemplateResponse(request, "integrations/timeline_import.html", context)


def _read(data: dict, incident: Incident) -> timeline_import.Result:
    results = []
    if data.get("text", "").strip():
        results.append(
            timeline_import.parse(
                data["text"].encode(),
                tz=incident.tz,
                default_date=incident.incident_date,
                name="The pasted text",
            )
        )
    files = data.get("files") or []
    if files:
        read = [(f.name, f.read(timeline_import.MAX_BYTES + 1)) for f in files]
        results.append(timeline_import.parse_files(read, tz=incident.tz, default_date=incident.incident_date))
    if len(results) == 1:
        return results[0]
    combined = timeline_import.Result(format=timeline_import.SEVERAL)
    for result in results:
        combined.candidates += result.candidates
        combined.problems += result.problems
    return combined.finish()


def _accept(request, incident: Incident, formset) -> TemplateResponse:
    chosen = formset.chosen()
    if not chosen:
        messages.warning(request, "No event was ticked: nothing was added.")
        return redirect("integrations:timeline_import", incident.pk)
    try:
        expected = int(request.POST.get("_revision", ""))
    except ValueError:
        expected = 0
    fmt = request.POST.get("_format", "")
    source = fmt if fmt in timeline_import.FORMATS else ""
    try:
        added, skipped = editing.add_timeline_events(
            incident, events=chosen, by=request.user, expected_revision=expected, source=source
        )
    except editing.EditConflict as conflict:
        messages.warning(
            request,
            f"Someone saved the timeline (revision {conflict.current.revision}) while you were choosing. "
            "Nothing was added: check the list against the timeline and press “Add selected events” again.",
        )
        context = {
            "incident": incident,
            "source_form": ImportSourceForm(),
            "formset": formset,
            "format": fmt,
            "problems": [],
            "revision": conflict.current.revision,
            "inbox": AlertInbox.objects.filter(incident=incident).first(),
            "pending_count": incident.pending_events.count(),
        }
        return TemplateResponse(request, "integrations/timeline_import.html", context, status=409)
    except editing.EditRefused as refused:
        raise PermissionDenied(str(refused)) from refused
    accepted_pending = [
        form.cleaned_data["pending"]
        for form in formset.forms
        if form.cleaned_data.get("include") and form.cleaned_data.get("pending")
    ]
    incident.pending_events.filter(pk__in=accepted_pending).delete()
    text = f"{added} event{'s' if added != 1 else ''} added to the timeline."
    if skipped:
        text += f" {skipped} already on it {'were' if skipped != 1 else 'was'} not added again."
    messages.success(request, text)
    return redirect("postmortems:edit", incident.pk, "timeline")


@require_POST
def rotate_inbox(request, pk: int):
    """Turn on the draft's alert webhook, or give it a new secret (the old URL stops working at once)."""
    incident = _editable(request, pk)
    with transaction.atomic():
        inbox, created = AlertInbox.objects.select_for_update().get_or_create(incident=incident)
        if not created:
            inbox.secret, inbox.rotated_at = new_inbox_secret(), timezone.now()
            inbox.save(update_fields=["secret", "rotated_at"])
    messages.success(
        request,
        "The alert webhook is on."
        if created
        else "The alert webhook has a new URL; the old one no longer works.",
    )
    return redirect(reverse("integrations:timeline_import", args=[incident.pk]) + "#alert-webhook")


@login_not_required
@csrf_exempt
@require_POST
def alert_inbox(request, pk: int, secret: str):
    """/hooks/alerts/<id>/<secret>/: Alertmanager, Grafana or PagerDuty post here; what they send waits for
    the author on the import page. A wrong secret, a published postmortem: 404, nothing kept."""
    inbox = AlertInbox.objects.select_related("incident").filter(incident_id=pk).first()
    if inbox is None or not hmac.compare_digest(inbox.secret.encode(), secret.encode()):
        raise Http404("No such webhook.")
    if inbox.incident.status == Status.PUBLISHED:
        raise Http404("This postmortem is published; its alert webhook is closed.")
    if len(request.body) > MAX_ALERT_BYTES:
        return JsonResponse({"detail": "The payload is larger than 1 MB."}, status=413)
    try:
        payload = json.loads(request.body)
        result = timeline_import.parse_json(payload, where="The payload")
    except (ValueError, RecursionError, timeline_import.Unreadable) as error:
        message = str(error) if isinstance(error, timeline_import.Unreadable) else "The payload is not JSON."
        return JsonResponse({"detail": message}, status=400)
    queued = _queue(inbox.incident, result.candidates)
    return JsonResponse({"queued": queued, "problems": result.problems}, status=202)


def _queue(incident: Incident, candidates) -> int:
    """Keep new candidates as pending events (not the ones already pending or on the timeline)."""
    with transaction.atomic():
        Incident.objects.select_for_update().filter(pk=incident.pk).first()
        known = {
            (occurred_at, " ".join(description.split()))
            for occurred_at, description in [
                *incident.pending_events.values_list("occurred_at", "description"),
                *incident.timeline_events.values_list("occurred_at", "description"),
            ]
        }
        room = MAX_PENDING - incident.pending_events.count()
        new = [c for c in candidates if c.key not in known][: max(room, 0)]
        PendingEvent.objects.bulk_create(
            PendingEvent(
                incident=incident,
                occurred_at=c.occurred_at,
                kind=c.kind,
                description=c.description,
                link=c.link,
                source=c.source[:40],
            )
            for c in new
        )
    return len(new)
