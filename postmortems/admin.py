from django.contrib import admin
from django.db.models import F

from postmortems.models import (
    ActionItem,
    Activity,
    ActivityVerb,
    ContributingFactor,
    Incident,
    Lesson,
    SignOff,
    TimelineEvent,
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
    readonly_fields = ("revision", "created_at", "updated_at")
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

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        incident = form.instance
        changed = [bool(form.changed_data)] + [fs.has_changed() for fs in formsets]
        if not change or not any(changed):
            return
        # A content edit by staff is still a content edit: earlier approvals become stale.
        Incident.objects.filter(pk=incident.pk).update(revision=F("revision") + 1)
        incident.refresh_from_db(fields=["revision"])
        fields = ", ".join(form.changed_data) or "timeline, factors, lessons or action items"
        Activity.objects.create(
            incident=incident,
            actor=request.user,
            verb=ActivityVerb.EDITED,
            detail=f"in the admin: {fields}",
            revision=incident.revision,
            is_staff_action=True,
        )


@admin.register(SignOff)
class SignOffAdmin(admin.ModelAdmin):
    list_display = ("incident", "reviewer", "decision", "revision", "is_current", "created_at")
    list_filter = ("decision", "is_current")
    list_select_related = ("incident", "reviewer")
    raw_id_fields = ("incident",)


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    """Read-only: the log is append-only."""

    list_display = ("created_at", "incident", "actor", "verb", "detail", "is_staff_action")
    list_filter = ("verb", "is_staff_action")
    list_select_related = ("incident", "actor")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ActionItem)
class ActionItemAdmin(admin.ModelAdmin):
    list_display = ("title", "incident", "owner", "due_date", "priority", "status")
    list_filter = ("status", "priority")
    list_select_related = ("incident", "owner")
    raw_id_fields = ("incident",)
    filter_horizontal = ("factors",)


@admin.register(TimelineEvent)
class TimelineEventAdmin(admin.ModelAdmin):
    list_display = ("occurred_at", "kind", "incident")
    list_select_related = ("incident",)
    raw_id_fields = ("incident",)


@admin.register(ContributingFactor)
class ContributingFactorAdmin(admin.ModelAdmin):
    list_display = ("description", "category", "is_human_error", "incident")
    list_select_related = ("incident",)
    raw_id_fields = ("incident", "parent")


@admin.register(Lesson)
class LessonAdmin(admin.ModelAdmin):
    list_display = ("text", "incident")
    list_select_related = ("incident",)
    raw_id_fields = ("incident",)
    filter_horizontal = ("action_items",)
