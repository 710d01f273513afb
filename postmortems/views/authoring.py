"""Writing a postmortem: the new draft, each step of the form, autosave, uploads and previews."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, SuspiciousFileOperation, ValidationError
from django.forms import BaseFormSet
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django.views.generic import View
from django.views.static import serve as static_serve
from taggit.models import Tag

from accounts.models import time_zone_choices, zone
from postmortems import editing, uploads, workflow
from postmortems.checks import run_checks
from postmortems.forms import (
    IncidentBasicsForm,
    RevisionForm,
    search_people,
    step_forms,
)
from postmortems.markdown import render_markdown
from postmortems.models import (
    ActivityVerb,
    Incident,
    Status,
    Upload,
    factor_tree,
)

# --- authoring (postmortems/forms.py validates, postmortems/editing.py saves; these translate HTTP) ---------


def _editable_incident(request, pk: int) -> Incident:
    """The incident if the user may edit it: 404 when they cannot see it, 403 when they may not edit it."""
    visible = editing.with_progress(Incident.objects.visible_to(request.user)).prefetch_related("co_authors")
    incident = get_object_or_404(visible, pk=pk)
    if incident.status == Status.PUBLISHED:
        raise PermissionDenied("Published postmortems are read-only; Reopen it to edit.")
    if not incident.can_edit(request.user):
        raise PermissionDenied("Only the owner and co-authors edit a postmortem; ask its owner to add you.")
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
            saved_at = timezone.localtime(timezone.now(), zone(request.user.time_zone))
            body = {"revision": revision, "saved_at": f"{saved_at:%H:%M}", "rows": _new_rows(forms)}
            return JsonResponse(body)
        return self.redirect_after(action, forms)

    def redirect_after(self, action: str, forms=()):
        url = reverse("postmortems:edit", args=[self.incident.pk, self.step])
        if action.startswith("why-row-"):  # "why?" under a factor added in the page: now saved, answer it
            raw = action[len("why-row-") :]
            rows = forms[0].forms if forms and hasattr(forms[0], "forms") else []
            index = int(raw) if raw.isascii() and raw.isdigit() else len(rows)
            saved = rows[index].instance.pk if index < len(rows) else None
            if saved:
                return redirect(f"{url}?why={saved}#new-row")
            action = "draft"
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


def _new_rows(forms) -> dict[str, int]:
    """The rows an autosave created, by form prefix: the page gives each its id, so that the next autosave
    edits it instead of adding it again (static/js/authoring.js)."""
    return {
        form.prefix: form.instance.pk
        for formset in forms
        if hasattr(formset, "extra_forms")
        for form in formset.extra_forms
        if form.instance.pk and not form.cleaned_data.get("DELETE")
    }


def _autosave_errors(forms, revision_form) -> JsonResponse:
    """Why an autosave was refused, as messages the page can show next to its status: a form's errors by
    field, a formset's by row and field, and the formset's own (e.g. too many rows)."""
    errors = [f"{name}: {' '.join(messages_)}" for name, messages_ in revision_form.errors.items()]
    for form in forms:
        if isinstance(form, BaseFormSet):
            for number, row in enumerate(form.forms, start=1):
                errors += _field_errors(row, prefix=f"Row {number}, ")
            errors += [f"Rows: {message}" for message in form.non_form_errors()]
        else:
            errors += _field_errors(form)
    return JsonResponse({"errors": errors}, status=400)


def _field_errors(form, *, prefix: str = "") -> list[str]:
    errors = []
    for name, field_errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else ""
        errors.append(f"{prefix}{label or 'form'}: {' '.join(field_errors)}")
    return errors


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
    saved = factor_tree(
        formset.initial_forms, pk=lambda form: form.instance.pk, parent=lambda form: form.instance.parent_id
    )
    return saved + [(form, 0) for form in formset.extra_forms]


def _add_review_step_context(context: dict, incident: Incident, user) -> None:
    full = Incident.objects.with_parts().get(pk=incident.pk)
    context["full"] = full
    context["findings"] = findings = run_checks(full)
    # The step's own "Request review" button, under the same rules as the postmortem page's.
    context["actions"] = workflow.actions_for(full, user, current_sign_offs=(), findings=findings)
    context["factor_tree"] = factor_tree(full.factors.all())
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


def people_suggestions(request):
    """/postmortems/people.json?q=ali: at most 20 active people matching a name, username, e-mail or team,
    for the people picker (static/js/people_picker.js). Signed-in people only, like every page."""
    people = search_people(request.GET.get("q", "")).prefetch_related("teams")
    found = [
        {
            "username": person.username,
            "name": str(person),
            "email": person.email,
            "teams": [team.name for team in person.teams.all()],
        }
        for person in people
    ]
    return JsonResponse({"people": found})


@require_POST
def preview_markdown(request):
    """The editor's live preview, through the one sanitising renderer (markdownx's own view 500s on a
    request without content)."""
    return HttpResponse(render_markdown(request.POST.get("content", "")))


@require_POST
def upload_image(request, pk: int):
    """/postmortems/<id>/upload/, markdownx's upload endpoint for this postmortem's editor: a verified,
    re-encoded PNG, JPEG or WebP that belongs to the postmortem, as a Markdown image."""
    incident = _editable_incident(request, pk)
    try:
        upload = uploads.store_image(request.FILES.get("image"), incident=incident, by=request.user)
    except uploads.UploadRefused as refused:
        return JsonResponse({"error": " ".join(refused.messages)}, status=429)
    except ValidationError as error:
        return JsonResponse({"error": " ".join(error.messages)}, status=400)
    return JsonResponse({"image_code": f"![]({uploads.media_url(upload)})"})


@require_POST
def upload_without_postmortem(request):
    """markdownx's default upload URL: every upload belongs to a postmortem, so it goes to that one's."""
    return JsonResponse({"error": "Upload images from a postmortem's own form."}, status=400)


def serve_media(request, path: str):
    """Uploaded images, each only to the people who may see the postmortem it was uploaded to (a 404 for
    everyone else, and for a file no upload records)."""
    upload = Upload.objects.filter(name=path).select_related("incident").first()
    if upload is None or upload.incident is None or not upload.incident.is_visible_to(request.user):
        raise Http404("No such file.")
    try:
        response = static_serve(request, path, document_root=settings.MEDIA_ROOT)
    except SuspiciousFileOperation as error:
        raise Http404("No such file.") from error
    response["Cache-Control"] = "private, max-age=3600"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
