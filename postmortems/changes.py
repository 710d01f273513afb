"""What changed since a reviewer's sign-off: a snapshot of the content at each sign-off, and a readable diff.

`snapshot(incident)` turns the postmortem's content into plain text per part (sections, timeline, factors,
lessons, action items); `diff(old, new)` compares two snapshots line by line with difflib. The incident's
related rows should be loaded (see `SNAPSHOT_PREFETCH`) so that a snapshot reads from memory.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from accounts.models import in_zone
from postmortems.models import Incident, factor_tree

SNAPSHOT_PREFETCH = (
    "tags",
    "timeline_events",
    "factors",
    "lessons__action_items",
    "action_items__owner",
)

# Template order; the keys are stored in SignOff.snapshot, so rename them only with a data migration.
PARTS: dict[str, str] = {
    "basics": "Title, date and tags",
    "summary": "Summary",
    "supporting_data": "Supporting data",
    "customer_impact": "Customer impact",
    "response_analysis": "Incident response analysis",
    "post_incident_analysis": "Post-incident analysis",
    "timeline": "Timeline",
    "factors": "Contributing factors",
    "lessons": "Lessons learned",
    "action_items": "Action items",
}


def format_time(value, zone) -> str:
    """A time in `zone`, with the zone's abbreviation, as the text of a postmortem shows it."""
    if value is None:
        return "—"
    local = in_zone(value, zone)
    return f"{local:%Y-%m-%d %H:%M} {local:%Z}"


def snapshot(incident: Incident) -> dict[str, str]:
    """The content a reviewer signs off, as plain text per part."""
    zone = incident.tz
    basics = [
        f"Title: {incident.title}",
        f"Incident date: {incident.incident_date:%Y-%m-%d}",
        f"Severity: {incident.severity}",
        f"Time zone: {incident.time_zone}",
        f"Started: {format_time(incident.started_at, zone)}",
        f"Detected: {format_time(incident.detected_at, zone)}",
        f"Mitigated: {format_time(incident.mitigated_at, zone)}",
        f"Resolved: {format_time(incident.resolved_at, zone)}",
        "Tags: " + (", ".join(sorted(tag.name for tag in incident.tags.all())) or "—"),
    ]
    impacted = "not stated yet" if incident.impacted_customers is None else str(incident.impacted_customers)
    timeline = [
        f"{format_time(event.occurred_at, zone)} · {event.get_kind_display()} · {one_line(event.description)}"
        + (f" · {event.link}" if event.link else "")
        for event in incident.timeline_events.all()
    ]
    action_items = []
    for item in incident.action_items.all():
        details = [
            f"owner {item.owner}" if item.owner_id else "no owner",
            f"due {item.due_date:%Y-%m-%d}" if item.due_date else "no due date",
            item.priority or "no priority",
            item.get_status_display(),
        ]
        if item.backlog_link:
            details.append(item.backlog_link)
        action_items.append(f"{one_line(item.title)} ({', '.join(details)})")
    lessons = []
    for lesson in incident.lessons.all():
        leads_to = "; ".join(item.title for item in lesson.action_items.all())
        lessons.append(one_line(lesson.text) + (f" → {leads_to}" if leads_to else ""))
    return {
        "basics": "\n".join(basics),
        "summary": incident.summary.strip(),
        "supporting_data": incident.supporting_data.strip(),
        "customer_impact": f"Impacted customers: {impacted}\n{incident.customer_impact.strip()}".strip(),
        "response_analysis": incident.response_analysis.strip(),
        "post_incident_analysis": incident.post_incident_analysis.strip(),
        "timeline": "\n".join(timeline),
        "factors": "\n".join(_factor_lines(list(incident.factors.all()))),
        "lessons": "\n".join(lessons),
        "action_items": "\n".join(action_items),
    }


def _factor_lines(factors) -> list[str]:
    lines = []
    for factor, depth in factor_tree(factors):
        human = ", human error" if factor.is_human_error else ""
        lines.append(
            "  " * depth + "- " + one_line(factor.description) + f" [{factor.get_category_display()}{human}]"
        )
    return lines


def one_line(text: str) -> str:
    """`text` with every run of white space, line breaks included, as one space."""
    return " ".join((text or "").split())


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "added", "removed", "context" or "gap"
    text: str

    @property
    def sign(self) -> str:
        return {"added": "+", "removed": "−", "context": " ", "gap": "…"}[self.kind]


@dataclass
class PartChange:
    key: str
    label: str
    lines: list[DiffLine] = field(default_factory=list)

    @property
    def added(self) -> int:
        return sum(line.kind == "added" for line in self.lines)

    @property
    def removed(self) -> int:
        return sum(line.kind == "removed" for line in self.lines)


def diff(old: dict[str, str], new: dict[str, str], *, context: int = 2) -> list[PartChange]:
    """The parts that differ, in template order, each as added/removed lines with a little context."""
    changes = []
    for key, label in PARTS.items():
        before = (old.get(key) or "").splitlines()
        after = (new.get(key) or "").splitlines()
        if before == after:
            continue
        change = PartChange(key=key, label=label)
        matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
        for number, group in enumerate(matcher.get_grouped_opcodes(context)):
            if number:
                change.lines.append(DiffLine("gap", ""))
            for tag, i1, i2, j1, j2 in group:
                if tag == "equal":
                    change.lines.extend(DiffLine("context", text) for text in before[i1:i2])
                    continue
                if tag in ("replace", "delete"):
                    change.lines.extend(DiffLine("removed", text) for text in before[i1:i2])
                if tag in ("replace", "insert"):
                    change.lines.extend(DiffLine("added", text) for text in after[j1:j2])
        changes.append(change)
    return changes
