"""Finding past incidents by text (DESIGN.md section 7).

On PostgreSQL, text search uses a stored, weighted search vector (`Incident.search_vector`, GIN-indexed):
title and tags weigh A, the summary B, the other sections, contributing factors and lessons C, the timeline
and action items D. Queries use web-search syntax (`"connection pool"`, `dns -kubernetes`, `postgres or
mysql`). Ranking reads `Incident.search_rank_vector` (title, tags and summary only: small, so it stays in
the row instead of TOAST) and ranks at most `RANK_CANDIDATES` matches, the newest ones: a word that matches
tens of thousands of incidents is ranked among its newest matches instead of costing a second.

On SQLite the plain fallback: every word (or quoted phrase) must appear somewhere, `-word` excludes,
newest first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank
from django.db import connection
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from taggit.models import TaggedItem

from postmortems.models import (
    ActionItem,
    ContributingFactor,
    Lesson,
    TimelineEvent,
)

SEARCH_CONFIG = "english"
# How many of a query's newest matches are ranked by relevance (see the module docstring).
RANK_CANDIDATES = 300
# ts_headline marks matches with these; `highlight` escapes the text, then turns them into <mark>.
MARK_START, MARK_STOP = "\x02", "\x03"

# Each part of a postmortem contributes at most this many characters to its search vector. PostgreSQL
# refuses a tsvector over 1 MB, and a long log paste of distinct tokens reaches that: measured, the worst
# text (two- and three-letter words of many distinct letters) makes 4.6 bytes of vector per character,
# so ten parts of 20,000 characters stay under 1 MB. The whole text is still stored and shown; words past
# a part's first 20,000 characters are just not found by search.
SEARCH_CHARS_PER_PART = 20_000

_UPDATE_SQL = """
UPDATE postmortems_incident AS i
SET search_rank_vector = d.head, search_vector = d.head || d.body
FROM (
  SELECT x.id,
    setweight(to_tsvector(%(config)s, left(x.title, {limit})), 'A')
    || setweight(to_tsvector(%(config)s, left(coalesce((
         SELECT string_agg(tg.name, ' ')
         FROM taggit_taggeditem ti
         JOIN taggit_tag tg ON tg.id = ti.tag_id
         JOIN django_content_type ct ON ct.id = ti.content_type_id
         WHERE ti.object_id = x.id AND ct.app_label = 'postmortems' AND ct.model = 'incident'
       ), ''), {limit})), 'A')
    || setweight(to_tsvector(%(config)s, left(x.summary, {limit})), 'B') AS head,
    setweight(to_tsvector(%(config)s, concat_ws(' ',
         left(x.company, {limit}), left(x.supporting_data, {limit}), left(x.customer_impact, {limit}),
         left(x.response_analysis, {limit}), left(x.post_incident_analysis, {limit}),
         left((SELECT string_agg(f.description, ' ')
          FROM postmortems_contributingfactor f WHERE f.incident_id = x.id), {limit}),
         left((SELECT string_agg(l.text, ' ') FROM postmortems_lesson l WHERE l.incident_id = x.id), {limit})
       )), 'C')
    || setweight(to_tsvector(%(config)s, concat_ws(' ',
         left((SELECT string_agg(e.description, ' ')
          FROM postmortems_timelineevent e WHERE e.incident_id = x.id), {limit}),
         left((SELECT string_agg(a.title, ' ')
          FROM postmortems_actionitem a WHERE a.incident_id = x.id), {limit})
       )), 'D') AS body
  FROM postmortems_incident x
  {where}
) AS d
WHERE d.id = i.id
"""


def update_search_vectors_sql(where: str = "") -> str:
    """The UPDATE that recomputes stored search vectors (all rows, or those `where` selects on `x`)."""
    sql = _UPDATE_SQL.format(where=where, limit=SEARCH_CHARS_PER_PART)
    return sql.replace("%(config)s", f"'{SEARCH_CONFIG}'")


def update_search_vector(incident_id: int) -> None:
    """Recompute one incident's stored search vectors from it, its child rows and tags.

    Call it after every save of an incident, its tags, or its timeline events, contributing factors,
    lessons or action items, in the same transaction (the importer, seed_demo, the admin and the
    authoring forms do). One UPDATE statement; a no-op on databases other than PostgreSQL.
    """
    update_search_vectors([incident_id])


def update_search_vectors(incident_ids: Iterable[int] | None = None) -> None:
    """Recompute the stored search vectors of many incidents in one statement (all when `None`)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        if incident_ids is None:
            cursor.execute(update_search_vectors_sql())
        else:
            ids = list(incident_ids)
            if ids:
                cursor.execute(update_search_vectors_sql("WHERE x.id = ANY(%s)"), [ids])


# --- text search ---------------------------------------------------------------------------------


def uses_full_text() -> bool:
    return connection.vendor == "postgresql"


def search(queryset: QuerySet, text: str) -> QuerySet:
    """Incidents of `queryset` matching `text`, best first; annotated with `headline` on PostgreSQL."""
    text = (text or "").strip()
    if not text:
        return queryset
    if uses_full_text():
        return _full_text_search(queryset, text)
    return _fallback_search(queryset, text)


