from django.contrib.auth.decorators import login_not_required
from django.urls import path

from integrations.api import views

app_name = "api"


def _open(view):
    # The API signs in with its token, not a session: Django's LoginRequiredMiddleware leaves it to DRF.
    return login_not_required(view.as_view())


urlpatterns = [
    path("me/", _open(views.MeView), name="me"),
    path("postmortems/", _open(views.IncidentListView), name="incidents"),
    path("postmortems/<int:pk>/", _open(views.IncidentDetailView), name="incident"),
    path("postmortems/<int:pk>/steps/<slug:step>/", _open(views.StepView), name="step"),
    path("postmortems/<int:pk>/request-review/", _open(views.RequestReviewView), name="request_review"),
    path("postmortems/<int:pk>/withdraw/", _open(views.WithdrawView), name="withdraw"),
    path("postmortems/<int:pk>/approve/", _open(views.ApproveView), name="approve"),
    path("postmortems/<int:pk>/request-changes/", _open(views.RequestChangesView), name="request_changes"),
    path("postmortems/<int:pk>/publish/", _open(views.PublishView), name="publish"),
    path("postmortems/<int:pk>/reopen/", _open(views.ReopenView), name="reopen"),
    # Rows last: their <slug:rows> would take the actions' names.
    path("postmortems/<int:pk>/<slug:rows>/", _open(views.RowsView), name="rows"),
    path("postmortems/<int:pk>/<slug:rows>/<int:row>/", _open(views.RowView), name="row"),
    path("action-items/", _open(views.ActionItemListView), name="action_items"),
    path("action-items/<int:pk>/", _open(views.ActionItemDetailView), name="action_item"),
]
