from django.urls import path

from integrations import import_views, tracker_views, views

app_name = "integrations"

urlpatterns = [
    path("settings/integrations/", views.settings_page, name="settings"),
    path("settings/integrations/endpoints/<int:pk>/", views.endpoint_page, name="endpoint"),
    path("settings/integrations/endpoints/<int:pk>/test/", views.endpoint_test, name="endpoint_test"),
    path("settings/integrations/endpoints/<int:pk>/delete/", views.endpoint_delete, name="endpoint_delete"),
    path("settings/integrations/deliveries/<int:pk>/redeliver/", views.redeliver, name="redeliver"),
    path("accounts/profile/tokens/", views.token_create, name="token_create"),
    path("accounts/profile/tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
    path("postmortems/<int:pk>/edit/timeline/import/", import_views.import_events, name="timeline_import"),
    path("postmortems/<int:pk>/edit/timeline/alert-webhook/", import_views.rotate_inbox, name="rotate_inbox"),
    path("settings/integrations/trackers/new/", tracker_views.tracker_add, name="tracker_add"),
    path(
        "settings/integrations/trackers/<int:pk>/delete/", tracker_views.tracker_delete, name="tracker_delete"
    ),
    path(
        "action-items/<int:item_pk>/tracker/<int:connection_pk>/",
        tracker_views.create_issue,
        name="create_issue",
    ),
    path("hooks/trackers/<int:pk>/", tracker_views.tracker_webhook, name="tracker_webhook"),
    path(
        "hooks/trackers/<int:pk>/<str:secret>/",
        tracker_views.tracker_webhook_secret,
        name="tracker_webhook_secret",
    ),
    path("hooks/alerts/<int:pk>/<str:secret>/", import_views.alert_inbox, name="alert_inbox"),
]
