"""Finding postmortems: the list and its search, the tag index and one tag's page.

What a person may see is worked out on every request (`Incident.objects.visible_to`); only the tag counts
over public published incidents, the same for everyone, are kept (postmortems/aggregates.py).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.generic import ListView, TemplateView
from taggit.models import Tag, TaggedItem

from postmortems import search
from postmortems.aggregates import public_figures
from postmortems.forms import SearchForm
from postmortems.models import Incident, Visibility
from postmortems.pagination import CappedPaginator

# What a row of the results shows: the long sections stay in the database.
ROW_FIELDS = (
    "title",
    "incident_date",
    "company",
    "severity",
    "status",
    "summary",
    "owner__username",
    "owner__display_name",
    "owner__first_name",
    "owner__last_name",
)


class IncidentListView(ListView):
    """Published incidents the user may see, narrowed and searched by the query string (SearchForm)."""

    template_name = "postmortems/incident_list.html"
    context_object_name = "incidents"
    paginate_by = 20
    paginator_class = CappedPaginator
    tag: Tag | None = None  # a tag page's own tag

    def get_search_data(self):
        return self.request.GET

    def get_queryset(self):
        self.form = SearchForm(self.get_search_data())
        self.form.is_valid()
        return self.form.filter(Incident.objects.visible_to(self.request.user).published())

    def get_paginator(self, queryset, per_page, **kwargs):
        return super().get_paginator(queryset, per_page, load_rows=self.load_rows, **kwargs)

    def load_rows(self, ids: list[int]) -> list[Incident]:
        """One page's rows, by the ids the paginator read from the visibility-scoped search: no search or
        tag filter runs twice, and the headline is made for these rows only. Each row's `tag_list`: its
        tags in the order they were added."""
        rows = Incident.objects.filter(pk__in=ids).select_related("owner").only(*ROW_FIELDS)
        rows = list(search.with_headline(rows, self.form.text))
        # One query for the page's tags: taggit's prefetch_related("tags") builds a filtered queryset for
        # every incident, which cost more than the rest of the rows together.
        tagged = TaggedItem.objects.filter(
            content_type=ContentType.objects.get_for_model(Incident), object_id__in=ids
        ).select_related("tag")
        tags: dict[int, list[Tag]] = {row.pk: [] for row in rows}
        for item in tagged.order_by("pk"):
            tags[item.object_id].append(item.tag)
        for row in rows:
            row.tag_list = tags[row.pk]
        return rows

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = self.form.text
        if query:
            for incident in context["incidents"]:
                marked = getattr(incident, "headline", None)
                if marked is None:
                    marked = search.fallback_headline(incident.summary, query)
                incident.snippet = search.highlight(marked)
        slugs = self.form.cleaned_data.get("tag") or []
        chips = self.form.chips(self.tag_names(slugs))
        context.update(
            form=self.form,
            chips=chips,
            active_tags=slugs,
            query=query,
            narrowed=bool(chips),
            ranked=bool(query) and search.uses_full_text(),
            rank_candidates=search.RANK_CANDIDATES,
            tag=self.tag,
        )
        if not (query or chips or self.tag):
            context["my_drafts"] = self.my_drafts()
        return context

    def tag_names(self, slugs: list[str]) -> dict[str, str]:
        """The names of the tags narrowed by, for their chips."""
        names = {self.tag.slug: self.tag.name} if self.tag else {}
        if set(slugs) - set(names):
            names.update(Tag.objects.filter(slug__in=slugs).values_list("slug", "name"))
        return names

    def my_drafts(self) -> list[Incident]:
        """Drafts the user owns or co-authors, which they always may see."""
        drafts = Incident.objects.drafts_of(self.request.user)
        return list(drafts.only("title", "status", "updated_at").order_by("-updated_at")[:10])


class TagIncidentListView(IncidentListView):
    """/tags/<slug>/: the list, narrowed to one tag (further narrowing continues on /postmortems/)."""

    def get_search_data(self):
        self.tag = self.find_tag()
        data = self.request.GET.copy()
        if self.tag.slug not in data.getlist("tag"):
            data.appendlist("tag", self.tag.slug)
        return data

    def find_tag(self) -> Tag:
        """The tag, if one of the incidents the user may see carries it: a tag carried only by incidents
        they may not see is as unknown to them as a missing one."""
        seen = TaggedItem.objects.filter(
            tag=OuterRef("pk"),
            content_type=ContentType.objects.get_for_model(Incident),
            object_id__in=Incident.objects.visible_to(self.request.user).published().values("pk"),
        )
        return get_object_or_404(Tag.objects.filter(Exists(seen)), slug=self.kwargs["slug"])


class TagListView(TemplateView):
    """/tags/: every tag with how many incidents the user may see carry it; most used first, or A–Z."""

    template_name = "postmortems/tag_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        order = "name" if self.request.GET.get("sort") == "name" else "count"
        published = Incident.objects.published()
        # The public incidents' counts are everyone's, so kept; the restricted ones this person may see
        # (every one, for staff) are found and counted on every request. Found first, as ids: joined to
        # the tagged items as a subquery, PostgreSQL expected too many of them and read every tagged item.
        public = public_figures(
            "tag-counts", (), lambda: tag_counts(published.filter(visibility=Visibility.NORMAL).values("pk"))
        )
        seen = (
            Incident.objects.visible_to(self.request.user)
            .published()
            .filter(visibility=Visibility.RESTRICTED)
        )
        seen_ids = list(seen.order_by().values_list("pk", flat=True))  # unordered: from the index alone
        restricted = tag_counts(seen_ids) if seen_ids else []
        tags = add_tag_counts(public, restricted, order=order)
        letters: dict[str, list[TagCount]] = {}
        if order == "name":
            for tag in tags:
                initial = sort_name(tag.name)[:1].upper()  # "Élan" under E
                letters.setdefault(initial if initial.isalpha() else "#", []).append(tag)
        # A tag's link is tags_url and its slug, as reverse() writes it (a test holds them equal), without
        # a reverse() for each of hundreds of tags.
        context.update(
            order=order, tags=tags, letters=sorted(letters.items()), tags_url=reverse("postmortems:tags")
        )
        return context


@dataclass(frozen=True)
class TagCount:
    """A tag and how many incidents carry it: plain data, so that the public counts can be cached."""

    pk: int
    name: str
    slug: str
    num: int


def tag_counts(incident_ids: QuerySet | list[int]) -> list[TagCount]:
    """Every tag carried by one of these incidents (ids, or a query of them), with how many of them carry
    it: one GROUP BY over the tagged items. A query should be a cheap filter (published, a visibility):
    PostgreSQL joins it to every tagged item."""
    rows = (
        TaggedItem.objects.filter(
            content_type=ContentType.objects.get_for_model(Incident), object_id__in=incident_ids
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
