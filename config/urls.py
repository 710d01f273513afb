from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from config import views
from postmortems.views.authoring import serve_media

admin.site.site_header = "Hindsight administration"
admin.site.site_title = "Hindsight admin"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="postmortems:list", permanent=False)),
    path("accounts/", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("markdownx/", include("postmortems.markdownx_urls")),
    # Uploaded images are for signed-in people only, so /media/ is served by a login-required view.
    path("media/<path:path>", serve_media, name="media"),
    path("healthz", views.healthz, name="healthz"),
    path("", include("postmortems.urls")),
]
