from playwright.sync_api import expect

from tests.browser.conftest import is_csp_violation
from tests.factories import UserFactory, full_incident


def test_the_policy_refuses_inline_script_and_foreign_images_and_says_so(
    transactional_db, live_server, browser
):
    # A context of its own: new_page's would (rightly) fail this test for the violations it provokes.
    context = browser.new_context()
    messages = []
    context.on("console", lambda message: messages.append(message.text))
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.injected = true";
          document.body.append(script);
          const pixel = document.createElement("img");
          pixel.src = "https://tracker.example/pixel.png";
          document.body.append(pixel);
        }"""
    )
    page.wait_for_timeout(300)
    assert page.evaluate("window.injected") is None
    violations = [text for text in messages if is_csp_violation(text)]
    assert any("script" in text for text in violations), messages
    assert any("tracker.example" in text for text in violations), messages
    context.close()


def test_five_wrong_passwords_pause_sign_in_with_a_clear_message(transactional_db, live_server, new_page):
    UserFactory(username="carol", password="hindsight-demo")
    page = new_page()
    for _ in range(5):
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill("carol")
        page.get_by_label("Password").fill("not her password")
        page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign-in paused for 15 minutes")
    expect(page.get_by_test_id("locked-out")).to_contain_text("Too many failed sign-ins for “carol”")

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("carol")
    page.get_by_label("Password").fill("hindsight-demo")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign-in paused for 15 minutes")


def test_the_admin_keeps_to_the_policy(transactional_db, live_server, new_page):
    UserFactory(username="root", password="hindsight-demo", is_staff=True, is_superuser=True)
    incident = full_incident()
    page = new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("hindsight-demo")
    page.get_by_role("button", name="Log in").click()
    for path in [
        "/admin/",
        "/admin/postmortems/incident/",
        f"/admin/postmortems/incident/{incident.pk}/change/",
        "/admin/accounts/securityevent/",
        "/accounts/profile/",
        "/settings/integrations/",
        f"/postmortems/{incident.pk}/",
    ]:
        page.goto(f"{live_server.url}{path}")
        expect(page.locator("body")).to_be_visible()


def test_the_api_docs_keep_to_the_policy(transactional_db, live_server, new_page, sign_in):
    UserFactory(username="dana", password="hindsight-demo")
    page = new_page()
    sign_in(page, "dana", "hindsight-demo")
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.get_by_text("/api/v1/postmortems/").first).to_be_visible()
