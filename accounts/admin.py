from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts import security
from accounts.models import SecurityEvent, SecurityEventKind, Team, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        ("Hindsight", {"fields": ("display_name", "time_zone")}),
    )
    list_display = ("username", "display_name", "email", "time_zone", "is_staff")

    def user_change_password(self, request, id, form_url=""):
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:  # saved: it redirects to the user
            user = User.objects.get(pk=id)
            security.record(
                SecurityEventKind.PASSWORD_CHANGED,
                request=request,
                user=user,
                detail=f"set in the admin by {request.user.get_username()}",
            )
        return response


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("members",)
    search_fields = ("name",)


@admin.register(SecurityEvent)
class SecurityEventAdmin(admin.ModelAdmin):
    """The security log, read-only: it is evidence, so nobody edits or deletes a line by hand (old lines go
    after SECURITY_LOG_RETENTION_DAYS)."""

    list_display = ("created_at", "kind", "user", "username", "address", "path", "detail")
    list_filter = ("kind", "created_at")
    search_fields = ("username", "user__username", "address", "detail")
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    readonly_fields = [field.name for field in SecurityEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
