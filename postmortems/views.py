import zoneinfo
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, SuspiciousFileOperation, ValidationError
from django.core.files.storage import default_storage
from django.db.models import Exists, OuterRef, Prefetch, Q, Value, prefetch_related_objects
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.backends.utils import csrf_input
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.text import slugify
from django.views.decorators.http import require_POST
from django.views.generic import DetailView, ListView, TemplateView, View
from django.views.static import serve as static_serve
from taggit.models import Tag, TaggedItem

from accounts.models import User, time_zone_choices
from postmortems import caching, changes, editing, export, followthrough, insights, search, uploads, workflow
from postmortems.checks import run_checks
from postmortems.followthrough import Scope
from postmortems.followthrough_forms import (
    ActionItemFilterForm,
    ActionItemUpdateForm,
    InsightsFilterForm,
    shown_fields,
)
from postmortems.forms import (
    CommentForm,
    IncidentBasicsForm,
    ReopenForm,
    RevisionForm,
    SignOffForm,
    step_forms,
)
from postmortems.markdown import render_markdown
from postmortems.models import (
    ActionItem,
    ActivityVerb,
    ContributingFactor,
    Decision,
    Incident,
    Lesson,
    SignOff,
    Status,
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


def _readable_incident(request, pk) -> Incident:
    return get_object_or_404(export.with_sections(Incident.objects.visible_to(request.user)), pk=pk)


def incident_export(request, pk):
    """/postmortems/<id>/export.md: the postmortem as Markdown, in the template's section order."""
    incident = _readable_incident(request, pk)
    response = HttpResponse(export.to_markdown(incident), content_type="text/markdown; charset=utf-8")
    filename = f"postmortem-{incident.pk}-{slugify(incident.title)[:60] or 'untitled'}.md"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def incident_print(request, pk):
    """A print-friendly page: the Markdown export rendered, with no navigation."""
    incident = _readable_incident(request, pk)
    body = render_markdown(export.to_markdown(incident))
    return render(request, "postmortems/incident_print.html", {"incident": incident, "body": body})


def factor_forest(factors):
    """Arrange factors (one query's worth) into “why?” trees: a list of (factor, children) pairs."""
    children = {}
    for factor in factors:
        children.setdefault(factor.parent_id, []).append(factor)

    def grow(parent_id):
        return [(factor, grow(factor.pk)) for factor in children.get(parent_id, [])]

    return grow(None)


def _keep_prefetched(manager, rows: list) -> None:
    search.keep_prefetched(manager.instance, manager.prefetch_cache_name, manager.get_queryset(), rows)


class IncidentDetailView(DetailView):
    template_name = "postmortems/incident_detail.html"
    context_object_name = "incident"

    def get_object(self, queryset=None):
        """The incident with everything the page shows of it, loaded in a dozen queries, or from the cache
        for this audience and state of the data (postmortems/caching.py): what each person may do with it
        (edit, sign off, update an item) is still worked out for them on every request."""
        user = self.request.user
        self.snapshot = snapshot = caching.Snapshot(user)
        self.loaded = caching.cached_by_status(
            self.request,
            snapshot,
            "incident",
            self.kwargs["pk"],
            lambda: self.load(self.kwargs["pk"]),
            published=lambda loaded: loaded["incident"].status == Status.PUBLISHED,
        )
        incident = self.loaded["incident"]
        if not incident.is_visible_to(user):  # one audience may hold drafts that only some of it may see
            raise Http404("No incident found matching the query")
        return incident

    def load(self, pk: int) -> dict:
        incident = self.load_incident(pk)
        return {
            "incident": incident,
            "comments": list(incident.comments.select_related("author")),
            "activities": list(incident.activities.select_related("actor")[:50]),
            "related": search.related_incidents(incident, self.request.user),
        }

    def load_incident(self, pk: int) -> Incident:
        shown = Incident.objects.select_related("owner").defer("search_vector", "search_rank_vector")
        incident = get_object_or_404(shown, pk=pk)
        prefetch_related_objects(
            [incident],
            "timeline_events",
            "factors",
            Prefetch("action_items", queryset=ActionItem.objects.select_related("owner")),
            "lessons",
            Prefetch(
                "sign_offs",
                queryset=SignOff.objects.filter(is_current=True).select_related("reviewer"),
                to_attr="current_sign_offs",
            ),
        )
        search.prefetch_tags([incident])  # taggit's own prefetch costs twice as much
        self.load_people(incident)
        self.link_action_items(incident)
        return incident

    @staticmethod
    def load_people(incident: Incident) -> None:
        """`incident.committee` and `incident.co_authors`, as their prefetches leave them, in one query."""
        users = User.objects.order_by()  # each part unordered, as a UNION needs; the whole by username
        committee = users.filter(reviewing_incidents=incident).annotate(role=Value("committee"))
        co_authors = users.filter(coauthored_incidents=incident).annotate(role=Value("co_authors"))
        people = list(committee.union(co_authors, all=True).order_by("username"))
        for role in ("committee", "co_authors"):
            _keep_prefetched(getattr(incident, role), [person for person in people if person.role == role])

    @staticmethod
    def link_action_items(incident: Incident) -> None:
        """`factor.action_items`, `item.factors` and `lesson.action_items` of the incident's loaded rows, as
        their prefetches leave them, from one query of the two link tables. A link to another incident's
        row (only the admin can make one) takes the prefetches instead."""
        factors = list(incident.factors.all())
        items = list(incident.action_items.all())
        lessons = list(incident.lessons.all())
        links = []
        if factors or items:
            addresses = ActionItem.factors.through.objects.filter(
                Q(actionitem__in=items) | Q(contributingfactor__in=factors)
            )
            links.append(
                addresses.annotate(kind=Value("factor")).values_list(
                    "kind", "actionitem_id", "contributingfactor_id"
                )
            )
        if lessons:
            leads_to = Lesson.action_items.through.objects.filter(lesson__in=lessons)
            links.append(
                leads_to.annotate(kind=Value("lesson")).values_list("kind", "actionitem_id", "lesson_id")
            )
        rows = list(links[0].union(*links[1:], all=True)) if links else []
        item_ids = {item.pk for item in items}
        factor_ids = {factor.pk for factor in factors}
        if any(item_id not in item_ids for _, item_id, _ in rows) or any(
            other_id not in factor_ids for kind, _, other_id in rows if kind == "factor"
        ):
            prefetch_related_objects(factors, "action_items")
            prefetch_related_objects(items, "factors")
            prefetch_related_objects(lessons, "action_items")
            return
        linked = {(kind, item_id, other_id) for kind, item_id, other_id in rows}
        # In the order the rows were loaded, which is each model's ordering, as a prefetch gives them.
        for factor in factors:
            _keep_prefetched(factor.action_items, [i for i in items if ("factor", i.pk, factor.pk) in linked])
        for item in items:
            _keep_prefetched(item.factors, [f for f in factors if ("factor", item.pk, f.pk) in linked])
        for lesson in lessons:
            _keep_prefetched(lesson.action_items, [i for i in items if ("lesson", i.pk, lesson.pk) in linked])

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        incident = self.object
        context["factor_forest"] = factor_forest(incident.factors.all())
        context["activities"] = self.loaded["activities"]
        context["today"] = timezone.localdate()
        context["can_edit"] = incident.can_edit(self.request.user)
        context["Status"] = Status
        add_review_context(context, self.request, incident, comments=self.loaded["comments"])
        context["related"] = self.loaded["related"]
        context["related_open_items"] = followthrough.related_open_items(incident, self.request.user)
        context["body"] = self.body(context)
        return context

    def body(self, context: dict) -> str | None:
        """Sections 2 to 13 (_incident_body.html) as HTML, kept like the incident they show: they are most
        of the page's template work. None where they hold a comment form, which is the person's own: the
        page then draws them in place."""
        if context["actions"].comment or "comment_form" in context:
            return None
        incident, request = self.object, self.request
        time_zone = getattr(request.user, "time_zone", "")  # comments' times are shown in it
        html = caching.cached(
            request,
            self.snapshot.incident_key("incident-body", (incident.pk, time_zone), incident),
            lambda: render_to_string("postmortems/_incident_body.html", context, request),
        )
        return mark_safe(html)  # rendered by the template engine, which escaped it


# --- the review workflow (postmortems/workflow.py does the work; these translate HTTP) ---------------------


def add_review_context(context: dict, request, incident: Incident, *, comments=None) -> None:
    """What the detail page shows for review: checklist, action panel, comments, changes since my sign-off.
    `comments`: the incident's comments where the caller has them."""
    user = request.user
    involved = incident.is_involved(user) or user.is_staff
    findings = run_checks(incident) if involved else []
    actions = workflow.actions_for(
        incident, user, current_sign_offs=incident.current_sign_offs, findings=findings
    )
    if comments is None:
        comments = incident.comments.select_related("author")
    by_section: dict[str, list] = {}
    for remark in comments:
        by_section.setdefault(remark.section, []).append(remark)
    context.update(
        show_checklist=involved,
        findings=findings,
        actions=actions,
        # Without comments or the right to add one, no section has a comment block to render.
        show_comments=bool(by_section) or bool(actions.comment),
        comments_by_section=by_section,
        Decision=Decision,
    )
    context.setdefault("sign_off_form", SignOffForm(initial={"revision": incident.revision}))
    context.setdefault("reopen_form", ReopenForm())
    mine = actions.my_sign_off
    if mine is not None and mine.revision != incident.revision:
        context["my_stale_sign_off"] = mine
        context["changes_since_sign_off"] = (
            changes.diff(mine.snapshot, changes.snapshot(incident)) if mine.snapshot else None
        )


def _redisplay(request, pk: int, **forms) -> TemplateResponse:
    """The detail page again, with a bound form's errors next to its field."""
    view = IncidentDetailView()
    view.setup(request, pk=pk)
    view.object = view.get_object()
    context = view.get_context_data(object=view.object, **forms)
    return TemplateResponse(request, view.template_name, context, status=400)


def _run(request, incident: Incident, action, success: str, *, anchor: str = ""):
    """Call one workflow function; refusals become a message (or a 403 for someone with no part in it)."""
    try:
        action()
    except workflow.NotAllowed as error:
        raise PermissionDenied(str(error)) from error
    except workflow.WorkflowError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, success)
    return redirect(incident.get_absolute_url() + anchor)


