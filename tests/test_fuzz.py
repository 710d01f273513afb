"""Generated junk into every form and query parameter of every page: no answer is a server error.

Every named URL of the app (admin aside: it is Django's) is requested with GET and with POST. A GET
carries junk in the query parameters pages read, and in names of its own; a POST carries junk in every
field of every form that posts to that address (found by reading the pages that show those forms),
plus fields of its own. Each example signs in as one of the people a postmortem has: its owner, a
reviewer on its committee, someone else, staff. The test client re-raises a view's exception, so a 500
fails with its traceback.

FUZZ_EXAMPLES sets how many examples each address gets (default 4: the whole test stays under half a
minute on a CI machine); the examples are derandomised, so a run is repeatable.
"""

import html
import os
import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postmortems.models import Status, Upload
from tests.factories import ActionItemFactory, IncidentFactory, UserFactory, full_incident

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))

# The formset steps twice: they have the most paths (rows, "add a row", "why?", autosave).
STEPS = ["basics", "impact", "timeline", "analysis", "factors", "lessons", "actions", "review", "nope"]
STEPS += ["timeline", "factors", "lessons", "actions"]

# The addresses of every page, with the objects of the world below in their place.
PAGES = {
    "accounts:login": lambda w: "/accounts/login/",
    "accounts:logout": lambda w: "/accounts/logout/",
    "accounts:profile": lambda w: "/accounts/profile/",
    "accounts:end_other_sessions": lambda w: "/accounts/profile/sessions/",
    "accounts:password_change": lambda w: "/accounts/password/",
    "accounts:password_change_done": lambda w: "/accounts/password/done/",
    "accounts:password_reset": lambda w: "/accounts/password/reset/",
    "accounts:password_reset_done": lambda w: "/accounts/password/reset/sent/",
    "accounts:password_reset_confirm": lambda w: "/accounts/password/reset/MQ/set-password/",
    "accounts:password_reset_complete": lambda w: "/accounts/password/reset/complete/",
    "markdownx_markdownify": lambda w: "/markdownx/markdownify/",
    "markdownx_upload": lambda w: "/markdownx/upload/",
    "media": lambda w: f"/media/{w.upload.name}",
    "healthz": lambda w: "/healthz",
    "postmortems:list": lambda w: "/postmortems/",
    "postmortems:detail": lambda w: f"/postmortems/{w.published.pk}/",
    "postmortems:new": lambda w: "/postmortems/new/",
    "postmortems:drafts": lambda w: "/postmortems/drafts/",
    "postmortems:tag_suggestions": lambda w: "/postmortems/tags.json",
    "postmortems:edit_start": lambda w: f"/postmortems/{w.draft.pk}/edit/",
    "postmortems:edit": lambda w: f"/postmortems/{w.draft.pk}/edit/{w.step}/",
    "postmortems:upload": lambda w: f"/postmortems/{w.draft.pk}/upload/",
    "postmortems:export": lambda w: f"/postmortems/{w.published.pk}/export.md",
    "postmortems:print": lambda w: f"/postmortems/{w.published.pk}/print/",
    "postmortems:request_review": lambda w: f"/postmortems/{w.draft.pk}/request-review/",
    "postmortems:withdraw": lambda w: f"/postmortems/{w.in_review.pk}/withdraw/",
    "postmortems:approve": lambda w: f"/postmortems/{w.in_review.pk}/approve/",
    "postmortems:request_changes": lambda w: f"/postmortems/{w.in_review.pk}/request-changes/",
    "postmortems:publish": lambda w: f"/postmortems/{w.in_review.pk}/publish/",
    "postmortems:reopen": lambda w: f"/postmortems/{w.published.pk}/reopen/",
    "postmortems:comment": lambda w: f"/postmortems/{w.in_review.pk}/comments/",
    "postmortems:reviews": lambda w: "/reviews/",
    "postmortems:action_items": lambda w: "/action-items/",
    "postmortems:action_item_update": lambda w: f"/action-items/{w.item.pk}/",
    "postmortems:insights": lambda w: "/insights/",
    "postmortems:tags": lambda w: "/tags/",
    "postmortems:tag": lambda w: "/tags/dns/",
}
# Pages whose forms post elsewhere (the review actions are buttons of the postmortem's page).
FORM_SOURCES = ["/postmortems/{in_review.pk}/", "/postmortems/{published.pk}/", "/action-items/?scope=all"]
# Query parameters the pages read (the list's search, the filters, pagination, the step's rows).
QUERY_NAMES = ["q", "tag", "severity", "from", "to", "owner", "team", "open", "page", "scope", "status"]
QUERY_NAMES += ["priority", "overdue", "date_from", "date_to", "add", "why", "next", "drafts", "sort"]
CONTROL_NAMES = ["_autosave", "_save", "expected_revision", "revision", "csrfmiddlewaretoken"]

