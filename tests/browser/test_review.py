"""The review workflow end to end, as its three people live it, in a real Chromium."""

import re

from playwright.sync_api import expect

from postmortems.models import Incident, Status
from tests.factories import UserFactory, full_incident

PASSWORD = "hindsight-demo"


def _sign_off_row(page, name):
    return page.locator("#sign-offs li").filter(has_text=name)


def test_committee_reviews_the_owner_edits_and_publishes(transactional_db, live_server, new_page, sign_in):
    owner = UserFactory(username="olga", password=PASSWORD, display_name="Olga Owner")
    UserFactory(username="ada", password=PASSWORD, display_name="Ada Reviewer")
    UserFactory(username="ben", password=PASSWORD, display_name="Ben Reviewer")
    incident = full_incident(
        owner=owner,
        status=Status.DRAFT,
        committee=[UserFactory._meta.model.objects.get(username=n) for n in ("ada", "ben")],
    )
    url = f"{live_server.url}{incident.get_absolute_url()}"
    olga, ada, ben = new_page(), new_page(), new_page()
    for page, name in ((olga, "olga"), (ada, "ada"), (ben, "ben")):
        sign_in(page, name, PASSWORD)

    # The owner asks for review.
    olga.goto(url)
    olga.get_by_role("button", name="Request review").click()
    expect(olga.get_by_role("alert")).to_contain_text("Review requested")
    expect(olga.locator("header .badge").first).to_have_text("In review")
    expect(olga.get_by_role("button", name="Publish")).to_be_disabled()
    expect(olga.locator("#publish-blockers")).to_contain_text("Ada Reviewer has not signed off yet.")

    # Reviewer A finds it in their queue and approves.
    ada.goto(f"{live_server.url}/reviews/")
    expect(ada.locator(".review-queue li")).to_contain_text("Your sign-off is missing")
    ada.get_by_role("link", name=incident.title).click()
    expect(ada.locator("#checks")).to_be_visible()
    ada.get_by_role("button", name="Approve").click()
    expect(_sign_off_row(ada, "Ada Reviewer")).to_contain_text("Approve on revision 1")

    # Reviewer B requests changes, and says which, with a comment on the summary too.
    ben.goto(url)
    ben.get_by_role("button", name="Request changes").click()
    expect(ben.locator("#sign-off-comment-error")).to_contain_text("a comment is required to request changes")
    ben.get_by_label("Comment (required to request changes)").fill(
        "Name the config change that triggered it."
    )
    ben.get_by_role("button", name="Request changes").click()
    expect(_sign_off_row(ben, "Ben Reviewer")).to_contain_text("Request changes on revision 1")
    ben.locator("#comments-summary summary").click()
    ben.locator("#comment-text-summary").fill("Which pool: the API's or the worker's?")
    ben.locator("#comments-summary").get_by_role("button", name="Comment").click()
    expect(ben.locator("#comments-summary .comment")).to_contain_text(
        "Which pool: the API's or the worker's?"
    )

    # The owner edits the summary: revision 2, and A's approval goes stale.
    olga.goto(url)
    expect(olga.locator("#comments-summary")).to_contain_text("Which pool")
    expect(olga.locator("#publish-blockers")).to_contain_text("Ben Reviewer requested changes (revision 1).")
    olga.goto(f"{url}edit/impact/")
    olga.get_by_label("Summary").fill("Config change CHG-4411 cut the API's connection pool to 5.")
    olga.get_by_role("button", name="Save draft").click()
    expect(olga.get_by_role("alert").first).to_contain_text("Saved")
    olga.goto(url)
    expect(olga.locator("header")).to_contain_text("revision 2")
    expect(_sign_off_row(olga, "Ada Reviewer").locator(".badge")).to_have_text("stale")
    expect(olga.locator("#publish-blockers")).to_contain_text(
        "Ada Reviewer approved revision 1; it is now revision 2, so they must approve again."
    )

    # A sees exactly what changed since their sign-off, on the page and in the queue, and approves again.
    ada.goto(f"{live_server.url}/reviews/")
    expect(ada.locator(".review-queue li .badge.text-bg-warning")).to_have_text("Stale")
    ada.get_by_role("link", name="See what changed").click()
    changes = ada.locator("#changes")
    expect(changes).to_contain_text("You approved revision 1; this is revision 2.")
    expect(changes.locator(".diff-removed")).to_contain_text("A **connection-pool** change exhausted")
    expect(changes.locator(".diff-added")).to_contain_text("Config change CHG-4411")
    expect(changes.locator("[data-part]")).to_have_count(1)
    ada.get_by_role("button", name="Approve").click()
    expect(_sign_off_row(ada, "Ada Reviewer")).to_contain_text("Approve on revision 2")
    expect(ada.locator("#changes")).to_have_count(0)

    ben.goto(url)
    ben.get_by_label("Comment (required to request changes)").fill("Thanks, clear now.")
    ben.get_by_role("button", name="Approve").click()
    expect(_sign_off_row(ben, "Ben Reviewer")).to_contain_text("Approve on revision 2")

    # Every approval is on the current revision and every check passes: the owner publishes.
    olga.goto(url)
    expect(olga.get_by_text("Every reviewer approved revision 2")).to_be_visible()
    olga.get_by_role("button", name="Publish").click()
    expect(olga.locator("header .badge").first).to_have_text("Published")
    expect(olga.locator("#activity")).to_contain_text("Olga Owner published")

    # Published means frozen: no edit controls, and the edit URL refuses a POST.
    expect(olga.get_by_role("link", name="Edit", exact=True)).to_have_count(0)
    for label in ("Request review", "Withdraw", "Approve", "Request changes", "Publish"):
        expect(olga.get_by_role("button", name=label, exact=True)).to_have_count(0)
    expect(olga.locator("form[action$='/comments/']")).to_have_count(0)
    expect(olga.get_by_role("button", name="Reopen")).to_be_visible()
    token = next(c["value"] for c in olga.context.cookies() if c["name"] == "csrftoken")
    refused = olga.request.post(
        f"{url}edit/impact/",
        form={
            "expected_revision": "2",
            "summary": "Sneaky edit",
            "customer_impact": "x",
            "impacted_customers": "1",
        },
        headers={"X-CSRFToken": token, "Referer": url},
    )
    assert refused.status == 403
    assert "CSRF" not in refused.text()
    incident.refresh_from_db()
    assert incident.status == Status.PUBLISHED
    assert incident.summary == "Config change CHG-4411 cut the API's connection pool to 5."
    assert Incident.objects.get(pk=incident.pk).published_at is not None
    assert re.search(r"published", olga.locator("#activity").inner_text())