def _incident(request, pk: int) -> Incident:
    return get_object_or_404(Incident.objects.visible_to(request.user), pk=pk)


@require_POST
def request_review(request, pk: int):
    incident = _incident(request, pk)
    return _run(
        request,
        incident,
        lambda: workflow.request_review(incident, by=request.user),
        "Review requested: the committee has been emailed.",
    )


@require_POST
def withdraw(request, pk: int):
    incident = _incident(request, pk)
    return _run(
        request,
        incident,
        lambda: workflow.withdraw(incident, by=request.user),
        "Withdrawn from review: it is a draft again, and earlier sign-offs are stale.",
    )


def _sign_off(request, pk: int, *, decision: str):
    incident = _incident(request, pk)
    changes_requested = decision == Decision.REQUEST_CHANGES
    form = SignOffForm(request.POST, comment_required=changes_requested)
    if not workflow.is_reviewer(incident, request.user):
        raise PermissionDenied("Only members of the peer-review committee can sign off.")
    if not form.is_valid():
        return _redisplay(request, pk, sign_off_form=form)
    action = workflow.request_changes if changes_requested else workflow.approve
    return _run(
        request,
        incident,
        lambda: action(incident, by=request.user, **form.cleaned_data),
        "Changes requested: the owner has been emailed." if changes_requested else "Approved.",
        anchor="#sign-offs",
    )


