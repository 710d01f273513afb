from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe


@login_not_required
@never_cache
@require_safe
def healthz(request):
    """Liveness for the container health check and the benchmark's ceiling: no database, no session."""
    return HttpResponse("ok\n", content_type="text/plain")
