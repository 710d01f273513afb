import datetime as dt

from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from postmortems.models import ActionItemStatus, Activity, ActivityVerb
from tests.factories import UserFactory, full_incident


def test_person_marks_an_action_item_done_on_a_published_postmortem(
    transactional_db, live_server, new_page, sign_in
):
    dana = UserFactory(username="dana", password="hindsight-demo", display_name="Dana Doer")
    incident = full_incident()
    item = incident.action_items.first()
    item.owner = dana
    item.due_date = timezone.localdate() - dt.timedelta(days=2)
    item.save()
    page = new_page()
    sign_in(page, "dana", "hindsight-demo")

    page.get_by_role("link", name="Action items").click()
    row = page.locator(f"#item-{item.pk}")
    expect(row).to_contain_text(item.title)
    expect(row).to_contain_text("overdue")
    expect(page.get_by_test_id("action-counts")).to_contain_text("1 overdue")
    row.get_by_label("Status").select_option("Done")
    expect(row.get_by_label("Reason (for won’t do)")).to_be_hidden()
    row.get_by_role("button", name="Save").click()

    expect(page.get_by_role("alert")).to_contain_text("Open → Done")
    expect(page.get_by_test_id("no-items")).to_be_visible()  # done: off the default (unfinished) list
    page.goto(f"{live_server.url}{incident.get_absolute_url()}")
    action = page.locator(f"#action-{item.pk}")
    expect(action.locator(".action-status")).to_have_text("Done")
    expect(action).not_to_contain_text("overdue")
    expect(page.locator("#activity")).to_contain_text("updated an action item")
    item.refresh_from_db()
    incident.refresh_from_db()
    assert item.status == ActionItemStatus.DONE
    assert item.completed_at is not None
    assert incident.revision == 1
    assert Activity.objects.filter(
        incident=incident, verb=ActivityVerb.ACTION_ITEM_UPDATED, actor=dana
    ).exists()


def test_wont_do_without_a_reason_is_refused_next_to_the_field(
    transactional_db, live_server, new_page, sign_in
):
    dana = UserFactory(username="dana", password="hindsight-demo")
    incident = full_incident()
    item = incident.action_items.first()
    item.owner = dana
    item.save()
    page = new_page(viewport={"width": 390, "height": 844})
    sign_in(page, "dana", "hindsight-demo")
    page.goto(f"{live_server.url}/action-items/")

    row = page.locator(f"#item-{item.pk}")
    row.get_by_label("Status").select_option("Won’t do")
    reason = row.get_by_label("Reason (for won’t do)")
    expect(reason).to_be_visible()
    # Skip the browser's own check, as a browser without JavaScript would: the server says it too.
    reason.evaluate("element => element.required = false")
    row.get_by_role("button", name="Save").click()

    expect(page.locator(".invalid-feedback")).to_have_text("Say why it won’t be done: a reason is required.")
    page.get_by_label("Reason (for won’t do)").fill("The service is being retired")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("The service is being retired")
    item.refresh_from_db()
    assert item.status == ActionItemStatus.WONT_DO


def test_insights_renders_its_charts_for_the_demo_data(
    transactional_db, live_server, new_page, sign_in, tmp_path
):
    call_command("seed_demo", public_data=tmp_path / "absent")
    page = new_page()
    sign_in(page, "alice", "hindsight-demo")

    page.get_by_role("link", name="Insights").click()

    expect(page.get_by_role("heading", name="Insights", level=1)).to_be_visible()
    monthly = page.get_by_test_id("chart-monthly")
    expect(monthly).to_be_visible()
    assert monthly.locator("rect.bar").count() >= 12
    expect(page.get_by_role("img", name="Incidents per month")).to_be_visible()
    for name in ("detect", "mitigate", "resolve", "publish"):
        expect(page.get_by_test_id(f"chart-{name}")).to_be_visible()
        expect(page.get_by_test_id(f"median-{name}")).not_to_have_text("—")
    box = monthly.bounding_box()
    assert box is not None
    assert box["width"] > 600
    assert box["height"] > 150
    page.get_by_text("Show as a table").first.click()
    expect(page.get_by_test_id("monthly-table")).to_be_visible()
    expect(page.locator("#follow-through")).to_contain_text("n =")
