from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "Hindsight administration"
admin.site.site_title = "Hindsight admin"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="postmortems:list", permanent=False)),
    path("accounts/", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("markdownx/", include("postmortems.markdownx_urls")),
    path("", include("postmortems.urls")),
]
