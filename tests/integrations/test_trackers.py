"""Action items as issues in GitHub, GitLab and Jira, against a fake tracker on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.urls import reverse

from integrations import trackers
from integrations.models import TrackerConnection, TrackerIssue, TrackerIssueStatus, TrackerKind
from integrations.tasks import create_tracker_issue
from postmortems.models import ActionItemStatus, Activity, ActivityVerb
from tests import factories
from tests.integrations.fake_tracker import FakeTracker

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake():
    tracker = FakeTracker().start()
    yield tracker
    tracker.stop()


def connect(fake, kind=TrackerKind.GITHUB) -> TrackerConnection:
    project = {"github": "acme/api", "gitlab": "acme/api", "jira": "OPS"}[kind]
    return TrackerConnection.objects.create(
        kind=kind, base_url=fake.url, project=project, email="ops@example.com", token="tok-secret-123"
    )


@pytest.fixture
def item():
    factor = factories.ContributingFactorFactory(description="No connection-pool limit on the API")
    return factories.ActionItemFactory(
        title="Cap the connection pool", incident=factor.incident, factors=[factor]
    )


def press(client, item, connection, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(reverse("integrations:create_issue", args=[item.pk, connection.pk]))


@pytest.mark.parametrize(
    ("kind", "path", "link"),
    [
        ("github", "/repos/acme/api/issues", "https://github.com/acme/api/issues/42"),
        ("gitlab", "/api/v4/projects/acme%2Fapi/issues", "https://gitlab.com/acme/api/-/issues/42"),
        ("jira", "/rest/api/3/issue", "{url}/browse/OPS-42"),
    ],
)
def test_owner_creates_the_issue_and_the_backlog_link_is_set(
    client_for, fake, item, kind, path, link, django_capture_on_commit_callbacks
):
    connection = connect(fake, kind)
    response = press(client_for(item.owner), item, connection, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.backlog_link == link.format(url=fake.url)
    (request,) = fake.requests
    assert request["path"] == path
    sent = json.dumps(request["json"])
    assert "Cap the connection pool" in sent
    assert item.incident.title in sent
    assert f"/postmortems/{item.incident.pk}/" in sent
    assert "No connection-pool limit on the API" in sent
    assert item.due_date.isoformat() in sent
    assert "tok-secret-123" in " ".join(request["headers"].values()) or kind == "jira"
    issue = TrackerIssue.objects.get()
    assert (issue.status, issue.external_id) == (
        TrackerIssueStatus.CREATED,
        "OPS-42" if kind == "jira" else "42",
    )
    assert Activity.objects.filter(incident=item.incident, detail__contains="backlog link").exists()


def test_the_issue_is_created_after_the_request_commits(
    client_for, fake, item, django_capture_on_commit_callbacks
):
    connection = connect(fake)
    with django_capture_on_commit_callbacks() as callbacks:
        client_for(item.owner).post(reverse("integrations:create_issue", args=[item.pk, connection.pk]))
    assert len(callbacks) == 1
    assert fake.requests == []
    assert TrackerIssue.objects.get().status == TrackerIssueStatus.PENDING


@pytest.mark.parametrize(
    ("status", "message"), [(401, "Bad credentials"), (404, "Not Found"), (422, "Validation Failed")]
)
def test_a_refusing_tracker_marks_the_issue_failed_and_leaves_the_item(
    client_for, fake, item, status, message, django_capture_on_commit_callbacks
):
    fake.failures = [status]
    client = client_for(item.owner)
    press(client, item, connect(fake), django_capture_on_commit_callbacks)
    issue = TrackerIssue.objects.get()
    assert issue.status == TrackerIssueStatus.FAILED
    assert issue.error == f"GitHub answered {status}: {message}"
    item.refresh_from_db()
    assert item.backlog_link == ""
    page = client.get(reverse("postmortems:action_item_update", args=[item.pk])).content.decode()
    assert f"Creating the issue in GitHub failed: GitHub answered {status}" in page
    assert "tok-secret-123" not in page
    # Once the tracker is fixed, pressing again creates it.
    press(client, item, TrackerConnection.objects.get(), django_capture_on_commit_callbacks)
    assert TrackerIssue.objects.get().status == TrackerIssueStatus.CREATED


def test_rate_limit_and_outage_are_retried_with_the_trackers_wait(fake, item):
    fake.failures = [429, 500]
    issue = TrackerIssue.objects.create(action_item=item, connection=connect(fake), requested_by=item.owner)
    with pytest.raises(trackers.TrackerError) as first:
        trackers.attempt(issue.pk)
    assert (first.value.retry, first.value.retry_after) == (True, 30.0)
    with pytest.raises(trackers.TrackerError) as second:
        trackers.attempt(issue.pk)
    assert (second.value.retry, second.value.retry_after) == (True, None)
    issue.refresh_from_db()
    assert (issue.status, issue.attempts) == (TrackerIssueStatus.PENDING, 2)
    assert create_tracker_issue.run(issue.pk) == TrackerIssueStatus.CREATED
    item.refresh_from_db()
    assert item.backlog_link == "https://github.com/acme/api/issues/42"


def test_an_unreachable_tracker_never_fails_the_person(client_for, item, django_capture_on_commit_callbacks):
    connection = TrackerConnection.objects.create(
        kind=TrackerKind.GITHUB, base_url="http://127.0.0.1:9", project="acme/api", token="t"
    )
    response = press(client_for(item.owner), item, connection, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    issue = TrackerIssue.objects.get()
    assert issue.status == TrackerIssueStatus.PENDING
    assert issue.error == "GitHub could not be reached (ConnectionError)"


def test_only_who_may_update_the_item_creates_its_issue(client_for, fake, item):
    connection = connect(fake)
    url = reverse("integrations:create_issue", args=[item.pk, connection.pk])
    # The postmortem is published: others see the item, but only its owner and the authors act on it.
    assert client_for(factories.UserFactory()).post(url).status_code == 403
    assert not TrackerIssue.objects.exists()
    assert fake.requests == []


# --- the trackers' webhooks --------------------------------------------------------------------------------


def created_issue(fake, item, kind=TrackerKind.GITHUB, external_id="42") -> TrackerIssue:
    return TrackerIssue.objects.create(
        action_item=item,
        connection=connect(fake, kind),
        status=TrackerIssueStatus.CREATED,
        external_id=external_id,
        url="https://example.com/issue",
        state="open",
    )


def github_event(client, connection, action, number=42, secret=None):
    body = json.dumps(
        {
            "action": action,
            "issue": {"number": number, "state": "closed"},
            "repository": {"full_name": "acme/api"},
        }
    ).encode()
    key = (secret or connection.webhook_secret).encode()
    signature = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    return client.post(
        reverse("integrations:tracker_webhook", args=[connection.pk]),
        body,
        content_type="application/json",
        headers={"X-GitHub-Event": "issues", "X-Hub-Signature-256": signature},
    )


def test_github_close_and_reopen_keep_the_item_in_step(client, fake, item):
    issue = created_issue(fake, item)
    response = github_event(client, issue.connection, "closed")
    assert response.json() == {"changed": True}
    item.refresh_from_db()
    assert item.status == ActionItemStatus.DONE
    assert item.completed_at is not None
    activity = Activity.objects.filter(incident=item.incident, verb=ActivityVerb.ACTION_ITEM_UPDATED).get()
    assert activity.detail == "“Cap the connection pool”: status Open → Done (GitHub issue 42 closed)"
    github_event(client, issue.connection, "reopened")
    item.refresh_from_db()
    assert (item.status, item.completed_at) == (ActionItemStatus.OPEN, None)
    issue.refresh_from_db()
    assert issue.state == "open"


@pytest.mark.parametrize("signature", ["", "sha256=00", "wrong-secret"])
def test_github_webhook_wrongly_signed_changes_nothing(client, fake, item, signature):
    issue = created_issue(fake, item)
    if signature == "wrong-secret":
        response = github_event(client, issue.connection, "closed", secret="not-the-secret")
    else:
        response = client.post(
            reverse("integrations:tracker_webhook", args=[issue.connection.pk]),
            json.dumps({"action": "closed", "issue": {"number": 42}}),
            content_type="application/json",
            headers={"X-GitHub-Event": "issues", "X-Hub-Signature-256": signature},
        )
    assert response.status_code == 401
    item.refresh_from_db()
    assert item.status == ActionItemStatus.OPEN


def test_gitlab_issue_event_with_its_token(client, fake, item):
    issue = created_issue(fake, item, TrackerKind.GITLAB)
    url = reverse("integrations:tracker_webhook", args=[issue.connection.pk])
    body = json.dumps(
        {"object_kind": "issue", "object_attributes": {"iid": 42, "action": "close", "state": "closed"}}
    )
    assert (
        client.post(
            url, body, content_type="application/json", headers={"X-Gitlab-Token": "nope"}
        ).status_code
        == 401
    )
    item.refresh_from_db()
    assert item.status == ActionItemStatus.OPEN
    client.post(
        url,
        body,
        content_type="application/json",
        headers={"X-Gitlab-Token": issue.connection.webhook_secret},
    )
    item.refresh_from_db()
    assert item.status == ActionItemStatus.DONE


def test_jira_issue_updated_with_the_secret_in_its_url(client, fake, item):
    issue = created_issue(fake, item, TrackerKind.JIRA, external_id="OPS-42")
    body = json.dumps(
        {
            "webhookEvent": "jira:issue_updated",
            "issue": {
                "key": "OPS-42",
                "fields": {"status": {"name": "Done", "statusCategory": {"key": "done"}}},
            },
        }
    )
    wrong = reverse("integrations:tracker_webhook_secret", args=[issue.connection.pk, "guess"])
    assert client.post(wrong, body, content_type="application/json").status_code == 404
    item.refresh_from_db()
    assert item.status == ActionItemStatus.OPEN
    client.post(issue.connection.webhook_path(), body, content_type="application/json")
    item.refresh_from_db()
    assert item.status == ActionItemStatus.DONE


# --- settings ----------------------------------------------------------------------------------------------


def test_staff_connect_github_and_see_the_webhook_secret_once(client_for):
    staff = factories.UserFactory(is_staff=True)
    client = client_for(staff)
    response = client.post(
        reverse("integrations:tracker_add"),
        {"kind": "github", "base_url": "", "project": "acme/api", "email": "", "token": "ghp_topsecret"},
    )
    connection = TrackerConnection.objects.get()
    page = response.content.decode()
    assert connection.webhook_secret in page
    assert "ghp_topsecret" not in page
    assert connection.token == "ghp_topsecret"
    settings_page = client.get(reverse("integrations:settings")).content.decode()
    assert "acme/api" in settings_page
    assert connection.webhook_secret not in settings_page
    assert "ghp_topsecret" not in settings_page


def test_jira_needs_its_site_and_email(client_for):
    client = client_for(factories.UserFactory(is_staff=True))
    response = client.post(
        reverse("integrations:tracker_add"), {"kind": "jira", "project": "OPS", "token": "t"}
    )
    assert "Jira needs its site address" in response.content.decode()
    assert not TrackerConnection.objects.exists()


def test_people_who_are_not_staff_cannot_connect_trackers(client_for):
    response = client_for(factories.UserFactory()).get(reverse("integrations:tracker_add"))
    assert response.status_code == 302


def test_the_task_retries_after_the_trackers_wait_when_a_broker_runs_it(fake, item, monkeypatch):
    fake.failures = [429]
    issue = TrackerIssue.objects.create(action_item=item, connection=connect(fake), requested_by=item.owner)
    retried = {}

    def retry(**kwargs):
        retried.update(kwargs)
        return RuntimeError("retry")

    monkeypatch.setattr(create_tracker_issue, "retry", retry)
    conf = create_tracker_issue.app.conf
    eager, conf.task_always_eager = conf.task_always_eager, False
    try:
        with pytest.raises(RuntimeError):
            create_tracker_issue.run(issue.pk)
    finally:
        conf.task_always_eager = eager
    assert retried == {"countdown": 30.0, "max_retries": trackers.MAX_ATTEMPTS}


def test_a_restricted_postmortems_content_stays_out_of_the_tracker(
    client_for, fake, django_capture_on_commit_callbacks
):
    factor = factories.ContributingFactorFactory(
        description="Leaked signing key in a public gist",
        incident=factories.IncidentFactory(visibility="restricted", title="Signing key leaked"),
    )
    item = factories.ActionItemFactory(
        title="Rotate signing keys", incident=factor.incident, factors=[factor]
    )
    press(client_for(item.incident.owner), item, connect(fake), django_capture_on_commit_callbacks)
    sent = json.dumps(fake.requests[0]["json"])
    assert "Rotate signing keys" in sent
    assert f"/postmortems/{item.incident.pk}/" in sent
    assert "Signing key leaked" not in sent
    assert "gist" not in sent