@require_POST
def approve(request, pk: int):
    return _sign_off(request, pk, decision=Decision.APPROVE)


@require_POST
def request_changes(request, pk: int):
    return _sign_off(request, pk, decision=Decision.REQUEST_CHANGES)


@require_POST
def publish(request, pk: int):
    incident = _incident(request, pk)
    return _run(
        request,
        incident,
        lambda: workflow.publish(incident, by=request.user),
        "Published: it is read-only now and visible to its readers.",
    )


@require_POST
def reopen(request, pk: int):
    incident = _incident(request, pk)
    if not (incident.owner_id == request.user.pk or request.user.is_staff):
        raise PermissionDenied("Only the owner or staff can reopen a published postmortem.")
    form = ReopenForm(request.POST)
    if not form.is_valid():
        return _redisplay(request, pk, reopen_form=form)
    return _run(
        request,
        incident,
        lambda: workflow.reopen(incident, by=request.user, reason=form.cleaned_data["reason"]),
        "Reopened: it is a draft again and needs review before it is published.",
    )


@require_POST
def comment(request, pk: int):
    incident = _incident(request, pk)
    if not (incident.is_involved(request.user) or request.user.is_staff):
        raise PermissionDenied("Only the owner, co-authors and the committee can comment.")
    form = CommentForm(request.POST)
    if not form.is_valid():
        return _redisplay(request, pk, comment_form=form)
    section = form.cleaned_data["section"]
    return _run(
        request,
        incident,
        lambda: workflow.comment(incident, by=request.user, section=section, text=form.cleaned_data["text"]),
        "Comment added.",
        anchor=f"#comments-{section}",
    )


