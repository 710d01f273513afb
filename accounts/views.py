"""The person's own pages: sign-in (password and single sign-on), passwords (change and reset by e-mail),
the profile with its sessions, and the lockout page."""

from axes.utils import reset as reset_sign_in_failures
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse_lazy
from django.views.decorators.http import require_POST

from accounts import security
from accounts.forms import ProfileForm
from accounts.models import SecurityEventKind, User, time_zone_choices
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
    """/accounts/profile/: time zone, API tokens and sessions, each its own section."""
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
        "idle_hours": f"{settings.SESSION_COOKIE_AGE / 3600:g}",
    }
    response = TemplateResponse(request, "accounts/profile.html", context)
    if new_token:
        response["Cache-Control"] = "no-store"
    return response


def _cool_off_minutes() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)


def locked_out(request, response=None, credentials=None):
    """django-axes' answer once a username has failed too often from one address (site and admin)."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    context = {
        "username": username,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "minutes": _cool_off_minutes(),
    }
    return TemplateResponse(request, "accounts/locked_out.html", context, status=429).render()


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:password_change_done")

    def form_valid(self, form):
        response = super().form_valid(form)
        security.record(SecurityEventKind.PASSWORD_CHANGED, request=self.request, user=form.user)
        return response


class PasswordResetView(auth_views.PasswordResetView):
    """A reset link by e-mail, throttled like sign-in: at most AXES_FAILURE_LIMIT requests for one e-mail
    address from one address per cool-off, so nobody floods a mailbox from here."""

    template_name = "accounts/password_reset_form.html"
    email_template_name = "emails/password_reset.txt"
    subject_template_name = "emails/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form):
        email = form.cleaned_data["email"].strip().lower()
        address = security.client_address(self.request)
        recent = security.recent_count(
            SecurityEventKind.PASSWORD_RESET_REQUESTED,
            username=email,
            address=address,
            within=settings.AXES_COOLOFF_TIME,
        )
        if recent >= settings.AXES_FAILURE_LIMIT:
            security.record(SecurityEventKind.PASSWORD_RESET_REFUSED, request=self.request, username=email)
            form.add_error(
                None,
                f"Too many reset requests for this e-mail address from your network: wait "
                f"{_cool_off_minutes()} minutes, then ask again (and look in your spam folder).",
            )
            return self.render_to_response(self.get_context_data(form=form), status=429)
        security.record(SecurityEventKind.PASSWORD_RESET_REQUESTED, request=self.request, username=email)
        # Links in the e-mail start with SITE_URL, never with the Host header a request claims.
        self.extra_email_context = {"site_url": settings.SITE_URL.rstrip("/")}
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        security.record(SecurityEventKind.PASSWORD_RESET_DONE, request=self.request, user=form.user)
        # Whoever reads the mailbox may sign in again at once: the lockout of their username ends.
        reset_sign_in_failures(username=form.user.get_username())
        return response


@require_POST
def end_other_sessions(request):
    """Sign out every other session of this person (another browser, a lost laptop); this one stays."""
    user = request.user
    User.objects.filter(pk=user.pk).update(session_epoch=F("session_epoch") + 1)
    user.refresh_from_db(fields=["session_epoch"])
    update_session_auth_hash(request, user)
    security.record(SecurityEventKind.OTHER_SESSIONS_ENDED, request=request, user=user)
    messages.success(request, "Your other sessions are signed out; this one stays signed in.")
    return redirect("accounts:profile")


def admin_password_change(request):
    """The admin's own "change password" page, logged like the site's (mounted in config/urls.py)."""
    from django.contrib import admin

    response = admin.site.password_change(request)
    if request.method == "POST" and response.status_code == 302:
        security.record(SecurityEventKind.PASSWORD_CHANGED, request=request, detail="in the admin")
    return response
