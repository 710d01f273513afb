from django import template

register = template.Library()


@register.simple_tag
def add_tag_url(form, slug: str) -> str:
    """The list URL with the search of `form` (a SearchForm) narrowed further by one more tag."""
    return form.add_tag_url(slug)


@register.filter
def thousands(value) -> str:
    """1000 as “1,000”: floatformat:"g" asks the active locale for every one of hundreds of counts."""
    return f"{int(value):,}"
