"""Project-wide HTTP hardening: request limits, response headers, idle sessions."""

import time

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.http import HttpResponse
from django.utils.cache import patch_cache_control

# Room for the multipart envelope and the CSRF token around an image of UPLOAD_MAX_BYTES.
UPLOAD_ENVELOPE_BYTES = 64 * 1024


def max_body_bytes(path: str) -> int:
    """The largest request body accepted at `path`: an image upload, or any form post."""
    if path.endswith("/upload/"):
        return settings.UPLOAD_MAX_BYTES + UPLOAD_ENVELOPE_BYTES
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


class RequestLimitsMiddleware:
    """Refuse, before anything reads the body, a request that declares a body over its limit (413), and a
    path or query string holding a NUL byte (400: no database can store or compare one).

    Django caps form fields (DATA_UPLOAD_MAX_MEMORY_SIZE) but not files: a multipart post of any size would
    be streamed to a temporary file by the CSRF check's read of request.POST. The WSGI server hands Django at
    most CONTENT_LENGTH bytes, so a body without one is read as empty.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return HttpResponse("The request's Content-Length is not a number.\n", status=400)
        limit = max_body_bytes(request.path_info)
        if declared > limit:
            return HttpResponse(
                f"The request is {declared / 1024 / 1024:.1f} MB; the limit here is "
                f"{limit / 1024 / 1024:.1f} MB.\n",
                status=413,
                content_type="text/plain; charset=utf-8",
            )
        if "\x00" in request.path_info or any(
            "\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists()
        ):
            return HttpResponse(
                "The address holds a NUL character, which no page accepts.\n",
                status=400,
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)


def _signed_in(request) -> bool:
    """Whether the response was made for a signed-in person: the request read its session (every page
    but the few open to all does, to check who asks) and found someone. A response that never read the
    session (/healthz, static files) costs no session lookup here either."""
    session = getattr(request, "session", None)
    return session is not None and session.accessed and request.user.is_authenticated


class SecurityHeadersMiddleware:
    """A Permissions-Policy on every response; pages for a signed-in person are kept by no cache, shared
    or the browser's (`Cache-Control: private, no-store`), unless the view said how to cache them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        if _signed_in(request) and "private" not in response.get("Cache-Control", ""):
            patch_cache_control(response, private=True, no_store=True)
        return response


REFRESHED_AT = "_refreshed_at"


def _refresh_interval() -> int:
    return min(300, settings.SESSION_COOKIE_AGE // 10)


def mark_session_fresh(sender, request, user, **kwargs):
    """On sign-in (user_logged_in): the new session's expiry is fresh, the next pages need not write it."""
    if hasattr(request, "session"):
        request.session[REFRESHED_AT] = int(time.time())


class SessionIdleMiddleware:
    """Sessions end after SESSION_COOKIE_AGE without a request: each request of a signed-in person moves the
    expiry forward, but the session row is written at most every few minutes, not on every page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        # After the view, before SessionMiddleware saves: a sign-out has flushed the session by then. Only
        # a session someone signed in to: a request signed by an API token has none to keep alive.
        if _signed_in(request) and SESSION_KEY in request.session:
            now = int(time.time())
            if now - request.session.get(REFRESHED_AT, 0) >= _refresh_interval():
                request.session[REFRESHED_AT] = now  # modified: saved with a fresh expiry
        return response
