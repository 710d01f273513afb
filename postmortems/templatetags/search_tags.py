from django import template
from django.http import QueryDict
from django.urls import reverse

register = template.Library()


@register.simple_tag
def add_tag_url(form, slug: str) -> str:
    """The list URL with the current search narrowed further by one more tag (tags combine with AND)."""
    query = QueryDict(mutable=True)
    for key, values in form.data.lists():
        if key != "page":
            query.setlist(key, values)
    if slug not in query.getlist("tag"):
        query.appendlist("tag", slug)
    return f"{reverse('postmortems:list')}?{query.urlencode()}"
