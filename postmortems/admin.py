from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers, widgets
from django.db import transaction
from django.template.response import TemplateResponse
from markdownx.models import MarkdownxField
from taggit.admin import TagAdmin as TaggitTagAdmin
from taggit.models import Tag

from accounts.models import User
from postmortems import workflow
from postmortems.editing import STEP_SLUGS
from postmortems.forms import ReopenForm, TagsField
from postmortems.models import (
    ActionItem,
    Activity,
    ActivityVerb,
    ContributingFactor,
    Incident,
    Lesson,
    Notification,
    SignOff,
    TimelineEvent,
)
from postmortems.search import update_search_vector


def record_staff_edit(incident_id: int, *, by, detail: str) -> None:
    """A content edit by staff is still a content edit: under the incident's row lock, the revision goes up
    (earlier approvals become stale), every authoring step counts as changed (an author's form opened
    before it now shows a conflict instead of overwriting it), and the edit is logged as a staff action."""
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident_id)
        revision = incident.bump_revision(steps=STEP_SLUGS)
        Activity.objects.create(
            incident=incident,
            actor=by,
            verb=ActivityVerb.EDITED,
            detail=f"in the admin: {detail}",
            revision=revision,
            is_staff_action=True,
        )


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record the workflow writes: staff read it in the admin, nobody edits it there."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ChildRowAdmin(admin.ModelAdmin):
    """A part of an incident edited on its own: the incident's search vector and revision follow."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        update_search_vector(obj.incident_id)
        if change and "incident" in form.changed_data:  # moved: the incident it left changed too
            update_search_vector(form.initial["incident"])
        if form.changed_data or not change:
            name = obj._meta.verbose_name
            record_staff_edit(obj.incident_id, by=request.user, detail=f"{name} “{str(obj)[:60]}”")

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        update_search_vector(obj.incident_id)
        record_staff_edit(
            obj.incident_id, by=request.user, detail=f"deleted {obj._meta.verbose_name} “{str(obj)[:60]}”"
        )


class TimelineEventInline(admin.TabularInline):
    model = TimelineEvent
    extra = 0


class ContributingFactorInline(admin.TabularInline):
    model = ContributingFactor
    extra = 0
    fields = ("description", "parent", "category", "is_human_error")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Offer only factors of the incident being edited as parents.
        if db_field.name == "parent":
            incident_id = request.resolver_match.kwargs.get("object_id")
            kwargs["queryset"] = ContributingFactor.objects.filter(incident_id=incident_id or 0)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ActionItemInline(admin.StackedInline):
    model = ActionItem
    extra = 0
    fields = (
        ("title", "owner"),
        ("due_date", "priority", "status"),
        ("backlog_link", "completed_at"),
        "wont_do_reason",
        "factors",
    )
    autocomplete_fields = ("owner",)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "factors":
            incident_id = request.resolver_match.kwargs.get("object_id")
            kwargs["queryset"] = ContributingFactor.objects.filter(incident_id=incident_id or 0)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class LessonInline(admin.TabularInline):
    model = Lesson
    extra = 0
    fields = ("text", "action_items")

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "action_items":
            incident_id = request.resolver_match.kwargs.get("object_id")
            kwargs["queryset"] = ActionItem.objects.filter(incident_id=incident_id or 0)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


def _staff_transition(modeladmin, request, queryset, transition, done: str) -> None:
    """Run a workflow transition on each selected incident as a staff action; report what was refused."""
    succeeded = 0
    for incident in queryset:
        try:
            transition(incident)
        except workflow.WorkflowError as error:
            modeladmin.message_user(request, f"“{incident}”: {error}", messages.ERROR)
        else:
            succeeded += 1
    if succeeded:
        modeladmin.message_user(request, f"{done}: {succeeded} postmortem(s).", messages.SUCCESS)


@admin.action(description="Withdraw selected postmortems from review (staff action)")
def withdraw_from_review(modeladmin, request, queryset):
    _staff_transition(
        modeladmin,
        request,
        queryset,
        lambda incident: workflow.withdraw(incident, by=request.user),
        "Withdrawn from review",
    )


@admin.action(description="Publish selected postmortems (staff action; approvals and checks still apply)")
def publish_as_staff(modeladmin, request, queryset):
    _staff_transition(
        modeladmin,
        request,
        queryset,
        lambda incident: workflow.publish(incident, by=request.user, as_staff=True),
        "Published",
    )


@admin.action(description="Reopen selected published postmortems (staff action, asks for a reason)")
def reopen_as_staff(modeladmin, request, queryset):
    form = ReopenForm(request.POST if "reason" in request.POST else None)
    if form.is_bound and form.is_valid():
        reason = form.cleaned_data["reason"]
        _staff_transition(
            modeladmin,
            request,
            queryset,
            lambda incident: workflow.reopen(incident, by=request.user, reason=reason),
            "Reopened",
        )
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Reopen postmortems",
        "incidents": queryset,
        "form": form,
        "opts": modeladmin.model._meta,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/postmortems/incident/reopen.html", context)


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ("title", "incident_date", "severity", "status", "visibility", "owner", "revision")
    list_filter = ("status", "severity", "visibility", "incident_date")
    list_select_related = ("owner",)
    date_hierarchy = "incident_date"
    # Exact id or a title prefix: an icontains over every row takes seconds at scale.
    search_fields = ("=id", "title__istartswith")
    autocomplete_fields = ("owner", "committee", "co_authors")
    filter_horizontal = ("teams",)
    # Status changes only through the workflow actions below, so that its rules hold and are logged.
    readonly_fields = ("status", "revision", "published_at", "created_at", "updated_at")
    actions = [withdraw_from_review, publish_as_staff, reopen_as_staff]
    inlines = [TimelineEventInline, ContributingFactorInline, LessonInline, ActionItemInline]
    fieldsets = (
        (None, {"fields": ("title", "incident_date", "severity", "status", "visibility", "revision")}),
        ("Times", {"fields": ("time_zone", "started_at", "detected_at", "mitigated_at", "resolved_at")}),
        ("People", {"fields": ("owner", "committee", "co_authors", "teams")}),
        ("Tags", {"fields": ("tags",)}),
        (
            "Sections",
            {
                "fields": (
                    "summary",
                    "supporting_data",
                    "customer_impact",
                    "impacted_customers",
                    "response_analysis",
                    "post_incident_analysis",
                )
            },
        ),
        ("Source", {"fields": ("company", "source_url"), "classes": ("collapse",)}),
        ("Dates", {"fields": ("published_at", "created_at", "updated_at"), "classes": ("collapse",)}),
    )

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        # Staff edit the Markdown as text: images are uploaded by the authors, into their own postmortem.
        if isinstance(db_field, MarkdownxField):
            return db_field.formfield(form_class=forms.CharField, widget=widgets.AdminTextareaWidget)
        if db_field.name == "tags":  # the authoring form's rules: a slug to link to, a length that fits
            return db_field.formfield(form_class=TagsField, required=False)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_related(self, request, form, formsets, change):
        committee_before = set(form.initial.get("committee") or []) if change else set()
        super().save_related(request, form, formsets, change)
        # Tags and inlines are saved by now; the stored search vector covers them all.
        update_search_vector(form.instance.pk)
        incident = form.instance
        if not change or not (form.changed_data or any(fs.has_changed() for fs in formsets)):
            return
        committee_before = {getattr(member, "pk", member) for member in committee_before}
        removed = committee_before - set(incident.committee.values_list("pk", flat=True))
        if removed:
            workflow.drop_sign_offs(incident, reviewers=User.objects.filter(pk__in=removed))
        fields = ", ".join(form.changed_data) or "timeline, factors, lessons or action items"
        record_staff_edit(incident.pk, by=request.user, detail=fields)


@admin.register(SignOff)
class SignOffAdmin(ReadOnlyAdmin):
    """Read-only: a sign-off is a reviewer's own act (workflow.py), never made or changed by staff."""

    list_display = ("incident", "reviewer", "decision", "revision", "is_current", "created_at")
    list_filter = ("decision", "is_current")
    list_select_related = ("incident", "reviewer")
    raw_id_fields = ("incident",)


