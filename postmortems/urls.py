from django.urls import path

from postmortems.views import authoring, followthrough, incident, lists

app_name = "postmortems"

urlpatterns = [
    path("postmortems/", lists.IncidentListView.as_view(), name="list"),
    path("postmortems/<int:pk>/", incident.IncidentDetailView.as_view(), name="detail"),
    path("postmortems/new/", authoring.IncidentCreateView.as_view(), name="new"),
    path("postmortems/drafts/", authoring.my_drafts, name="drafts"),
    path("postmortems/tags.json", authoring.tag_suggestions, name="tag_suggestions"),
    path("postmortems/people.json", authoring.people_suggestions, name="people"),
    path("postmortems/<int:pk>/edit/", authoring.edit_start, name="edit_start"),
    path("postmortems/<int:pk>/edit/<slug:step>/", authoring.StepEditView.as_view(), name="edit"),
    path("postmortems/<int:pk>/upload/", authoring.upload_image, name="upload"),
    path("postmortems/<int:pk>/export.md", incident.incident_export, name="export"),
    path("postmortems/<int:pk>/print/", incident.incident_print, name="print"),
    path("postmortems/<int:pk>/request-review/", incident.request_review, name="request_review"),
    path("postmortems/<int:pk>/withdraw/", incident.withdraw, name="withdraw"),
    path("postmortems/<int:pk>/approve/", incident.approve, name="approve"),
    path("postmortems/<int:pk>/request-changes/", incident.request_changes, name="request_changes"),
    path("postmortems/<int:pk>/publish/", incident.publish, name="publish"),
    path("postmortems/<int:pk>/reopen/", incident.reopen, name="reopen"),
    path("postmortems/<int:pk>/comments/", incident.comment, name="comment"),
    path("reviews/", incident.reviews, name="reviews"),
    path("action-items/", followthrough.action_items, name="action_items"),
    path("action-items/<int:pk>/", followthrough.action_item_update, name="action_item_update"),
    path("insights/", followthrough.insights_view, name="insights"),
    path("tags/", lists.TagListView.as_view(), name="tags"),
    path("tags/<str:slug>/", lists.TagIncidentListView.as_view(), name="tag"),
]
