"""After the postmortem: action items and their updates, and insights."""

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.backends.utils import csrf_input
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe

from postmortems import caching, followthrough, insights, search
from postmortems.followthrough import Scope
from postmortems.followthrough_forms import (
    ActionItemFilterForm,
    ActionItemUpdateForm,
    InsightsFilterForm,
    shown_fields,
)
from postmortems.models import (
    ActionItem,
)

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

    # The counts and the ordered ids (every page's) cost tens of milliseconds once drafts and restricted
    # incidents must be hidden, and a page of rows with their forms about as much again: both are kept
    # per person, choice and state of what they may see (postmortems/caching.py): published incidents
    # and their own drafts, so that someone else's autosave leaves them cached.
    snapshot = caching.Snapshot(user)
    figures, ids = caching.cached(
        request,
        snapshot.involved_key("action-items", (user.pk, sorted(chosen.items()), today)),
        lambda: followthrough.listing(user, today=today, restricted_seen=snapshot.restricted, **chosen),
    )
    paginator = search.CappedPaginator(ids, ACTION_ITEMS_PER_PAGE)
    paginator.ids = ids
    page = paginator.get_page(request.GET.get("page"))  # its object list: the page's ids
    here = request.get_full_path()
    rows = caching.cached(
        request,
        snapshot.involved_key("action-item-rows", (user.pk, here, page.number, today)),
        lambda: _action_item_rows(page.object_list, user=user, today=today, next_url=here),
    )
    context = {
        "form": form,
        "chosen": chosen,
        "page_obj": page,
        "paginator": paginator,
        "counts": figures.counts,
        "slo": figures.slo,
        "exact_limit": followthrough.EXACT_LIMIT,
        "today": today,
        # Escaped by Jinja2; the session's CSRF token, masked once for every form of the page.
        "rows": mark_safe(rows.replace(CSRF_MARK, csrf_input(request))),
    }
    return TemplateResponse(request, "postmortems/action_items.html", context)


# Cached rows hold this mark where each form's CSRF token goes, since the token is the session's. Only the
# template can write it: it cannot be guessed without SECRET_KEY, and Jinja2 escapes every "<" typed.
CSRF_MARK = f"<!--csrf_input {salted_hmac('hindsight.views.CSRF_MARK', 'csrf_input').hexdigest()}-->"


def _action_item_rows(ids: list[int], *, user, today, next_url: str) -> str:
    """One page of /action-items/ rows, in the order of `ids`, with an update form on each row `user`
    may update (returning to `next_url`), as HTML with CSRF_MARK in place of the CSRF token."""
    found = {item.pk: item for item in followthrough.page_rows(ids, user=user, today=today)}
    items = [found[pk] for pk in ids if pk in found]
    for item in items:
        if item.may_update:
            item.form = shown_fields(item, next_url=f"{next_url}#item-{item.pk}")
    context = {
        "items": items,
        "today": today,
        "soon": today + timedelta(days=followthrough.DUE_SOON_DAYS),
        "csrf_input": mark_safe(CSRF_MARK),
    }
    return render_to_string("postmortems/_action_item_rows.jinja", context, using="jinja2")


def action_item_update(request, pk: int):
    """Status and backlog link of one action item, also on published postmortems; the page behind each
    row's small form, where a refused change shows its error next to the field."""
    item = get_object_or_404(
        ActionItem.objects.visible_to(request.user).select_related("incident__owner", "owner"), pk=pk
    )
    if not item.can_update(request.user):
        raise PermissionDenied(
            "Only the action item’s owner and the postmortem’s owner and co-authors can update it."
        )
    form = ActionItemUpdateForm(
        request.POST if request.method == "POST" else None,
        prefix=f"item-{item.pk}",
        initial={
            "status": item.status,
            "wont_do_reason": item.wont_do_reason,
            "backlog_link": item.backlog_link,
            "next": request.GET.get("next", ""),
        },
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
            )
        except followthrough.NotAllowed as error:
            raise PermissionDenied(str(error)) from error
        except followthrough.FollowThroughError as error:
            form.add_error(None, str(error))
        else:
            if changed:
                messages.success(request, f"“{item.title}”: " + "; ".join(changed) + ".")
            else:
                messages.info(request, f"“{item.title}”: nothing changed.")
            target = data["next"]
            if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
                target = item.get_absolute_url()
            return redirect(target)
    status = 400 if request.method == "POST" else 200
    return TemplateResponse(
        request, "postmortems/action_item_form.html", {"item": item, "form": form}, status=status
    )


def insights_view(request):
    """Incidents over time, time to detect/mitigate/resolve, publication and follow-through, for a period."""
    form = InsightsFilterForm(request.GET)
    form.is_valid()
    defaults = InsightsFilterForm({})
    defaults.is_valid()
    chosen = defaults.cleaned_data | {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}
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
