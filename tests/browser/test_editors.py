"""The timeline and "why?"-tree editors (issue 17): keyboard first, paste several lines, remove at once with
undo, indent and outdent; and what was typed survives a closed tab until it is saved."""

import datetime as dt
import re
import time

from playwright.sync_api import expect

from postmortems.models import ContributingFactor, Status, TimelineEvent
from tests.factories import ContributingFactorFactory, IncidentFactory, UserFactory

PASSWORD = "hindsight-demo"


def test_timeline_editor_by_keyboard_and_paste_with_undo_and_a_local_copy(
    transactional_db, live_server, new_page, sign_in
):
    alice = UserFactory(username="alice", password=PASSWORD)
    incident = IncidentFactory(
        owner=alice, status=Status.DRAFT, time_zone="UTC", incident_date=dt.date(2026, 3, 4)
    )
    url = f"{live_server.url}/postmortems/{incident.pk}/edit/timeline/"
    page = new_page()
    sign_in(page, "alice", PASSWORD)
    page.goto(url)
    rows = page.locator(".tl-rows > [data-row]:visible")
    expect(rows).to_have_count(1)  # an empty timeline starts with one row, and no other blank row

    page.locator('[name="timeline-0-occurred_at"]').fill("2026-03-04T09:12")
    page.locator('[name="timeline-0-description"]').fill("Error-rate alert fires")
    page.locator('[name="timeline-0-description"]').press("Enter")  # adds a row below, focused
    expect(rows).to_have_count(2)
    expect(page.locator('[name="timeline-1-occurred_at"]')).to_be_focused()
    expect(page.locator('[name="timeline-1-occurred_at"]')).to_have_value("2026-03-04T09:12")
    page.locator('[name="timeline-1-occurred_at"]').fill("2026-03-04T09:00")
    page.locator('[name="timeline-1-description"]').fill("Config push sets pool size to 5")

    page.get_by_text("Paste several lines").click()
    page.get_by_label("One event per line").fill(
        "09:40 Wrong guess: restarted the pool\n10:05 Config rolled back\n  and verified on the dashboard"
    )
    page.get_by_role("button", name="Add these events").click()
    expect(rows).to_have_count(4)
    expect(page.locator('[name="timeline-3-description"]')).to_have_value(
        "Config rolled back and verified on the dashboard"
    )

    # Remove at once, undo, remove again: it goes when the step is saved.
    wrong = page.locator("[data-row]", has=page.locator('[name="timeline-2-description"]'))
    wrong.get_by_role("button", name="Remove this event").click()
    expect(rows).to_have_count(3)
    page.get_by_role("button", name="Undo").click()
    expect(rows).to_have_count(4)
    wrong.get_by_role("button", name="Remove this event").click()
    expect(rows).to_have_count(3)

    # The tab closes before anyone saves: this browser kept the rows; opening the step again restores them.
    context = page.context
    page.close(run_before_unload=False)
    page = context.new_page()
    page.goto(url)
    # Restored, then autosaved at once: the status says one or the other, depending on the moment.
    expect(page.locator("[data-autosave-status]")).to_contain_text(re.compile("Restored rows|Saved"))
    expect(page.locator(".tl-rows > [data-row]:visible")).to_have_count(3)
    expect(page.locator('[name="timeline-1-description"]')).to_have_value("Config push sets pool size to 5")
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_load_state()

    saved = list(TimelineEvent.objects.filter(incident=incident).values_list("description", flat=True))
    assert saved == [  # sorted by time
        "Config push sets pool size to 5",
        "Error-rate alert fires",
        "Config rolled back and verified on the dashboard",
    ]
    expect(page.locator('[name="timeline-0-description"]')).to_have_value("Config push sets pool size to 5")
    # Saved: nothing is restored any more.
    page.goto(url)
    expect(page.locator("[data-autosave-status]")).to_have_text("")


