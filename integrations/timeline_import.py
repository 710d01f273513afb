"""Timeline events from the tools an incident ran through: pasted lines, Slack and Mattermost exports,
Statuspage incidents, Alertmanager/Grafana alert webhooks and PagerDuty webhooks or log entries.

Pure functions: bytes or text in, `Candidate` events out, nothing saved. The author sees the candidates and
accepts some (integrations/import_views.py, postmortems/editing.add_timeline_events). Input that cannot be
read raises `Unreadable` with a message naming the line or entry; a readable file with some bad entries
returns its good ones and a `problems` line for each bad one. Everything is bounded: the bytes read (a zip's
members by what they really inflate to, not what their headers claim) and the candidates returned.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import re
import zipfile
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

MAX_BYTES = 5 * 1024 * 1024  # one upload or one pasted text
MAX_ZIP_MEMBERS = 1000
MAX_ZIP_TOTAL = 20 * 1024 * 1024  # what a zip's JSON files may inflate to, together
MAX_CANDIDATES = 1000
MAX_DESCRIPTION = 1000
MAX_PROBLEMS = 20
# What the import page says it read, also in the activity line ("Timeline (imported 3 events from …)").
ALERT_INBOX = "the draft’s alert webhook"
SEVERAL = "pasted text and files"
FORMATS = {
    "pasted text",
    "a Slack export",
    "a Slack channel export",
    "a Mattermost export",
    "a Statuspage incident",
    "Alertmanager/Grafana alerts",
    "PagerDuty",
    "several files",
    ALERT_INBOX,
    SEVERAL,
}
CHAT = "chat"  # the source of candidates that are chat messages: mostly talk, not events


class Unreadable(ValueError):
    """The input as a whole cannot be read; the message says where and why, for the author."""


@dataclass(frozen=True)
class Candidate:
    occurred_at: dt.datetime  # aware
    description: str
    kind: str = "other"  # a postmortems.models.TimelineEventKind value
    link: str = ""
    source: str = ""

    @property
    def key(self) -> tuple[dt.datetime, str]:
        return (self.occurred_at, " ".join(self.description.split()))


@dataclass
class Result:
    candidates: list[Candidate] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    format: str = ""

    def add(self, candidate: Candidate) -> None:
        self.candidates.append(candidate)

    def problem(self, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(message)
        elif len(self.problems) == MAX_PROBLEMS:
            self.problems.append("… and more problems; only the first ones are listed.")

    def finish(self) -> Result:
        """Sorted by time, duplicates (same time and text) once, at most MAX_CANDIDATES."""
        seen, unique = set(), []
        for candidate in sorted(self.candidates, key=lambda c: c.occurred_at):
            if candidate.key not in seen:
                seen.add(candidate.key)
                unique.append(candidate)
        if len(unique) > MAX_CANDIDATES:
            self.problems.append(
                f"{len(unique)} events found; only the first {MAX_CANDIDATES} are listed. "
                "Import the rest in a second pass."
            )
            unique = unique[:MAX_CANDIDATES]
        self.candidates = unique
        return self


# --- kinds -------------------------------------------------------------------------------------------------

_KIND_WORDS = [
    ("resolution", r"\b(resolved|recovered|all clear|fully operational|closing the incident|fixed)\b"),
    ("mitigation", r"\b(mitigat\w*|roll(ed|ing)? ?back|reverted?|fail(ed)? ?over|restart(ed)?|monitoring)\b"),
    ("escalation", r"\b(escalat\w*|paged|paging|acknowledged|incident commander|declared)\b"),
    ("detection", r"\b(alert\w*|fir(ed|ing)|detected|noticed|investigating|reports? of)\b"),
    ("trigger", r"\b(deploy(ed|ment)?|rolled out|config(uration)? (change|push)|migration ran)\b"),
]


def guess_kind(text: str) -> str:
    """The timeline kind a line of text most likely describes; "other" when nothing says."""
    lowered = text.lower()
    for kind, pattern in _KIND_WORDS:
        if re.search(pattern, lowered):
            return kind
    return "other"


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"


_valid_url = URLValidator(schemes=["http", "https"])


def _url(value) -> str:
    """`value` if a timeline event's link field would take it (internal hosts like http://prometheus:9090
    have no TLD and would not), else ""."""
    value = str(value or "")
    if len(value) > 500:
        return ""
    try:
        _valid_url(value)
    except ValidationError:
        return ""
    return value


def _instant(value, *, what: str) -> dt.datetime:
    """An aware datetime from an ISO 8601 string (with Z or an offset) or epoch seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: not a time")
    if isinstance(value, int | float):
        try:
            return dt.datetime.fromtimestamp(float(value), dt.UTC)
        except (OverflowError, OSError, ValueError) as error:
            raise ValueError(f"{what}: {value!r} is not a time") from error
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what}: no time")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Go's RFC 3339 has nanoseconds; Python reads at most microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError as error:
        raise ValueError(f"{what}: {value[:40]!r} is not an ISO 8601 time") from error
    if parsed.tzinfo is None:
        raise ValueError(f"{what}: {value[:40]!r} has no time zone")
    return parsed


