import re
from time import sleep

from playwright.sync_api import expect

from postmortems.models import ActionItem, ContributingFactor, Incident, Lesson, Status
from tests.factories import IncidentFactory, UserFactory

PASSWORD = "hindsight-demo"


def save_and_continue(page):
    page.get_by_role("button", name="Save and continue").click()
    page.wait_for_load_state()


def save_draft(page):
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_load_state()


def new_row_index(page, prefix):
    return int(page.locator(f"#id_{prefix}-TOTAL_FORMS").input_value())


def test_author_writes_a_whole_postmortem_through_every_step(
    transactional_db, live_server, new_page, sign_in
):
    UserFactory(username="alice", password=PASSWORD, display_name="Alice Moreau")
    UserFactory(username="rita", display_name="Rita Reviewer")
    page = new_page()
    sign_in(page, "alice", PASSWORD)

    # 1 basics: saving it creates the draft
    page.get_by_role("link", name="New postmortem").click()
    page.get_by_label("Title").fill("Checkout API failed, affecting customers in the EU region")
    page.get_by_label("Incident date").fill("2026-03-04")
    page.get_by_label("Time zone").fill("Europe/Berlin")
    page.get_by_label("Started").fill("2026-03-04T09:00")
    page.get_by_label("Detected").fill("2026-03-04T09:12")
    page.get_by_label("Mitigated").fill("2026-03-04T10:05")
    page.get_by_label("Resolved").fill("2026-03-04T12:00")
    page.get_by_label("Tags").fill("database, configuration")
    # The people picker, by keyboard: type part of a name, pick the match with Enter.
    committee = page.get_by_role("combobox", name="Peer-review committee")
    committee.press_sequentially("revie")
    rita = page.get_by_role("option", name=re.compile("Rita Reviewer"))
    expect(rita).to_have_attribute("aria-selected", "true")
    committee.press("Enter")
    expect(committee).to_have_value("rita, ")
    save_and_continue(page)
    incident = Incident.objects.get()
    expect(page).to_have_url(re.compile(rf"/postmortems/{incident.pk}/edit/impact/$"))

    # 2 impact
    page.locator("#id_summary").fill("A **connection-pool** change exhausted database connections.")
    page.locator("#id_supporting_data").fill(
        "| minute | errors |\n|---|---|\n| 09:00 | 12 |\n| 09:10 | 4512 |"
    )
    expect(page.locator(".markdownx-preview td").nth(3)).to_have_text("4512")
    page.locator("#id_customer_impact").fill("EU customers could not check out.")
    page.get_by_label("Number of impacted customers").fill("1234")
    save_and_continue(page)

    # 3 timeline: three events, rows added in the page
    events = [
        ("2026-03-04T09:00", "trigger", "Config push sets pool size to 5"),
        ("2026-03-04T09:12", "detection", "Error-rate alert fires"),
        ("2026-03-04T10:05", "mitigation", "Config rolled back"),
    ]
    for i, (time, kind, text) in enumerate(events):
        if i:
            page.get_by_role("button", name="Add another event").click()
        page.locator(f'[name="timeline-{i}-occurred_at"]').fill(time)
        page.locator(f'[name="timeline-{i}-kind"]').select_option(kind)
        page.locator(f'[name="timeline-{i}-description"]').fill(text)
    page.locator('[name="timeline-1-link"]').fill("https://grafana.example.com/d/errors")
    save_and_continue(page)

    # 4 analysis
    page.locator("#id_response_analysis").fill("**Detection** took twelve minutes.")
    page.locator("#id_post_incident_analysis").fill("The config push skipped staging.")
    save_and_continue(page)

    # 5 factors: a why-tree three levels deep, with a human-error factor that has a "why?" child
    page.locator('[name="factors-0-description"]').fill("Pool size set to 5 in production")
    save_draft(page)
    chain = [
        ("Pool size set to 5 in production", "An engineer typed the wrong pool size", True),
        ("An engineer typed the wrong pool size", "No validation of config values before deploy", False),
    ]
    for parent_text, text, human_error in chain:
        parent = ContributingFactor.objects.get(description=parent_text)
        index = new_row_index(page, "factors")
        page.locator(f'[data-why="{parent.pk}"]').click()
        expect(page.locator(f'[name="factors-{index}-parent"]')).to_have_value(str(parent.pk))
        page.locator(f'[name="factors-{index}-description"]').fill(text)
        page.locator(f'[name="factors-{index}-category"]').select_option("process")
        if human_error:
            page.locator(f'[name="factors-{index}-is_human_error"]').check()
        save_draft(page)
    leaf = ContributingFactor.objects.get(description__startswith="No validation")
    assert leaf.parent.parent.description == "Pool size set to 5 in production"
    save_and_continue(page)

    # 6 lessons
    page.locator('[name="lessons-0-text"]').fill("Config changes need the same review as code.")
    page.get_by_role("button", name="Add another lesson").click()
    page.locator('[name="lessons-1-text"]').fill("Staging must see every config push.")
    save_and_continue(page)

    # 7 action items: linked to the leaf factor and the lessons
    lessons = list(Lesson.objects.order_by("id"))
    for i, (title, priority) in enumerate(
        [
            ("Validate pool sizes in CI", "P1"),
            ("Route config pushes through staging", "P2"),
            ("Alert sooner", "P3"),
        ]
    ):
        if i:
            page.get_by_role("button", name="Add another action item").click()
        page.locator(f'[name="actions-{i}-title"]').fill(title)
        owner = page.locator(f'[name="actions-{i}-owner"]')
        if i == 0:  # picked from the type-ahead with the keyboard
            owner.press_sequentially("Alice M")
            owner.press("ArrowDown")
            expect(page.get_by_role("option", name=re.compile("Alice Moreau"))).to_be_visible()
            owner.press("Enter")
            expect(owner).to_have_value("alice")
        else:  # or typed as a username, as it works without JavaScript
            owner.fill("alice")
        page.locator(f'[name="actions-{i}-priority"]').select_option(priority)
        page.locator(f'[name="actions-{i}-backlog_link"]').fill(f"https://tracker.example.com/OPS-{100 + i}")
        page.locator(f'[name="actions-{i}-factors"][value="{leaf.pk}"]').check()
        page.locator(f'[name="actions-{i}-lessons"][value="{lessons[min(i, 1)].pk}"]').check()
    save_and_continue(page)

    # 8 review: the whole postmortem with its checklist, nothing blocking
    expect(page).to_have_url(re.compile(rf"/postmortems/{incident.pk}/edit/review/$"))
    expect(page.locator("#checks")).to_contain_text("Every check of the template passes.")
    expect(page.locator(".step-progress li.done")).to_have_count(8)
    page.get_by_role("link", name=re.compile("Open the postmortem")).click()

    detail = page.locator("article.postmortem")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Checkout API failed")
    expect(detail).to_contain_text("Rita Reviewer")
    expect(detail.locator("#summary strong")).to_have_text("connection-pool")
    expect(detail.locator("#supporting-data table td").nth(3)).to_have_text("4512")
    expect(detail.locator("#customer-impact")).to_contain_text("1234 impacted customers")
    expect(detail.locator("#timeline li")).to_have_count(3)
    expect(detail.locator("#timeline")).to_contain_text("2026-03-04 09:12")
    expect(detail.locator("#factors")).to_contain_text("No validation of config values before deploy")
    expect(detail.locator("#factors")).to_contain_text("human error")
    expect(detail.locator("#lessons li")).to_have_count(2)
    expect(detail.locator('#action-items [id^="action-"]')).to_have_count(3)
    expect(detail.locator("#action-items")).to_contain_text("Route config pushes through staging")
    expect(detail.locator("#response-analysis strong")).to_have_text("Detection")
    incident.refresh_from_db()
    assert incident.status == Status.DRAFT
    assert ActionItem.objects.filter(incident=incident, lessons__isnull=False).distinct().count() == 3


