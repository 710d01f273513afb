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
import json
import os
import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.models import (
    AlertInbox,
    ApiToken,
    TokenAccess,
    TrackerConnection,
    WebhookDelivery,
    WebhookEndpoint,
)
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
    "postmortems:people": lambda w: "/postmortems/people.json",
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
    "api:me": lambda w: "/api/v1/me/",
    "api:incidents": lambda w: "/api/v1/postmortems/",
    "api:incident": lambda w: f"/api/v1/postmortems/{w.draft.pk}/",
    "api:step": lambda w: f"/api/v1/postmortems/{w.draft.pk}/steps/{w.step}/",
    "api:request_review": lambda w: f"/api/v1/postmortems/{w.draft.pk}/request-review/",
    "api:withdraw": lambda w: f"/api/v1/postmortems/{w.in_review.pk}/withdraw/",
    "api:approve": lambda w: f"/api/v1/postmortems/{w.in_review.pk}/approve/",
    "api:request_changes": lambda w: f"/api/v1/postmortems/{w.in_review.pk}/request-changes/",
    "api:publish": lambda w: f"/api/v1/postmortems/{w.in_review.pk}/publish/",
    "api:reopen": lambda w: f"/api/v1/postmortems/{w.published.pk}/reopen/",
    "api:rows": lambda w: f"/api/v1/postmortems/{w.draft.pk}/{w.rows}/",
    "api:row": lambda w: f"/api/v1/postmortems/{w.in_review.pk}/{w.rows}/{w.row}/",
    "api:action_items": lambda w: "/api/v1/action-items/",
    "api:action_item": lambda w: f"/api/v1/action-items/{w.item.pk}/",
    "schema": lambda w: "/api/schema/",
    "api_docs": lambda w: "/api/docs/",
    "oidc_authentication_init": lambda w: "/oidc/authenticate/",
    "oidc_authentication_callback": lambda w: "/oidc/callback/",
    "integrations:settings": lambda w: "/settings/integrations/",
    "integrations:endpoint": lambda w: f"/settings/integrations/endpoints/{w.endpoint.pk}/",
    "integrations:endpoint_test": lambda w: f"/settings/integrations/endpoints/{w.endpoint.pk}/test/",
    "integrations:endpoint_delete": lambda w: f"/settings/integrations/endpoints/{w.endpoint.pk}/delete/",
    "integrations:redeliver": lambda w: f"/settings/integrations/deliveries/{w.delivery.pk}/redeliver/",
    "integrations:token_create": lambda w: "/accounts/profile/tokens/",
    "integrations:token_revoke": lambda w: f"/accounts/profile/tokens/{w.token.pk}/revoke/",
    "integrations:timeline_import": lambda w: f"/postmortems/{w.draft.pk}/edit/timeline/import/",
    "integrations:rotate_inbox": lambda w: f"/postmortems/{w.draft.pk}/edit/timeline/alert-webhook/",
    "integrations:alert_inbox": lambda w: f"/hooks/alerts/{w.draft.pk}/{w.inbox.secret}/",
    "integrations:tracker_add": lambda w: "/settings/integrations/trackers/new/",
    "integrations:tracker_delete": lambda w: f"/settings/integrations/trackers/{w.tracker.pk}/delete/",
    "integrations:create_issue": lambda w: f"/action-items/{w.item.pk}/tracker/{w.tracker.pk}/",
    "integrations:tracker_webhook": lambda w: f"/hooks/trackers/{w.tracker.pk}/",
    "integrations:tracker_webhook_secret": lambda w: (
        f"/hooks/trackers/{w.tracker.pk}/{w.tracker.webhook_secret}/"
    ),
}
ROWS = ["timeline", "factors", "lessons", "action-items", "action_items", "nope"]
# Pages whose forms post elsewhere (the review actions are buttons of the postmortem's page).
FORM_SOURCES = [
    "/postmortems/{in_review.pk}/",
    "/postmortems/{published.pk}/",
    "/action-items/?scope=all",
    "/accounts/profile/",
    "/settings/integrations/",
]
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


