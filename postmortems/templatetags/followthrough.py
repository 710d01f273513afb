from django import template

from postmortems.followthrough_forms import ActionItemUpdateForm

register = template.Library()


@register.inclusion_tag("postmortems/_action_item_form.html", takes_context=True)
def action_item_form(context, item, anchor: str = "action", form=None):
    """The small status/backlog-link form of one action item, for those who may update it (works without
    JavaScript: it posts to the item's own page, which returns to `next`)."""
    request = context["request"]
    # /action-items/ loads its rows with the answer for the user viewing them (followthrough.page_rows).
    may_update = item.may_update if hasattr(item, "may_update") else item.can_update(request.user)
    if not may_update:
        return {"show": False}
    if form is None:
        form = _unbound_form(item, next_url=f"{request.get_full_path()}#{anchor}-{item.pk}")
    return {"show": True, "item": item, "form": form, "csrf_token": context.get("csrf_token")}


_FIELDS = ActionItemUpdateForm.base_fields


def _unbound_form(item, *, next_url: str) -> dict:
    """What _action_item_form.html reads of the item's unbound ActionItemUpdateForm, as that form would say
    it: names, ids and initial values. A list shows 25 such forms; building real ones (deep-copying their
    fields, rendering the hidden widget) took a third of the page's render time."""
    prefix = f"item-{item.pk}"
    initial = {
        "status": item.status,
        "backlog_link": item.backlog_link,
        "wont_do_reason": item.wont_do_reason,
        "next": next_url,
    }
    form = {
        name: {
            "html_name": f"{prefix}-{name}",
            "id_for_label": f"id_{prefix}-{name}",
            "value": value,
            "errors": (),
            "field": _FIELDS[name],
        }
        for name, value in initial.items()
    }
    form["non_field_errors"] = ()
    return form


@register.filter
def insight_value(value, distribution) -> str:
    """A median or percentile as a person reads it: “1 h 05 min”, “12 d”."""
    return distribution.display(value)


@register.filter
def at_least(value) -> str:
    """A count as the page shows it: “1,000+” when it stopped at its cap (followthrough.AtLeast)."""
    return str(value)
