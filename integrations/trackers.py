"""Action items in the team's issue tracker (GitHub, GitLab, Jira): create the issue, keep the status in step.

"Create issue in <tracker>" records a `TrackerIssue` and Celery creates the issue after the request commits
(integrations/tasks.py), retrying while the tracker is down or rate-limits (honouring `Retry-After`); a
tracker that refuses (bad token, unknown project) marks it failed with the tracker's reason, shown on the
item, which stays as it was. The tracker's webhook, verified its own way, moves the item to done when the
issue closes and back to open when it reopens, logged in the incident's activity.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from urllib.parse import quote

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations.models import TrackerConnection, TrackerIssue, TrackerIssueStatus, TrackerKind
from postmortems import followthrough
from postmortems.models import ActionItem, ActionItemStatus, Activity, ActivityVerb, Incident, Status

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10
MAX_ATTEMPTS = 6


class TrackerError(Exception):
    """The tracker did not create the issue. `retry` says whether trying later may work; `retry_after`
    is the tracker's own wait (seconds) when it said one."""

    def __init__(self, message: str, *, retry: bool, retry_after: float | None = None):
        super().__init__(message)
        self.retry, self.retry_after = retry, retry_after


@dataclass(frozen=True)
class Created:
    external_id: str
    url: str
    state: str = "open"


# --- creating ----------------------------------------------------------------------------------------------


def issue_text(item: ActionItem) -> tuple[str, str]:
    """The issue's title and body: the item's title, the postmortem's title and link, the factors it
    addresses and its due date. A restricted (security) postmortem's title and factors stay home: the
    tracker gets the link, which only those who may see it can follow."""
    incident = item.incident
    link = settings.SITE_URL.rstrip("/") + incident.get_absolute_url()
    if incident.is_restricted:
        lines = [f"Action item from a restricted postmortem: {link}", ""]
    else:
        lines = [f"Action item from the postmortem “{incident.title}”: {link}", ""]
    factors = [] if incident.is_restricted else list(item.factors.all())
    if factors:
        lines.append("Contributing factors it addresses:")
        lines += [f"- {factor.description}" for factor in factors]
        lines.append("")
    if item.priority:
        lines.append(f"Priority: {item.priority}")
    if item.due_date:
        lines.append(f"Due: {item.due_date:%Y-%m-%d}")
    return item.title, "\n".join(lines).strip()


def _raise_for(response: requests.Response, kind: str) -> None:
    if response.status_code < 300:
        return
    try:
        data = response.json()
    except ValueError:
        data = {}
    detail = ""
    if isinstance(data, dict):
        detail = str(
            data.get("message") or data.get("error") or data.get("errorMessages") or data.get("errors") or ""
        )
    message = f"{kind} answered {response.status_code}" + (f": {detail[:200]}" if detail else "")
    retry_after = response.headers.get("Retry-After")
    rate_limited = response.status_code == 429 or (
        response.status_code == 403 and response.headers.get("X-RateLimit-Remaining") == "0"
    )
    if rate_limited or response.status_code >= 500:
        wait = float(retry_after) if retry_after and retry_after.isdigit() else None
        raise TrackerError(message, retry=True, retry_after=wait)
    raise TrackerError(message, retry=False)


def _post(connection: TrackerConnection, url: str, **kwargs) -> dict:
    label = connection.get_kind_display()
    try:
        response = requests.post(url, timeout=TIMEOUT_SECONDS, allow_redirects=False, **kwargs)
    except requests.RequestException as error:
        # The class is enough: the text may hold the URL, and the URL may hold a secret.
        raise TrackerError(f"{label} could not be reached ({type(error).__name__})", retry=True) from error
    _raise_for(response, label)
    try:
        return response.json()
    except ValueError as error:
        raise TrackerError(f"{label} answered something that is not JSON", retry=True) from error


def create_remote_issue(connection: TrackerConnection, item: ActionItem) -> Created:
    title, body = issue_text(item)
    if connection.kind == TrackerKind.GITHUB:
        data = _post(
            connection,
            f"{connection.api_url}/repos/{connection.project}/issues",
            json={"title": title, "body": body},
            headers={
                "Authorization": f"Bearer {connection.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
        )
        return Created(str(data["number"]), data["html_url"], data.get("state", "open"))
    if connection.kind == TrackerKind.GITLAB:
        payload = {"title": title, "description": body}
        if item.due_date:
            payload["due_date"] = item.due_date.isoformat()
        data = _post(
            connection,
            f"{connection.api_url}/api/v4/projects/{quote(connection.project, safe='')}/issues",
            json=payload,
            headers={"PRIVATE-TOKEN": connection.token},
        )
        return Created(
            str(data["iid"]), data["web_url"], "closed" if data.get("state") == "closed" else "open"
        )
    fields = {
        "project": {"key": connection.project},
        "summary": title,
        "issuetype": {"name": "Task"},
        "description": {
            "type": "doc",
            "version": 1,
            "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": line}]}
                for line in body.splitlines()
                if line
            ],
        },
    }
    if item.due_date:
        fields["duedate"] = item.due_date.isoformat()
    data = _post(
        connection,
        f"{connection.api_url}/rest/api/3/issue",
        json={"fields": fields},
        auth=(connection.email, connection.token),
        headers={"Accept": "application/json"},
    )
    return Created(data["key"], f"{connection.api_url}/browse/{data['key']}")


