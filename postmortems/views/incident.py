"""One postmortem: its page, export and print, and the review actions taken on it."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_POST
from django.views.generic import DetailView

from postmortems import changes, export, followthrough, workflow
from postmortems.checks import run_checks
from postmortems.forms import (
    CommentForm,
    ReopenForm,
    SignOffForm,
)
from postmortems.markdown import render_markdown
from postmortems.models import (
    Decision,
    Incident,
    SignOff,
    Status,
    factor_tree,
)


def _readable_incident(request, pk) -> Incident:
    return get_object_or_404(Incident.objects.visible_to(request.user).with_parts(), pk=pk)


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


class IncidentDetailView(DetailView):
    """The postmortem, sections in template order, with its checks, sign-offs, comments and activity."""

    template_name = "postmortems/incident_detail.html"
    context_object_name = "incident"

    def get_queryset(self):
        current = SignOff.objects.filter(is_current=True).select_related("reviewer")
        return (
            Incident.objects.visible_to(self.request.user)
            .with_parts()
            .prefetch_related(Prefetch("sign_offs", queryset=current, to_attr="current_sign_offs"))
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        incident, user = self.object, self.request.user
        context["factor_tree"] = factor_tree(incident.factors.all())
        context["activities"] = incident.activities.select_related("actor")[:50]
        context["today"] = timezone.localdate()
        context["can_edit"] = incident.can_edit(user)
        context["Status"] = Status
        context["related"] = Incident.objects.visible_to(user).related_to(incident)
        context["related_open_items"] = followthrough.related_open_items(incident, user)
        add_review_context(context, self.request, incident)
        return context


# --- the review workflow (postmortems/workflow.py does the work; these translate HTTP) ---------------------


def add_review_context(context: dict, request, incident: Incident) -> None:
    """What the detail page shows for review: checklist, action panel, comments, changes since my sign-off."""
    user = request.user
    involved = incident.is_involved(user) or user.is_staff
    findings = run_checks(incident) if involved else []
    actions = workflow.actions_for(
        incident, user, current_sign_offs=incident.current_sign_offs, findings=findings
    )
    by_section: dict[str, list] = {}
    for remark in incident.comments.select_related("author"):
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
        "Review requested: the committee will be emailed.",
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
        "Changes requested: the owner will be emailed." if changes_requested else "Approved.",
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
    if not workflow.may_reopen(incident, request.user):
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
    if not workflow.may_comment(incident, request.user):
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
