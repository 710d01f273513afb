"""Staff see tokens and endpoints in the admin, never their secrets (only hashes are kept of tokens; the
webhook signing secret is not a field of its form)."""

from django.contrib import admin

from integrations.models import ApiToken, DeliveryAttempt, SsoIdentity, WebhookDelivery, WebhookEndpoint


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "user",
        "hint",
        "access",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    fields = ["user", "name", "hint", "access", "created_at", "last_used_at", "expires_at", "revoked_at"]
    readonly_fields = ["user", "name", "hint", "access", "created_at", "last_used_at"]
    list_select_related = ["user"]

    def has_add_permission(self, request):
        return False  # a token is created by its person on their profile, where its secret is shown once


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "shown_url", "is_active", "include_restricted"]
    fields = ["name", "kind", "shown_url", "events", "is_active", "include_restricted", "created_by"]
    readonly_fields = ["shown_url", "created_by"]

    def has_add_permission(self, request):
        return False  # added on /settings/integrations/, which shows the signing secret once


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["started_at", "status_code", "duration_ms", "error"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["event", "endpoint", "status", "attempts", "created_at", "delivered_at"]
    list_filter = ["status", "event"]
    readonly_fields = [
        "endpoint",
        "event",
        "message_id",
        "key",
        "payload",
        "attempts",
        "created_at",
        "delivered_at",
    ]
    inlines = [AttemptInline]


admin.site.register(SsoIdentity)
