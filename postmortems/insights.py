"""Figures for /insights/: what published postmortems say about detection, mitigation and follow-through.

Distributions are reported as median, 90th percentile and histogram, never as a mean: a few very long
incidents would drag a mean far from any typical one. Every figure carries its sample size, and figures from
fewer than `MIN_SAMPLE` values are flagged as too small to read.

Every figure is made from counts that add up (a `Tally`): incidents per month, incidents per span value,
action items per priority kept or missed, incidents per tag. Counts are grouped in the database, so the
number of queries does not depend on the number of incidents. The tally of the public published incidents
is the same for everyone and is cached as data (aggregates.public_figures); the restricted incidents a
person may see are tallied on every request and added to it.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import accumulate

from django.contrib.contenttypes.models import ContentType
from django.db.models import (
    CharField,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    Value,
)
from django.db.models.functions import TruncDate, TruncMonth
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from taggit.models import TaggedItem

from postmortems.aggregates import public_figures
from postmortems.models import (
    PUBLIC,
    ActionItem,
    ActionItemStatus,
    Incident,
    IncidentQuerySet,
    Priority,
    Visibility,
)

# Below this many values a median or share says more about chance than about the organisation.
MIN_SAMPLE = 10

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
DURATION_BUCKETS = [
    (0, 5 * MINUTE, "< 5 min"),
    (5 * MINUTE, 15 * MINUTE, "5–15 min"),
    (15 * MINUTE, 30 * MINUTE, "15–30 min"),
    (30 * MINUTE, HOUR, "30–60 min"),
    (HOUR, 2 * HOUR, "1–2 h"),
    (2 * HOUR, 4 * HOUR, "2–4 h"),
    (4 * HOUR, 8 * HOUR, "4–8 h"),
    (8 * HOUR, DAY, "8–24 h"),
    (DAY, 3 * DAY, "1–3 d"),
    (3 * DAY, math.inf, "> 3 d"),
]
DAY_BUCKETS = [
    (0, 8, "0–7 d"),
    (8, 15, "8–14 d"),
    (15, 31, "15–30 d"),
    (31, 61, "31–60 d"),
    (61, 91, "61–90 d"),
    (91, math.inf, "> 90 d"),
]


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0–100) of sorted `values`, interpolating linearly between closest ranks
    (as PostgreSQL's percentile_cont and numpy's default do)."""
    return _percentile(values, len(values), p)


