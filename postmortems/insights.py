"""Figures for /insights/: what published postmortems say about detection, mitigation and follow-through.

Distributions are reported as median, 90th percentile and histogram, never as a mean: a few very long
incidents would drag a mean far from any typical one. Every figure carries its sample size, and figures from
fewer than `MIN_SAMPLE` values are flagged as too small to read. The number of queries does not depend on
the number of incidents: counts are aggregated in the database, and durations come from one values_list.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import connections
from django.db.models import (
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Q,
    When,
)
from django.db.models.functions import TruncDate, TruncMonth
from django.db.models.lookups import GreaterThanOrEqual
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from taggit.models import TaggedItem

from postmortems import caching
from postmortems.models import ActionItem, ActionItemStatus, Incident, IncidentQuerySet, Priority

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
    if not values:
        return None
    position = (len(values) - 1) * p / 100
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


@dataclass
class Distribution:
    name: str
    label: str
    unit: str  # "seconds" or "days"
    values: list[float] = field(default_factory=list)

    # Computed by the database instead of from `values` (PostgreSQL): n, median, p90, histogram.
    summary: dict | None = None

    def __post_init__(self):
        self.values.sort()

    @property
    def buckets(self) -> list[tuple[float, float, str]]:
        return DURATION_BUCKETS if self.unit == "seconds" else DAY_BUCKETS

    @property
    def n(self) -> int:
        if self.summary is not None:
            return self.summary["n"]
        return len(self.values)

    @property
    def too_small(self) -> bool:
        return self.n < MIN_SAMPLE

    @property
    def median(self) -> float | None:
        if self.summary is not None:
            return self.summary["median"]
        return percentile(self.values, 50)

    @property
    def p90(self) -> float | None:
        if self.summary is not None:
            return self.summary["p90"]
        return percentile(self.values, 90)

    @property
    def chart_bars(self) -> list[tuple[str, int]]:
        """The histogram with compact labels, for a chart narrower than a table."""
        return [
            (label.replace(" min", "m").replace(" h", "h").replace(" d", "d").replace(" ", ""), n)
            for label, n in self.histogram
        ]

    @cached_property
    def histogram(self) -> list[tuple[str, int]]:
        """How many values fall in each bucket (low ≤ value < high); the values are sorted, so bisect."""
        if self.summary is not None:
            return self.summary["histogram"]
        return [
            (label, bisect.bisect_left(self.values, high) - bisect.bisect_left(self.values, low))
            for low, high, label in self.buckets
        ]

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


def figures(
    user,
    *,
    date_from: dt.date,
    date_to: dt.date,
    tag: str,
    team,
    severity: str,
    today: dt.date,
    render: Callable[[dict], str] | None = None,
) -> dict:
    """Every figure of the page, cached per filter, audience and state of the data (two small queries
    decide): the figures cost up to half a second at 100,000 incidents, and the same ones are asked for
    again and again between two changes. With `render`, its result (the figures as HTML) is cached with
    them under "html": drawing a ten-year page costs more than checking the cache."""
    filters = (date_from, date_to, tag, getattr(team, "pk", None), severity, today, render is not None)
    key = caching.Snapshot(user).published_key("insights", filters)

    def compute() -> dict:
        incidents = incidents_for(
            user, date_from=date_from, date_to=date_to, tag=tag, team=team, severity=severity
        )
        monthly = incidents_per_month(incidents, date_from, date_to)
        bars = [(f"{month:%b %y}", n) for month, n in monthly]
        dists = distributions(incidents)
        for dist in dists:
            dist.chart = bar_chart(
                dist.chart_bars, title=f"{dist.label}: histogram", chart_id=dist.name, width=440
            )
        found = {
            "monthly": monthly,
            "monthly_total": sum(n for _month, n in monthly),
            "monthly_chart": bar_chart(
                bars, title="Incidents per month", chart_id="monthly", every=max(1, math.ceil(len(bars) / 12))
            ),
            "distributions": dists,
            "follow_through": follow_through(incidents, today),
            "recurring_tags": recurring_tags(incidents),
        }
        if render is not None:
            found["html"] = render(found)
        return found

    return cache.get_or_set(key, compute, caching.CACHE_SECONDS)


def incidents_for(
    user, *, date_from: dt.date, date_to: dt.date, tag: str = "", team=None, severity: str = ""
) -> IncidentQuerySet:
    """The published postmortems `user` may see that the figures are about."""
    # The same rule as Incident.objects.visible_to, written as "not hidden from them" (a small indexed
    # set, hashed once: see ActionItemQuerySet.visible_to), so that PostgreSQL reads the period's
    # incidents from one covering index.
    incidents = (
        Incident.objects.published()
        .filter(incident_date__gte=date_from, incident_date__lte=date_to)
        .exclude(pk__in=Incident.objects.hidden_from(user).values("pk"))
    )
    if tag:
        incidents = incidents.with_tags([tag])
    if team is not None:
        incidents = incidents.filter(teams=team)
    if severity:
        incidents = incidents.filter(severity=severity)
    return incidents


def months_between(start: dt.date, end: dt.date) -> list[dt.date]:
    months = []
    month = start.replace(day=1)
    while month <= end:
        months.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return months


def incidents_per_month(
    incidents: IncidentQuerySet, start: dt.date, end: dt.date
) -> list[tuple[dt.date, int]]:
    """One row per month of the period, months without incidents included (one query)."""
    rows = (
        incidents.order_by()
        .annotate(month=TruncMonth("incident_date"))
        .values("month")
        .annotate(n=Count("pk"))
    )
    counts = {}
    for row in rows:
        month = row["month"]
        if isinstance(month, dt.datetime):
            month = month.date()
        counts[month] = row["n"]
    return [(month, counts.get(month, 0)) for month in months_between(start, end)]


ZERO = dt.timedelta(0)


def _span(end: str) -> ExpressionWrapper:
    return ExpressionWrapper(F(end) - F("started_at"), output_field=DurationField())


def _epoch(span) -> Func:
    return Func(span, template="date_part('epoch', %(expressions)s)", output_field=FloatField())


def _summarised(incidents: IncidentQuerySet, dists: list[Distribution], spans: list) -> None:
    """PostgreSQL: n, median, 90th percentile and histogram of each distribution in one query, each
    value computed once per incident (negative spans as NULL, which aggregates skip): loading 100,000
    rows of intervals into Python took half a second."""
    values = {}
    for i, (dist, span) in enumerate(zip(dists, spans, strict=True)):
        value = _epoch(span) if dist.unit == "seconds" else _epoch(span) / 86400.0
        values[f"v{i}"] = Case(When(GreaterThanOrEqual(value, 0), then=value), output_field=FloatField())
    sql, params = incidents.order_by().annotate(**values).values(*values).query.sql_with_params()
    columns = []
    for i, dist in enumerate(dists):
        columns += [f"COUNT(s.v{i})", f"percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY s.v{i})"]
        for low, high, _label in dist.buckets:
            upper = "" if high == math.inf else f" AND s.v{i} < {float(high)}"
            columns.append(f"COUNT(*) FILTER (WHERE s.v{i} >= {float(low)}{upper})")
    with connections[incidents.db].cursor() as cursor:
        # OFFSET 0 keeps the subquery from being inlined, which would recompute each value per use.
        cursor.execute(f"SELECT {', '.join(columns)} FROM ({sql} OFFSET 0) s", params)
        row = list(cursor.fetchone())
    for dist in dists:
        n, (median, p90) = row.pop(0), row.pop(0) or (None, None)
        histogram = [(label, row.pop(0)) for _low, _high, label in dist.buckets]
        dist.summary = {"n": n, "median": median, "p90": p90, "histogram": histogram}


def distributions(incidents: IncidentQuerySet) -> list[Distribution]:
    """Time to detect, mitigate, resolve (from the start) and days from the incident to publication."""
    detect = Distribution("detect", "Time to detect", "seconds")
    mitigate = Distribution("mitigate", "Time to mitigate", "seconds")
    resolve = Distribution("resolve", "Time to resolve", "seconds")
    publish = Distribution("publish", "Days from incident to publication", "days")
    dists = [detect, mitigate, resolve, publish]
    if connections[incidents.db].vendor == "postgresql":
        spans = [
            _span("detected_at"),
            _span("mitigated_at"),
            _span("resolved_at"),
            ExpressionWrapper(TruncDate("published_at") - F("incident_date"), output_field=DurationField()),
        ]
        _summarised(incidents, dists, spans)
        return dists
    # Differences computed by the database: loading 400,000 aware datetimes costs seconds, intervals do not.
    rows = (
        incidents.order_by()
        .annotate(
            to_detect=_span("detected_at"),
            to_mitigate=_span("mitigated_at"),
            to_resolve=_span("resolved_at"),
            to_publish=ExpressionWrapper(
                TruncDate("published_at") - F("incident_date"), output_field=DurationField()
            ),
        )
        .values_list("to_detect", "to_mitigate", "to_resolve", "to_publish")
    )
    for row in rows:
        for dist, span in zip((detect, mitigate, resolve), row[:3], strict=True):
            if span is not None and span >= ZERO:
                dist.values.append(span.total_seconds())
        if row[3] is not None and row[3] >= ZERO:
            publish.values.append(row[3].days)
    for dist in (detect, mitigate, resolve, publish):
        dist.values.sort()
    return [detect, mitigate, resolve, publish]


def follow_through(incidents: IncidentQuerySet, today: dt.date) -> FollowThrough:
    """Share of action items done by their due date, of those whose due date has come or that are done.

    Won't-do items and items without a due date have no deadline to keep and are left out.
    """
    done = Q(status=ActionItemStatus.DONE)
    unfinished = Q(status__in=[ActionItemStatus.OPEN, ActionItemStatus.IN_PROGRESS])
    rows = (
        ActionItem.objects.filter(incident__in=incidents.values("pk"), due_date__isnull=False)
        .order_by()
        .values("priority")
        .annotate(
            on_time=Count("pk", filter=done & Q(completed_at__date__lte=F("due_date"))),
            late=Count(
                "pk",
                filter=(done & Q(completed_at__date__gt=F("due_date")))
                | (unfinished & Q(due_date__lt=today)),
            ),
        )
    )
    by_priority = {row["priority"]: (row["on_time"], row["late"]) for row in rows}
    table = [
        (label, *by_priority[value])
        for value, label in [*Priority.choices, ("", "No priority")]
        if value in by_priority and sum(by_priority[value])
    ]
    return FollowThrough(
        on_time=sum(on_time for on_time, _ in by_priority.values()),
        late=sum(late for _, late in by_priority.values()),
        by_priority=table,
    )


def recurring_tags(incidents: IncidentQuerySet, *, limit: int = 15) -> list[dict]:
    """Tags carried by more than one incident of the selection, most frequent first (one query)."""
    # Grouped by tag id over the (tag, content type, object) index; names joined for the few winners.
    return list(
        TaggedItem.objects.filter(
            content_type=ContentType.objects.get_for_model(Incident),
            object_id__in=incidents.order_by().values("pk"),
        )
        .values("tag_id", "tag__name", "tag__slug")
        .annotate(n=Count("object_id"))
        .filter(n__gte=2)
        .values("tag__name", "tag__slug", "n")
        .order_by("-n", "tag__name")[:limit]
    )


# --- charts ------------------------------------------------------------------------------------------------


def bar_chart(
    bars: Sequence[tuple[str, int]], *, title: str, chart_id: str, every: int = 1, width: int = 640
) -> SafeString:
    """A bar chart as inline SVG, labelled for screen readers; the page shows the same data as a table.

    `every` labels only every n-th bar on the x axis, so that two years of months stay readable.
    """
    height = 220
    left, right, top, bottom = 40, 8, 16, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = max((value for _label, value in bars), default=0)
    scale_max = nice_ceiling(top_value)
    slot = plot_w / max(len(bars), 1)
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
            parts.append(
                format_html(
                    '<text x="{}" y="{}" class="label" text-anchor="middle">{}</text>',
                    _n(x + bar_w / 2),
                    height - bottom + 16,
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
