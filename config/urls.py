from django.contrib import admin
from django.contrib.auth.decorators import login_not_required, login_required
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from mozilla_django_oidc import views as oidc_views

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
    path("api/v1/", include("integrations.api.urls")),
    # The schema and its docs are pages for signed-in people (DRF views skip LoginRequiredMiddleware, so
    # they say it themselves); the requests the docs make send a token.
    path(
        "api/schema/",
        login_required(SpectacularAPIView.as_view(authentication_classes=[])),
        name="schema",
    ),
    path(
        "api/docs/",
        login_required(SpectacularSwaggerView.as_view(url_name="schema", authentication_classes=[])),
        name="api_docs",
    ),
    # Single sign-on (OpenID Connect): before signing in, so not behind LoginRequiredMiddleware.
    path(
        "oidc/authenticate/",
        login_not_required(oidc_views.OIDCAuthenticationRequestView.as_view()),
        name="oidc_authentication_init",
    ),
    path(
        "oidc/callback/",
        login_not_required(oidc_views.OIDCAuthenticationCallbackView.as_view()),
        name="oidc_authentication_callback",
    ),
    path("", include("integrations.urls")),
    path("", include("postmortems.urls")),
]
