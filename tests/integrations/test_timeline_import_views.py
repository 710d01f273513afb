"""The "Import events" page and each draft's incoming alert webhook."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from integrations import timeline_import
from integrations.models import AlertInbox, PendingEvent
from postmortems.models import Activity, Status, TimelineEvent
from tests import factories
from tests.integrations.test_timeline_import import ALERTMANAGER, PAGERDUTY_V3, SLACK_DAY, SLACK_USERS

pytestmark = pytest.mark.django_db


@pytest.fixture
def draft():
    return factories.IncidentFactory(status=Status.DRAFT, time_zone="Europe/Berlin")


def import_url(incident) -> str:
    return reverse("integrations:timeline_import", args=[incident.pk])


def read(client, incident, **data):
    return client.post(import_url(incident), {"_action": "read", **data})


def accept_rows(response, *, tick=None, edit=None) -> dict:
    """The candidate form as the page rendered it, with rows `tick` ticked (all rendered ticks if None)."""
    formset = response.context["formset"]
    data = {
        "_action": "accept",
        "_revision": response.context["revision"],
        "_format": response.context["format"],
        "c-TOTAL_FORMS": len(formset.forms),
        "c-INITIAL_FORMS": len(formset.forms),
    }
    for index, form in enumerate(formset.forms):
        for name in ("occurred_at", "kind", "description", "link", "pending"):
            value = form.initial.get(name)
            data[f"c-{index}-{name}"] = "" if value is None else value
        if form.initial.get("include") if tick is None else index in tick:
            data[f"c-{index}-include"] = "on"
    data.update(edit or {})
    return data


def test_import_page_refuses_who_may_not_edit(client_for, draft):
    assert client_for(factories.UserFactory()).get(import_url(draft)).status_code == 404
    stranger = factories.UserFactory()
    draft.committee.add(stranger)
    assert client_for(stranger).get(import_url(draft)).status_code == 403


def test_anonymous_is_sent_to_sign_in(client, draft):
    response = client.get(import_url(draft))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_timeline_step_links_to_the_import(client_for, draft):
    response = client_for(draft.owner).get(reverse("postmortems:edit", args=[draft.pk, "timeline"]))
    assert "Import events" in response.content.decode()


def test_pasted_lines_are_candidates_and_nothing_is_added_yet(client_for, draft):
    client = client_for(draft.owner)
    response = read(client, draft, text="14:02 Deploy started\n14:09 Alert fired\nno time")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Line 3 does not start with a time" in page
    assert [f.initial["occurred_at"] for f in response.context["formset"]] == [
        "2026-03-04 14:02",
        "2026-03-04 14:09",
    ]
    assert [f.initial["kind"] for f in response.context["formset"]] == ["trigger", "detection"]
    assert not TimelineEvent.objects.filter(incident=draft).exists()


def test_accepting_adds_the_ticked_edited_events_in_one_save(client_for, draft):
    client = client_for(draft.owner)
    revision = draft.revision
    shown = read(client, draft, text="14:02 Deploy started\n14:09 Alert fired\n14:30 Resolved")
    data = accept_rows(
        shown, tick={0, 2}, edit={"c-0-description": "Deploy of api v2.3 started", "c-2-kind": "mitigation"}
    )
    response = client.post(import_url(draft), data)
    assert response.status_code == 302
    events = list(
        TimelineEvent.objects.filter(incident=draft).values_list("occurred_at", "kind", "description")
    )
    assert events == [
        (dt.datetime(2026, 3, 4, 13, 2, tzinfo=dt.UTC), "trigger", "Deploy of api v2.3 started"),
        (dt.datetime(2026, 3, 4, 13, 30, tzinfo=dt.UTC), "mitigation", "Resolved"),
    ]
    draft.refresh_from_db()
    assert draft.revision == revision + 1
    assert draft.step_revisions["timeline"] == draft.revision
    assert Activity.objects.filter(incident=draft, detail__startswith="Timeline (imported 2 events").exists()


def test_importing_twice_adds_nothing_twice(client_for, draft):
    client = client_for(draft.owner)
    client.post(
        import_url(draft), accept_rows(read(client, draft, text="14:02 Deploy started\n14:09 Alert fired"))
    )
    again = read(client, draft, text="14:02 Deploy started\n14:20 Rolled back")
    assert [f.initial["already"] for f in again.context["formset"]] == [True, False]
    data = accept_rows(again, tick={0, 1})
    response = client.post(import_url(draft), data, follow=True)
    assert "1 event added to the timeline. 1 already on it was not added again." in response.content.decode()
    assert TimelineEvent.objects.filter(incident=draft).count() == 3


def test_a_timeline_saved_meanwhile_is_a_conflict_and_adds_nothing(client_for, draft):
    client = client_for(draft.owner)
    shown = read(client, draft, text="14:02 Deploy started")
    draft.bump_revision(steps=["timeline"])
    response = client.post(import_url(draft), accept_rows(shown))
    assert response.status_code == 409
    assert "Nothing was added" in response.content.decode()
    assert not TimelineEvent.objects.filter(incident=draft).exists()


def test_an_invalid_row_adds_nothing(client_for, draft):
    client = client_for(draft.owner)
    shown = read(client, draft, text="14:02 Deploy started\n14:09 Alert fired")
    response = client.post(import_url(draft), accept_rows(shown, edit={"c-1-occurred_at": "soon"}))
    assert response.status_code == 200
    assert "Enter a time like" in response.content.decode()
    assert not TimelineEvent.objects.filter(incident=draft).exists()


def test_slack_files_are_read_with_their_names(client_for, draft):
    client = client_for(draft.owner)
    files = [
        SimpleUploadedFile("users.json", json.dumps(SLACK_USERS).encode(), "application/json"),
        SimpleUploadedFile("2026-03-04.json", json.dumps(SLACK_DAY).encode(), "application/json"),
    ]
    response = read(client, draft, files=files)
    rows = list(response.context["formset"])
    assert len(rows) == 4
    assert rows[2].initial["description"] == "Bob Builder (in a thread): rolling back now"
    assert not any(row.initial["include"] for row in rows)  # chat starts unticked


def test_a_truncated_file_is_named_not_a_500(client_for, draft):
    client = client_for(draft.owner)
    bad = SimpleUploadedFile("alerts.json", b'{"alerts": [{"status": ', "application/json")
    response = read(client, draft, files=[bad])
    assert response.status_code == 200
    assert "alerts.json is not valid JSON at line 1" in response.content.decode()


def test_an_oversized_file_is_refused(client_for, draft):
    client = client_for(draft.owner)
    big = SimpleUploadedFile("huge.json", b" " * (timeline_import.MAX_BYTES + 1), "application/json")
    response = read(client, draft, files=[big])
    assert "huge.json: larger than 5 MB" in response.content.decode()


def test_published_postmortem_cannot_import(client_for):
    incident = factories.IncidentFactory(status=Status.PUBLISHED)
    assert client_for(incident.owner).get(import_url(incident)).status_code == 403


# --- the per-draft alert webhook ----------------------------------------------------------------------------


def inbox_for(client, draft) -> AlertInbox:
    client.post(reverse("integrations:rotate_inbox", args=[draft.pk]))
    return AlertInbox.objects.get(incident=draft)


def test_alerts_wait_for_the_author_and_join_the_timeline_when_accepted(client, client_for, draft):
    owner = client_for(draft.owner)
    inbox = inbox_for(owner, draft)
    page = owner.get(import_url(draft)).content.decode()
    assert inbox.url_path() in page
    client.logout()
    response = client.post(inbox.url_path(), json.dumps(ALERTMANAGER), content_type="application/json")
    assert response.status_code == 202
    assert response.json()["queued"] == 3
    again = client.post(inbox.url_path(), json.dumps(ALERTMANAGER), content_type="application/json")
    assert again.json()["queued"] == 0
    client.post(inbox.url_path(), json.dumps(PAGERDUTY_V3), content_type="application/json")
    assert PendingEvent.objects.filter(incident=draft).count() == 4
    assert not TimelineEvent.objects.filter(incident=draft).exists()

    owner = client_for(draft.owner)
    shown = owner.get(import_url(draft))
    assert len(shown.context["formset"].forms) == 4
    owner.post(import_url(draft), accept_rows(shown, tick={0, 1}))
    assert TimelineEvent.objects.filter(incident=draft).count() == 2
    assert PendingEvent.objects.filter(incident=draft).count() == 2


def test_alert_webhook_with_a_wrong_secret_changes_nothing(client, client_for, draft):
    inbox = inbox_for(client_for(draft.owner), draft)
    client.logout()
    url = reverse("integrations:alert_inbox", args=[draft.pk, inbox.secret + "x"])
    response = client.post(url, json.dumps(ALERTMANAGER), content_type="application/json")
    assert response.status_code == 404
    assert not PendingEvent.objects.exists()


def test_rotating_the_secret_closes_the_old_url(client, client_for, draft):
    owner = client_for(draft.owner)
    old = inbox_for(owner, draft).url_path()
    owner.post(reverse("integrations:rotate_inbox", args=[draft.pk]))
    client.logout()
    assert client.post(old, json.dumps(ALERTMANAGER), content_type="application/json").status_code == 404
    new = AlertInbox.objects.get(incident=draft).url_path()
    assert client.post(new, json.dumps(ALERTMANAGER), content_type="application/json").status_code == 202


def test_alert_webhook_refuses_junk_and_published_postmortems(client, client_for, draft):
    inbox = inbox_for(client_for(draft.owner), draft)
    client.logout()
    response = client.post(inbox.url_path(), "{not json", content_type="application/json")
    assert response.status_code == 400
    response = client.post(inbox.url_path(), json.dumps({"what": 1}), content_type="application/json")
    assert response.status_code == 400
    assert "not one we know" in response.json()["detail"]
    draft.status = Status.PUBLISHED
    draft.save(update_fields=["status"])
    assert (
        client.post(inbox.url_path(), json.dumps(ALERTMANAGER), content_type="application/json").status_code
        == 404
    )
    assert not PendingEvent.objects.exists()


def test_only_editors_turn_the_alert_webhook_on(client_for, draft):
    stranger = factories.UserFactory()
    draft.committee.add(stranger)
    response = client_for(stranger).post(reverse("integrations:rotate_inbox", args=[draft.pk]))
    assert response.status_code == 403
    assert not AlertInbox.objects.exists()


def test_timeline_step_shows_the_alert_webhook_url(client_for, draft):
    owner = client_for(draft.owner)
    step = reverse("postmortems:edit", args=[draft.pk, "timeline"])
    assert "/hooks/alerts/" not in owner.get(step).content.decode()
    inbox = inbox_for(owner, draft)
    assert inbox.url_path() in owner.get(step).content.decode()


def test_a_thousand_candidates_are_accepted_in_one_save(client_for, draft):
    client = client_for(draft.owner)
    text = "\n".join(f"2026-03-04T{n // 60:02d}:{n % 60:02d}:00Z event {n}" for n in range(1000))
    shown = read(client, draft, text=text)
    assert len(shown.context["formset"].forms) == 1000
    response = client.post(import_url(draft), accept_rows(shown))
    assert response.status_code == 302
    assert TimelineEvent.objects.filter(incident=draft).count() == 1000
    activity = Activity.objects.get(incident=draft, detail__startswith="Timeline (imported")
    assert activity.detail == "Timeline (imported 1000 events from pasted text)"