def reviews(request):
    """Awaiting my review: incidents in review where I am on the committee, with my sign-off's state."""
    user = request.user
    mine = SignOff.objects.filter(is_current=True, reviewer=user)
    incidents = list(
        Incident.objects.visible_to(user)
        .filter(status=Status.IN_REVIEW, committee=user)
        .exclude(owner=user)
        .exclude(co_authors=user)
        .select_related("owner")
        .prefetch_related(Prefetch("sign_offs", queryset=mine, to_attr="my_sign_offs"))
        .order_by("updated_at")
    )
    rows = []
    for incident in incidents:
        sign_off = incident.my_sign_offs[0] if incident.my_sign_offs else None
        if sign_off is None:
            state = "missing"
        elif sign_off.revision != incident.revision:
            state = "stale"
        else:
            state = "current"
        rows.append({"incident": incident, "sign_off": sign_off, "state": state})
    # What needs me first: never signed, then stale, then already signed.
    rows.sort(key=lambda row: ["missing", "stale", "current"].index(row["state"]))
    return TemplateResponse(request, "postmortems/reviews.html", {"rows": rows})


# --- authoring (postmortems/forms.py validates, postmortems/editing.py saves; these translate HTTP) ---------


def _editable_incident(request, pk: int) -> Incident:
    """The incident if the user may edit it: 404 when they cannot see it, 403 when they may not edit it."""
    visible = editing.with_progress(Incident.objects.visible_to(request.user)).prefetch_related("co_authors")
    incident = get_object_or_404(visible, pk=pk)
    if not incident.can_edit(request.user):
        raise PermissionDenied("Only the owner and co-authors edit a postmortem, until it is published.")
    return incident


def _count(value: str | None) -> int:
    # isascii(): "²".isdigit() is True, but int("²") fails.
    return int(value) if value and value.isascii() and value.isdigit() else 0


