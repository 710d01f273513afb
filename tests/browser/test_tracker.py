"""An action item's owner creates its issue in the tracker and sees the link; closing it marks it done."""

import hashlib
import hmac
import json

import requests
from playwright.sync_api import expect

from integrations.models import TrackerConnection, TrackerKind
from postmortems.models import ActionItemStatus
from tests.factories import ActionItemFactory, UserFactory
from tests.integrations.fake_tracker import FakeTracker

PASSWORD = "hindsight-demo"


def test_owner_creates_the_issue_and_the_tracker_closes_it(transactional_db, live_server, new_page, sign_in):
    fake = FakeTracker().start()
    try:
        connection = TrackerConnection.objects.create(
            kind=TrackerKind.GITHUB, base_url=fake.url, project="acme/api", token="t"
        )
        bob = UserFactory(username="bob", password=PASSWORD)
        item = ActionItemFactory(owner=bob, title="Cap the connection pool")
        page = new_page()
        sign_in(page, "bob", PASSWORD)
        page.goto(f"{live_server.url}/action-items/{item.pk}/")
        page.get_by_role("button", name="Create issue in GitHub").click()
        link = page.get_by_role("link", name="GitHub issue 42")
        expect(link).to_have_attribute("href", "https://github.com/acme/api/issues/42")
        expect(page.get_by_test_id("tracker-state")).to_have_text("Open")

        body = json.dumps({"action": "closed", "issue": {"number": 42}}).encode()
        signature = "sha256=" + hmac.new(connection.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        response = requests.post(
            f"{live_server.url}{connection.webhook_path()}",
            data=body,
            headers={"X-GitHub-Event": "issues", "X-Hub-Signature-256": signature},
            timeout=10,
        )
        assert response.json() == {"changed": True}
        page.reload()
        expect(page.get_by_test_id("tracker-state")).to_have_text("Closed")
        item.refresh_from_db()
        assert item.status == ActionItemStatus.DONE
    finally:
        fake.stop()
