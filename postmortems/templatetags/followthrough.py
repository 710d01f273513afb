from django import template
from django.template.loader import get_template
from django.utils.safestring import mark_safe

from postmortems.followthrough_forms import shown_fields

register = template.Library()


@register.simple_tag(takes_context=True)
def action_item_form(context, item, anchor: str = "action", form=None):
    """The small status/backlog-link form of one action item (_action_item_form.jinja), for those who may
    update it; `form`: a bound form to show again with its errors, on the item's own page, where the view
    has asked already. Works without JavaScript: it posts to the item's page, which returns to `next`."""
    request = context["request"]
    if form is None:
        # /action-items/ loads its rows with the answer for the user viewing them (followthrough.page_rows).
        may_update = item.may_update if hasattr(item, "may_update") else item.can_update(request.user)
        if not may_update:
            return ""
    next_url = "" if form is not None else f"{request.get_full_path()}#{anchor}-{item.pk}"
    fields = shown_fields(item, form=form, next_url=next_url)
    template = get_template("postmortems/_action_item_form.jinja", using="jinja2")
    return mark_safe(template.render({"item": item, "form": fields}, request))  # Jinja2 escaped it


@register.filter
def insight_value(value, distribution) -> str:
    """A median or percentile as a person reads it: “1 h 05 min”, “12 d”."""
    return distribution.display(value)


@register.filter
def at_least(value) -> str:
    """A count as the page shows it: “1,000+” when it stopped at its cap (followthrough.AtLeast)."""
    return str(value)
