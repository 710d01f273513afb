"""The one function that turns an author's Markdown into HTML a browser may safely show."""

import threading
import xml.etree.ElementTree as etree
from functools import lru_cache
from urllib.parse import urlsplit

import markdown as python_markdown
import nh3
from django.conf import settings
from django.utils.safestring import SafeString, mark_safe
from markdown.extensions import Extension
from markdown.extensions.tables import TableExtension
from markdown.treeprocessors import Treeprocessor


class _ForeignImagesAsLinks(Treeprocessor):
    """An image from a host not in MARKDOWN_IMAGE_HOSTS becomes a link to it: the reader chooses to open
    it, and no postmortem makes its readers' browsers call another server (a tracking pixel)."""

    def run(self, root):
        hosts = {host.lower() for host in settings.MARKDOWN_IMAGE_HOSTS}
        for parent in list(root.iter()):
            for index, child in enumerate(list(parent)):
                if child.tag == "img" and not _image_allowed(child.get("src", ""), hosts):
                    link = etree.Element("a", href=child.get("src", ""))
                    link.text = child.get("alt") or child.get("src", "")
                    link.tail = child.tail
                    parent.remove(child)
                    parent.insert(index, link)


def _image_allowed(src: str, hosts: set[str]) -> bool:
    parts = urlsplit(src.strip())
    if not parts.scheme and not parts.netloc:
        return True  # this site's own, e.g. an upload under /media/
    return parts.scheme in ("http", "https") and (parts.hostname or "") in hosts


class _ImagePolicy(Extension):
    def extendMarkdown(self, md):  # Python-Markdown names it so
        # After the inline patterns (priority 20), which turn ![alt](src) into <img>.
        md.treeprocessors.register(_ForeignImagesAsLinks(md), "foreign_images_as_links", 5)


# Column alignment as the align attribute: a style attribute would be refused by the page's
# Content-Security-Policy (style-src 'self').
EXTENSIONS = [TableExtension(use_align_attribute=True), "fenced_code", "sane_lists", _ImagePolicy()]

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "img", "li", "ol", "p", "pre", "strong", "sub", "sup", "table", "tbody", "td", "th",
    "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "th": {"align"},
    "td": {"align"},
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
        return _render_cached(text, tuple(settings.MARKDOWN_IMAGE_HOSTS))
    return _render(text)


@lru_cache(maxsize=CACHE_SIZE)
def _render_cached(text: str, image_hosts: tuple[str, ...]) -> SafeString:
    return _render(text)


def _render(text: str) -> SafeString:
    html = _converter().convert(text)
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return mark_safe(clean)
