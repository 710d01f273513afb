from django.urls import path

from postmortems import views

app_name = "postmortems"

urlpatterns = [
    path("postmortems/", views.IncidentListView.as_view(), name="list"),
    path("postmortems/<int:pk>/", views.IncidentDetailView.as_view(), name="detail"),
    path("postmortems/new/", views.IncidentCreateView.as_view(), name="new"),
    path("postmortems/drafts/", views.my_drafts, name="drafts"),
    path("postmortems/tags.json", views.tag_suggestions, name="tag_suggestions"),
    path("postmortems/<int:pk>/edit/", views.edit_start, name="edit_start"),
    path("postmortems/<int:pk>/edit/<slug:step>/", views.StepEditView.as_view(), name="edit"),
    path("postmortems/<int:pk>/export.md", views.incident_export, name="export"),
    path("postmortems/<int:pk>/print/", views.incident_print, name="print"),
    path("postmortems/<int:pk>/request-review/", views.request_review, name="request_review"),
    path("postmortems/<int:pk>/withdraw/", views.withdraw, name="withdraw"),
    path("postmortems/<int:pk>/approve/", views.approve, name="approve"),
    path("postmortems/<int:pk>/request-changes/", views.request_changes, name="request_changes"),
    path("postmortems/<int:pk>/publish/", views.publish, name="publish"),
    path("postmortems/<int:pk>/reopen/", views.reopen, name="reopen"),
    path("postmortems/<int:pk>/comments/", views.comment, name="comment"),
    path("reviews/", views.reviews, name="reviews"),
    path("action-items/", views.action_items, name="action_items"),
    path("action-items/<int:pk>/", views.action_item_update, name="action_item_update"),
    path("insights/", views.insights_view, name="insights"),
    path("tags/", views.TagListView.as_view(), name="tags"),
    path("tags/<str:slug>/", views.TagIncidentListView.as_view(), name="tag"),
]