def _percentile(values, n: int, p: float) -> float | None:
    """`percentile` of `n` sorted values, `values[rank]` being the one at that rank."""
    if not n:
        return None
    position = (n - 1) * p / 100
    low = math.floor(position)
    high = min(low + 1, n - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


class _Ranked:
    """Sorted values given as (value, how many) pairs, read by rank as if they were one sorted list."""

    def __init__(self, counts: dict[float, int]):
        self.values = sorted(counts)
        self.ends = list(accumulate(counts[value] for value in self.values))

    def __getitem__(self, rank: int) -> float:
        return self.values[bisect.bisect_right(self.ends, rank)]

    def below(self, limit: float) -> int:
        """How many values are less than `limit`."""
        i = bisect.bisect_left(self.values, limit)
        return self.ends[i - 1] if i else 0


@dataclass
class Distribution:
    name: str
    label: str
    unit: str  # "seconds" or "days"
    counts: dict[float, int] = field(default_factory=dict)  # value: how many incidents

    @property
    def buckets(self) -> list[tuple[float, float, str]]:
        return DURATION_BUCKETS if self.unit == "seconds" else DAY_BUCKETS

    @cached_property
    def _ranked(self) -> _Ranked:
        return _Ranked(self.counts)

    @cached_property
    def n(self) -> int:
        return sum(self.counts.values())

    @property
    def too_small(self) -> bool:
        return self.n < MIN_SAMPLE

    @property
    def median(self) -> float | None:
        return _percentile(self._ranked, self.n, 50)

    @property
    def p90(self) -> float | None:
        return _percentile(self._ranked, self.n, 90)

    @property
    def chart_bars(self) -> list[tuple[str, int]]:
        """The histogram with compact labels, for a chart narrower than a table."""
        return [
            (label.replace(" min", "m").replace(" h", "h").replace(" d", "d").replace(" ", ""), n)
            for label, n in self.histogram
        ]

    @cached_property
    def histogram(self) -> list[tuple[str, int]]:
        """How many values fall in each bucket (low ≤ value < high)."""
        ranked = self._ranked
        return [(label, ranked.below(high) - ranked.below(low)) for low, high, label in self.buckets]

    @cached_property
    def chart(self) -> SafeString:
        return bar_chart(self.chart_bars, title=f"{self.label}: histogram", chart_id=self.name, width=440)

    def display(self, value: float | None) -> str:
        if value is None:
            return "—"
        if self.unit == "days":
            return f"{value:.1f} d".replace(".0 d", " d")
        return format_seconds(value)


def format_seconds(seconds: float) -> str:
    minutes = round(seconds / 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min"


@dataclass
class FollowThrough:
    """Action items whose deadline has come (done, or unfinished past their due date)."""

    on_time: int
    late: int
    by_priority: list[tuple[str, int, int]]  # (priority, on time, late)

    @property
    def n(self) -> int:
        return self.on_time + self.late

    @property
    def share(self) -> float | None:
        return self.on_time / self.n if self.n else None

    @property
    def too_small(self) -> bool:
        return self.n < MIN_SAMPLE


# --- the counts every figure is made of ------------------------------------------------------------------


@dataclass
class Tally:
    """What the figures of a set of incidents are made of, as plain data that adds up: the tally of two
    sets that share no incident is the sum of theirs."""

    months: Counter = field(default_factory=Counter)  # first day of a month: incidents
    spans: dict[str, Counter] = field(default_factory=dict)  # distribution: {value: incidents}
    on_time: Counter = field(default_factory=Counter)  # priority: action items done by their due date
    late: Counter = field(default_factory=Counter)  # priority: done after it, or unfinished past it
    tags: Counter = field(default_factory=Counter)  # (name, slug): incidents

    def __add__(self, other: Tally) -> Tally:
        spans = {name: Counter(counts) for name, counts in self.spans.items()}
        for name, counts in other.spans.items():
            spans.setdefault(name, Counter()).update(counts)
        return Tally(
            months=self.months + other.months,
            spans=spans,
            on_time=self.on_time + other.on_time,
            late=self.late + other.late,
            tags=self.tags + other.tags,
        )


def tally(incidents: IncidentQuerySet, today: dt.date) -> Tally:
    """The counts of `incidents` (four queries)."""
    on_time, late = _deadline_counts(incidents, today)
    return Tally(
        months=_month_counts(incidents),
        spans=_span_counts(incidents),
        on_time=on_time,
        late=late,
        tags=_tag_counts(incidents),
    )


def _month_counts(incidents: IncidentQuerySet) -> Counter:
    rows = (
        incidents.order_by()
        .annotate(month=TruncMonth("incident_date"))
        .values_list("month")
        .annotate(n=Count("pk"))
    )
    counts = Counter()
    for month, n in rows:
        counts[month.date() if isinstance(month, dt.datetime) else month] += n
    return counts


# Detect, mitigate and resolve are measured from the start of the incident; publication in whole days
# from its date: (name, label, unit, start, end).
SPANS = [
    ("detect", "Time to detect", "seconds", "started_at", "detected_at"),
    ("mitigate", "Time to mitigate", "seconds", "started_at", "mitigated_at"),
    ("resolve", "Time to resolve", "seconds", "started_at", "resolved_at"),
    ("publish", "Days from incident to publication", "days", "incident_date", "published_at"),
]


def _span(start: str, end: str) -> ExpressionWrapper:
    if start == "incident_date":
        return ExpressionWrapper(TruncDate(end) - F(start), output_field=DurationField())
    return ExpressionWrapper(F(end) - F(start), output_field=DurationField())


def _span_counts(incidents: IncidentQuerySet) -> dict[str, Counter]:
    """Per distribution, how many incidents have each span (seconds, or days): one grouped query per
    distribution, sent as one UNION ALL. Incidents without the times, or whose times run backwards, are
    left out."""
    parts = [
        incidents.order_by()
        .annotate(distribution=Value(name, output_field=CharField()), span=_span(start, end))
        .filter(span__gte=dt.timedelta(0))
        .values_list("distribution", "span")
        .annotate(n=Count("pk"))
        for name, _label, _unit, start, end in SPANS
    ]
    units = {name: unit for name, _label, unit, _start, _end in SPANS}
    counts = {name: Counter() for name in units}
    for name, span, n in parts[0].union(*parts[1:], all=True):
        value = span.days if units[name] == "days" else span.total_seconds()
        counts[name][value] += n
    return counts


def _deadline_counts(incidents: IncidentQuerySet, today: dt.date) -> tuple[Counter, Counter]:
    """Per priority, action items done on time and late, of those whose due date has come or that are done.

    Won't-do items and items without a due date have no deadline to keep and are left out.
    """
    done = Q(status=ActionItemStatus.DONE)
    unfinished = Q(status__in=[ActionItemStatus.OPEN, ActionItemStatus.IN_PROGRESS])
    rows = (
        ActionItem.objects.filter(incident__in=incidents.order_by().values("pk"), due_date__isnull=False)
        .order_by()
        .values_list("priority")
        .annotate(
            on_time=Count("pk", filter=done & Q(completed_at__date__lte=F("due_date"))),
            late=Count(
                "pk",
                filter=(done & Q(completed_at__date__gt=F("due_date")))
                | (unfinished & Q(due_date__lt=today)),
            ),
        )
    )
    on_time, late = Counter(), Counter()
    for priority, kept, missed in rows:
        on_time[priority] += kept
        late[priority] += missed
    return on_time, late


def _tag_counts(incidents: IncidentQuerySet) -> Counter:
    """How many of `incidents` carry each tag."""
    rows = (
        TaggedItem.objects.filter(
            content_type=ContentType.objects.get_for_model(Incident),
            object_id__in=incidents.order_by().values("pk"),
        )
        .values_list("tag_id", "tag__name", "tag__slug")
        .annotate(n=Count("object_id"))
    )
    return Counter({(name, slug): n for _pk, name, slug, n in rows})


# --- figures from the counts -----------------------------------------------------------------------------


def months_between(start: dt.date, end: dt.date) -> list[dt.date]:
    months = []
    month = start.replace(day=1)
    while month <= end:
        months.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return months


def _per_month(counts: Counter, start: dt.date, end: dt.date) -> list[tuple[dt.date, int]]:
    return [(month, counts.get(month, 0)) for month in months_between(start, end)]


def _distributions(spans: dict[str, Counter]) -> list[Distribution]:
    return [
        Distribution(name, label, unit, dict(spans.get(name, {})))
        for name, label, unit, _start, _end in SPANS
    ]


def _follow_through(on_time: Counter, late: Counter) -> FollowThrough:
    table = [
        (label, on_time[value], late[value])
        for value, label in [*Priority.choices, ("", "No priority")]
        if on_time[value] or late[value]
    ]
    return FollowThrough(on_time=sum(on_time.values()), late=sum(late.values()), by_priority=table)


def _recurring(tags: Counter, limit: int = 15) -> list[dict]:
    """Tags on more than one incident, most frequent first."""
    ranked = sorted(((-n, name, slug) for (name, slug), n in tags.items() if n >= 2))[:limit]
    return [{"tag__name": name, "tag__slug": slug, "n": -n} for n, name, slug in ranked]


def incidents_per_month(
    incidents: IncidentQuerySet, start: dt.date, end: dt.date
) -> list[tuple[dt.date, int]]:
    """One row per month of the period, months without incidents included (one query)."""
    return _per_month(_month_counts(incidents), start, end)


def distributions(incidents: IncidentQuerySet) -> list[Distribution]:
    """Time to detect, mitigate, resolve (from the start) and days from the incident to publication."""
    return _distributions(_span_counts(incidents))


def follow_through(incidents: IncidentQuerySet, today: dt.date) -> FollowThrough:
    """Share of action items done by their due date, of those whose due date has come or that are done."""
    return _follow_through(*_deadline_counts(incidents, today))


def recurring_tags(incidents: IncidentQuerySet, *, limit: int = 15) -> list[dict]:
    """Tags carried by more than one incident of the selection, most frequent first (one query)."""
    return _recurring(_tag_counts(incidents), limit)


# --- the page --------------------------------------------------------------------------------------------


def selected(
    incidents: IncidentQuerySet,
    *,
    date_from: dt.date,
    date_to: dt.date,
    tag: str = "",
    team=None,
    severity: str = "",
) -> IncidentQuerySet:
    """The published ones of `incidents` that the figures are about."""
    incidents = incidents.published().filter(incident_date__gte=date_from, incident_date__lte=date_to)
    if tag:
        incidents = incidents.with_tags([tag])
    if team is not None:
        incidents = incidents.filter(teams=team)
    if severity:
        incidents = incidents.filter(severity=severity)
    return incidents


def incidents_for(user, **filters) -> IncidentQuerySet:
    """The published postmortems `user` may see that the figures are about (`selected` for the filters)."""
    return selected(Incident.objects.visible_to(user), **filters)


def visible_restricted(user) -> list[int]:
    """The restricted published incidents `user` may see, asked on every request: who may see them
    changes with a team's members, and must show at once."""
    restricted = Incident.objects.published().filter(visibility=Visibility.RESTRICTED)
    # Unordered: PostgreSQL then reads them from the partial index of non-public incidents alone.
    return list(restricted.visible_to(user).order_by().values_list("pk", flat=True))


def figures(
    user, *, date_from: dt.date, date_to: dt.date, tag: str, team, severity: str, today: dt.date
) -> dict:
    """Every figure of the page, over the published incidents `user` may see.

    The tally of the public ones (published, normal visibility) is the same for everyone and is cached
    per filter and per version of the published incidents; the restricted ones `user` may see are
    tallied afresh and added (two queries, and four more when there are some)."""
    filters = {"date_from": date_from, "date_to": date_to, "tag": tag, "team": team, "severity": severity}
    parts = (date_from, date_to, tag, getattr(team, "pk", None), severity, today)
    found = public_figures(
        "insights", parts, lambda: tally(selected(Incident.objects.filter(PUBLIC), **filters), today)
    )
    seen = visible_restricted(user)
    if seen and tag:
        # Narrowed to the tag's incidents first, from the tagged items' index: given both lists of ids,
        # PostgreSQL looked up every restricted incident through the primary key, once per figure.
        tagged = TaggedItem.objects.filter(
            content_type=ContentType.objects.get_for_model(Incident), tag__slug=tag, object_id__in=seen
        )
        seen = sorted(set(tagged.values_list("object_id", flat=True)))
    if seen:
        found += tally(selected(Incident.objects.filter(pk__any_of=seen), **{**filters, "tag": ""}), today)
    monthly = _per_month(found.months, date_from, date_to)
    bars = [(f"{month:%b %y}", n) for month, n in monthly]
    return {
        "monthly": monthly,
        "monthly_total": sum(n for _month, n in monthly),
        "monthly_chart": bar_chart(
            bars, title="Incidents per month", chart_id="monthly", every=max(1, math.ceil(len(bars) / 12))
        ),
        "distributions": _distributions(found.spans),
        "follow_through": _follow_through(found.on_time, found.late),
        "recurring_tags": _recurring(found.tags),
    }


# --- charts ------------------------------------------------------------------------------------------------


def bar_chart(
    bars: Sequence[tuple[str, int]], *, title: str, chart_id: str, every: int = 1, width: int = 640
) -> SafeString:
    """A bar chart as inline SVG, labelled for screen readers; the page shows the same data as a table.

    `every` labels only every n-th bar on the x axis, so that two years of months stay readable.
    """
    left, right, top, bottom = 40, 8, 16, 34
    plot_w = width - left - right
    slot = plot_w / max(len(bars), 1)
    # Labels never overlap: the SVG scales as a whole, so this holds at every screen width. A label wider
    # than its room goes on a second line (every other one), and if that is not enough, fewer are labelled.
    widest = max((_label_width(label) for label, _value in bars), default=0)
    staggered = widest > slot * every - LABEL_GAP
    if staggered:
        every = max(every, math.ceil((widest + LABEL_GAP) / (2 * slot)))
        bottom += LABEL_LINE
    height = 220 + (LABEL_LINE if staggered else 0)
    plot_h = height - top - bottom
    top_value = max((value for _label, value in bars), default=0)
    scale_max = nice_ceiling(top_value)
    bar_w = max(slot * 0.72, 1)
    parts = []
    for tick in (0, scale_max / 2, scale_max):
        y = top + plot_h - plot_h * tick / scale_max
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" class="grid"/>'
                '<text x="{}" y="{}" class="tick" text-anchor="end">{}</text>',
                left,
                width - right,
                _n(y),
                _n(y),
                left - 6,
                _n(y + 4),
                f"{tick:g}",
            )
        )
    for i, (label, value) in enumerate(bars):
        x = left + i * slot + (slot - bar_w) / 2
        bar_h = plot_h * value / scale_max
        parts.append(
            format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" class="bar"><title>{}: {}</title></rect>',
                _n(x),
                _n(top + plot_h - bar_h),
                _n(bar_w),
                _n(bar_h),
                label,
                value,
            )
        )
        if i % every == 0:
            second_line = staggered and (i // every) % 2 == 1
            parts.append(
                format_html(
                    '<text x="{}" y="{}" class="label" text-anchor="middle">{}</text>',
                    _n(x + bar_w / 2),
                    height - bottom + 16 + (LABEL_LINE if second_line else 0),
                    label,
                )
            )
    summary = "; ".join(f"{label}: {value}" for label, value in bars)
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-labelledby="{}-title {}-desc" '
        'preserveAspectRatio="xMidYMid meet" data-testid="chart-{}">'
        '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>{}</svg>',
        width,
        height,
        chart_id,
        chart_id,
        chart_id,
        chart_id,
        title,
        chart_id,
        summary,
        mark_safe("".join(parts)),  # each part was built by format_html above
    )


# Axis labels are 11 px (static/css/hindsight.css); a character is at most about 0.62 em wide in the system
# sans-serif fonts, digits and en dashes included.
LABEL_CHAR_WIDTH = 11 * 0.62
LABEL_GAP = 4
LABEL_LINE = 14


def _label_width(label: str) -> float:
    return len(label) * LABEL_CHAR_WIDTH


def _n(value: float) -> str:
    return f"{value:.1f}"


def nice_ceiling(value: float) -> int:
    """The smallest of 2, 4, 6, 10 × 10^k at or above `value`: an axis top whose half is a whole number."""
    if value <= 2:
        return 2
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 4, 6, 10):
        if step * power >= value and step * power % 2 == 0:
            return int(step * power)
    return int(10 * power)