class IncidentCreateView(View):
    """/postmortems/new/: the basics step; saving it creates the draft."""

    def get(self, request):
        today = timezone.localdate()
        initial = {"owner": request.user, "time_zone": request.user.time_zone, "incident_date": today}
        return self.render(IncidentBasicsForm(initial=initial))

    def post(self, request):
        form = IncidentBasicsForm(request.POST)
        if not form.is_valid():
            return self.render(form)
        incident = editing.create_incident(form, by=request.user)
        messages.success(request, "Draft created. Nobody but its authors and committee can see it yet.")
        step = editing.next_step("basics") if request.POST.get("_save") == "continue" else "basics"
        return redirect("postmortems:edit", incident.pk, step)

    def render(self, form):
        context = {
            "step": "basics",
            "forms": [form],
            "steps": [(step, False) for step in editing.STEPS],
            "time_zones": time_zone_choices(),
        }
        return TemplateResponse(self.request, "postmortems/edit/step.html", context)


class StepEditView(View):
    """/postmortems/<id>/edit/<step>/: one step of the postmortem; POST saves it (or autosaves, as JSON)."""

    def dispatch(self, request, pk: int, step: str):
        if step not in editing.STEP_SLUGS:
            raise Http404("No such step.")
        self.incident, self.step = _editable_incident(request, pk), step
        return super().dispatch(request, pk, step)

    def get(self, request, pk: int, step: str):
        extra, why = _count(request.GET.get("add")), _count(request.GET.get("why")) or None
        forms = step_forms(step, self.incident, extra=extra, why=why)
        return self.render(forms, RevisionForm(initial={"expected_revision": self.incident.revision}))

    def post(self, request, pk: int, step: str):
        if step == "review":
            return redirect(self.incident)
        forms, revision_form = step_forms(step, self.incident, data=request.POST), RevisionForm(request.POST)
        autosave, action = request.POST.get("_autosave") == "1", request.POST.get("_save", "draft")
        if not all([revision_form.is_valid(), *(form.is_valid() for form in forms)]):
            return _autosave_errors(forms, revision_form) if autosave else self.render(forms, revision_form)
        try:
            revision = editing.save_step(
                self.incident,
                step=step,
                forms=forms,
                by=request.user,
                expected_revision=revision_form.cleaned_data["expected_revision"],
                resume_at=editing.next_step(step) if action == "continue" else step,
                autosave=autosave,
            )
        except editing.EditConflict as conflict:
            if autosave:
                return JsonResponse({"conflict": True, "revision": conflict.current.revision}, status=409)
            current = RevisionForm(initial={"expected_revision": conflict.current.revision})
            return self.render(forms, current, conflict=conflict.current)
        except editing.EditRefused as refused:
            raise PermissionDenied(str(refused)) from refused
        except ValidationError as error:  # e.g. two rows that make a “why?” chain circular
            messages.error(request, " ".join(error.messages))
            return self.render(forms, revision_form)
        if autosave:
            saved_at = timezone.localtime(timezone.now(), _user_zone(request.user))
            return JsonResponse({"revision": revision, "saved_at": f"{saved_at:%H:%M}"})
        return self.redirect_after(action)

    def redirect_after(self, action: str):
        url = reverse("postmortems:edit", args=[self.incident.pk, self.step])
        if action == "continue":
            return redirect("postmortems:edit", self.incident.pk, editing.next_step(self.step))
        if action == "add":
            return redirect(f"{url}?add={_count(self.request.GET.get('add')) + 1}")
        if action.startswith("why-") and action[4:].isascii() and action[4:].isdigit():
            return redirect(f"{url}?why={action[4:]}#new-row")
        messages.success(self.request, "Saved.")
        return redirect(url)

    def render(self, forms, revision_form, *, conflict: Incident | None = None):
        incident, step = self.incident, self.step
        context = {
            "incident": incident,
            "step": step,
            "step_label": editing.STEP_LABELS[step],
            "steps": editing.progress(incident),
            "forms": forms,
            "revision_form": revision_form,
            "conflict": conflict,
            "time_zones": time_zone_choices() if step in ("basics", "timeline") else (),
        }
        if conflict is not None:
            context["conflict_by"] = _last_editor(incident, step)
            context["saved"] = _saved_rows(conflict, step)
        if step == "factors":
            context["factor_rows"] = _factor_rows(forms[0])
        if step == "review":
            _add_review_step_context(context, incident, self.request.user)
        status = 409 if conflict else 200
        return TemplateResponse(self.request, "postmortems/edit/step.html", context, status=status)