def test_markdown_typed_and_tab_closed_is_there_on_reopening(
    transactional_db, live_server, new_page, sign_in
):
    alice = UserFactory(username="alice", password=PASSWORD)
    incident = IncidentFactory(owner=alice, status=Status.DRAFT, summary="")
    page = new_page()
    sign_in(page, "alice", PASSWORD)
    url = f"{live_server.url}/postmortems/{incident.pk}/edit/impact/"
    page.goto(url)

    summary = page.locator("#id_summary")
    summary.press_sequentially("The pool ran dry.", delay=10)
    expect(page.locator("[data-autosave-status]")).to_have_text(re.compile(r"^Saved \d\d:\d\d$"))
    incident.refresh_from_db()
    assert incident.summary == "The pool ran dry."

    page.context.set_offline(True)
    summary.press_sequentially(" Offline words.", delay=10)
    expect(page.locator("[data-autosave-status]")).to_contain_text("not saved — offline", ignore_case=True)
    page.context.set_offline(False)
    expect(page.locator("[data-autosave-status]")).to_have_text(
        re.compile(r"^Saved \d\d:\d\d$"), timeout=15_000
    )

    summary.press_sequentially(" Typed just before closing.", delay=5)
    context = page.context
    page.close()

    reopened = context.new_page()
    reopened.goto(url)
    expect(reopened.locator("#id_summary")).to_have_value(
        "The pool ran dry. Offline words. Typed just before closing."
    )


