"""Finding past incidents: text search, filters, tag counts and related incidents (DESIGN.md section 7).

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

import dataclasses
import datetime as dt
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlencode

from django import forms
from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.forms import BoundField
from django.http import QueryDict
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import slugify
from taggit.models import Tag, TaggedItem

from accounts.models import Team, User
from postmortems.models import (
    ActionItem,
    ActionItemStatus,
    ContributingFactor,
    Incident,
    Lesson,
    Severity,
    Status,
    TimelineEvent,
    status_badge_class,
)

SEARCH_CONFIG = "english"
# How many of a query's newest matches are ranked by relevance (see the module docstring).
RANK_CANDIDATES = 300
# Lists count their rows exactly up to this many; past it they say "more than 1,000".
COUNT_CAP = 1000
# How long the owner and team choices of the search form are cached.
OPTIONS_CACHE_SECONDS = 60
# ts_headline marks matches with these; `highlight` escapes the text, then turns them into <mark>.
MARK_START, MARK_STOP = "\x02", "\x03"

_UPDATE_SQL = """
UPDATE postmortems_incident AS i
SET search_rank_vector = d.head, search_vector = d.head || d.body
FROM (
  SELECT x.id,
    setweight(to_tsvector(%(config)s, x.title), 'A')
    || setweight(to_tsvector(%(config)s, coalesce((
         SELECT string_agg(tg.name, ' ')
         FROM taggit_taggeditem ti
         JOIN taggit_tag tg ON tg.id = ti.tag_id
         JOIN django_content_type ct ON ct.id = ti.content_type_id
         WHERE ti.object_id = x.id AND ct.app_label = 'postmortems' AND ct.model = 'incident'
       ), '')), 'A')
    || setweight(to_tsvector(%(config)s, x.summary), 'B') AS head,
    setweight(to_tsvector(%(config)s, concat_ws(' ',
         x.company, x.supporting_data, x.customer_impact, x.response_analysis, x.post_incident_analysis,
         (SELECT string_agg(f.description, ' ')
          FROM postmortems_contributingfactor f WHERE f.incident_id = x.id),
         (SELECT string_agg(l.text, ' ') FROM postmortems_lesson l WHERE l.incident_id = x.id)
       )), 'C')
    || setweight(to_tsvector(%(config)s, concat_ws(' ',
         (SELECT string_agg(e.description, ' ') FROM postmortems_timelineevent e WHERE e.incident_id = x.id),
         (SELECT string_agg(a.title, ' ') FROM postmortems_actionitem a WHERE a.incident_id = x.id)
       )), 'D') AS body
  FROM postmortems_incident x
  {where}
) AS d
WHERE d.id = i.id
"""


def update_search_vectors_sql(where: str = "") -> str:
    """The UPDATE that recomputes stored search vectors (all rows, or those `where` selects on `x`)."""
    return _UPDATE_SQL.format(where=where).replace("%(config)s", f"'{SEARCH_CONFIG}'")


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


# --- filters --------------------------------------------------------------------------------------


class SlugListField(forms.Field):
    """A repeated query-string parameter of tag slugs (`?tag=dns&tag=aws`); a typed tag name works too."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[str]:
        values = value if isinstance(value, list | tuple) else [value] if value else []
        return list(dict.fromkeys(slug for slug in (slugify(str(v)) for v in values) if slug))


def select_options(bound: BoundField) -> SafeString:
    """The <option>s of a select of people or teams (a ModelChoiceField), the empty choice first and the
    chosen one selected.

    Drawn here, not in a template: fifty people's options cost a millisecond in Django's template
    language on every list page. They are cached briefly as HTML (users and teams change rarely), and
    read with a plain fetch, where the field's own iterator opens a server-side cursor (three round
    trips and a COUNT). Validating a given value still reads the database."""
    field = bound.field
    key = f"search:options-html:{type(bound.form).__name__}:{bound.name}"
    drawn = cache.get(key)
    if drawn is None:
        objects = field.queryset
        drawn = str(
            format_html_join(
                "",
                '<option value="{}">{}</option>',
                (
                    (getattr(obj, field.to_field_name or "pk"), field.label_from_instance(obj))
                    for obj in objects
                ),
            )
        )
        cache.set(key, drawn, OPTIONS_CACHE_SECONDS)
    options = format_html('<option value="">{}</option>', field.empty_label) + mark_safe(drawn)
    # Every value is escaped and written as value="…" once: marking the chosen one is a replacement.
    current = bound.value()
    chosen = format_html('<option value="{}">', "" if current is None else current)
    return mark_safe(options.replace(chosen, chosen[:-1] + " selected>", 1))