def test_why_tree_editor_indents_outdents_and_answers_why(transactional_db, live_server, new_page, sign_in):
    alice = UserFactory(username="alice", password=PASSWORD)
    incident = IncidentFactory(owner=alice, status=Status.DRAFT)
    pool = ContributingFactorFactory(incident=incident, description="Pool size set to 5")
    review = ContributingFactorFactory(incident=incident, description="No review of config values")
    page = new_page()
    sign_in(page, "alice", PASSWORD)
    page.goto(f"{live_server.url}/postmortems/{incident.pk}/edit/factors/")
    expect(page.locator("[data-row]:visible")).to_have_count(2)  # no blank row

    second = page.locator(f'[data-factor="{review.pk}"]')
    second.get_by_role("button", name="Indent").click()
    expect(second).to_have_attribute("data-depth", "1")
    first = page.locator(f'[data-factor="{pool.pk}"]')
    first.get_by_role("button", name="Why?").click()
    answer = page.locator("[data-row]:visible").nth(2)
    expect(answer).to_have_attribute("data-depth", "1")
    expect(answer.locator("textarea")).to_be_focused()
    answer.locator("textarea").fill("Staging has no copy of production config")
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_load_state()

    review.refresh_from_db()
    assert review.parent == pool
    assert ContributingFactor.objects.get(description__startswith="Staging").parent == pool

    second = page.locator(f'[data-factor="{review.pk}"]')
    second.get_by_role("button", name="Outdent").click()
    expect(second).to_have_attribute("data-depth", "0")
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_load_state()
    review.refresh_from_db()
    assert review.parent is None


def _eventually(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.2)


def test_timeline_rows_autosave_once_each_and_removal_waits_for_save(
    transactional_db, live_server, new_page, sign_in
):
    alice = UserFactory(username="alice", password=PASSWORD)
    incident = IncidentFactory(owner=alice, status=Status.DRAFT, time_zone="UTC")
    events = TimelineEvent.objects.filter(incident=incident)
    page = new_page()
    sign_in(page, "alice", PASSWORD)
    page.goto(f"{live_server.url}/postmortems/{incident.pk}/edit/timeline/")

    page.locator('[name="timeline-0-occurred_at"]').fill("2026-03-04T09:00")
    page.locator('[name="timeline-0-description"]').fill("Config push")
    page.locator('[name="timeline-0-description"]').press("Enter")  # a new row, not complete yet
    expect(page.locator("[data-autosave-status]")).to_contain_text("Saved")
    _eventually(lambda: list(events.values_list("description", flat=True)) == ["Config push"])

    page.locator('[name="timeline-1-occurred_at"]').fill("2026-03-04T09:12")
    page.locator('[name="timeline-1-description"]').fill("Alert fires")
    _eventually(lambda: events.count() == 2)
    page.locator('[name="timeline-0-description"]').fill("Config push sets pool size to 5")
    _eventually(lambda: events.filter(description="Config push sets pool size to 5").exists())
    assert events.count() == 2  # edited, never added twice

    alert = page.locator("[data-row]", has=page.locator('[name="timeline-1-description"]'))
    alert.get_by_role("button", name="Remove this event").click()
    page.wait_for_timeout(2500)  # an autosave's chance
    assert events.count() == 2  # removed in the page only, undoable, until the step is saved
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_load_state()
    assert list(events.values_list("description", flat=True)) == ["Config push sets pool size to 5"]


def test_timeline_rows_saved_by_someone_else_meanwhile_show_both_versions(
    transactional_db, live_server, new_page, sign_in
):
    alice = UserFactory(username="alice", password=PASSWORD, display_name="Alice Moreau")
    bob = UserFactory(username="bob", password=PASSWORD)
    incident = IncidentFactory(owner=alice, co_authors=[bob], status=Status.DRAFT, time_zone="UTC")
    url = f"{live_server.url}/postmortems/{incident.pk}/edit/timeline/"
    first, second = new_page(), new_page()
    sign_in(first, "alice", PASSWORD)
    sign_in(second, "bob", PASSWORD)
    first.goto(url)
    second.goto(url)

    first.locator('[name="timeline-0-occurred_at"]').fill("2026-03-04T09:00")
    first.locator('[name="timeline-0-description"]').fill("Alice's trigger")
    expect(first.locator("[data-autosave-status]")).to_contain_text("Saved")  # autosaved

    second.locator('[name="timeline-0-occurred_at"]').fill("2026-03-04T09:05")
    second.locator('[name="timeline-0-description"]').fill("Bob's detection")
    expect(second.locator("[data-autosave-status]")).to_contain_text("someone else changed this step")
    second.get_by_role("button", name="Save draft").click()
    second.wait_for_load_state()
    expect(second.get_by_test_id("conflict")).to_contain_text("Alice Moreau saved revision")
    expect(second.get_by_test_id("saved-version")).to_contain_text("Alice's trigger")
    expect(second.locator('[name="timeline-0-description"]')).to_have_value("Bob's detection")  # not lost
    assert list(TimelineEvent.objects.filter(incident=incident).values_list("description", flat=True)) == [
        "Alice's trigger"
    ]
