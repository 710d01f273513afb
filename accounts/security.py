"""The security log: sign-ins, failures, lockouts, password changes and resets, exports and refusals.

`record()` writes one SecurityEvent. Sign-ins, failures, sign-outs and lockouts arrive through Django's and
django-axes' authentication signals (connected in AccountsConfig.ready); the views that change passwords,
export or end sessions call `record()` themselves; PermissionDeniedLogMiddleware logs a refused action on a
postmortem.
"""

from __future__ import annotations

import ipaddress
import logging
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from accounts.models import SecurityEvent, SecurityEventKind

logger = logging.getLogger("hindsight.security")


def client_address(request) -> str | None:
    """The address a request came from: REMOTE_ADDR, or behind FORWARDED_FOR_PROXIES proxies the entry of
    X-Forwarded-For the outermost of them appended (entries further left are the client's to invent)."""
    proxies = settings.FORWARDED_FOR_PROXIES
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= proxies:
            try:
                return str(ipaddress.ip_address(forwarded[-proxies]))
            except ValueError:
                pass
    return request.META.get("REMOTE_ADDR") or None


def record(kind: str, *, request=None, user=None, username: str = "", detail: str = "") -> SecurityEvent:
    """Write one event of the security log (and the same line to the `hindsight.security` logger)."""
    if user is None and request is not None and getattr(request, "user", None) is not None:
        user = request.user if request.user.is_authenticated else None
    event = SecurityEvent.objects.create(
        kind=kind,
        user=user,
        username=(username or (user.get_username() if user else ""))[:150],
        address=client_address(request) if request is not None else None,
        path=request.path[:200] if request is not None else "",
        detail=detail[:300],
    )
    logger.info("%s", event)
    return event


def recent_count(kind: str, *, username: str, address: str | None, within: timedelta) -> int:
    """How many events of `kind` for `username` from `address` the log holds from the last `within`."""
    return SecurityEvent.objects.filter(
        kind=kind, username=username[:150], address=address, created_at__gte=timezone.now() - within
    ).count()


def prune(*, days: int | None = None) -> int:
    """Delete events older than SECURITY_LOG_RETENTION_DAYS; return how many went."""
    days = settings.SECURITY_LOG_RETENTION_DAYS if days is None else days
    deleted, _ = SecurityEvent.objects.filter(created_at__lt=timezone.now() - timedelta(days=days)).delete()
    return deleted


# --- receivers of the authentication signals (connected in AccountsConfig.ready) -------------------------


def on_signed_in(sender, request, user, **kwargs):
    record(SecurityEventKind.SIGNED_IN, request=request, user=user)


def on_sign_in_failed(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username", ""))
    record(SecurityEventKind.SIGN_IN_FAILED, request=request, username=username)


def on_signed_out(sender, request, user, **kwargs):
    record(SecurityEventKind.SIGNED_OUT, request=request, user=user)


def on_locked_out(sender, request, username, ip_address, **kwargs):
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    record(
        SecurityEventKind.LOCKED_OUT,
        request=request,
        username=username or "",
        detail=f"{settings.AXES_FAILURE_LIMIT} failures: paused for {minutes} minutes",
    )


class PermissionDeniedLogMiddleware:
    """Logs every refused action (403) on a postmortem's pages, then lets Django answer as usual."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        match = getattr(request, "resolver_match", None)
        if isinstance(exception, PermissionDenied) and match is not None and match.namespace == "postmortems":
            record(
                SecurityEventKind.PERMISSION_DENIED,
                request=request,
                detail=f"{request.method} {match.url_name}: {exception}",
            )
        return None
