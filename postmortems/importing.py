"""Turn public postmortem records (the JSON Lines of shared/data/public-postmortems) into incidents."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from django.db import transaction
from django.utils.dateparse import parse_datetime
from taggit.models import Tag

from accounts.models import ARCHIVE_USERNAME
from postmortems.forms import TAG_MAX_LENGTH
from postmortems.models import Activity, ActivityVerb, Incident, Status, TimelineEvent, TimelineEventKind
from postmortems.search import update_search_vector

GITHUB_STATUS_KINDS = {
    "investigating": TimelineEventKind.DETECTION,
    "identified": TimelineEventKind.ESCALATION,
    "monitoring": TimelineEventKind.MITIGATION,
    "resolved": TimelineEventKind.RESOLUTION,
}


class RecordError(ValueError):
    """A record that cannot become an incident; the message says why."""


@dataclass(frozen=True)
class Record:
    title: str
    company: str
    date: dt.date
    tags: list[str]
    summary: str
    url: str
    started_at: dt.datetime | None
    resolved_at: dt.datetime | None
    timeline: list[tuple[dt.datetime, str, str]]


def _aware(value) -> dt.datetime | None:
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None or parsed.tzinfo is None:
        return None
    return parsed


def parse_record(line: str) -> Record:
    """Read one JSON line; raise RecordError with a reason a person can act on."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RecordError(f"not valid JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise RecordError("not a JSON object")
    extra = data.get("extra") or {}
    title = (data.get("title") or "").strip()
    url = (data.get("url") or "").strip()
    if not title:
        raise RecordError("no title")
    if not url:
        raise RecordError("no url")
    date = None
    if data.get("date"):
        try:
            date = dt.date.fromisoformat(data["date"])
        except ValueError as exc:
            raise RecordError(f"date {data['date']!r} is not YYYY-MM-DD") from exc
    started_at = _aware(extra.get("started_at") or extra.get("start_time"))
    if date is None and started_at is not None:
        date = started_at.date()
    if date is None and extra.get("year"):
        date = dt.date(int(extra["year"]), int(extra.get("month") or 1), 1)
    if date is None:
        raise RecordError("no date (neither date, start time nor year)")
    timeline = []
    for update in extra.get("timeline") or []:
        at = _aware(update.get("at"))
        body = (update.get("body") or "").strip()
        if at and body:
            timeline.append((at, update.get("status") or "", body))
    # A tag needs a slug (a letter or digit) and fits TAG_MAX_LENGTH, as in the authoring form.
    tags = [str(t).strip()[:TAG_MAX_LENGTH] for t in data.get("tags") or [] if Tag().slugify(str(t).strip())]
    return Record(
        title=title[:200],
        company=(data.get("company") or "")[:100],
        date=date,
        tags=tags,
        summary=(data.get("summary") or "").strip(),
        url=url[:500],
        started_at=started_at,
        resolved_at=_aware(extra.get("resolved_at") or extra.get("end_time")),
        timeline=timeline,
    )


@transaction.atomic
def import_record(record: Record, *, owner) -> tuple[Incident, bool]:
    """Create a published incident from a record, unless one with its url exists (idempotent)."""
    existing = Incident.objects.filter(source_url=record.url).first()
    if existing is not None:
        return existing, False
    resolved_at = record.resolved_at
    if record.started_at and resolved_at and resolved_at < record.started_at:
        resolved_at = None
    incident = Incident.objects.create(
        title=record.title,
        company=record.company,
        incident_date=record.date,
        summary=record.summary,
        source_url=record.url,
        owner=owner,
        time_zone="UTC",
        started_at=record.started_at,
        resolved_at=resolved_at,
        status=Status.PUBLISHED,
        published_at=resolved_at or record.started_at or dt.datetime.combine(record.date, dt.time(), dt.UTC),
    )
    if record.tags:
        incident.tags.add(*record.tags)
    TimelineEvent.objects.bulk_create(
        TimelineEvent(
            incident=incident,
            occurred_at=at,
            kind=GITHUB_STATUS_KINDS.get(status, TimelineEventKind.OTHER),
            description=body,
        )
        for at, status, body in record.timeline
    )
    Activity.objects.create(
        incident=incident, actor=owner, verb=ActivityVerb.IMPORTED, detail=f"from {record.url}"
    )
    update_search_vector(incident.pk)
    return incident, True


def archive_owner():
    """The user who owns imported public postmortems when no owner is named; cannot sign in."""
    from accounts.models import User

    archive, created = User.objects.get_or_create(
        username=ARCHIVE_USERNAME,
        defaults={"display_name": "Public postmortem archive", "is_active": True},
    )
    if created:
        archive.set_unusable_password()
        archive.save(update_fields=["password"])
    return archive
