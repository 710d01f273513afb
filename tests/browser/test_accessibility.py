"""axe-core on every page type, signed in, at desktop and phone sizes: no serious or critical violation.

axe-core is installed by `make axe` (part of `make test`) into the git-ignored .cache/axe/ and handed to the
browser from that file; nothing is fetched from the network."""

import json
import os
from pathlib import Path

import pytest

from postmortems.models import Status
from tests.factories import IncidentFactory, UserFactory, full_incident

AXE = Path(__file__).resolve().parents[2] / ".cache/axe/node_modules/axe-core/axe.min.js"
PASSWORD = "hindsight-demo"
# Desktop in the light scheme, phone in the dark one: both sizes and both schemes, in two passes.
VIEWS = [({"width": 1280, "height": 900}, "light"), ({"width": 390, "height": 844}, "dark")]


def _axe_script() -> str:
    if not AXE.exists():
        message = f"no axe-core at {AXE}: run `make axe` (needs npm)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(message + " (REQUIRE_BROWSER=1)")
        pytest.skip(message)
    return AXE.read_text()


def test_every_page_type_has_no_serious_accessibility_violation(
    transactional_db, live_server, browser, sign_in
):
    script = _axe_script()
    alice = UserFactory(username="alice", password=PASSWORD, display_name="Alice Moreau")
    published = full_incident(owner=alice, status=Status.PUBLISHED)
    in_review = full_incident(status=Status.IN_REVIEW, committee=[alice], title="Queue backed up in review")
    draft = full_incident(owner=alice, status=Status.DRAFT, title="Draft about the DNS outage")
    IncidentFactory(owner=alice, status=Status.DRAFT, title="An empty draft")
    tag = published.tags.first()
    pages = [
        "/postmortems/",
        "/postmortems/?q=pool",
        f"/tags/{tag.slug}/",
        "/tags/",
        published.get_absolute_url(),
        in_review.get_absolute_url(),
        draft.get_absolute_url(),
        "/reviews/",
        "/action-items/",
        "/insights/",
        "/postmortems/drafts/",
        "/postmortems/new/",
        *(f"/postmortems/{draft.pk}/edit/{step}/" for step in ("basics", "impact", "timeline", "factors")),
        *(f"/postmortems/{draft.pk}/edit/{step}/" for step in ("lessons", "actions", "review")),
        f"/postmortems/{published.pk}/edit/basics/",  # 403
        "/postmortems/999999/",  # 404
        "/accounts/profile/",
    ]
    found = []
    for viewport, scheme in VIEWS:
        # The audit script is the test's, injected inline: the page's CSP (tested elsewhere) would refuse it.
        context = browser.new_context(viewport=viewport, color_scheme=scheme, bypass_csp=True)
        page = context.new_page()
        sign_in(page, "alice", PASSWORD)
        for path in pages:
            page.goto(live_server.url + path)
            page.add_script_tag(content=script)
            violations = page.evaluate(
                """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
                    .filter((v) => v.impact === "serious" || v.impact === "critical")
                    .map((v) => ({id: v.id, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" "))}))"""
            )
            found += [f"{viewport['width']}px {scheme} {path}: {json.dumps(v)}" for v in violations]
        context.close()
    assert found == []


def test_skip_link_is_the_first_stop_and_focus_is_visible(transactional_db, live_server, new_page, sign_in):
    UserFactory(username="alice", password=PASSWORD)
    page = new_page()
    sign_in(page, "alice", PASSWORD)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to the content")
    assert skip.evaluate("el => el === document.activeElement")
    box = skip.bounding_box()
    assert box is not None
    assert box["y"] >= 0  # moved into view when focused
    assert skip.evaluate("el => getComputedStyle(el).outlineStyle") != "none"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
