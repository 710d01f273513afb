"""The template's own rules (DESIGN.md section 5) as pure functions over an incident.

Each check takes an incident whose related rows are loaded (see `CHECK_PREFETCH`) and returns findings;
`run_checks` runs them all. Blocking findings refuse publishing; warnings are shown, not enforced.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from postmortems.models import Incident, TimelineEventKind

# Prefetch these on the incident before running checks, and every check reads from memory.
CHECK_PREFETCH = (
    "timeline_events",
    "factors__action_items",
    "action_items__factors",
    "lessons__action_items",
)


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    step: str  # the authoring step where it is fixed
    blocking: bool

    @property
    def level(self) -> str:
        return "blocking" if self.blocking else "warning"


def _blocking(code: str, message: str, step: str) -> Finding:
    return Finding(code=code, message=message, step=step, blocking=True)


def _warning(code: str, message: str, step: str) -> Finding:
    return Finding(code=code, message=message, step=step, blocking=False)


def check_summary(incident: Incident) -> list[Finding]:
    if incident.summary.strip():
        return []
    return [_blocking("summary_missing", "Write a summary of the event.", "impact")]


def check_customer_impact(incident: Incident) -> list[Finding]:
    findings = []
    if not incident.customer_impact.strip():
        findings.append(_blocking("customer_impact_missing", "Describe the impact on customers.", "impact"))
    if incident.impacted_customers is None:
        findings.append(
            _blocking(
                "impacted_customers_missing",
                "State the number of impacted customers (0 is an answer).",
                "impact",
            )
        )
    return findings


def check_timeline(incident: Incident) -> list[Finding]:
    events = list(incident.timeline_events.all())
    if not events:
        return [_blocking("timeline_empty", "Add at least one timeline event.", "timeline")]
    kinds = {event.kind for event in events}
    missing = [
        label
        for kind, label in (
            (TimelineEventKind.DETECTION, "detection"),
            (TimelineEventKind.MITIGATION, "mitigation"),
        )
        if kind not in kinds
    ]
    if missing:
        return [
            _warning(
                "timeline_without_detection_or_mitigation",
                f"The timeline has no {' or '.join(missing)} event: when was it noticed, what stopped it?",
                "timeline",
            )
        ]
    return []


def check_factors(incident: Incident) -> list[Finding]:
    factors = list(incident.factors.all())
    if not factors:
        return [_blocking("factors_missing", "Add at least one contributing factor.", "factors")]
    findings = []
    if len(factors) == 1:
        findings.append(
            _warning(
                "single_factor",
                "There is no single cause: keep asking “why?” until there are several contributing factors.",
                "factors",
            )
        )
    parents = {factor.parent_id for factor in factors}
    for factor in factors:
        if factor.is_human_error and factor.pk not in parents:
            findings.append(
                _blocking(
                    "human_error_without_why",
                    f"“{_short(factor.description)}” is marked human error: answer “why?” — why was there no "
                    "safeguard, review or rollback?",
                    "factors",
                )
            )
    return findings


BLAME_PATTERNS = [
    r"\bhuman error\b",
    r"\b(?:his|her) (?:fault|mistake|error)\b",
    r"\b(?:was|were) (?:careless|negligent|sloppy|lazy|incompetent)\b",
    r"\bcareless(?:ly|ness)?\b",
    r"\bnegligen(?:ce|t)\b",
    r"\bincompeten(?:ce|t)\b",
    r"\bblame[sd]?\b",
    r"\bshould have known\b",
    r"\bdidn[’']t (?:bother|care|pay attention)\b",
    r"\bforgot to\b",
]
_BLAME = re.compile("|".join(BLAME_PATTERNS), re.IGNORECASE)


def check_blameless_language(incident: Incident) -> list[Finding]:
    return [
        _warning(
            "factor_blames_a_person",
            f"“{_short(factor.description)}” reads as blaming a person; describe the system that allowed it.",
            "factors",
        )
        for factor in incident.factors.all()
        if _BLAME.search(factor.description)
    ]


def check_action_items(incident: Incident) -> list[Finding]:
    items = list(incident.action_items.all())
    if not items:
        return [_blocking("action_items_missing", "Add at least one action item.", "actions")]
    findings = []
    for item in items:
        missing = [
            name
            for name, value in (
                ("an owner", item.owner_id),
                ("a due date", item.due_date),
                ("a priority", item.priority),
            )
            if not value
        ]
        if missing:
            findings.append(
                _blocking(
                    "action_item_incomplete",
                    f"Action item “{_short(item.title)}” needs {_join(missing)}.",
                    "actions",
                )
            )
        if not item.backlog_link:
            findings.append(
                _warning(
                    "action_item_without_backlog_link",
                    f"Action item “{_short(item.title)}” has no backlog link.",
                    "actions",
                )
            )
    return findings


def check_leaf_factors_addressed(incident: Incident) -> list[Finding]:
    factors = list(incident.factors.all())
    parents = {factor.parent_id for factor in factors}
    return [
        _blocking(
            "factor_not_addressed",
            f"No action item addresses “{_short(factor.description)}”.",
            "actions",
        )
        for factor in factors
        if factor.pk not in parents and not factor.action_items.all()
    ]


def check_lessons(incident: Incident) -> list[Finding]:
    return [
        _warning(
            "lesson_without_action_item",
            f"Lesson “{_short(lesson.text)}” leads to no action item.",
            "lessons",
        )
        for lesson in incident.lessons.all()
        if not lesson.action_items.all()
    ]


CHECKS: list[Callable[[Incident], list[Finding]]] = [
    check_summary,
    check_customer_impact,
    check_timeline,
    check_factors,
    check_blameless_language,
    check_leaf_factors_addressed,
    check_lessons,
    check_action_items,
]


def run_checks(incident: Incident) -> list[Finding]:
    """Every finding for the incident, blocking ones first, in template order within each level."""
    findings = [finding for check in CHECKS for finding in check(incident)]
    return sorted(findings, key=lambda finding: not finding.blocking)


def blocking(findings: Iterable[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.blocking]


def _short(text: str, length: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1] + "…"


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