def _user_zone(user) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(user.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _autosave_errors(forms, revision_form) -> JsonResponse:
    """Why an autosave was refused, as messages the page can show next to its status."""
    errors = [f"{name}: {' '.join(messages_)}" for name, messages_ in revision_form.errors.items()]
    for form in forms:
        for name, field_errors in form.errors.items():
            label = form.fields[name].label if name in form.fields else ""
            errors.append(f"{label or 'Form'}: {' '.join(field_errors)}")
    return JsonResponse({"errors": errors}, status=400)


def _last_editor(incident: Incident, step: str):
    activity = (
        incident.activities.filter(verb=ActivityVerb.EDITED, detail=editing.STEP_LABELS[step])
        .select_related("actor")
        .first()
    )
    return activity.actor if activity else None


def _saved_rows(current: Incident, step: str):
    """The rows of a formset step as they are saved now, for the conflict page's “saved version” column."""
    rows = {
        "timeline": lambda: current.timeline_events.all(),
        "factors": lambda: current.factors.select_related("parent"),
        "lessons": lambda: current.lessons.prefetch_related("action_items"),
        "actions": lambda: current.action_items.select_related("owner").prefetch_related("factors"),
    }
    return list(rows[step]()) if step in rows else None


def _factor_rows(formset) -> list[tuple]:
    """The factor forms in “why?”-tree order, with their depth; new rows last."""
    saved = {form.instance.pk: form for form in formset.initial_forms}
    children: dict = {}
    for form in formset.initial_forms:
        parent_id = form.instance.parent_id if form.instance.parent_id in saved else None
        children.setdefault(parent_id, []).append(form)
    ordered: list[tuple] = []
    placed: set = set()

    def walk(parent_id, depth):
        for form in children.get(parent_id, []):
            if form.instance.pk not in placed:
                placed.add(form.instance.pk)
                ordered.append((form, depth))
                walk(form.instance.pk, depth + 1)

    walk(None, 0)
    # Rows a rejected submission made circular have no root; they still show, with their errors.
    stray = [(form, 0) for form in formset.initial_forms if form.instance.pk not in placed]
    return ordered + stray + [(form, 0) for form in formset.extra_forms]


def _add_review_step_context(context: dict, incident: Incident, user) -> None:
    full = (
        Incident.objects.filter(pk=incident.pk)
        .select_related("owner")
        .prefetch_related(
            "committee",
            "co_authors",
            "tags",
            "timeline_events",
            Prefetch("factors", queryset=ContributingFactor.objects.prefetch_related("action_items")),
            Prefetch(
                "action_items",
                queryset=ActionItem.objects.select_related("owner").prefetch_related("factors"),
            ),
            Prefetch("lessons", queryset=Lesson.objects.prefetch_related("action_items")),
        )
        .get()
    )
    context["full"] = full
    context["findings"] = run_checks(full)
    context["factor_forest"] = factor_forest(full.factors.all())
    context["today"] = timezone.localdate()
    context["can_edit"] = True


def edit_start(request, pk: int):
    """/postmortems/<id>/edit/: resume where the author left off."""
    incident = _editable_incident(request, pk)
    return redirect("postmortems:edit", incident.pk, incident.last_step or "basics")


def my_drafts(request):
    """/postmortems/drafts/: the drafts I own or co-author, each resuming at the step I left."""
    drafts = (
        Incident.objects.visible_to(request.user)
        .drafts_of(request.user)
        .select_related("owner")
        .order_by("-updated_at")[:100]
    )
    return TemplateResponse(request, "postmortems/edit/drafts.html", {"drafts": drafts})


def tag_suggestions(request):
    """/postmortems/tags.json?q=da: names of tags on incidents the user can see, for autocomplete."""
    prefix = request.GET.get("q", "").strip()[:100]
    visible = Incident.objects.visible_to(request.user).values("pk")
    names = (
        Tag.objects.filter(
            taggit_taggeditem_items__content_type__app_label="postmortems",
            taggit_taggeditem_items__content_type__model="incident",
            taggit_taggeditem_items__object_id__in=visible,
            name__istartswith=prefix,
        )
        .order_by("name")
        .values_list("name", flat=True)
        .distinct()[:10]
    )
    return JsonResponse({"tags": list(names)})


@require_POST
def preview_markdown(request):
    """The editor's live preview, through the one sanitising renderer (markdownx's own view 500s on a
    request without content)."""
    return HttpResponse(render_markdown(request.POST.get("content", "")))


@login_required
@require_POST
def upload_image(request):
    """markdownx's upload endpoint: a verified, re-encoded PNG, JPEG or WebP, as a Markdown image."""
    try:
        name = uploads.store_image(request.FILES.get("image"))
    except ValidationError as error:
        return JsonResponse({"error": " ".join(error.messages)}, status=400)
    return JsonResponse({"image_code": f"![]({default_storage.url(name)})"})


@login_required
def serve_media(request, path: str):
    """Uploaded files, for signed-in people only (in production too: no public /media/)."""
    try:
        response = static_serve(request, path, document_root=settings.MEDIA_ROOT)
    except SuspiciousFileOperation as error:
        raise Http404("No such file.") from error
    response["Cache-Control"] = "private, max-age=3600"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# --- follow-through: action items and insights (postmortems/followthrough.py and insights.py do the work)

# Each row carries its own small status form, which is most of the page's cost: 25 rows keep it cheap.
ACTION_ITEMS_PER_PAGE = 25


def action_items(request):
    """My action items across every postmortem I can see: overdue first, then due soon."""
    user = request.user
    today = timezone.localdate()
    form = ActionItemFilterForm(request.GET)
    form.is_valid()
    chosen = {
        "scope": Scope.MINE,
        "status": "unfinished",
        "priority": "",
        "overdue": False,
    } | form.cleaned_data

    # The counts and the ordered ids (every page's) cost tens of milliseconds once drafts and restricted
    # incidents must be hidden, and a page of rows with their forms about as much again: both are kept
    # per person, choice and state of what they may see (postmortems/caching.py): published incidents
    # and their own drafts, so that someone else's autosave leaves them cached.
    snapshot = caching.Snapshot(user)
    figures, ids = caching.cached(
        request,
        snapshot.involved_key("action-items", (user.pk, sorted(chosen.items()), today)),
        lambda: followthrough.listing(user, today=today, restricted_seen=snapshot.restricted, **chosen),
    )
    paginator = search.CappedPaginator(ids, ACTION_ITEMS_PER_PAGE)
    paginator.ids = ids
    page = paginator.get_page(request.GET.get("page"))  # its object list: the page's ids
    here = request.get_full_path()
    rows = caching.cached(
        request,
        snapshot.involved_key("action-item-rows", (user.pk, here, page.number, today)),
        lambda: _action_item_rows(page.object_list, user=user, today=today, next_url=here),
    )
    context = {
        "form": form,
        "chosen": chosen,
        "page_obj": page,
        "paginator": paginator,
        "counts": figures.counts,
        "slo": figures.slo,
        "exact_limit": followthrough.EXACT_LIMIT,
        "today": today,
        # Escaped by Jinja2; the session's CSRF token, masked once for every form of the page.
        "rows": mark_safe(rows.replace(CSRF_MARK, csrf_input(request))),
    }
    return TemplateResponse(request, "postmortems/action_items.html", context)


# Cached rows hold this mark where each form's CSRF token goes, since the token is the session's. Only the
# template can write it: it cannot be guessed without SECRET_KEY, and Jinja2 escapes every "<" typed.
CSRF_MARK = f"<!--csrf_input {salted_hmac('hindsight.views.CSRF_MARK', 'csrf_input').hexdigest()}-->"


def _action_item_rows(ids: list[int], *, user, today, next_url: str) -> str:
    """One page of /action-items/ rows, in the order of `ids`, with an update form on each row `user`
    may update (returning to `next_url`), as HTML with CSRF_MARK in place of the CSRF token."""
    found = {item.pk: item for item in followthrough.page_rows(ids, user=user, today=today)}
    items = [found[pk] for pk in ids if pk in found]
    for item in items:
        if item.may_update:
            item.form = shown_fields(item, next_url=f"{next_url}#item-{item.pk}")
    context = {
        "items": items,
        "today": today,
        "soon": today + timedelta(days=followthrough.DUE_SOON_DAYS),
        "csrf_input": mark_safe(CSRF_MARK),
    }
    return render_to_string("postmortems/_action_item_rows.jinja", context, using="jinja2")


def action_item_update(request, pk: int):
    """Status and backlog link of one action item, also on published postmortems; the page behind each
    row's small form, where a refused change shows its error next to the field."""
    item = get_object_or_404(
        ActionItem.objects.visible_to(request.user).select_related("incident__owner", "owner"), pk=pk
    )
    if not item.can_update(request.user):
        raise PermissionDenied(
            "Only the action item’s owner and the postmortem’s owner and co-authors can update it."
        )
    form = ActionItemUpdateForm(
        request.POST if request.method == "POST" else None,
        prefix=f"item-{item.pk}",
        initial={
            "status": item.status,
            "wont_do_reason": item.wont_do_reason,
            "backlog_link": item.backlog_link,
            "next": request.GET.get("next", ""),
        },
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            changed = followthrough.update_action_item(
                item,
                by=request.user,
                status=data["status"],
                backlog_link=data["backlog_link"],
                wont_do_reason=data["wont_do_reason"],
            )
        except followthrough.NotAllowed as error:
            raise PermissionDenied(str(error)) from error
        except followthrough.FollowThroughError as error:
            form.add_error(None, str(error))
        else:
            if changed:
                messages.success(request, f"“{item.title}”: " + "; ".join(changed) + ".")
            else:
                messages.info(request, f"“{item.title}”: nothing changed.")
            target = data["next"]
            if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
                target = item.get_absolute_url()
            return redirect(target)
    status = 400 if request.method == "POST" else 200
    return TemplateResponse(
        request, "postmortems/action_item_form.html", {"item": item, "form": form}, status=status
    )


def insights_view(request):
    """Incidents over time, time to detect/mitigate/resolve, publication and follow-through, for a period."""
    form = InsightsFilterForm(request.GET)
    form.is_valid()
    defaults = InsightsFilterForm({})
    defaults.is_valid()
    chosen = defaults.cleaned_data | {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}
    start, end = chosen["date_from"], chosen["date_to"]
    if start > end:
        start, end = defaults.cleaned_data["date_from"], defaults.cleaned_data["date_to"]
    found = insights.figures(
        request.user,
        date_from=start,
        date_to=end,
        tag=chosen["tag"],
        team=chosen["team"],
        severity=chosen["severity"],
        today=timezone.localdate(),
        render=lambda found: render_to_string(
            "postmortems/_insights_figures.html",
            {**found, "min_sample": insights.MIN_SAMPLE},
            request=request,
        ),
    )
    context = {
        "form": form,
        "team_options": search.select_options(form["team"]),
        "start": start,
        "end": end,
        "recurring_tags": found["recurring_tags"],
        "html": mark_safe(found["html"]),  # rendered by the template engine, which escaped it
    }
    return TemplateResponse(request, "postmortems/insights.html", context)