# --- pasted text -------------------------------------------------------------------------------------------

_LINE = re.compile(
    r"""^\s*[\[(]?
    (?:(?P<date>\d{4}-\d{2}-\d{2})[T\s])?
    (?P<time>\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)
    (?:\s*(?P<offset>Z|[+-]\d{2}:?\d{2}\b|UTC\b|GMT\b|(?:\s[A-Z][A-Za-z_]+/[A-Za-z_/+-]+)))?
    [\])]?
    \s*(?:[-–—|:]\s*)?
    (?P<text>.*)$""",
    re.VERBOSE,
)


def _offset_zone(offset: str) -> dt.tzinfo:
    offset = offset.strip()
    if offset in ("Z", "UTC", "GMT"):
        return dt.UTC
    if "/" in offset:
        return zoneinfo.ZoneInfo(offset)
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        raise ValueError("offset out of range")
    return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))


def parse_text(text: str, *, tz: dt.tzinfo, default_date: dt.date) -> Result:
    """One event a line, its time first: 14:02, 14:02:31, 2026-03-04 14:02, or ISO 8601 with an offset
    (or a zone name: "14:02 Europe/Berlin"). Times without a zone are read in `tz`; times without a date on
    `default_date`, moving to the next day when they run past midnight."""
    result = Result(format="pasted text")
    day, last_time = default_date, None
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        match = _LINE.match(raw)
        if not match:
            result.problem(f"Line {number} does not start with a time (like 14:02): “{_clip(raw)[:60]}”.")
            continue
        description = match["text"].strip()
        if not description:
            result.problem(f"Line {number} has a time but no description.")
            continue
        try:
            zone = _offset_zone(match["offset"]) if match["offset"] else tz
            parts = [int(float(p)) if i == 2 else int(p) for i, p in enumerate(match["time"].split(":"))]
            wall = dt.time(parts[0], parts[1], parts[2] if len(parts) > 2 else 0)
            if match["date"]:
                day = dt.date.fromisoformat(match["date"])
            elif last_time is not None and wall < last_time and _hours_between(wall, last_time) > 6:
                day += dt.timedelta(days=1)  # 23:58 then 00:03: the night went on
            last_time = wall
            occurred = dt.datetime.combine(day, wall).replace(tzinfo=zone)
            occurred.utcoffset()  # a ZoneInfo resolves here
        except (ValueError, OverflowError, zoneinfo.ZoneInfoNotFoundError) as error:
            result.problem(f"Line {number}: “{match['time']}” is not a time we can read ({error}).")
            continue
        result.add(Candidate(occurred, _clip(description), guess_kind(description), _first_url(description)))
    if not result.candidates and not result.problems:
        raise Unreadable("There is nothing to import: paste one event a line, its time first (14:02 …).")
    return result.finish()


