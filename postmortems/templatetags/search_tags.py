from django import template

register = template.Library()


@register.simple_tag
def add_tag_url(form, slug: str) -> str:
    """The list URL with the current search narrowed further by one more tag (tags combine with AND)."""
    return form.add_tag_url(slug)
