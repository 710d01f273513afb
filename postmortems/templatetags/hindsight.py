from datetime import timedelta

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from accounts.models import in_zone, zone
from postmortems.insights import format_seconds
from postmortems.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text):
    return render_markdown(text)


@register.filter(name="markdown_inline")
def markdown_inline_filter(text):
    """Short texts (a timeline entry, a factor) rendered without the wrapping paragraph."""
    html = render_markdown(text)
    if html.startswith("<p>") and html.endswith("</p>") and html.count("<p>") == 1:
        return mark_safe(html[3:-4])
    return html


@register.simple_tag(takes_context=True)
def zoned_time(context, value, zone_name):
    """A time in the zone it was written in, with the zone's name; the reader's own zone on hover."""
    if value is None:
        return "—"
    local = in_zone(value, zone(zone_name))
    user = context.get("user")
    reader_zone = zone(getattr(user, "time_zone", None))
    theirs = in_zone(value, reader_zone)
    return format_html(
        '<time datetime="{}" title="{} in your zone ({})">{} '
        '<span class="text-body-secondary">{}</span></time>',
        value.isoformat(),
        theirs.strftime("%Y-%m-%d %H:%M %Z"),
        reader_zone.key,
        local.strftime("%Y-%m-%d %H:%M"),
        local.strftime("%Z") if local.strftime("%Z") == zone_name else f"{local:%Z} ({zone_name})",
    )


@register.filter
def duration(value: timedelta | None) -> str:
    """A span as a person reads it: “2 h 05 min”, “45 min”, “3 d 4 h”."""
    if value is None or value.total_seconds() < 0:
        return "—"
    return format_seconds(value.total_seconds())


def query_with(request, **changes) -> str:
    """The current query string with some parameters replaced (for pagination links)."""
    query = request.GET.copy()
    for key, value in changes.items():
        query[key] = value
    return "?" + query.urlencode()


@register.simple_tag(takes_context=True)
def url_with(context, **changes):
    return query_with(context["request"], **changes)


@register.filter
def ago(value) -> str:
    """A recent moment as a person says it: “just now”, “5 minutes ago”, “3 days ago” (one unit only)."""
    if not value:
        return ""
    from django.utils import timezone
    from django.utils.timesince import timesince

    if (timezone.now() - value).total_seconds() < 60:
        return "just now"
    return f"{timesince(value, depth=1)} ago"