def _hours_between(earlier: dt.time, later: dt.time) -> float:
    seconds = lambda t: t.hour * 3600 + t.minute * 60 + t.second  # noqa: E731
    return (seconds(later) - seconds(earlier)) / 3600


def _first_url(text: str) -> str:
    match = re.search(r"https?://[^\s<>|\"']+", text)
    return _url(match.group(0).rstrip(").,;")) if match else ""


# --- Slack -------------------------------------------------------------------------------------------------

_SKIPPED_SUBTYPES = {
    "channel_join",
    "channel_leave",
    "channel_topic",
    "channel_purpose",
    "channel_name",
    "channel_archive",
    "group_join",
    "group_leave",
    "pinned_item",
    "reminder_add",
    "bot_add",
    "bot_remove",
    "tombstone",
}


def slack_user_names(users) -> dict[str, str]:
    """`users.json` of a Slack export: id → the name people know (display name, real name, handle)."""
    names = {}
    for user in users if isinstance(users, list) else []:
        if not isinstance(user, dict) or not isinstance(user.get("id"), str):
            continue
        profile = user.get("profile") if isinstance(user.get("profile"), dict) else {}
        name = (
            profile.get("real_name")
            or user.get("real_name")
            or profile.get("display_name")
            or user.get("name")
        )
        names[user["id"]] = str(name or user["id"])
    return names


def _slack_text(text: str, names: dict[str, str]) -> str:
    text = re.sub(r"<@(\w+)(?:\|([^>]*))?>", lambda m: "@" + (m[2] or names.get(m[1], m[1])), text)
    text = re.sub(r"<#\w+\|([^>]*)>", r"#\1", text)
    text = re.sub(r"<!(here|channel|everyone)[^>]*>", r"@\1", text)
    text = re.sub(r"<(https?://[^>|]+)\|([^>]+)>", r"\2 (\1)", text)
    text = re.sub(r"<(https?://[^>]+)>", r"\1", text)
    return html.unescape(text)


