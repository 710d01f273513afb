"""A real Celery worker on Redis creates an action item's tracker issue after the request commits, retrying
a tracker that fails first (eager mode would hide serialisation and retry bugs)."""

from __future__ import annotations

import time

import pytest

from integrations import trackers
from integrations.models import TrackerConnection, TrackerIssue, TrackerIssueStatus, TrackerKind
from tests import factories
from tests.integrations.fake_tracker import FakeTracker
from tests.postmortems.test_celery_worker import broker_queue, worker  # noqa: F401 - fixtures

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_creates_the_issue_after_a_failure(monkeypatch, request):
    monkeypatch.setenv("TRACKER_RETRY_SECONDS", "0.5")
    _, log = request.getfixturevalue("worker")
    fake = FakeTracker(failures=[500]).start()
    try:
        connection = TrackerConnection.objects.create(
            kind=TrackerKind.GITHUB, base_url=fake.url, project="acme/api", token="t"
        )
        item = factories.ActionItemFactory()
        trackers.request_issue(item, connection, by=item.owner)  # commits: the task goes to Redis

        deadline, issue = time.monotonic() + 45, None
        while time.monotonic() < deadline:
            issue = TrackerIssue.objects.get()
            if issue.status != TrackerIssueStatus.PENDING:
                break
            time.sleep(0.2)
        assert issue.status == TrackerIssueStatus.CREATED, log.read_text()[-3000:]
        assert issue.attempts == 2
        assert len(fake.requests) == 2
        item.refresh_from_db()
        assert item.backlog_link == "https://github.com/acme/api/issues/42"
    finally:
        fake.stop()
