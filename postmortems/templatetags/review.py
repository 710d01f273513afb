from django import template

from postmortems.forms import CommentForm
from postmortems.models import Section

register = template.Library()


@register.inclusion_tag("postmortems/_section_comments.html", takes_context=True)
def section_comments(context, section: str):
    """The comments on one section of the detail page, and the form to add one when the user may."""
    actions = context.get("actions")
    bound = context.get("comment_form")
    form = bound if bound is not None and bound.data.get("section") == section else None
    return {
        "incident": context["incident"],
        "section": section,
        "label": Section(section).label,
        "comments": (context.get("comments_by_section") or {}).get(section, []),
        "can_comment": bool(actions and actions.comment),
        "form": form or CommentForm(initial={"section": section}),
        "open": form is not None,
        "user": context.get("user"),
    }
