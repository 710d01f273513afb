from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views.generic import DetailView, ListView

from postmortems.models import ActionItem, ContributingFactor, Incident, Lesson, SignOff, Status

class IncidentListView(ListView):
    template_name = "postmortems/incident_list.html"
    context_object_name = "incidents"
    paginate_by = 20

    def get_queryset(self):
        qs = (
            Incident.objects.visible_to(self.request.user)
            .published()
            .select_related("owner")
            .prefetch_related("tags")
        )
        tags = self.request.GET.getlist("tag")
        if tags:
            qs = qs.with_tags(tags)
        return qs

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["my_drafts"] = (
            Incident.objects.visible_to(self.request.user)
            .drafts_of(self.request.user)
            .order_by("-updated_at")[:10]
        )
        context["active_tags"] = self.request.GET.getlist("tag")
        return context

def factor_forest(factors):
    """Arrange factors (one query's worth) into “why?” trees: a list of (factor, children) pairs."""
    children = {}
    for factor in factors:
        children.setdefault(factor.parent_id, []).append(factor)

    def grow(parent_id):
        return [(factor, grow(factor.pk)) for factor in children.get(parent_id, [])]

    return grow(None)

class IncidentDetailView(DetailView):
    template_name = "postmortems/incident_detail.html"
    context_object_name = "incident"

    def get_object(self, queryset=None):
        qs = (
            Incident.objects.visible_to(self.request.user)
            .select_related("owner")
            .prefetch_related(
                "committee",
                "co_authors",
                "teams",
                "tags",
                "timeline_events",
                Prefetch(
                    "factors",
                    queryset=ContributingFactor.objects.prefetch_related("action_items"),
                ),
                Prefetch(
                    "action_items",
                    queryset=ActionItem.objects.select_related("owner").prefetch_related("factors"),
                ),
                Prefetch("lessons", queryset=Lesson.objects.prefetch_related("action_items")),
                Prefetch(
                    "sign_offs",
                    queryset=SignOff.objects.filter(is_current=True).select_related("reviewer"),
                    to_attr="current_sign_offs",
                ),
            )
        )
        return get_object_or_404(qs, pk=self.kwargs["pk"])

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        incident = self.object
        context["factor_forest"] = factor_forest(incident.factors.all())
        context["activities"] = incident.activities.select_related("actor")[:50]
        context["today"] = timezone.localdate()
        context["can_edit"] = incident.can_edit(self.request.user)
        context["Status"] = Status
        return context