TRICKY = [
    "",
    "0",
    "-1",
    "1.5",
    "99999999999999999999",
    "1e309",
    "NaN",
    "a\x00b",
    "0001-01-01T00:00",
    "9999-12-31T23:59",
    "2026-02-30",
    "24:61",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "🔥",
    "!!!",
    "_",
    "x" * 300,
    "%00",
    "' OR 1=1 --",
    "continue",
    "why-1",
    "why-99999999999999999999",
    "add",
    "1",
    "on",
    "Europe/Berlin",
    "Mars/Olympus",
    "wont_do",
    "SEV1",
    "https://example.com/a b",
    "javascript:alert(1)",
]
junk = st.one_of(
    st.sampled_from(TRICKY),
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=30),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
)
# Values that steer a request down its paths (autosave, "add a row", "why?"), beside the junk.
MEANINGFUL = {
    "_autosave": ["1"],
    "_save": ["continue", "draft", "add", "why-1", "why-99999999999999999999"],
    "expected_revision": ["1", "2", "99"],
    "revision": ["1", "2"],
    "TOTAL_FORMS": ["0", "1", "3", "2000"],
    "INITIAL_FORMS": ["0", "1", "5"],
}


def values_for(field: str):
    key = field if field in MEANINGFUL else field.rsplit("-", 1)[-1]
    if key in MEANINGFUL:
        meaningful = st.sampled_from(MEANINGFUL[key])
        return st.lists(st.one_of(meaningful, meaningful, junk), min_size=1, max_size=1)
    return st.lists(junk, min_size=1, max_size=2)


