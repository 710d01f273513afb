"""Finding postmortems: the list and its search, the tag index and one tag's page."""

from django.contrib.contenttypes.models import ContentType
from django.db.models import Exists, OuterRef
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.generic import ListView, TemplateView
from taggit.models import Tag, TaggedItem

from postmortems import caching, search
from postmortems.models import (
    Incident,
    Visibility,
)


class IncidentListView(ListView):
    """Published incidents the user may see, narrowed and searched by the query string (search.SearchForm)."""

    template_name = "postmortems/incident_list.html"
    context_object_name = "incidents"
    paginate_by = 20
    paginator_class = search.CappedPaginator

    def search_data(self):
        return self.request.GET

    def get_queryset(self):
        self.snapshot = caching.Snapshot(self.request.user)
        self.form = search.SearchForm(self.search_data())
        self.form.is_valid()
        # The results are narrowed from self.snapshot.published() only when they are not cached
        # (`page_context`): building that filter costs more than a cached page.
        return None

    def get_paginator(self, queryset, per_page, **kwargs):
        return super().get_paginator(queryset, per_page, load_rows=self.load_rows, **kwargs)

    def load_rows(self, ids):
        """One page's rows, by the ids the paginator found: no search or tag filter runs twice, and the
        long sections a list never shows stay in the database."""
        # By pk only: the ids come from the visibility-scoped query, and applying its subqueries again
        # costs more than the rows themselves.
        return search.list_rows(ids, self.form.text)

    def get_context_data(self, **kwargs):
        # Not the ListView's: its pagination (the search, the count, the rows) runs only when the results
        # are not cached (`results`).
        context = TemplateView.get_context_data(self, **kwargs)
        user = self.request.user
        request, snapshot = self.request, self.snapshot
        # Drafts someone owns or co-authors, which Incident.objects.visible_to always lets them see; and
        # the names of the tags narrowed by. Each a query on every view, so cached with the results.
        slugs = self.form.cleaned_data.get("tag") or []
        page_tag = getattr(self, "tag", None)  # a tag page's own tag, already found
        tag_names = {page_tag.slug: page_tag.name} if page_tag else {}
        if set(slugs) - set(tag_names):
            tag_names = caching.cached(
                request,
                snapshot.published_key("tag-names", sorted(slugs)),
                lambda: dict(Tag.objects.filter(slug__in=slugs).values_list("slug", "name")),
            )
        context["form"] = self.form
        context["owner_options"] = search.select_options(self.form["owner"])
        context["team_options"] = search.select_options(self.form["team"])
        context["severity_options"] = self.form.severity_options()
        context["chips"] = self.form.chips(tag_names)
        context["active_tags"] = slugs
        context["query"] = self.form.cleaned_data.get("q", "")
        context["results"] = self.results(context["query"], narrowed=bool(context["chips"]))
        if not (context["query"] or context["chips"] or getattr(self, "tag", None)):  # the plain list's
            context["my_drafts"] = caching.cached(request, snapshot.key("my-drafts", user.pk), self.my_drafts)
        return context

    def my_drafts(self) -> list[Incident]:
        user = self.request.user
        drafts = Incident.objects.drafts_of(user) if user.is_active else Incident.objects.none()
        return list(drafts.only("title", "status", "updated_at").order_by("-updated_at")[:10])

    def results(self, query: str, *, narrowed: bool) -> str:
        """The count, the page of rows and the page links, as HTML: the same search by someone who sees
        the same incidents gets it from the cache until the data changes (postmortems/caching.py); a
        hard reload (Cache-Control: no-cache) computes it afresh."""
        request = self.request
        html = caching.cached(
            request,
            self.snapshot.published_key("list", (request.path, sorted(request.GET.lists()))),
            lambda: render_to_string(
                "postmortems/_results.jinja",
                self.page_context(query, narrowed),
                request=request,
                using="jinja2",
            ),
        )
        return mark_safe(html)  # rendered by the template engine, which escaped it

    def page_context(self, query: str, narrowed: bool) -> dict:
        queryset = self.form.filter(self.snapshot.published())
        paginator, page, object_list, is_paginated = self.paginate_queryset(queryset, self.paginate_by)
        for incident in object_list:
            if query:
                marked = incident.headline
                if marked is None:
                    marked = search.fallback_headline(incident.summary, query)
                incident.snippet = search.highlight(marked)
        return {
            "paginator": paginator,
            "page_obj": page,
            "is_paginated": is_paginated,
            "incidents": object_list,
            "form": self.form,
            "query": query,
            "narrowed": narrowed,
            "ranked": bool(query) and search.uses_full_text(),
            "rank_candidates": search.RANK_CANDIDATES,
        }


class TagIncidentListView(IncidentListView):
    """/tags/<slug>/: the list, narrowed to one tag (further narrowing continues on /postmortems/)."""

    def search_data(self):
        # Asked once per audience and state of the data, like the results: building the query alone costs
        # a millisecond.
        self.tag = caching.cached(
            self.request, self.snapshot.published_key("tag", self.kwargs["slug"]), self.find_tag
        )
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
            object_id__in=self.snapshot.published().values("pk"),
        )
        return get_object_or_404(Tag.objects.filter(Exists(seen)), slug=self.kwargs["slug"])

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["tag"] = self.tag
        return context


class TagListView(TemplateView):
    """/tags/: every tag with how many incidents the user may see carry it; most used first, or A–Z."""

    template_name = "postmortems/tag_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        order = "name" if self.request.GET.get("sort") == "name" else "count"
        snapshot = caching.Snapshot(self.request.user)
        context["order"] = order
        context["index"] = mark_safe(  # rendered by the template engine, which escaped it
            caching.cached(
                self.request,
                snapshot.published_key("tag-index", (self.request.path, order)),  # the links hold the path
                lambda: render_to_string(
                    "postmortems/_tag_index.jinja",
                    self.index_context(context, snapshot, order),
                    using="jinja2",
                ),
            )
        )
        return context

    def index_context(self, context: dict, snapshot: caching.Snapshot, order: str) -> dict:
        """What the index shows. On a cache miss only, `context` gets the tags and letters too (for tests,
        as the list's `incidents`)."""
        tags = context["tags"] = self.tag_counts(snapshot, order)
        letters = {}
        if order == "name":
            for tag in tags:
                initial = search.sort_name(tag.name)[:1].upper()  # "Élan" under E
                letters.setdefault(initial if initial.isalpha() else "#", []).append(tag)
        context["letters"] = sorted(letters.items())
        return {
            "tags": tags,
            "order": order,
            "letters": context["letters"],
            "tags_url": reverse("postmortems:tags"),
        }

    def tag_counts(self, snapshot: caching.Snapshot, order: str) -> list[search.TagCount]:
        """The counts over the public incidents, which are everyone's and cached once for all, plus those
        over the restricted ones this user may see (usually none); staff count every published one."""
        published = Incident.objects.published()
        if snapshot.restricted is None:
            return search.add_tag_counts(search.tag_counts(published), order=order)
        public = caching.cached(
            self.request,
            snapshot.public_key("tag-counts", ()),
            lambda: search.tag_counts(published.filter(visibility=Visibility.NORMAL)),
        )
        restricted = (
            search.tag_counts(published.filter(pk__any_of=snapshot.restricted)) if snapshot.restricted else []
        )
        return search.add_tag_counts(public, restricted, order=order)
