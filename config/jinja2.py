"""The Jinja2 environment of the `*.jinja` templates: the rows of long lists, rendered many times a page.

Everything else is Django's template language. These filters and globals mirror the Django ones the rows
would use, under the same names, so a row reads the same in either language.
"""

import datetime as dt

from django.template.defaultfilters import pluralize, truncatechars
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince, timeuntil
from jinja2 import Environment

from postmortems.templatetags.hindsight import markdown_inline_filter, query_with


def ymd(value) -> str:
    """A date, or a time as its date where the reader is, as Y-m-d (Django's `date:"Y-m-d"`)."""
    if value is None or value == "":
        return ""
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
        value = value.date()
    return value.isoformat()


def url(name: str, *args) -> str:
    return reverse(name, args=args or None)


def thousands(value) -> str:
    """1000 as “1,000”, as Django's floatformat:"g" writes it."""
    return f"{int(value):,}"


def environment(**options) -> Environment:
    env = Environment(**options)
    env.globals.update(url=url, url_with=query_with)  # {% url_with %}: the query string, some parts replaced
    env.filters.update(
        markdown_inline=markdown_inline_filter,
        pluralize=pluralize,
        thousands=thousands,
        timesince=timesince,
        timeuntil=timeuntil,
        truncatechars=truncatechars,
        ymd=ymd,
    )
    return env