def test_two_authors_edit_the_same_step_and_the_second_sees_both_versions(
    transactional_db, live_server, new_page, sign_in
):
    alice = UserFactory(username="alice", password=PASSWORD, display_name="Alice Moreau")
    bob = UserFactory(username="bob", password=PASSWORD, display_name="Bob Okafor")
    incident = IncidentFactory(owner=alice, co_authors=[bob], status=Status.DRAFT, summary="First draft")
    url = f"{live_server.url}/postmortems/{incident.pk}/edit/impact/"
    first, second = new_page(), new_page()
    sign_in(first, "alice", PASSWORD)
    sign_in(second, "bob", PASSWORD)
    first.goto(url)
    second.goto(url)

    first.locator("#id_summary").fill("Alice's account of the outage")
    save_draft(first)
    expect(first.get_by_role("alert").filter(has_text="Saved.")).to_be_visible()

    second.locator("#id_summary").fill("Bob's account of the outage")
    save_draft(second)

    expect(second.get_by_test_id("conflict")).to_contain_text("Alice Moreau saved revision")
    expect(second.get_by_test_id("saved-version")).to_contain_text("Alice's account of the outage")
    expect(second.locator("#id_summary")).to_have_value("Bob's account of the outage")
    incident.refresh_from_db()
    assert incident.summary == "Alice's account of the outage"

    second.locator("#id_summary").fill("Alice's account, merged with Bob's")
    save_draft(second)
    expect(second.locator("#id_summary")).to_have_value("Alice's account, merged with Bob's")
    incident.refresh_from_db()
    assert incident.summary == "Alice's account, merged with Bob's"


def test_unsaved_text_stays_with_its_author_on_a_shared_browser(
    transactional_db, live_server, new_page, sign_in
):
    alice = UserFactory(username="alice", password=PASSWORD)
    bob = UserFactory(username="bob", password=PASSWORD)
    incident = IncidentFactory(owner=alice, status=Status.DRAFT, summary="Saved by the server.")
    incident.co_authors.add(bob)
    url = f"{live_server.url}/postmortems/{incident.pk}/edit/impact/"
    alice_key = f"hindsight:{alice.pk}:{incident.pk}:impact:summary"

    page = new_page()
    sign_in(page, "alice", PASSWORD)
    page.goto(url)
    page.context.set_offline(True)
    page.locator("#id_summary").press_sequentially(" Alice's unsaved words.", delay=5)
    expect(page.locator("[data-autosave-status]")).to_contain_text("offline", ignore_case=True)
    kept = page.evaluate("key => localStorage.getItem(key)", alice_key)
    assert "Alice's unsaved words." in kept
    context = page.context
    page.close()  # before it comes back online
    # Closing sends the words once more (authoring.js: a beacon on pagehide). The beacon outlives the page
    # and with it the page's offline emulation, so it may reach the server (two CI runs saw it do so):
    # that is Alice saving her own words. Once it has had its chance, the server's copy changes, so that
    # what Bob is shown tells the server's words from the ones Alice's browser kept.
    sleep(1)
    incident = Incident.objects.get(pk=incident.pk)
    incident.summary = "Changed on the server since."
    incident.bump_revision(steps=["impact"], also=("summary",))
    saved = (incident.revision, incident.activities.count())
    context.set_offline(False)
    page = context.new_page()
    page.goto(f"{live_server.url}/postmortems/")
    with page.expect_navigation():
        page.locator("form[data-sign-out]").evaluate("form => form.requestSubmit()")
    assert page.evaluate("key => localStorage.getItem(key)", alice_key) is None
    # As if Alice had only closed the tab without signing out: Bob must not get her words either.
    page.evaluate("([key, value]) => localStorage.setItem(key, value)", [alice_key, kept])

    sign_in(page, "bob", PASSWORD)
    page.goto(url)
    expect(page.locator("#id_summary")).to_have_value("Changed on the server since.")
    page.wait_for_timeout(1500)
    incident.refresh_from_db()
    assert incident.summary == "Changed on the server since."
    assert (incident.revision, incident.activities.count()) == saved  # Bob's visit saved nothing
