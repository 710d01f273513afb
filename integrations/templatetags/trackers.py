from django import template

from integrations.models import TrackerConnection, TrackerIssue

register = template.Library()


@register.inclusion_tag("integrations/_tracker_panel.html", takes_context=True)
def tracker_panel(context, item):
    """On an action item's page: its tracker issue, or a "Create issue in <tracker>" button per tracker."""
    return {
        "item": item,
        "issue": TrackerIssue.objects.filter(action_item=item).select_related("connection").first(),
        "connections": list(TrackerConnection.objects.filter(is_active=True)),
        "csrf_token": context.get("csrf_token"),
    }
