"""A postmortem as one Markdown document, in the template's section order (DESIGN.md section 1)."""

from __future__ import annotations

from postmortems.changes import format_time, one_line
from postmortems.models import ContributingFactor, Incident, factor_tree


def _section(number: int, heading: str, body: str | None, empty: str = "_Not written yet._") -> list[str]:
    return [f"## {number}. {heading}", "", (body or "").strip() or empty, ""]


def _factor_lines(factors: list[ContributingFactor]) -> list[str]:
    lines = []
    for factor, depth in factor_tree(factors):
        label = f"[{factor.get_category_display()}{', human error' if factor.is_human_error else ''}]"
        prefix = "why? " if depth else ""
        lines.append(f"{'    ' * depth}- {prefix}{one_line(factor.description)} {label}")
    return lines


def to_markdown(incident: Incident) -> str:
    """The whole postmortem as Markdown: title, then sections 2–14 as numbered second-level headings."""
    zone = incident.tz
    out = [f"# {one_line(incident.title)}", ""]
    facts = [
        f"- Status: {incident.get_status_display()}",
        f"- Severity: {incident.get_severity_display()}",
    ]
    if incident.company:
        facts.append(f"- Company: {incident.company}")
    if incident.source_url:
        facts.append(f"- Original report: <{incident.source_url}>")
    out += [*facts, ""]

    out += [
        "## 2. Incident date",
        "",
        f"{incident.incident_date:%A, %-d %B %Y} (times in {incident.time_zone})",
        "",
        f"- Started: {format_time(incident.started_at, zone)}",
        f"- Detected: {format_time(incident.detected_at, zone)}",
        f"- Mitigated: {format_time(incident.mitigated_at, zone)}",
        f"- Resolved: {format_time(incident.resolved_at, zone)}",
        "",
    ]
    co_authors = ", ".join(str(u) for u in incident.co_authors.all())
    out += _section(3, "Owner", f"{incident.owner}" + (f" (with {co_authors})" if co_authors else ""))
    out += _section(
        4, "Peer-review committee", ", ".join(str(u) for u in incident.committee.all()), "Not chosen yet."
    )
    out += _section(5, "Tags", ", ".join(tag.name for tag in incident.tags.all()), "None.")
    out += _section(6, "Summary", incident.summary)
    out += _section(7, "Supporting data", incident.supporting_data)
    if incident.impacted_customers is None:
        customers = "Number of impacted customers: not stated yet."
    else:
        customers = f"Number of impacted customers: {incident.impacted_customers}"
    out += _section(8, "Customer impact", f"{customers}\n\n{incident.customer_impact or ''}")
    out += _section(9, "Incident response analysis", incident.response_analysis)
    out += _section(10, "Post-incident analysis", incident.post_incident_analysis)

    timeline = [
        f"- {format_time(event.occurred_at, zone)} — **{event.get_kind_display()}**: "
        + one_line(event.description)
        + (f" ([graph / log]({event.link}))" if event.link else "")
        for event in incident.timeline_events.all()
    ]
    out += _section(11, "Timeline", "\n".join(timeline), "No events yet.")
    out += _section(
        12, "Contributing factors", "\n".join(_factor_lines(list(incident.factors.all()))), "None yet."
    )
    lessons = []
    for lesson in incident.lessons.all():
        leads_to = "; ".join(one_line(item.title) for item in lesson.action_items.all())
        lessons.append(f"- {one_line(lesson.text)}" + (f" (leads to: {leads_to})" if leads_to else ""))
    out += _section(13, "Lessons learned", "\n".join(lessons), "None yet.")
    rows = [
        "| Action item | Owner | Due | Priority | Status | Backlog |",
        "|---|---|---|---|---|---|",
    ]
    for item in incident.action_items.all():
        cells = [
            one_line(item.title),
            str(item.owner or "—"),
            f"{item.due_date:%Y-%m-%d}" if item.due_date else "—",
            item.priority or "—",
            item.get_status_display(),
            item.backlog_link or "—",
        ]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    out += _section(14, "Action items", "\n".join(rows) if len(rows) > 2 else "", "None yet.")
    return "\n".join(out).rstrip() + "\n"