# The fields the API's bodies have (its serializers and the steps' forms).
API_FIELDS = ["title", "incident_date", "severity", "time_zone", "started_at", "summary", "tags", "owner"]
API_FIELDS += ["committee", "impacted_customers", "occurred_at", "zone", "kind", "description", "link"]
API_FIELDS += ["parent", "category", "text", "action_items", "priority", "due_date", "status", "revision"]
API_FIELDS += ["comment", "reason", "wont_do_reason", "backlog_link", "visibility", "teams", "page_size"]
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), junk),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(junk, inner, max_size=3)),
    max_leaves=6,
)


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
        self.step, self.rows, self.row = "timeline", "timeline", self.in_review.timeline_events.first().pk
        # A closed port: a test delivery or a redelivery fails at once, without leaving this machine.
        self.endpoint = WebhookEndpoint.objects.create(
            name="Fuzz", url="http://127.0.0.1:9/hook", events=["postmortem.published"], created_by=self.staff
        )
        self.delivery = WebhookDelivery.objects.create(
            endpoint=self.endpoint, event="postmortem.published", message_id="msg_fuzz", payload={}
        )
        self.inbox = AlertInbox.objects.create(incident=self.draft)
        # A closed port too: an issue created in it fails at once.
        self.tracker = TrackerConnection.objects.create(
            kind="github",
            base_url="http://127.0.0.1:9",
            project="o/r",
            token="t",
            webhook_secret="s" * 32,
            created_by=self.staff,
        )
        self.tokens = {
            role: ApiToken.issue(user=self.person(role), name="fuzz", access=TokenAccess.WRITE)
            for role in ("owner", "reviewer", "stranger", "staff")
        }
        self.token = self.tokens["owner"][0]

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
    forms_seen: dict[tuple[str, str], dict[str, str]] = {}

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
        world.rows = data.draw(st.sampled_from(ROWS), label="rows")
        role = data.draw(st.sampled_from(ROLES), label="role")
        client.force_login(world.person(role))
        url = PAGES[name](world)
        if name.startswith("api:"):
            return request_api_junk(data, world, url, method, role)
        extra = data.draw(extra_names, label="extra name")
        if method == "get":
            shown, names = {}, [*QUERY_NAMES, extra]
        else:
            # Junk in some fields of the form as it is shown (so that it reaches past the first check), or
            # in fields alone.
            as_shown = data.draw(st.sampled_from([True, True, False]), label="as shown")
            if as_shown and (url, role) not in forms_seen:  # read once per address and person
                forms_seen[url, role] = form_values(client, world, url)
            shown = dict(forms_seen[url, role]) if as_shown else {}
            names = [*shown, extra, "text", "comment", "reason", "q"]
            for control in CONTROL_NAMES:  # each on its own: autosave, the button pressed, the revision
                if data.draw(st.sampled_from([True, False]), label=f"with {control}"):
                    shown[control] = data.draw(values_for(control), label=control)
        chosen = data.draw(st.lists(st.sampled_from(names), unique=True, max_size=8), label="fields")
        params = shown | {field: data.draw(values_for(field), label=field) for field in chosen}

        response = getattr(client, method)(url, params)

        assert response.status_code < 500, (method, url, params, response.status_code)

    def request_api_junk(data, world, url, method, role):
        """The API as a token of `role` sends it: JSON bodies (or junk that is not JSON), any verb."""
        headers = {"Authorization": f"Bearer {world.tokens[role][1]}"}
        if data.draw(st.booleans(), label="with If-Match"):
            headers["If-Match"] = data.draw(st.one_of(st.sampled_from(['"1"', '"2"', 'W/"1"', "*"]), junk))
        names = [*QUERY_NAMES, *API_FIELDS, data.draw(extra_names, label="extra name")]
        chosen = data.draw(st.lists(st.sampled_from(names), unique=True, max_size=8), label="fields")
        body = {field: data.draw(json_values, label=field) for field in chosen}
        if method == "get":
            query = {
                field: value if isinstance(value, str) else json.dumps(value) for field, value in body.items()
            }
            response = client.get(url, query, headers=headers)
        else:
            verb = data.draw(st.sampled_from(["POST", "PATCH", "PUT", "DELETE"]), label="verb")
            raw = json.dumps(body) if data.draw(st.sampled_from([True, True, False])) else "{not json"
            response = client.generic(verb, url, raw, content_type="application/json", headers=headers)
        assert response.status_code < 500, (method, url, body, response.status_code)

    request_junk()