# Names of its own: a formset's management form and rows, and anything at all.
extra_names = st.one_of(
    st.sampled_from(["timeline-TOTAL_FORMS", "factors-0-parent", "actions-0-owner", "item-1-status"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-0123456789", min_size=1, max_size=12),
)


class World:
    """A draft, a postmortem in review and a published one, with their people, an action item, a tag."""

    def __init__(self):
        self.owner = UserFactory(username="owner", email="owner@example.com")
        self.reviewer = UserFactory(username="reviewer")
        self.stranger = UserFactory(username="stranger")
        self.staff = UserFactory(username="staff", is_staff=True, is_superuser=True)
        self.draft = IncidentFactory(owner=self.owner, status=Status.DRAFT, committee=[self.reviewer])
        self.in_review = full_incident(owner=self.owner, status=Status.IN_REVIEW, committee=[self.reviewer])
        self.published = full_incident(owner=self.owner, committee=[self.reviewer])
        self.published.tags.add("dns")
        self.item = ActionItemFactory(incident=self.published, owner=self.owner)
        self.upload = Upload.objects.create(
            incident=self.draft, uploaded_by=self.owner, name="uploads/2026/01/" + "a" * 32 + ".png",
            width=1, height=1, size=1,
        )  # fmt: skip
        self.step = "timeline"

    def person(self, role: str):
        return getattr(self, role)


def every_page_name() -> set[str]:
    """The names of every URL of the app, outside the admin."""

    def walk(patterns, namespace=None):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace != "admin":
                    yield from walk(pattern.url_patterns, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and pattern.name:
                yield f"{namespace}:{pattern.name}" if namespace else pattern.name

    return set(walk(get_resolver().url_patterns))


def test_the_fuzz_covers_every_page():
    missing = every_page_name() - set(PAGES)
    assert not missing, f"add these pages to tests/test_fuzz.py: {sorted(missing)}"


FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S | re.I)
ACTION = re.compile(r'action="([^"]*)"')
INPUT = re.compile(r"<input\b([^>]*)>", re.I)
SELECT = re.compile(r"<select\b([^>]*)>(.*?)</select>", re.S | re.I)
TEXTAREA = re.compile(r"<textarea\b([^>]*)>(.*?)</textarea>", re.S | re.I)
ATTRIBUTE = re.compile(r'([\w-]+)(?:="([^"]*)")?')


def _attributes(text: str) -> dict[str, str]:
    return {name.lower(): html.unescape(value or "") for name, value in ATTRIBUTE.findall(text)}


def _form_values(body: str) -> dict[str, str]:
    """What the form would post as it is shown: its inputs' values, selects' choices, textareas' text."""
    values = {}
    for text in INPUT.findall(body):
        field = _attributes(text)
        if "name" in field and (field.get("type") not in ("checkbox", "radio") or "checked" in field):
            values[field["name"]] = field.get("value", "")
    for text, options in SELECT.findall(body):
        field = _attributes(text)
        chosen = re.search(r'<option value="([^"]*)"[^>]*selected', options) or re.search(
            r'<option value="([^"]*)"', options
        )
        if "name" in field:
            values[field["name"]] = html.unescape(chosen.group(1)) if chosen else ""
    for text, content in TEXTAREA.findall(body):
        field = _attributes(text)
        if "name" in field:
            values[field["name"]] = html.unescape(content.strip())
    return values


def form_values(client, world: World, url: str) -> dict[str, str]:
    """The fields of every form that posts to `url`, as shown, on its own page and the pages with buttons
    posting elsewhere."""
    values: dict[str, str] = {}
    path = url.split("?")[0]
    for source in [url, *(source.format(**vars(world)) for source in FORM_SOURCES)]:
        response = client.get(source)
        if "html" not in response.get("Content-Type", ""):
            continue
        for attributes, body in FORM.findall(response.content.decode()):
            if 'method="post"' not in attributes.lower():
                continue
            action = ACTION.search(attributes)
            target = action.group(1).split("?")[0] if action and action.group(1) else source.split("?")[0]
            if target == path:
                values |= _form_values(body)
    # A formset's row template (`__prefix__`) is copied by the page's script, never posted as it is.
    return {name: value for name, value in values.items() if "__prefix__" not in name}


@pytest.fixture
def world(db):
    return World()


# Forms with many paths get more examples when posted to: the eight steps of a postmortem above all.
WEIGHTS = {"postmortems:edit": 15, "postmortems:new": 3, "postmortems:action_item_update": 3}
ROLES = ["owner", "owner", "owner", "owner", "reviewer", "stranger", "staff"]


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("name", sorted(PAGES))
def test_no_input_makes_a_page_answer_5xx(client, world, name, method):
    @settings(
        max_examples=EXAMPLES * (WEIGHTS.get(name, 1) if method == "post" else 1),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=st.data())
    def request_junk(data):
        world.step = data.draw(st.sampled_from(STEPS), label="step")
        client.force_login(world.person(data.draw(st.sampled_from(ROLES), label="role")))
        url = PAGES[name](world)
        extra = data.draw(extra_names, label="extra name")
        if method == "get":
            shown, names = {}, [*QUERY_NAMES, extra]
        else:
            # Junk in some fields of the form as it is shown (so that it reaches past the first check), or
            # in fields alone.
            as_shown = data.draw(st.sampled_from([True, True, False]), label="as shown")
            shown = form_values(client, world, url) if as_shown else {}
            names = [*shown, extra, "text", "comment", "reason", "q"]
            for control in CONTROL_NAMES:  # each on its own: autosave, the button pressed, the revision
                if data.draw(st.sampled_from([True, False]), label=f"with {control}"):
                    shown[control] = data.draw(values_for(control), label=control)
        chosen = data.draw(st.lists(st.sampled_from(names), unique=True, max_size=8), label="fields")
        params = shown | {field: data.draw(values_for(field), label=field) for field in chosen}

        response = getattr(client, method)(url, params)

        assert response.status_code < 500, (method, url, params, response.status_code)

    request_junk()
