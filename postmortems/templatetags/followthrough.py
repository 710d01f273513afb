from django import template

from postmortems.followthrough_forms import ActionItemUpdateForm

register = template.Library()


@register.inclusion_tag("postmortems/_action_item_form.html", takes_context=True)
def action_item_form(context, item, anchor: str = "action", form=None, folded: bool = False):
    """The small status/backlog-link form of one action item, for those who may update it; `form`: a bound
    form to show again with its errors, on the item's own page, where the view has asked already. Works
    without JavaScript: it posts to the item's page, which returns to `next`. `folded`: behind an explicit
    "Update" control (the reading view), so that reading never changes a status by accident."""
    if form is None:
        request = context["request"]
        # /action-items/ loads its rows with the answer for the person viewing them (followthrough.page_rows).
        may_update = item.may_update if hasattr(item, "may_update") else item.can_update(request.user)
        if not may_update:
            return {"form": None}
        form = ActionItemUpdateForm.for_item(item, next_url=f"{request.get_full_path()}#{anchor}-{item.pk}")
    return {"item": item, "form": form, "folded": folded}


@register.filter
def insight_value(value, distribution) -> str:
    """A median or percentile as a person reads it: “1 h 05 min”, “12 d”."""
    return distribution.display(value)


@register.filter
def at_least(value) -> str:
    """A count as the page shows it: “1,000+” when it stopped at its cap (followthrough.AtLeast)."""
    return str(value)


@register.filter
def too_small(distributions) -> list:
    """The distributions of a chart group with too few values to read: one warning names them all."""
    return [dist for dist in distributions if dist.too_small]
