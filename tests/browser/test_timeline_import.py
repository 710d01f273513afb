"""A person imports a Slack channel export and pasted lines into a draft's timeline, and keeps part of it."""

import json
import re

from playwright.sync_api import expect

from postmortems.models import Status, TimelineEvent
from tests.factories import IncidentFactory, UserFactory
from tests.integrations.test_timeline_import import SLACK_DAY, SLACK_USERS

PASSWORD = "hindsight-demo"


def test_author_imports_pasted_lines_and_a_slack_export_and_accepts_part(
    transactional_db, live_server, new_page, sign_in, tmp_path
):
    alice = UserFactory(username="alice", password=PASSWORD)
    incident = IncidentFactory(owner=alice, status=Status.DRAFT, time_zone="Europe/Berlin")
    (tmp_path / "users.json").write_text(json.dumps(SLACK_USERS))
    (tmp_path / "2026-03-04.json").write_text(json.dumps(SLACK_DAY))
    page = new_page()
    sign_in(page, "alice", PASSWORD)

    page.goto(f"{live_server.url}/postmortems/{incident.pk}/edit/timeline/")
    page.get_by_role("link", name="Import events").click()
    page.get_by_label("Paste events").fill(
        "14:02 Deploy of api v2.3 started\n14:09 Error-rate alert fired\nsomething without a time"
    )
    page.get_by_label("Or upload files").set_input_files(
        [tmp_path / "users.json", tmp_path / "2026-03-04.json"]
    )
    page.get_by_role("button", name="Read events").click()

    expect(page.get_by_test_id("import-problem")).to_contain_text("Line 3 does not start with a time")
    rows = page.locator("tr[data-candidate]")
    expect(rows).to_have_count(6)
    assert TimelineEvent.objects.count() == 0  # nothing added before accepting

    # Filter down to Bob's rollback in the chat and tick it; keep the pasted deploy, drop the pasted alert.
    page.get_by_placeholder("Filter by text").fill("rolling back")
    expect(page.locator("tr[data-candidate]:visible")).to_have_count(1)
    page.get_by_role("button", name="Tick all shown", exact=True).click()
    page.get_by_placeholder("Filter by text").fill("")
    alert_row = rows.filter(has=page.locator("textarea", has_text="Error-rate alert fired"))
    alert_row.get_by_label("Add this event").uncheck()
    deploy_row = rows.filter(has=page.locator("textarea", has_text="Deploy of api v2.3 started"))
    deploy_row.get_by_label("Description").fill("Deploy of api v2.3 started (canary skipped)")
    expect(page.locator("[data-candidate-count]")).to_have_text("6 of 6 shown, 2 ticked")
    page.get_by_role("button", name="Add selected events").click()

    expect(page).to_have_url(re.compile(rf"/postmortems/{incident.pk}/edit/timeline/$"))
    expect(page.get_by_text("2 events added to the timeline.")).to_be_visible()
    page.goto(f"{live_server.url}/postmortems/{incident.pk}/")
    timeline = page.locator("#timeline, section:has(h2:text('Timeline'))").first
    expect(timeline).to_contain_text("Deploy of api v2.3 started (canary skipped)")
    expect(timeline).to_contain_text("Bob Builder (in a thread): rolling back now")
    text = timeline.inner_text()
    assert text.index("canary skipped") < text.index("rolling back now")
    assert "Error-rate alert fired" not in text
    assert re.search(r"14:02.*CET", text), text  # shown in the incident's zone, with its name
