"""Pages of the integrations: API tokens on the profile, and staff's webhook settings."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_POST

from integrations import webhooks
from integrations.forms import ApiTokenForm, WebhookEndpointForm
from integrations.models import (
    ApiToken,
    DeliveryStatus,
    TrackerConnection,
    WebhookDelivery,
    WebhookEndpoint,
)

# --- API tokens (on /accounts/profile/) ---------------------------------------------------------------------


@require_POST
def token_create(request):
    from accounts.views import profile

    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        return profile(request, token_form=form)
    expires = form.cleaned_data["expires_at"]
    token, secret = ApiToken.issue(
        user=request.user,
        name=form.cleaned_data["name"],
        access=form.cleaned_data["access"],
        expires_at=dt.datetime.combine(expires, dt.time.min, tzinfo=dt.UTC) if expires else None,
    )
    # Shown in this response only (not kept in the session, nor anywhere else): only its hash is stored.
    return profile(request, new_token=(token, secret))


@require_POST
def token_revoke(request, pk: int):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user, revoked_at__isnull=True)
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    messages.success(request, f"The token “{token.name}” is revoked: it no longer works.")
    return redirect("accounts:profile")


# --- webhooks (staff, /settings/integrations/) -------------------------------------------------------------


@staff_member_required
def settings_page(request):
    endpoints = WebhookEndpoint.objects.annotate(
        failed=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.FAILED)),
        pending=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.PENDING)),
    )
    form = WebhookEndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        endpoint = form.save(commit=False)
        endpoint.created_by = request.user
        endpoint.save()
        # The signing secret is shown in this response only.
        return _endpoint_response(request, endpoint, WebhookEndpointForm(instance=endpoint), new_secret=True)
    context = {"endpoints": endpoints, "form": form, "trackers": TrackerConnection.objects.all()}
    return TemplateResponse(request, "integrations/settings.html", context)


@staff_member_required
def endpoint_page(request, pk: int):
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    form = WebhookEndpointForm(request.POST or None, instance=endpoint)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Saved.")
        return redirect(endpoint)
    return _endpoint_response(request, endpoint, form)


def _endpoint_response(request, endpoint, form, *, new_secret: bool = False):
    context = {
        "endpoint": endpoint,
        "form": form,
        "deliveries": endpoint.deliveries.prefetch_related("attempt_log")[:50],
        "new_secret": endpoint.secret if new_secret else None,
    }
    response = TemplateResponse(request, "integrations/endpoint.html", context)
    if new_secret:
        response["Cache-Control"] = "no-store"
    return response


@staff_member_required
@require_POST
def endpoint_test(request, pk: int):
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    webhooks.send_test_event(endpoint, by=request.user)
    messages.success(request, "Test event sent; its delivery is listed below.")
    return redirect(endpoint)


@staff_member_required
@require_POST
def endpoint_delete(request, pk: int):
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    endpoint.delete()
    messages.success(request, f"Endpoint “{endpoint.name}” removed.")
    return redirect("integrations:settings")


@staff_member_required
@require_POST
def redeliver(request, pk: int):
    delivery = get_object_or_404(WebhookDelivery.objects.select_related("endpoint"), pk=pk)
    webhooks.redeliver(delivery)
    messages.success(request, "Sent again as a new delivery.")
    return redirect(delivery.endpoint)
