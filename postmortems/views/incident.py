"""One postmortem: its page, export and print, and the review actions taken on it."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, Q, Value, prefetch_related_objects
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.text import slugify
from django.views.decorators.http import require_POST
from django.views.generic import DetailView

from accounts.models import User
from postmortems import caching, changes, export, followthrough, search, workflow
from postmortems.checks import run_checks
from postmortems.forms import (
    CommentForm,
    ReopenForm,
    SignOffForm,
)
from postmortems.markdown import render_markdown
from postmortems.models import (
    ActionItem,
    Decision,
    Incident,
    Lesson,
    SignOff,
    Status,
)


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
