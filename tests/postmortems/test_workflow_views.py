"""The workflow's action views, the review panel on the detail page, and /reviews/."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from postmortems.models import ActivityVerb, Comment, Decision, SignOff, Status
from tests.factories import ActionItemFactory, UserFactory
from tests.postmortems.reviewing import edit, make_cast, postmortem, sign

pytestmark = pytest.mark.django_db


@pytest.fixture
def cast():
    return make_cast()


def _approved(cast, status=Status.IN_REVIEW):
    return postmortem(cast, status=status, approved_by=[cast.reviewer_a, cast.reviewer_b])


def _revision(incident):
    return {"revision": incident.revision, "comment": "Looks right."}


# action, the incident it acts on, the form data, and what a permitted request leaves behind.
ACTIONS = {
    "request_review": (lambda c: postmortem(c), lambda i: {}, lambda i, u: i.status == Status.IN_REVIEW),
    "withdraw": (
        lambda c: postmortem(c, status=Status.IN_REVIEW),
        lambda i: {},
        lambda i, u: i.status == Status.DRAFT,
    ),
    "approve": (
        lambda c: postmortem(c, status=Status.IN_REVIEW),
        _revision,
        lambda i, u: SignOff.objects.filter(incident=i, reviewer=u, decision=Decision.APPROVE).exists(),
    ),
    "request_changes": (
        lambda c: postmortem(c, status=Status.IN_REVIEW),
        _revision,
        lambda i, u: SignOff.objects.filter(
            incident=i, reviewer=u, decision=Decision.REQUEST_CHANGES
        ).exists(),
    ),
    "publish": (_approved, lambda i: {}, lambda i, u: i.status == Status.PUBLISHED),
    "reopen": (
        lambda c: _approved(c, status=Status.PUBLISHED),
        lambda i: {"reason": "Wrong trigger."},
        lambda i, u: i.status == Status.DRAFT,
    ),
    "comment": (
        lambda c: postmortem(c, status=Status.IN_REVIEW),
        lambda i: {"section": "summary", "text": "Which pool?"},
        lambda i, u: Comment.objects.filter(incident=i, author=u, text="Which pool?").exists(),
    ),
}

# Who may: "ok" (done, back to the page), 403 (no part in it), 404 (may not even see it).
MATRIX = {
    "request_review": {"other": 404, "co_author": "ok", "reviewer_a": 403, "owner": "ok", "staff": 403},
    "withdraw": {"other": 404, "co_author": 403, "reviewer_a": 403, "owner": "ok", "staff": "ok"},
    "approve": {"other": 404, "co_author": 403, "reviewer_a": "ok", "owner": 403, "staff": 403},
    "request_changes": {"other": 404, "co_author": 403, "reviewer_a": "ok", "owner": 403, "staff": 403},
    "publish": {"other": 404, "co_author": 403, "reviewer_a": 403, "owner": "ok", "staff": 403},
    "reopen": {"other": 403, "co_author": 403, "reviewer_a": 403, "owner": "ok", "staff": "ok"},
    "comment": {"other": 404, "co_author": "ok", "reviewer_a": "ok", "owner": "ok", "staff": "ok"},
}
CASES = [(action, role, expected) for action, row in MATRIX.items() for role, expected in row.items()]


@pytest.mark.parametrize(("action", "role", "expected"), CASES, ids=[f"{a}-{r}" for a, r, _ in CASES])
def test_action_view_permissions(client, cast, action, role, expected):
    make, data, done = ACTIONS[action]
    incident = make(cast)
    user = cast[role]
    client.force_login(user)
    before = incident.status

    response = client.post(reverse(f"postmortems:{action}", args=[incident.pk]), data(incident))

    incident.refresh_from_db()
    if expected == "ok":
        assert response.status_code == 302
        assert response["Location"].startswith(incident.get_absolute_url())
        assert done(incident, user)
    else:
        assert response.status_code == expected
        assert incident.status == before
        assert not done(incident, user)


@pytest.mark.parametrize("action", list(ACTIONS))
def test_action_view_sends_anonymous_visitors_to_sign_in(client, cast, action):
    make, data, _ = ACTIONS[action]
    incident = make(cast)
    status = incident.status

    response = client.post(reverse(f"postmortems:{action}", args=[incident.pk]), data(incident))

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    incident.refresh_from_db()
    assert incident.status == status


@pytest.mark.parametrize("action", list(ACTIONS))
def test_action_view_refuses_get(client, cast, action):
    incident = ACTIONS[action][0](cast)
    client.force_login(cast.owner)
    assert client.get(reverse(f"postmortems:{action}", args=[incident.pk])).status_code == 405


def test_staff_reopen_from_the_page_is_logged_as_staff_action(client, cast):
    incident = _approved(cast, status=Status.PUBLISHED)
    client.force_login(cast.staff)
    client.post(reverse("postmortems:reopen", args=[incident.pk]), {"reason": "Legal asked."})
    assert incident.activities.get(verb=ActivityVerb.REOPENED).is_staff_action


@pytest.mark.parametrize("role", ["owner", "staff"])
def test_withdraw_from_the_page_keeps_sign_offs_stale_and_logs_who(client, cast, role):
    incident = _approved(cast)
    client.force_login(cast[role])

    response = client.post(reverse("postmortems:withdraw", args=[incident.pk]), follow=True)

    assert "Withdrawn from review: it is a draft again, and earlier sign-offs are stale." in (
        response.content.decode()
    )
    incident.refresh_from_db()
    assert (incident.status, incident.revision) == (Status.DRAFT, 2)
    activity = incident.activities.get(verb=ActivityVerb.WITHDRAWN)
    assert activity.actor == cast[role]
    assert activity.is_staff_action == (role == "staff")
    assert SignOff.objects.filter(incident=incident, is_current=True, revision=1).count() == 2


def test_staff_see_withdraw_but_not_publish_and_why(client, cast):
    incident = _approved(cast)
    client.force_login(cast.staff)

    body = client.get(incident.get_absolute_url()).content.decode()

    assert re.search(
        r'<button type="submit" [^>]*aria-describedby="withdraw-as-staff">Withdraw</button>', body
    )
    assert "logged as a staff action" in body
    assert "Publishing still needs every reviewer’s approval of the current revision." in body
    assert not re.search(r"<button[^>]*>Publish</button>", body)


def test_staff_cannot_publish_from_the_page_even_when_every_reviewer_approved(client, cast):
    incident = _approved(cast)
    client.force_login(cast.staff)
    assert client.post(reverse("postmortems:publish", args=[incident.pk])).status_code == 403
    incident.refresh_from_db()
    assert incident.status == Status.IN_REVIEW


def test_refused_transition_says_why_on_the_page(client, cast):
    incident = postmortem(cast, status=Status.IN_REVIEW, approved_by=[cast.reviewer_a])
    client.force_login(cast.owner)

    response = client.post(reverse("postmortems:publish", args=[incident.pk]), follow=True)

    assert "Not ready to publish: Ben Reviewer has not signed off yet." in response.content.decode()
    incident.refresh_from_db()
    assert incident.status == Status.IN_REVIEW


def test_request_changes_without_a_comment_shows_the_error_next_to_the_field(client, cast):
    incident = postmortem(cast, status=Status.IN_REVIEW)
    client.force_login(cast.reviewer_a)

    response = client.post(
        reverse("postmortems:request_changes", args=[incident.pk]),
        {"revision": incident.revision, "comment": ""},
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert re.search(
        r'<textarea name="comment" id="sign-off-comment" rows="3" class="form-control is-invalid"', body
    )
    assert 'id="sign-off-comment-error">Say what needs to change: a comment is required' in body
    assert not SignOff.objects.filter(incident=incident).exists()


def test_reopen_without_a_reason_shows_the_error_next_to_the_field(client, cast):
    incident = _approved(cast, status=Status.PUBLISHED)
    client.force_login(cast.owner)

    response = client.post(reverse("postmortems:reopen", args=[incident.pk]), {"reason": "  "})

    assert response.status_code == 400
    assert (
        'id="reopen-reason-error">Say why it is reopened: a reason is required.' in response.content.decode()
    )
    incident.refresh_from_db()
    assert incident.status == Status.PUBLISHED


def test_empty_comment_shows_the_error_under_its_section(client, cast):
    incident = postmortem(cast, status=Status.IN_REVIEW)
    client.force_login(cast.reviewer_a)

    response = client.post(
        reverse("postmortems:comment", args=[incident.pk]), {"section": "timeline", "text": ""}
    )

    assert response.status_code == 400
    assert 'id="comment-error-timeline">Write a comment first.' in response.content.decode()


def test_approving_a_revision_that_moved_on_asks_to_re_read(client, cast):
    incident = postmortem(cast, status=Status.IN_REVIEW)
    read = incident.revision
    edit(incident, summary="Changed while the reviewer was reading.")
    client.force_login(cast.reviewer_a)

    response = client.post(
        reverse("postmortems:approve", args=[incident.pk]), {"revision": read, "comment": ""}, follow=True
    )

    assert "you read revision 1, it is now revision 2. Re-read it" in response.content.decode()
    assert not SignOff.objects.filter(incident=incident).exists()


# --- the panel on the detail page ---------------------------------------------------------------------------


def _buttons(body: str) -> set[str]:
    names = {"Request review", "Withdraw", "Approve", "Request changes", "Publish", "Reopen"}
    return {name for name in names if re.search(rf"<button[^>]*>{name}</button>", body)}


@pytest.mark.parametrize(
    ("status", "role", "buttons"),
    [
        (Status.DRAFT, "owner", {"Request review"}),
        (Status.DRAFT, "co_author", {"Request review"}),
        (Status.DRAFT, "reviewer_a", set()),
        (Status.IN_REVIEW, "owner", {"Publish", "Withdraw"}),
        (Status.IN_REVIEW, "co_author", set()),
        (Status.IN_REVIEW, "reviewer_a", {"Approve", "Request changes"}),
        (Status.IN_REVIEW, "staff", {"Withdraw"}),
        (Status.PUBLISHED, "owner", {"Reopen"}),
        (Status.PUBLISHED, "staff", {"Reopen"}),
        (Status.PUBLISHED, "reviewer_a", set()),
        (Status.PUBLISHED, "other", set()),
    ],
)
def test_panel_shows_the_buttons_of_the_users_role(client, cast, status, role, buttons):
    incident = postmortem(cast, status=status)
    client.force_login(cast[role])
    body = client.get(incident.get_absolute_url()).content.decode()
    assert _buttons(body) == buttons


def test_publish_is_disabled_with_who_has_not_approved_and_which_check_fails(client, cast):
    incident = postmortem(cast, status=Status.IN_REVIEW, approved_by=[cast.reviewer_a])
    sign(incident, cast.reviewer_b, decision=Decision.REQUEST_CHANGES)
    edit(incident, summary="")
    client.force_login(cast.owner)

    body = client.get(incident.get_absolute_url()).content.decode()

    assert re.search(r'<button type="submit" class="btn btn-primary" disabled[^>]*>Publish</button>', body)
    blockers = body[body.index('id="publish-blockers"') :]
    assert "Ada Reviewer approved revision 1; it is now revision 2, so they must approve again." in blockers
    assert "Ben Reviewer requested changes (revision 1)." in blockers
    assert "Check fails: Write a summary of the event." in blockers


def test_publish_is_enabled_when_everything_is_in_place(client, cast):
    incident = _approved(cast)
    client.force_login(cast.owner)
    body = client.get(incident.get_absolute_url()).content.decode()
    assert re.search(r'<button type="submit" class="btn btn-primary">Publish</button>', body)
    assert "Every reviewer approved revision 1" in body


def test_request_review_is_disabled_with_what_is_missing(client, cast):
    incident = postmortem(cast, committee=[])
    client.force_login(cast.owner)
    body = client.get(incident.get_absolute_url()).content.decode()
    assert re.search(r"disabled[^>]*>Request review</button>", body)
    assert "Choose at least 1 reviewer for the peer-review committee" in body


def test_checklist_is_shown_to_people_involved_only(client, cast):
    incident = postmortem(cast, status=Status.PUBLISHED)
    ActionItemFactory(incident=incident, title="No link yet", backlog_link="")
    client.force_login(cast.reviewer_a)
    assert 'id="checks"' in client.get(incident.get_absolute_url()).content.decode()
    client.force_login(cast.other)
    assert 'id="checks"' not in client.get(incident.get_absolute_url()).content.decode()


def test_reviewer_sees_what_changed_since_their_sign_off(client, cast):
    incident = postmortem(cast, status=Status.IN_REVIEW)
    sign(incident, cast.reviewer_a)
    edit(incident, summary="The pool change exhausted **all** connections.", impacted_customers=2000)
    client.force_login(cast.reviewer_a)

    body = client.get(incident.get_absolute_url()).content.decode()

    changes = body[body.index('id="changes"') : body.index("</section>", body.index('id="changes"'))]
    assert "You approved revision 1; this is revision 2." in changes
    assert "<del>A **connection-pool** change exhausted database connections.</del>" in changes
    assert "<ins>The pool change exhausted **all** connections.</ins>" in changes
    assert "<del>Impacted customers: 1234</del>" in changes
    assert "<ins>Impacted customers: 2000</ins>" in changes
    assert 'data-part="timeline"' not in changes  # unchanged parts are left out
    assert "Your approval was for revision 1; this is revision 2." in body
    assert '<a href="#changes">See what changed</a>' in body


def test_reviewer_with_a_current_sign_off_sees_no_diff(client, cast):
    incident = postmortem(cast, status=Status.IN_REVIEW, approved_by=[cast.reviewer_a])
    client.force_login(cast.reviewer_a)
    body = client.get(incident.get_absolute_url()).content.decode()
    assert 'id="changes"' not in body
    assert "You approved this revision." in body


def test_comments_are_listed_under_their_section(client, cast):
    incident = postmortem(cast, status=Status.IN_REVIEW)
    client.force_login(cast.reviewer_a)
    client.post(
        reverse("postmortems:comment", args=[incident.pk]), {"section": "timeline", "text": "Add zones."}
    )

    body = client.get(incident.get_absolute_url()).content.decode()

    timeline = body.index('id="timeline"')
    comments = body.index('id="comments-timeline"')
    factors = body.index('id="factors"')
    assert timeline < comments < factors
    assert "Add zones." in body[comments:factors]


def test_published_page_has_no_comment_forms(client, cast):
    incident = _approved(cast, status=Status.PUBLISHED)
    client.force_login(cast.reviewer_a)
    body = client.get(incident.get_absolute_url()).content.decode()
    assert reverse("postmortems:comment", args=[incident.pk]) not in body


def test_detail_page_for_a_reviewer_keeps_its_query_budget(client, cast, django_assert_max_num_queries):
    incident = postmortem(cast, status=Status.IN_REVIEW, events=12, factors=8, action_items=8)
    sign(incident, cast.reviewer_a)
    sign(incident, cast.reviewer_b, decision=Decision.REQUEST_CHANGES)
    edit(incident, summary="Edited.")
    for section in ("summary", "timeline", "factors", "action_items"):
        for n in range(3):
            Comment.objects.create(
                incident=incident, section=section, author=cast.reviewer_b, text=f"c{n}", revision=1
            )
    client.force_login(cast.reviewer_a)

    with django_assert_max_num_queries(30):
        response = client.get(incident.get_absolute_url())

    assert response.content.decode().count('class="comment"') == 12


# --- /reviews/ ---------------------------------------------------------------------------------------------


def test_reviews_lists_what_awaits_me_with_my_sign_off_state(client, cast):
    missing = postmortem(cast, status=Status.IN_REVIEW, title="Missing one")
    stale = postmortem(cast, status=Status.IN_REVIEW, title="Stale one")
    sign(stale, cast.reviewer_a)
    edit(stale, summary="Moved on.")
    current = postmortem(cast, status=Status.IN_REVIEW, title="Current one", approved_by=[cast.reviewer_a])
    postmortem(cast, status=Status.DRAFT, title="Draft one")
    postmortem(cast, status=Status.PUBLISHED, title="Published one")
    postmortem(cast, status=Status.IN_REVIEW, title="Not mine", committee=[cast.reviewer_b])
    client.force_login(cast.reviewer_a)

    body = client.get("/reviews/").content.decode()

    assert "Awaiting my review" in body
    for title in ("Draft one", "Published one", "Not mine"):
        assert title not in body
    order = [body.index(t) for t in ("Missing one", "Stale one", "Current one")]
    assert order == sorted(order)
    assert "Your sign-off is missing" in body
    assert "You approved revision 1." in body
    assert f"{stale.get_absolute_url()}#changes" in body
    assert "You approved" in body[body.index("Current one") :]
    assert missing.get_absolute_url() in body
    assert current.get_absolute_url() in body


def test_reviews_is_empty_for_someone_with_nothing_to_review(client, cast):
    postmortem(cast, status=Status.IN_REVIEW)
    client.force_login(cast.other)
    assert "Nothing awaits your review" in client.get("/reviews/").content.decode()


def test_reviews_query_count_does_not_grow_with_rows(client, cast, django_assert_max_num_queries):
    for n in range(15):
        incident = postmortem(cast, status=Status.IN_REVIEW, title=f"Incident {n}", events=0, factors=1)
        if n % 2:
            sign(incident, cast.reviewer_a)
    client.force_login(cast.reviewer_a)
    with django_assert_max_num_queries(6):
        body = client.get("/reviews/").content.decode()
    assert body.count('data-state="') == 15


def test_navbar_links_to_reviews(client, cast):
    client.force_login(cast.reviewer_a)
    body = client.get("/reviews/").content.decode()
    assert re.search(r'<a class="nav-link active" aria-current="page" href="/reviews/">Reviews</a>', body)


def test_reviews_needs_sign_in(client):
    assert client.get("/reviews/")["Location"].startswith("/accounts/login/")


def test_other_users_never_see_drafts_in_reviews(client, cast):
    outsider = UserFactory()
    postmortem(cast, status=Status.IN_REVIEW, title="Secret one")
    client.force_login(outsider)
    assert "Secret one" not in client.get("/reviews/").content.decode()


def test_reviews_page_leaves_out_what_i_co_wrote(client_for):
    from postmortems.models import Status
    from tests.factories import IncidentFactory, UserFactory

    me = UserFactory()
    IncidentFactory(title="Mine to co-write", status=Status.IN_REVIEW, committee=[me], co_authors=[me])
    IncidentFactory(title="Mine to review", status=Status.IN_REVIEW, committee=[me])
    content = client_for(me).get("/reviews/").content.decode()
    assert "Mine to review" in content
    assert "Mine to co-write" not in content
