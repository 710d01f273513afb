from django import template

from postmortems.followthrough_forms import ActionItemUpdateForm

register = template.Library()


@register.inclusion_tag("postmortems/_action_item_form.html", takes_context=True)
def action_item_form(context, item, anchor: str = "action", form=None):
    """The small status/backlog-link form of one action item, for those who may update it (works without
    JavaScript: it posts to the item's own page, which returns to `next`)."""
    request = context["request"]
    if not item.can_update(request.user):
        return {"show": False}
    if form is None:
        form = ActionItemUpdateForm(
            prefix=f"item-{item.pk}",
            initial={
                "status": item.status,
                "wont_do_reason": item.wont_do_reason,
                "backlog_link": item.backlog_link,
                "next": f"{request.get_full_path()}#{anchor}-{item.pk}",
            },
        )
    return {"show": True, "item": item, "form": form, "csrf_token": context.get("csrf_token")}


@register.filter
def insight_value(value, distribution) -> str:
    """A median or percentile as a person reads it: “1 h 05 min”, “12 d”."""
    return distribution.display(value)


@register.filter
def at_least(value) -> str:
    """A count as the page shows it: “1,000+” when it stopped at its cap (followthrough.AtLeast)."""
    return str(value)
