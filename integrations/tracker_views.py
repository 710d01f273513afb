"""Issue trackers: staff connect them, an action item's owner creates its issue, the tracker's webhook
keeps the item's status in step (integrations/trackers.py does the work)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations import trackers
from integrations.forms import TrackerConnectionForm
from integrations.models import TrackerConnection, TrackerKind
from postmortems import followthrough
from postmortems.models import ActionItem

MAX_WEBHOOK_BYTES = 2 * 1024 * 1024


@staff_member_required
def tracker_add(request):
    form = TrackerConnectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        connection = form.save(commit=False)
        connection.token = form.cleaned_data["token"]
        connection.created_by = request.user
        connection.save()
        # The webhook secret is shown in this response only; the token on no page at all.
        context = {
            "connection": connection,
            "webhook_url": request.build_absolute_uri(connection.webhook_path()),
        }
        response = TemplateResponse(request, "integrations/tracker_added.html", context)
        response["Cache-Control"] = "no-store"
        return response
    return TemplateResponse(request, "integrations/tracker_form.html", {"form": form})


@staff_member_required
@require_POST
def tracker_delete(request, pk: int):
    connection = get_object_or_404(TrackerConnection, pk=pk)
    connection.delete()
    messages.success(request, f"{connection} disconnected.")
    return redirect("integrations:settings")


@require_POST
def create_issue(request, item_pk: int, connection_pk: int):
    """ "Create issue in <tracker>" on an action item: recorded now, created by Celery after this commits."""
    item = get_object_or_404(
        ActionItem.objects.reachable_by(request.user).select_related("incident"), pk=item_pk
    )
    connection = get_object_or_404(TrackerConnection, pk=connection_pk, is_active=True)
    try:
        trackers.request_issue(item, connection, by=request.user)
    except followthrough.NotAllowed as error:
        raise PermissionDenied(str(error)) from error
    messages.success(
        request, f"Creating the issue in {connection.get_kind_display()}; its link follows here."
    )
    return redirect("postmortems:action_item_update", item.pk)


def _receive(request, connection: TrackerConnection) -> JsonResponse:
    if len(request.body) > MAX_WEBHOOK_BYTES:
        return JsonResponse({"detail": "Too large."}, status=413)
    try:
        payload = json.loads(request.body)
    except (ValueError, RecursionError):
        return JsonResponse({"detail": "Not JSON."}, status=400)
    if not isinstance(payload, dict):
        return JsonResponse({"detail": "Not a tracker event."}, status=400)
    change = trackers.change_from(connection, request.headers.get("X-GitHub-Event", ""), payload)
    changed = trackers.apply_change(connection, *change) if change else False
    return JsonResponse({"changed": changed})


@login_not_required
@csrf_exempt
@require_POST
def tracker_webhook(request, pk: int):
    """GitHub (X-Hub-Signature-256) and GitLab (X-Gitlab-Token) issue events; unsigned or wrongly signed:
    401, nothing changes."""
    connection = TrackerConnection.objects.filter(pk=pk, is_active=True).first()
    if connection is None or connection.kind == TrackerKind.JIRA:
        raise Http404("No such webhook.")
    if connection.kind == TrackerKind.GITHUB:
        ok = trackers.verify_github(connection, request.body, request.headers.get("X-Hub-Signature-256", ""))
    else:
        ok = trackers.verify_token(connection, request.headers.get("X-Gitlab-Token", ""))
    if not ok:
        return JsonResponse({"detail": "Bad signature."}, status=401)
    return _receive(request, connection)


@login_not_required
@csrf_exempt
@require_POST
def tracker_webhook_secret(request, pk: int, secret: str):
    """Jira's webhook: it signs nothing, so its shared secret is part of the URL."""
    connection = TrackerConnection.objects.filter(pk=pk, is_active=True, kind=TrackerKind.JIRA).first()
    if connection is None or not trackers.verify_token(connection, secret):
        raise Http404("No such webhook.")
    return _receive(request, connection)