def parse_slack_messages(messages, *, names: dict[str, str], where: str, result: Result) -> None:
    """One day file of a Slack export (a list of messages) into `result`."""
    if not isinstance(messages, list):
        result.problem(f"{where}: not a Slack export day file (a list of messages).")
        return
    for index, message in enumerate(messages, start=1):
        if not isinstance(message, dict) or message.get("type", "message") != "message":
            continue
        if message.get("subtype") in _SKIPPED_SUBTYPES or message.get("hidden"):
            continue
        text = message.get("text")
        if not isinstance(text, str) or not text.strip():
            attachments = message.get("attachments") if isinstance(message.get("attachments"), list) else []
            text = " ".join(
                str(a.get("fallback") or a.get("text") or a.get("title") or "")
                for a in attachments
                if isinstance(a, dict)
            )
        if not text.strip():
            continue
        try:
            occurred = dt.datetime.fromtimestamp(float(message.get("ts")), dt.UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            result.problem(f"{where}, message {index}: no readable time (ts).")
            continue
        profile = message.get("user_profile") if isinstance(message.get("user_profile"), dict) else {}
        bot = message.get("bot_profile") if isinstance(message.get("bot_profile"), dict) else {}
        author = (
            names.get(str(message.get("user")))
            or profile.get("real_name")
            or profile.get("display_name")
            or message.get("username")
            or bot.get("name")
            or message.get("user")
            or "someone"
        )
        body = _slack_text(text, names)
        thread = message.get("thread_ts")
        in_thread = " (in a thread)" if thread and thread != message.get("ts") else ""
        description = _clip(f"{author}{in_thread}: {body}")
        result.add(Candidate(occurred, description, guess_kind(body), _first_url(body), source=CHAT))


def parse_slack_zip(data: bytes) -> Result:
    """A Slack export zip: `users.json` at the top, a folder per channel with a JSON file per day."""
    result = Result(format="a Slack export")
    files = read_zip_json(data)
    names = {}
    for name, content in files.items():
        if name.rsplit("/", 1)[-1] == "users.json":
            names.update(slack_user_names(_loads(content, where=name)))
    channels = {name.split("/")[0] for name in files if re.search(r"(^|/)\d{4}-\d{2}-\d{2}\.json$", name)}
    for name in sorted(files):
        if not re.search(r"(^|/)\d{4}-\d{2}-\d{2}\.json$", name):
            continue
        try:
            messages = _loads(files[name], where=name)
        except Unreadable as error:
            result.problem(str(error))
            continue
        before = len(result.candidates)
        parse_slack_messages(messages, names=names, where=name, result=result)
        if len(channels) > 1 and "/" in name:
            channel = name.split("/")[0]
            result.candidates[before:] = [
                Candidate(c.occurred_at, f"#{channel} {c.description}", c.kind, c.link, CHAT)
                for c in result.candidates[before:]
            ]
    if not result.candidates and not result.problems:
        raise Unreadable("The zip holds no Slack messages (no channel/YYYY-MM-DD.json files).")
    return result.finish()


def read_zip_json(data: bytes) -> dict[str, bytes]:
    """The .json members of a zip, each read up to what is left of MAX_ZIP_TOTAL (so a zip bomb stops)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise Unreadable(f"The zip file cannot be opened ({error}).") from error
    members = [info for info in archive.infolist() if info.filename.endswith(".json") and not info.is_dir()]
    if len(members) > MAX_ZIP_MEMBERS:
        raise Unreadable(f"The zip holds {len(members)} JSON files; at most {MAX_ZIP_MEMBERS} are read.")
    files, left = {}, MAX_ZIP_TOTAL
    for info in members:
        if info.filename.startswith("__MACOSX/"):
            continue
        try:
            with archive.open(info) as member:
                content = member.read(left + 1)
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as error:
            raise Unreadable(f"{info.filename} in the zip cannot be read ({error}).") from error
        if len(content) > left:
            raise Unreadable(
                f"The zip’s JSON files inflate to more than {MAX_ZIP_TOTAL // (1024 * 1024)} MB "
                f"(reading stopped at {info.filename}); export fewer days."
            )
        left -= len(content)
        files[info.filename] = content
    return files


# --- Mattermost --------------------------------------------------------------------------------------------


def parse_mattermost(lines: list, result: Result) -> None:
    """Mattermost's bulk export (JSON Lines: "user" and "post" lines, replies inside posts) or the posts
    API answer ({"order": [...], "posts": {...}})."""
    for number, item in lines:
        if not isinstance(item, dict):
            continue
        if item.get("type") in ("post", "direct_post"):
            post = item.get("post") or item.get("direct_post") or {}
            if not isinstance(post, dict):
                continue
            _mattermost_post(post, f"line {number}", result)
            for reply in post.get("replies") or []:
                if isinstance(reply, dict):
                    _mattermost_post(reply, f"line {number} (reply)", result, in_thread=True)
        elif isinstance(item.get("posts"), dict):
            for post_id, post in item["posts"].items():
                if isinstance(post, dict) and not post.get("type", "").startswith("system_"):
                    _mattermost_post(post, f"post {post_id}", result, in_thread=bool(post.get("root_id")))


def _mattermost_post(post: dict, where: str, result: Result, *, in_thread: bool = False) -> None:
    message = post.get("message")
    if not isinstance(message, str) or not message.strip():
        return
    try:
        occurred = dt.datetime.fromtimestamp(int(post.get("create_at")) / 1000, dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        result.problem(f"Mattermost {where}: no readable time (create_at).")
        return
    props = post.get("props") if isinstance(post.get("props"), dict) else {}
    author = props.get("override_username") or post.get("user") or post.get("user_id") or "someone"
    thread = " (in a thread)" if in_thread else ""
    result.add(
        Candidate(
            occurred, _clip(f"{author}{thread}: {message}"), guess_kind(message), _first_url(message), CHAT
        )
    )


# --- Statuspage --------------------------------------------------------------------------------------------

_STATUSPAGE_KINDS = {"monitoring": "mitigation", "resolved": "resolution", "identified": "other"}


def parse_statuspage(data: dict, result: Result) -> None:
    """A Statuspage incident (its API's JSON, or a record of the public data set): each update an event."""
    incident = data.get("incident") if isinstance(data.get("incident"), dict) else data
    updates = incident.get("incident_updates")
    link = _url(incident.get("shortlink") or data.get("url"))
    if updates is None and isinstance(data.get("extra"), dict):  # the public data set's records
        updates = [
            {"status": u.get("status"), "body": u.get("body"), "created_at": u.get("at")}
            for u in data["extra"].get("timeline") or []
            if isinstance(u, dict)
        ]
        link = link or _url(data["extra"].get("shortlink"))
    if not isinstance(updates, list):
        raise Unreadable("This Statuspage incident has no updates (incident_updates).")
    first_seen = False
    for index, update in enumerate(sorted(updates, key=_update_time), start=1):
        if not isinstance(update, dict):
            result.problem(f"Statuspage update {index}: not an object.")
            continue
        try:
            occurred = _instant(update.get("display_at") or update.get("created_at"), what="time")
        except ValueError as error:
            result.problem(f"Statuspage update {index}: {error}.")
            continue
        status = str(update.get("status") or "")
        body = str(update.get("body") or "")
        if status == "investigating" and not first_seen:
            kind, first_seen = "detection", True
        else:
            kind = _STATUSPAGE_KINDS.get(status, "other")
        label = status.replace("_", " ").capitalize()
        description = f"Status page — {label}: {body}" if label else f"Status page: {body}"
        result.add(Candidate(occurred, _clip(description), kind, link))


def _update_time(update) -> str:
    return str(update.get("display_at") or update.get("created_at") or "") if isinstance(update, dict) else ""


# --- Alertmanager and Grafana ------------------------------------------------------------------------------


def parse_alertmanager(data: dict, result: Result) -> None:
    """An Alertmanager (webhook v4) or Grafana alerting webhook: each alert fires (detection) and, when
    resolved, ends (resolution)."""
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        raise Unreadable("This alert payload has no list of alerts.")
    for index, alert in enumerate(alerts, start=1):
        if not isinstance(alert, dict):
            result.problem(f"Alert {index}: not an object.")
            continue
        labels = alert.get("labels") if isinstance(alert.get("labels"), dict) else {}
        notes = alert.get("annotations") if isinstance(alert.get("annotations"), dict) else {}
        name = labels.get("alertname") or data.get("title") or "alert"
        about = notes.get("summary") or notes.get("description") or ""
        where = ", ".join(
            f"{k}={v}" for k, v in labels.items() if k in ("severity", "service", "instance", "job")
        )
        text = f"{name}" + (f" — {about}" if about else "") + (f" ({where})" if where else "")
        link = _url(alert.get("panelURL") or alert.get("dashboardURL") or alert.get("generatorURL"))
        try:
            started = _instant(alert.get("startsAt"), what="startsAt")
        except ValueError as error:
            result.problem(f"Alert {index} ({name}): {error}.")
            continue
        result.add(Candidate(started, _clip(f"Alert firing: {text}"), "detection", link, "alert"))
        if alert.get("status") == "resolved":
            try:
                ended = _instant(alert.get("endsAt"), what="endsAt")
            except ValueError as error:
                result.problem(f"Alert {index} ({name}): {error}.")
                continue
            if ended.year > 1:  # Alertmanager's "no end yet" is 0001-01-01
                result.add(Candidate(ended, _clip(f"Alert resolved: {text}"), "resolution", link, "alert"))


# --- PagerDuty ---------------------------------------------------------------------------------------------

_PAGERDUTY_EVENTS = {
    "incident.triggered": ("detection", "PagerDuty incident triggered"),
    "incident.acknowledged": ("escalation", "PagerDuty incident acknowledged"),
    "incident.escalated": ("escalation", "PagerDuty incident escalated"),
    "incident.reassigned": ("escalation", "PagerDuty incident reassigned"),
    "incident.responder.added": ("escalation", "PagerDuty responder added"),
    "incident.unacknowledged": ("other", "PagerDuty incident unacknowledged"),
    "incident.annotated": ("other", "PagerDuty note"),
    "incident.priority_updated": ("other", "PagerDuty priority changed"),
    "incident.resolved": ("resolution", "PagerDuty incident resolved"),
    "incident.reopened": ("detection", "PagerDuty incident reopened"),
}
_PAGERDUTY_LOG_KINDS = {
    "trigger_log_entry": "detection",
    "acknowledge_log_entry": "escalation",
    "escalate_log_entry": "escalation",
    "assign_log_entry": "escalation",
    "resolve_log_entry": "resolution",
}


def parse_pagerduty(data: dict, result: Result) -> None:
    """A PagerDuty v3 webhook ({"event": …}) or incident log entries ({"log_entries": […]})."""
    if isinstance(data.get("event"), dict):
        event = data["event"]
        kind, label = _PAGERDUTY_EVENTS.get(str(event.get("event_type")), ("other", "PagerDuty"))
        incident = event.get("data") if isinstance(event.get("data"), dict) else {}
        title = incident.get("title") or (incident.get("incident") or {}).get("summary") or ""
        if event.get("event_type") == "incident.annotated":
            title = (incident.get("content") or title) if isinstance(incident, dict) else title
        agent = event.get("agent") if isinstance(event.get("agent"), dict) else {}
        by = f" by {agent['summary']}" if agent.get("summary") and "acknowledged" in label else ""
        try:
            occurred = _instant(event.get("occurred_at"), what="occurred_at")
        except ValueError as error:
            raise Unreadable(f"PagerDuty event: {error}.") from error
        url = incident.get("html_url") or (incident.get("incident") or {}).get("html_url")
        result.add(Candidate(occurred, _clip(f"{label}{by}: {title}"), kind, _url(url), "pagerduty"))
        return
    entries = data.get("log_entries")
    if entries is None and isinstance(data.get("log_entry"), dict):
        entries = [data["log_entry"]]
    if not isinstance(entries, list):
        raise Unreadable("This PagerDuty payload has neither an event nor log entries.")
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            result.problem(f"PagerDuty log entry {index}: not an object.")
            continue
        try:
            occurred = _instant(entry.get("created_at"), what="created_at")
        except ValueError as error:
            result.problem(f"PagerDuty log entry {index}: {error}.")
            continue
        incident = entry.get("incident") if isinstance(entry.get("incident"), dict) else {}
        summary = entry.get("summary") or str(entry.get("type", "")).replace("_", " ")
        about = incident.get("summary")
        text = f"PagerDuty: {summary}" + (f" — {about}" if about else "")
        kind = _PAGERDUTY_LOG_KINDS.get(str(entry.get("type")), "other")
        result.add(Candidate(occurred, _clip(text), kind, _url(incident.get("html_url")), "pagerduty"))


# --- any input ---------------------------------------------------------------------------------------------


def _loads(content: bytes | str, *, where: str):
    try:
        return json.loads(content)
    except UnicodeDecodeError as error:
        raise Unreadable(f"{where} is not UTF-8 text.") from error
    except RecursionError as error:
        raise Unreadable(f"{where} nests too deeply to read.") from error
    except json.JSONDecodeError as error:
        cut = " (it looks cut off)" if error.pos >= len(content) - 1 else ""
        raise Unreadable(
            f"{where} is not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}{cut}."
        ) from error


def _json_kind(data) -> Callable[[dict, Result], None] | None:
    if isinstance(data, dict):
        if "alerts" in data:
            return parse_alertmanager
        if "event" in data or "log_entries" in data or "log_entry" in data:
            return parse_pagerduty
        if "incident_updates" in data or isinstance(data.get("incident"), dict) or "extra" in data:
            return parse_statuspage
        if "posts" in data:
            return lambda d, r: parse_mattermost([(1, d)], r)
    return None


def parse_json(data, *, where: str = "The file") -> Result:
    """Parsed JSON of any of the formats above (a Slack day file is a list of messages)."""
    if isinstance(data, list) and all(isinstance(m, dict) and "ts" in m for m in data[:50]) and data:
        result = Result(format="a Slack channel export")
        parse_slack_messages(data, names={}, where=where, result=result)
        return result.finish()
    parser = _json_kind(data)
    if parser is None:
        raise Unreadable(
            f"{where} is JSON, but not one we know: expected a Slack day file, a Mattermost export, "
            "a Statuspage incident, an Alertmanager/Grafana alert webhook, "
            "or PagerDuty webhooks or log entries."
        )
    names = {
        parse_alertmanager: "Alertmanager/Grafana alerts",
        parse_pagerduty: "PagerDuty",
        parse_statuspage: "a Statuspage incident",
    }
    result = Result(format=names.get(parser, "a Mattermost export"))
    parser(data, result)
    return result.finish()


def _jsonl(text: str) -> list[tuple[int, object]] | None:
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                lines.append((number, json.loads(line)))
            except (json.JSONDecodeError, RecursionError):
                return None
    return lines


def parse(data: bytes, *, tz: dt.tzinfo, default_date: dt.date, name: str = "The file") -> Result:
    """Whatever was uploaded or pasted: a zip (Slack export), JSON, JSON Lines (Mattermost) or text lines."""
    if len(data) > MAX_BYTES:
        raise Unreadable(f"{name} is larger than {MAX_BYTES // (1024 * 1024)} MB; import it in parts.")
    if data[:4] == b"PK\x03\x04":
        return parse_slack_zip(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise Unreadable(f"{name} is not UTF-8 text (byte {error.start} cannot be read).") from error
    stripped = text.strip()
    if not stripped:
        raise Unreadable(f"{name} is empty.")
    if stripped[0] in "[{":
        lines = _jsonl(stripped) if "\n" in stripped else None
        if lines and len(lines) > 1 and all(isinstance(item, dict) for _, item in lines):
            result = Result(format="a Mattermost export")
            parse_mattermost(lines, result)
            if result.candidates:
                return result.finish()
        return parse_json(_loads(stripped, where=name), where=name)
    return parse_text(text, tz=tz, default_date=default_date)


def parse_files(files: Iterable[tuple[str, bytes]], *, tz: dt.tzinfo, default_date: dt.date) -> Result:
    """Several uploaded files (e.g. a Slack channel's day files, users.json among them) as one import."""
    files = list(files)
    if sum(len(content) for _, content in files) > MAX_BYTES:
        raise Unreadable(
            f"The files are larger than {MAX_BYTES // (1024 * 1024)} MB together; import them in parts."
        )
    names: dict[str, str] = {}
    for name, content in files:
        if name.rsplit("/", 1)[-1] == "users.json":
            names.update(slack_user_names(_loads(content, where=name)))
    combined = Result()
    for name, content in files:
        if name.rsplit("/", 1)[-1] in ("users.json", "channels.json", "integration_logs.json"):
            continue
        if names and content.lstrip()[:1] == b"[":
            part = Result(format="a Slack channel export")
            parse_slack_messages(_loads(content, where=name), names=names, where=name, result=part)
        else:
            part = parse(content, tz=tz, default_date=default_date, name=name)
        combined.candidates += part.candidates
        combined.problems += part.problems
        combined.format = combined.format if combined.format in ("", part.format) else "several files"
        combined.format = combined.format or part.format
    return combined.finish()