def request_issue(item: ActionItem, connection: TrackerConnection, *, by) -> TrackerIssue:
    """Record that `by` asked for an issue for `item`; Celery creates it once this commits. Asking again
    after a failure tries again; an item that has its issue keeps it."""
    from integrations.tasks import create_tracker_issue

    if not item.can_update(by):
        raise followthrough.NotAllowed(
            "Only the action item’s owner and the postmortem’s authors can do this."
        )
    with transaction.atomic():
        issue, created = TrackerIssue.objects.select_for_update().get_or_create(
            action_item=item, defaults={"connection": connection, "requested_by": by}
        )
        if not created and issue.status == TrackerIssueStatus.CREATED:
            return issue
        if not created:
            issue.connection, issue.requested_by = connection, by
            issue.status, issue.error, issue.attempts = TrackerIssueStatus.PENDING, "", 0
            issue.save()
        transaction.on_commit(lambda: _enqueue(create_tracker_issue, issue.pk))
    return issue


def _enqueue(task, issue_id: int) -> None:
    try:
        task.delay(issue_id)
    except Exception:  # a broker that is down: the issue stays "being created"; asking again retries
        logger.warning("tracker issue %s not enqueued", issue_id, exc_info=True)


def attempt(issue_id: int) -> TrackerIssue | None:
    """One attempt at creating the issue; raises TrackerError when a later attempt may work."""
    issue = (
        TrackerIssue.objects.select_related("connection", "action_item__incident", "requested_by")
        .filter(pk=issue_id, status=TrackerIssueStatus.PENDING)
        .first()
    )
    if issue is None:
        return None
    issue.attempts += 1
    try:
        created = create_remote_issue(issue.connection, issue.action_item)
    except TrackerError as error:
        issue.error = str(error)[:300]
        if not error.retry or issue.attempts >= MAX_ATTEMPTS:
            issue.status = TrackerIssueStatus.FAILED
        issue.save(update_fields=["attempts", "error", "status", "updated_at"])
        logger.info("tracker issue %s: attempt %s failed (%s)", issue.pk, issue.attempts, error)
        if issue.status == TrackerIssueStatus.PENDING:
            raise
        return issue
    except (KeyError, TypeError) as error:
        issue.status, issue.error = (
            TrackerIssueStatus.FAILED,
            "The tracker’s answer lacked the issue’s number.",
        )
        issue.save(update_fields=["attempts", "error", "status", "updated_at"])
        logger.warning("tracker issue %s: unexpected answer (%s)", issue.pk, type(error).__name__)
        return issue
    issue.status, issue.error = TrackerIssueStatus.CREATED, ""
    issue.external_id, issue.url, issue.state = created.external_id, created.url, created.state
    issue.save()
    item = issue.action_item
    if issue.requested_by is not None and item.can_update(issue.requested_by):
        followthrough.update_action_item(
            item,
            by=issue.requested_by,
            status=item.status,
            backlog_link=created.url,
            wont_do_reason=item.wont_do_reason,
        )
    return issue


# --- keeping the status in step ----------------------------------------------------------------------------


def verify_github(connection: TrackerConnection, body: bytes, signature: str) -> bool:
    expected = "sha256=" + hmac.new(connection.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), (signature or "").encode())


def verify_token(connection: TrackerConnection, token: str) -> bool:
    return hmac.compare_digest(connection.webhook_secret.encode(), (token or "").encode())


def change_from(connection: TrackerConnection, event: str, payload: dict) -> tuple[str, str] | None:
    """(issue id, "open" or "closed") from a tracker's webhook payload, or None when it changes no state."""
    if connection.kind == TrackerKind.GITHUB and event == "issues":
        action = payload.get("action")
        number = (payload.get("issue") or {}).get("number")
        if action in ("closed", "reopened") and number is not None:
            return str(number), "closed" if action == "closed" else "open"
    if connection.kind == TrackerKind.GITLAB and payload.get("object_kind") == "issue":
        attributes = payload.get("object_attributes") or {}
        action = attributes.get("action")
        if action in ("close", "reopen") and attributes.get("iid") is not None:
            return str(attributes["iid"]), "closed" if action == "close" else "open"
    if connection.kind == TrackerKind.JIRA and payload.get("webhookEvent") == "jira:issue_updated":
        issue = payload.get("issue") or {}
        status = ((issue.get("fields") or {}).get("status") or {}).get("statusCategory") or {}
        if issue.get("key") and status.get("key"):
            return str(issue["key"]), "closed" if status["key"] == "done" else "open"
    return None


def apply_change(connection: TrackerConnection, external_id: str, state: str) -> bool:
    """Move the linked action item to done (closed) or open (reopened), logged; True when it changed."""
    with transaction.atomic():
        issue = (
            TrackerIssue.objects.select_for_update()
            .filter(connection=connection, external_id=external_id, status=TrackerIssueStatus.CREATED)
            .first()
        )
        if issue is None:
            return False
        issue.state = state
        issue.save(update_fields=["state", "updated_at"])
        incident = Incident.objects.select_for_update().get(pk=issue.action_item.incident_id)
        item = ActionItem.objects.select_for_update().get(pk=issue.action_item_id)
        target = ActionItemStatus.DONE if state == "closed" else ActionItemStatus.OPEN
        if item.status == target or (state == "open" and item.status != ActionItemStatus.DONE):
            return False
        before = ActionItemStatus(item.status).label
        item.status = target
        item.completed_at = timezone.now() if target == ActionItemStatus.DONE else None
        item.save(update_fields=["status", "completed_at", "updated_at"])
        if incident.status != Status.PUBLISHED:
            incident.bump_revision(steps=["actions"])
        what = "closed" if state == "closed" else "reopened"
        Activity.objects.create(
            incident=incident,
            actor=None,
            verb=ActivityVerb.ACTION_ITEM_UPDATED,
            detail=f"“{item.title}”: status {before} → {target.label} "
            f"({connection.get_kind_display()} issue {external_id} {what})",
            revision=incident.revision,
        )
    return True