class SearchForm(forms.Form):
    """Everything a search can say, read from the query string; the URL holds the whole search."""

    q = forms.CharField(label="Search", required=False, max_length=200)
    tag = SlugListField(label="Tags", required=False)
    severity = forms.MultipleChoiceField(
        label="Severity", required=False, choices=Severity.choices, widget=forms.CheckboxSelectMultiple
    )
    date_from = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    owner = forms.ModelChoiceField(
        label="Owner",
        required=False,
        queryset=User.objects.filter(is_active=True).order_by("username"),
        to_field_name="username",
        empty_label="Anyone",
        error_messages={"invalid_choice": "Nobody by that username."},
    )
    team = forms.ModelChoiceField(
        label="Team",
        required=False,
        queryset=Team.objects.order_by("name"),
        to_field_name="slug",
        empty_label="Any team",
        error_messages={"invalid_choice": "No team by that name."},
    )
    open_actions = forms.BooleanField(label="Has open action items", required=False)

    # The query string says `from`, `to` and `open` (DESIGN.md section 9); Python cannot name a field `from`.
    URL_NAMES = {"date_from": "from", "date_to": "to", "open_actions": "open"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("owner", "team"):
            self.fields[name].widget.attrs["class"] = "form-select"
        self.fields["severity"].widget.attrs["class"] = "form-check-input"

    def add_prefix(self, field_name):
        # Used both to read the data and to name the inputs.
        return self.URL_NAMES.get(field_name, field_name)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end of the range is before its start.")
        return cleaned

    def filter(self, queryset: QuerySet) -> QuerySet:
        """`queryset` narrowed by every valid field; invalid fields are ignored (their errors are shown)."""
        data = self.cleaned_data if self.is_bound else {}
        if data.get("tag"):
            queryset = queryset.with_tags(data["tag"])
        if data.get("severity"):
            queryset = queryset.filter(severity__in=data["severity"])
        if data.get("date_from"):
            queryset = queryset.filter(incident_date__gte=data["date_from"])
        if data.get("date_to"):
            queryset = queryset.filter(incident_date__lte=data["date_to"])
        if data.get("owner"):
            queryset = queryset.filter(owner=data["owner"])
        if data.get("team"):
            queryset = queryset.filter(
                Exists(Incident.teams.through.objects.filter(incident=OuterRef("pk"), team=data["team"]))
            )
        if data.get("open_actions"):
            open_items = ActionItem.objects.filter(
                incident=OuterRef("pk"), status__in=[ActionItemStatus.OPEN, ActionItemStatus.IN_PROGRESS]
            )
            queryset = queryset.filter(Exists(open_items))
        if data.get("q"):
            queryset = queryset.search(data["q"])
        return queryset

    @property
    def text(self) -> str:
        return self.cleaned_data.get("q", "") if self.is_bound and hasattr(self, "cleaned_data") else ""

    # Rendering the select and checkbox widgets (a template per option) cost more than the rest of the
    # list page, so the template loops over these plain values instead.

    def severity_options(self) -> list[tuple[str, bool]]:
        """(value, checked) of every severity checkbox."""
        checked = {str(v) for v in self["severity"].value() or []}
        return [(value, value in checked) for value, _label in self.fields["severity"].choices]

    @cached_property
    def _tag_query_parts(self) -> tuple[str, str, str, list[str]]:
        """The list URL, the query string without `page` split where one more `tag` would go, and the
        tags in it: computed once, for the hundred tag links of a page."""
        before, after, tags = [], [], []
        seen_tag = False
        for key, values in self.data.lists():
            if key == "page":
                continue
            if key == "tag":
                tags = list(values)
                seen_tag = True
            target = after if seen_tag and key != "tag" else before
            target.extend(urlencode({key: str(value)}) for value in values)
        return reverse("postmortems:list"), "&".join(before), "&".join(after), tags

    def add_tag_url(self, slug: str) -> str:
        """The list URL with this search narrowed further by one more tag (tags combine with AND)."""
        url, before, after, tags = self._tag_query_parts
        middle = "" if slug in tags else urlencode({"tag": slug})
        query = "&".join(part for part in (before, middle, after) if part)
        return f"{url}?{query}"

    def chips(self, tag_names: dict[str, str] | None = None) -> list[tuple[str, str]]:
        """(label, query string without it) for every narrowing in force, so each can be removed."""
        if not self.is_bound:
            return []
        data = self.cleaned_data
        chips = []

        def without(key: str, value: str | None = None) -> str:
            query = QueryDict(mutable=True)
            for k, values in self.data.lists():
                kept = [v for v in values if not (k == key and (value is None or v == value))]
                if kept and k != "page":
                    query.setlist(k, kept)
            return query.urlencode()

        if data.get("q"):
            chips.append((f"“{data['q']}”", without("q")))
        for slug in data.get("tag") or []:
            chips.append((f"tag: {(tag_names or {}).get(slug, slug)}", without("tag", slug)))
        for severity in data.get("severity") or []:
            chips.append((f"severity: {severity}", without("severity", severity)))
        if data.get("date_from"):
            chips.append((f"from {data['date_from']:%Y-%m-%d}", without("from")))
        if data.get("date_to"):
            chips.append((f"to {data['date_to']:%Y-%m-%d}", without("to")))
        if data.get("owner"):
            chips.append((f"owner: {data['owner']}", without("owner")))
        if data.get("team"):
            chips.append((f"team: {data['team'].name}", without("team")))
        if data.get("open_actions"):
            chips.append(("has open action items", without("open")))
        return chips


class CappedPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows: an exact count of a common word's matches costs far more
    than the page itself, and nobody pages through a thousand results.

    One query reads the ids of those first COUNT_CAP + 1 rows, in order: it is the count, and every
    page's ids (a capped count makes page COUNT_CAP / per_page + 1 the last one). A page then loads
    only its own rows by id with `load_rows(ids)`, so the expensive filters and the sort run once, on
    ids, and wide rows and headlines are read 20 at a time. Without `load_rows` a page's object list is
    its ids: the caller loads the rows, or finds what it makes of them cached.
    """

    cap = COUNT_CAP

    def __init__(self, object_list, per_page, *args, load_rows=None, **kwargs):
        super().__init__(object_list, per_page, *args, **kwargs)
        self.load_rows = load_rows

    @cached_property
    def ids(self) -> list[int]:
        return list(self.object_list.values_list("pk", flat=True)[: self.cap + 1])

    @cached_property
    def count(self) -> int:
        return len(self.ids)

    @property
    def is_capped(self) -> bool:
        return self.count > self.cap

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        ids = self.ids[bottom:top]
        if self.load_rows is None:
            return self._get_page(ids, number, self)
        rows = {row.pk: row for row in self.load_rows(ids)} if ids else {}
        return self._get_page([rows[pk] for pk in ids if pk in rows], number, self)


# --- tags and related incidents -------------------------------------------------------------------


@dataclass(frozen=True)
class TagCount:
    """A tag and how many incidents carry it (the tag index)."""

    pk: int
    name: str
    slug: str
    num: int


def tag_counts(incidents: QuerySet) -> list[TagCount]:
    """Every tag carried by one of `incidents`, with how many of them carry it: one GROUP BY over the
    tagged items. `incidents` should be a cheap filter (published, a visibility, ids): PostgreSQL joins it
    to every tagged item, 100 ms for 100,000 incidents, where the full visibility filter took 400."""
    from django.contrib.contenttypes.models import ContentType

    rows = (
        TaggedItem.objects.filter(
            content_type=ContentType.objects.get_for_model(Incident),
            object_id__in=incidents.order_by().values("pk"),
        )
        .values_list("tag_id", "tag__name", "tag__slug")
        .annotate(num=Count("pk"))
        .order_by()
    )
    return [TagCount(*row) for row in rows]


def add_tag_counts(*parts: list[TagCount], order: str = "count") -> list[TagCount]:
    """The counts of disjoint sets of incidents added up, most used first (or A–Z by name)."""
    totals: dict[int, TagCount] = {}
    for part in parts:
        for tag in part:
            seen = totals.get(tag.pk)
            totals[tag.pk] = tag if seen is None else TagCount(tag.pk, tag.name, tag.slug, seen.num + tag.num)
    if order == "name":
        return sorted(totals.values(), key=lambda tag: (sort_name(tag.name), tag.pk))
    return sorted(totals.values(), key=lambda tag: (-tag.num, sort_name(tag.name), tag.pk))


def sort_name(name: str) -> str:
    """A name as A–Z orders it: case and accents aside ("élan" beside "elan", not after "z")."""
    return "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c)).casefold()


class TagLink(NamedTuple):
    name: str
    slug: str


@dataclass(slots=True)
class ListRow:
    """An incident as a row of the results shows it, in plain values: a model instance per row, its owner
    and its tags cost more than the rest of a freshly computed list page."""

    pk: int
    title: str
    incident_date: dt.date
    company: str
    severity: str
    status: str
    summary: str
    owner: str  # the name User.__str__ gives
    url: str
    headline: str | None = None  # the marked snippet of the summary (PostgreSQL; `with_headline`)
    tags: list[TagLink] = dataclasses.field(default_factory=list)  # in the order they were added
    snippet: str = ""

    # As get_FOO_display(): a value outside the choices (a choice since removed) shows as it is.

    @property
    def severity_label(self) -> str:
        return _SEVERITY_LABELS.get(self.severity, self.severity)

    @property
    def status_label(self) -> str:
        return _STATUS_LABELS.get(self.status, self.status)

    @property
    def status_badge_class(self) -> str:
        return status_badge_class(self.status)


_SEVERITY_LABELS, _STATUS_LABELS = dict(Severity.choices), dict(Status.choices)
_ROW_FIELDS = ("pk", "title", "incident_date", "company", "severity", "status", "summary")
_OWNER_FIELDS = ("owner__username", "owner__display_name", "owner__first_name", "owner__last_name")


def list_rows(ids: list[int], text: str = "") -> list[ListRow]:
    """The rows of these incidents, in no particular order, with their headline around `text`: two
    queries (the rows with their owners' names, and their tags)."""
    if not ids:
        return []
    from django.contrib.contenttypes.models import ContentType

    incidents = with_headline(Incident.objects.filter(pk__in=ids), text)
    marked = "headline" in incidents.query.annotations
    detail_prefix = reverse("postmortems:list")  # postmortems/<pk>/ (a test holds it equal to reverse())
    rows = {}
    for values in incidents.values_list(*_ROW_FIELDS, *_OWNER_FIELDS, *(["headline"] if marked else [])):
        pk = values[0]
        rows[pk] = ListRow(
            *values[:7],
            owner=User.name_of(*values[7:11]),
            url=f"{detail_prefix}{pk}/",
            headline=values[11] if marked else None,
        )
    tagged = TaggedItem.objects.filter(
        content_type=ContentType.objects.get_for_model(Incident), object_id__in=list(rows)
    )
    for pk, name, slug in tagged.order_by("pk").values_list("object_id", "tag__name", "tag__slug"):
        rows[pk].tags.append(TagLink(name, slug))
    return list(rows.values())


def prefetch_tags(incidents: list[Incident]) -> None:
    """What `prefetch_related("tags")` does, in one query and without its cost: taggit's prefetch builds
    a filtered queryset for every incident only to replace it (twice this function's time on the detail
    page). Each incident's `tags.all()` then reads the loaded tags, in the order they were added."""
    if not incidents:
        return
    from django.contrib.contenttypes.models import ContentType

    tags: dict[int, list[Tag]] = {incident.pk: [] for incident in incidents}
    loaded = (
        Tag.objects.filter(
            taggit_taggeditem_items__content_type=ContentType.objects.get_for_model(Incident),
            taggit_taggeditem_items__object_id__in=list(tags),
        )
        .annotate(incident_id=F("taggit_taggeditem_items__object_id"))
        .order_by("taggit_taggeditem_items__pk")
    )
    for tag in loaded:
        tags[tag.incident_id].append(tag)
    for incident in incidents:
        keep_prefetched(incident, "tags", Tag.objects.all(), tags[incident.pk])


def keep_prefetched(instance, name: str, queryset: QuerySet, rows: list) -> None:
    """Leave `instance.<name>.all()` returning `rows` with no query, as prefetch_related does: for
    relations loaded some cheaper way. `queryset`: what the relation's queryset would be, unevaluated."""
    queryset._result_cache, queryset._prefetch_done = rows, True
    instance.__dict__.setdefault("_prefetched_objects_cache", {})[name] = queryset


# Per tag, only this many of its newest published incidents are compared; a tag on 10,000 incidents stays
# cheap. Published ones: the newest ids are often drafts, which would crowd every candidate out.
RELATED_PER_TAG = 200
# The candidates sharing the most tags, then those of them that are published, with what the box shows.
_RELATED_SQL = """
SELECT i.id, i.title, i.incident_date, i.severity, i.status, i.visibility, c.common
FROM (
  SELECT ti.object_id, count(*) AS common
  FROM unnest(%s::int[]) AS t(id)
  CROSS JOIN LATERAL (
    SELECT object_id FROM taggit_taggeditem
    JOIN postmortems_incident AS p ON p.id = object_id AND p.status = %s
    WHERE tag_id = t.id AND content_type_id = %s AND object_id <> %s
    ORDER BY object_id DESC LIMIT %s
  ) AS ti
  GROUP BY ti.object_id
  ORDER BY common DESC, ti.object_id DESC
  LIMIT %s
) AS c
JOIN postmortems_incident AS i ON i.id = c.object_id
WHERE i.status = %s
ORDER BY c.common DESC, i.id DESC
"""


def related_incidents(incident: Incident, user, *, limit: int = 5) -> list[Incident]:
    """Published incidents `user` may see that share the most tags with `incident` (uses its prefetched
    tags); each carries `common`, the number of tags in common. One query, two when one is restricted."""
    tag_ids = [tag.pk for tag in incident.tags.all()]
    if not tag_ids:
        return []
    if connection.vendor == "postgresql":
        from django.contrib.contenttypes.models import ContentType

        content_type = ContentType.objects.get_for_model(Incident)
        published = Status.PUBLISHED
        params = [tag_ids, published, content_type.pk, incident.pk, RELATED_PER_TAG, limit * 4, published]
        found = list(Incident.objects.raw(_RELATED_SQL, params))
        # A published incident of normal visibility is everyone's (models.PUBLIC); only for the others is
        # the visibility filter, three subqueries to build and compile, worth its cost.
        if not (user.is_authenticated and user.is_active) or any(not other.is_public for other in found):
            candidates = [other.pk for other in found]
            seen = set(
                Incident.objects.visible_to(user).filter(pk__in=candidates).values_list("pk", flat=True)
            )
            found = [other for other in found if other.pk in seen]
        return found[:limit]
    visible = Incident.objects.visible_to(user).published().exclude(pk=incident.pk)
    return list(
        visible.filter(tags__in=tag_ids)
        .annotate(common=Count("pk"))
        .only("pk", "title", "incident_date", "severity")
        .order_by("-common", "-incident_date", "-id")[:limit]
    )
