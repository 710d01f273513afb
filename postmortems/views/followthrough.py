"""After the postmortem: action items and their updates, and insights."""

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from taggit.models import Tag

from postmortems import followthrough, insights
from postmortems.followthrough import Scope
from postmortems.followthrough_forms import ActionItemFilterForm, ActionItemUpdateForm, InsightsFilterForm
from postmortems.models import ActionItem

# --- follow-through: action items and insights (postmortems/followthrough.py and insights.py do the work)

# Each row carries its own small status form, which is most of the page's cost: 25 rows keep it cheap.
ACTION_ITEMS_PER_PAGE = 25


def action_items(request):
    """My action items across every postmortem I can see: overdue first, then due soon."""
    user = request.user
    today = timezone.localdate()
    form = ActionItemFilterForm(request.GET)
    form.is_valid()
    chosen = {
        "scope": Scope.MINE,
        "status": "unfinished",
        "priority": "",
        "overdue": False,
    } | form.cleaned_data
    figures, paginator = followthrough.listing(user, today=today, per_page=ACTION_ITEMS_PER_PAGE, **chosen)
    page = paginator.get_page(request.GET.get("page"))
    context = {
        "form": form,
        "chosen": chosen,
        "page_obj": page,
        "paginator": paginator,
        "items": page.object_list,
        "counts": figures.counts,
        "slo": figures.slo,
        "exact_limit": followthrough.EXACT_LIMIT,
        "today": today,
        "soon": today + timedelta(days=followthrough.DUE_SOON_DAYS),
    }
    return TemplateResponse(request, "postmortems/action_items.html", context)


def action_item_update(request, pk: int):
    """Status, due date and backlog link of one action item, also on published postmortems: the page
    behind each row's small form, where a refused change shows its error next to the field."""
    item = get_object_or_404(
        ActionItem.objects.reachable_by(request.user).select_related("incident__owner", "owner"), pk=pk
    )
    # Its owner reaches it even on a postmortem they may not see; they then see only the item's own fields.
    incident_shown = item.incident.is_visible_to(request.user)
    if not item.can_update(request.user):
        raise PermissionDenied(
            "Only the action item’s owner and the postmortem’s owner and co-authors can update it."
        )
    form = ActionItemUpdateForm.for_item(
        item, request.POST if request.method == "POST" else None, next_url=request.GET.get("next", "")
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            changed = followthrough.update_action_item(
                item,
                by=request.user,
                status=data["status"],
                backlog_link=data["backlog_link"],
                wont_do_reason=data["wont_do_reason"],
                due_date=data["due_date"],
                seen=data["seen"],
            )
        except followthrough.NotAllowed as error:
            raise PermissionDenied(str(error)) from error
        except followthrough.ItemChanged as changed:
            # The item as it is now, in a fresh form; the person's values are not kept over someone else's.
            item = changed.current
            form = ActionItemUpdateForm.for_item(item, next_url=data["next"])
            form.conflict = str(changed)
            context = {"item": item, "form": form}
            return TemplateResponse(request, "postmortems/action_item_form.html", context, status=409)
        except followthrough.FollowThroughError as error:
            form.add_error(None, str(error))
        else:
            if changed:
                messages.success(request, f"“{item.title}”: " + "; ".join(changed) + ".")
            else:
                messages.info(request, f"“{item.title}”: nothing changed.")
            target = data["next"]
            if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
                target = item.get_absolute_url() if incident_shown else reverse("postmortems:action_items")
            return redirect(target)
    status = 400 if request.method == "POST" else 200
    return TemplateResponse(
        request,
        "postmortems/action_item_form.html",
        {"item": item, "form": form, "incident_shown": incident_shown},
        status=status,
    )


def insights_view(request):
    """Incidents over time, time to detect/mitigate/resolve, publication and follow-through, for a period."""
    form = InsightsFilterForm(request.GET)
    form.is_valid()
    defaults = InsightsFilterForm({})
    defaults.is_valid()
    chosen = defaults.cleaned_data | {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}
    if chosen["tag"] and not Tag.objects.filter(slug=chosen["tag"]).exists():
        messages.warning(
            request, f"No tag is called “{chosen['tag']}”, so nothing matches it: pick one from the list."
        )
    start, end = chosen["date_from"], chosen["date_to"]
    if start > end:
        start, end = defaults.cleaned_data["date_from"], defaults.cleaned_data["date_to"]
    found = insights.figures(
        request.user,
        date_from=start,
        date_to=end,
        tag=chosen["tag"],
        team=chosen["team"],
        severity=chosen["severity"],
        today=timezone.localdate(),
    )
    context = {"form": form, "start": start, "end": end, "min_sample": insights.MIN_SAMPLE, **found}
    return TemplateResponse(request, "postmortems/insights.html", context)
