"""Insights' charts (issue 17): axis labels never overlap, on a phone or a desktop."""

import datetime as dt

from postmortems.models import Status
from tests.factories import IncidentFactory, UserFactory

PASSWORD = "hindsight-demo"


def test_chart_labels_never_overlap_at_phone_and_desktop_widths(
    transactional_db, live_server, browser, sign_in
):
    UserFactory(username="alice", password=PASSWORD)
    start = dt.datetime(2024, 1, 3, 9, 0, tzinfo=dt.UTC)
    for i in range(30):
        began = start + dt.timedelta(days=25 * i)
        IncidentFactory(
            status=Status.PUBLISHED,
            incident_date=began.date(),
            started_at=began,
            detected_at=began + dt.timedelta(minutes=3 * (i + 1)),
            mitigated_at=began + dt.timedelta(minutes=20 * (i + 1)),
            resolved_at=began + dt.timedelta(hours=2 * (i + 1)),
        )
    for width in (390, 1280):
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        sign_in(page, "alice", PASSWORD)
        page.goto(f"{live_server.url}/insights/?from=2024-01-01&to=2026-03-01")
        charts = page.locator("svg.chart")
        assert charts.count() >= 4
        overlaps = page.evaluate(
            """() => Array.from(document.querySelectorAll("svg.chart")).flatMap((chart) => {
                const boxes = Array.from(chart.querySelectorAll("text.label"))
                  .map((t) => [t.textContent, t.getBoundingClientRect()]);
                const found = [];
                boxes.forEach(([a, p], i) => boxes.slice(i + 1).forEach(([b, q]) => {
                  if (p.left < q.right && q.left < p.right && p.top < q.bottom && q.top < p.bottom)
                    found.push(chart.dataset.testid + ": " + a + " / " + b);
                }));
                return found;
            })"""
        )
        assert overlaps == [], f"at {width}px"
        context.close()
