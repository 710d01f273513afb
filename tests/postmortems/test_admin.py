import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from postmortems.models import ActivityVerb
from tests.factories import ActivityFactory, SignOffFactory, UserFactory, full_incident

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_admin_incident_page_has_inlines_for_every_part(staff_client):
    incident = full_incident()
    body = staff_client.get(reverse("admin:postmortems_incident_change", args=[incident.pk])).content.decode()
    for prefix in ("timeline_events", "factors", "lessons", "action_items"):
        assert f'name="{prefix}-TOTAL_FORMS"' in body
    assert "Timeline event number 0" in body
    assert "Validate pool sizes in CI 0" in body


@pytest.mark.parametrize(
    "model",
    ["incident", "timelineevent", "contributingfactor", "actionitem", "lesson", "signoff", "activity"],
)
def test_admin_lists_every_model(staff_client, model):
    incident = full_incident()
    SignOffFactory(incident=incident)
    ActivityFactory(incident=incident)
    response = staff_client.get(reverse(f"admin:postmortems_{model}_changelist"))
    assert response.context["cl"].result_count >= 1


def test_admin_edit_bumps_revision_and_is_logged_as_staff_action(staff_client):
    incident = full_incident()
    url = reverse("admin:postmortems_incident_change", args=[incident.pk])
    form = staff_client.get(url).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None:
            continue
        if hasattr(value, "all"):
            value = [obj.pk for obj in value.all()]
        data[name] = value
    page = staff_client.get(url)
    for formset in page.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        for key, value in management.initial.items():
            data[f"{formset.formset.prefix}-{key}"] = value
        for i, inline_form in enumerate(formset.formset.forms):
            key = f"{formset.formset.prefix}-{i}"
            data[f"{key}-id"] = inline_form.instance.pk
            data[f"{key}-incident"] = incident.pk
            for name in inline_form.fields:
                value = inline_form.initial.get(name)
                if value is None or name in ("id", "incident"):
                    continue
                if isinstance(value, list):
                    value = [getattr(v, "pk", v) for v in value]
                if isinstance(value, dt.datetime):
                    local = timezone.localtime(value)
                    data[f"{key}-{name}_0"], data[f"{key}-{name}_1"] = (
                        f"{local:%Y-%m-%d}",
                        f"{local:%H:%M:%S}",
                    )
                    continue
                data[f"{key}-{name}"] = value
    data["title"] = "Checkout API failed (edited by staff)"
    data["tags"] = "database, configuration"
    data["committee"] = [u.pk for u in incident.committee.all()]
    data["started_at_0"], data["started_at_1"] = "2026-03-04", "08:00:00"
    data["detected_at_0"], data["detected_at_1"] = "2026-03-04", "08:12:00"
    data["mitigated_at_0"], data["mitigated_at_1"] = "2026-03-04", "09:05:00"
    data["resolved_at_0"], data["resolved_at_1"] = "2026-03-04", "11:00:00"
    response = staff_client.post(url, data)
    if response.status_code != 302:
        errors = [fs.formset.errors for fs in response.context["inline_admin_formsets"]]
        raise AssertionError((response.context["adminform"].form.errors, errors))
    incident.refresh_from_db()
    assert incident.title == "Checkout API failed (edited by staff)"
    assert incident.revision == 2
    activity = incident.activities.get(verb=ActivityVerb.EDITED)
    assert activity.is_staff_action
    assert "title" in activity.detail


def test_admin_edit_of_one_timeline_event_bumps_revision_and_stales_open_forms(staff_client):
    incident = full_incident()
    event = incident.timeline_events.first()
    url = reverse("admin:postmortems_timelineevent_change", args=[event.pk])
    local = timezone.localtime(event.occurred_at)
    response = staff_client.post(
        url,
        {
            "incident": incident.pk,
            "occurred_at_0": f"{local:%Y-%m-%d}",
            "occurred_at_1": f"{local:%H:%M:%S}",
            "kind": event.kind,
            "description": "Corrected by staff",
            "link": "",
        },
    )
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.revision == 2
    assert incident.step_revisions["timeline"] == 2  # an author's form of revision 1 now conflicts
    activity = incident.activities.get(verb=ActivityVerb.EDITED)
    assert activity.is_staff_action
    assert "timeline event" in activity.detail


def test_sign_offs_are_read_only_in_the_admin(staff_client):
    sign_off = SignOffFactory()
    assert staff_client.get(reverse("admin:postmortems_signoff_add")).status_code == 403
    response = staff_client.post(
        reverse("admin:postmortems_signoff_change", args=[sign_off.pk]), {"decision": "request_changes"}
    )
    assert response.status_code == 403
    sign_off.refresh_from_db()
    assert sign_off.decision == "approve"


def test_moving_a_timeline_event_away_from_a_published_incident_leaves_its_page(staff_client):
    """The admin may move a part to another incident: the published one it left changes too."""
    from postmortems.models import Status
    from tests.factories import IncidentFactory

    published = full_incident()
    draft = IncidentFactory(status=Status.DRAFT)
    event = published.timeline_events.first()
    event.description = "Moved by staff"
    event.save()
    assert "Moved by staff" in staff_client.get(published.get_absolute_url()).content.decode()
    local = timezone.localtime(event.occurred_at)
    response = staff_client.post(
        reverse("admin:postmortems_timelineevent_change", args=[event.pk]),
        {
            "incident": draft.pk,
            "occurred_at_0": f"{local:%Y-%m-%d}",
            "occurred_at_1": f"{local:%H:%M:%S}",
            "kind": event.kind,
            "description": event.description,
            "link": "",
        },
    )
    assert response.status_code == 302
    # The draft's page first: it also shows the admin's message, which quotes the event.
    assert "Moved by staff" in staff_client.get(draft.get_absolute_url()).content.decode()
    assert "Moved by staff" not in staff_client.get(published.get_absolute_url()).content.decode()