def _web_search_query(text: str) -> SearchQuery:
    return SearchQuery(text, search_type="websearch", config=SEARCH_CONFIG)


def _headline(query: SearchQuery) -> SearchHeadline:
    return SearchHeadline(
        "summary",
        query,
        config=SEARCH_CONFIG,
        start_sel=MARK_START,
        stop_sel=MARK_STOP,
        max_words=40,
        min_words=15,
        max_fragments=2,
        fragment_delimiter=" … ",
    )


def with_headline(queryset: QuerySet, text: str) -> QuerySet:
    """`queryset` annotated with `headline`, the marked snippet of its summary around `text`'s matches
    (PostgreSQL only; elsewhere `fallback_headline` makes it). ts_headline is the costly part of a search:
    ask for it on the rows a page shows, not on every match."""
    text = (text or "").strip()
    if not text or not uses_full_text():
        return queryset
    return queryset.annotate(headline=_headline(_web_search_query(text)))


def _full_text_search(queryset: QuerySet, text: str) -> QuerySet:
    query = _web_search_query(text)
    newest_matches = (
        queryset.filter(search_vector=query).order_by("-incident_date", "-id").values("pk")[:RANK_CANDIDATES]
    )
    return (
        queryset.filter(pk__in=newest_matches)
        .annotate(rank=SearchRank(F("search_rank_vector"), query), headline=_headline(query))
        .order_by("-rank", "-incident_date", "-id")
    )


@dataclass(frozen=True)
class Term:
    words: tuple[str, ...]  # one word, or the words of a quoted phrase
    exclude: bool = False

    @property
    def text(self) -> str:
        return " ".join(self.words)


_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')


def parse_terms(text: str) -> list[list[Term]]:
    """Web-search syntax as groups ANDed together, each group a list of Terms ORed (`a or b`)."""
    groups: list[list[Term]] = []
    join_next = False
    for match in _TOKEN.finditer(text):
        negate, phrase, word = match.groups()
        if word is not None:
            if word.lower() == "or" and groups:
                join_next = True
                continue
            negate = "-" if word.startswith("-") and len(word) > 1 else ""
            words = tuple(re.findall(r"\w+", word))
        else:
            words = tuple(re.findall(r"\w+", phrase))
        if not words:
            continue
        term = Term(words=words, exclude=bool(negate))
        if join_next and not term.exclude and not groups[-1][0].exclude:
            groups[-1].append(term)
        else:
            groups.append([term])
        join_next = False
    return groups


def _contains(text: str) -> Q:
    """An incident whose own text, tags or child rows contain `text` (case-insensitive)."""
    own = Q()
    for field in (
        "title",
        "company",
        "summary",
        "supporting_data",
        "customer_impact",
        "response_analysis",
        "post_incident_analysis",
    ):
        own |= Q(**{f"{field}__icontains": text})
    children = [
        TaggedItem.objects.filter(
            content_type__app_label="postmortems",
            content_type__model="incident",
            object_id=OuterRef("pk"),
            tag__name__icontains=text,
        ),
        TimelineEvent.objects.filter(incident=OuterRef("pk"), description__icontains=text),
        ContributingFactor.objects.filter(incident=OuterRef("pk"), description__icontains=text),
        Lesson.objects.filter(incident=OuterRef("pk"), text__icontains=text),
        ActionItem.objects.filter(incident=OuterRef("pk"), title__icontains=text),
    ]
    for child in children:
        own |= Exists(child)
    return own


def _fallback_search(queryset: QuerySet, text: str) -> QuerySet:
    # Plain substring matching: fine for the few hundred postmortems a SQLite installation holds.
    for group in parse_terms(text):
        condition = Q()
        for term in group:
            condition |= _contains(term.text)
        queryset = queryset.exclude(condition) if group[0].exclude else queryset.filter(condition)
    return queryset.order_by("-incident_date", "-id")


def fallback_headline(text: str, query: str, *, words: int = 40) -> str:
    """A snippet of `text` around the first matched term, with the terms marked as ts_headline does."""
    terms = [t.text for group in parse_terms(query) for t in group if not t.exclude]
    if not text:
        return ""
    pattern = re.compile("|".join(re.escape(t) for t in terms), re.IGNORECASE) if terms else None
    found = pattern.search(text) if pattern else None
    tokens = text.split()
    start = 0
    if found:
        start = max(0, len(text[: found.start()].split()) - 8)
    snippet = " ".join(tokens[start : start + words])
    if start:
        snippet = "… " + snippet
    if start + words < len(tokens):
        snippet += " …"
    if pattern:
        snippet = pattern.sub(lambda m: f"{MARK_START}{m.group(0)}{MARK_STOP}", snippet)
    return snippet


def highlight(snippet: str) -> SafeString:
    """Escape a marked snippet and show its matches as <mark>."""
    html = escape(snippet).replace(MARK_START, "<mark>").replace(MARK_STOP, "</mark>")
    return mark_safe(html)  # escaped above; only our own markers become tags
