from django.urls import path

from postmortems import views

app_name = "postmortems"

urlpatterns = [
    path("postmortems/", views.IncidentListView.as_view(), name="list"),
    path("postmortems/<int:pk>/", views.IncidentDetailView.as_view(), name="detail"),
]
