"""The one function that turns an author's Markdown into HTML a browser may safely show."""

import threading
from functools import lru_cache

import markdown as python_markdown
import nh3
from django.utils.safestring import SafeString, mark_safe

EXTENSIONS = ["tables", "fenced_code", "sane_lists"]

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "img", "li", "ol", "p", "pre", "strong", "sub", "sup", "table", "tbody", "td", "th",
    "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "th": {"align", "style"},
    "td": {"align", "style"},
    "abbr": {"title"},
    "code": {"class"},
}
ALLOWED_SCHEMES = {"http", "https", "mailto"}


_local = threading.local()


def _converter() -> python_markdown.Markdown:
    # Building a Markdown instance (its extensions and processors) costs twice what converting a short
    # text does, and a detail page converts a few dozen. One per thread: an instance is not thread-safe.
    converter = getattr(_local, "converter", None)
    if converter is None:
        converter = _local.converter = python_markdown.Markdown(extensions=EXTENSIONS, output_format="html")
    return converter.reset()


# Rendered texts kept per process, least recently used dropped first: a page shows the same texts
# request after request (a detail page renders a few dozen, ~0.1 ms each) and the output depends on
# nothing but the text. At most CACHE_SIZE texts of at most CACHE_MAX_LENGTH characters: well under a
# megabyte for typical texts, ~10 MB at the very worst. Longer texts (a whole export for printing) are
# rendered every time.
CACHE_SIZE = 1024
CACHE_MAX_LENGTH = 2000


def render_markdown(text: str | None) -> SafeString:
    """Render Markdown, then keep only harmless tags, attributes and URL schemes (no scripts, no on*)."""
    if not text:
        return mark_safe("")
    if len(text) <= CACHE_MAX_LENGTH:
        return _render_cached(text)
    return _render(text)


@lru_cache(maxsize=CACHE_SIZE)
def _render_cached(text: str) -> SafeString:
    return _render(text)


def _render(text: str) -> SafeString:
    html = _converter().convert(text)
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        filter_style_properties={"text-align"},
        strip_comments=True,
    )
    return mark_safe(clean)
