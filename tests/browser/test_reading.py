from playwright.sync_api import expect

from tests.factories import UserFactory, full_incident


def test_person_signs_in_and_reads_a_postmortem(transactional_db, live_server, new_page, sign_in):
    UserFactory(username="alice", password="hindsight-demo", display_name="Alice Moreau")
    incident = full_incident()
    page = new_page()

    page.goto(f"{live_server.url}{incident.get_absolute_url()}")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next={incident.get_absolute_url()}")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("hindsight-demo")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text(incident.title)
    expect(page.get_by_test_id("signed-in-user")).to_contain_text("Alice Moreau")
    expect(page.locator("#customer-impact")).to_contain_text("1234 impacted customers")
    expect(page.locator("#timeline li")).to_have_count(3)
    expect(page.locator("#factors")).to_contain_text("Why 2: no review of config values")
    expect(page.locator("#supporting-data table td").nth(3)).to_have_text("4512")


def test_person_opens_a_postmortem_from_the_list(transactional_db, live_server, new_page, sign_in):
    UserFactory(username="bob", password="hindsight-demo")
    incident = full_incident()
    page = new_page(viewport={"width": 390, "height": 844})
    sign_in(page, "bob", "hindsight-demo")
    page.get_by_role("link", name=incident.title).click()
    expect(page.locator("#action-items")).to_contain_text("Validate pool sizes in CI 0")