@admin.register(Activity)
class ActivityAdmin(ReadOnlyAdmin):
    """Read-only: the log is append-only."""

    list_display = ("created_at", "incident", "actor", "verb", "detail", "is_staff_action")
    list_filter = ("verb", "is_staff_action")
    list_select_related = ("incident", "actor")


@admin.register(ActionItem)
class ActionItemAdmin(ChildRowAdmin):
    list_display = ("title", "incident", "owner", "due_date", "priority", "status")
    list_filter = ("status", "priority")
    list_select_related = ("incident", "owner")
    raw_id_fields = ("incident",)
    filter_horizontal = ("factors",)


@admin.register(TimelineEvent)
class TimelineEventAdmin(ChildRowAdmin):
    list_display = ("occurred_at", "kind", "incident")
    list_select_related = ("incident",)
    raw_id_fields = ("incident",)


@admin.register(ContributingFactor)
class ContributingFactorAdmin(ChildRowAdmin):
    list_display = ("description", "category", "is_human_error", "incident")
    list_select_related = ("incident",)
    raw_id_fields = ("incident", "parent")


@admin.register(Lesson)
class LessonAdmin(ChildRowAdmin):
    list_display = ("text", "incident")
    list_select_related = ("incident",)
    raw_id_fields = ("incident",)
    filter_horizontal = ("action_items",)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    """Read-only: what waits to be sent (after a broker or SMTP outage) and what went out."""

    list_display = ("created_at", "kind", "object_id", "sent_at", "failures")
    list_filter = ("kind", ("sent_at", admin.EmptyFieldListFilter))


# taggit's "merge tags" action rewrites tagged items without a trace in the admin's log, which keys the
# cached tag counts (postmortems/aggregates.py); renaming a tag, which is logged, does the same job.
admin.site.unregister(Tag)


@admin.register(Tag)
class TagAdmin(TaggitTagAdmin):
    actions = []
