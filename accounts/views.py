"""The person's own pages: sign-in (password and single sign-on) and the profile."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from accounts.forms import ProfileForm
from accounts.models import time_zone_choices
from integrations.forms import ApiTokenForm
from integrations.models import ApiToken


class LoginView(auth_views.LoginView):
    """Sign in with a password (unless PASSWORD_SIGN_IN=0) or, when configured, with single sign-on."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        if not settings.PASSWORD_SIGN_IN:
            raise PermissionDenied("Password sign-in is turned off: sign in with single sign-on.")
        return super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            password_sign_in=settings.PASSWORD_SIGN_IN,
            sso_enabled=settings.OIDC_ENABLED,
            sso_provider=settings.OIDC_PROVIDER_NAME,
            sso_failed=self.request.GET.get("sso") == "failed",
            **kwargs,
        )


def profile(request, *, token_form=None, new_token=None):
    """/accounts/profile/: time zone, API tokens (and, later, sessions), each its own section."""
    form = ProfileForm(request.POST if request.method == "POST" and token_form is None and new_token is None
                       else None, instance=request.user)  # fmt: skip
    if form.is_bound and form.is_valid():
        form.save()
        messages.success(request, "Profile saved.")
        return redirect("accounts:profile")
    context = {
        "form": form,
        "time_zones": time_zone_choices(),
        "token_form": token_form or ApiTokenForm(),
        "tokens": ApiToken.objects.filter(user=request.user),
        "new_token": new_token,
    }
    response = TemplateResponse(request, "accounts/profile.html", context)
    if new_token:
        response["Cache-Control"] = "no-store"
    return response
