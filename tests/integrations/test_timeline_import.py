"""The timeline importers (integrations/timeline_import.py) on real-shaped input, and on junk."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
import zoneinfo
from pathlib import Path

import pytest
from django.conf import settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from integrations import timeline_import as ti

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
DAY = dt.date(2026, 3, 4)

# Written the way Slack's export writes a channel's day file: joins, bot posts, threads, edits, emoji,
# mentions as user ids (resolved from users.json), links in angle brackets, HTML entities.
SLACK_USERS = [
    {
        "id": "U01ALICE",
        "name": "alice",
        "real_name": "Alice Example",
        "profile": {"real_name": "Alice Example", "display_name": "alice"},
    },
    {"id": "U02BOB", "name": "bob", "profile": {"real_name": "Bob Builder", "display_name": "bob"}},
]
SLACK_DAY = [
    {
        "type": "message",
        "subtype": "channel_join",
        "ts": "1772629200.000100",
        "user": "U02BOB",
        "text": "<@U02BOB> has joined the channel",
    },
    {
        "type": "message",
        "subtype": "bot_message",
        "ts": "1772629320.000200",
        "username": "Alertmanager",
        "bot_id": "B01",
        "text": "",
        "attachments": [{"fallback": "[FIRING:1] HighErrorRate api (critical)", "color": "danger"}],
    },
    {
        "client_msg_id": "a1",
        "type": "message",
        "user": "U01ALICE",
        "ts": "1772629380.000300",
        "thread_ts": "1772629380.000300",
        "reply_count": 1,
        "text": "<@U02BOB> looks like the deploy of <https://git.example.com/api/pull/7|api#7> broke it"
        " :fire: &amp; 5xx is up",
        "user_profile": {"real_name": "Alice Example"},
        "reactions": [{"name": "eyes", "users": ["U02BOB"], "count": 1}],
    },
    {
        "client_msg_id": "a2",
        "type": "message",
        "user": "U02BOB",
        "ts": "1772629500.000400",
        "thread_ts": "1772629380.000300",
        "parent_user_id": "U01ALICE",
        "text": "rolling back now",
        "edited": {"user": "U02BOB", "ts": "1772629510.000000"},
    },
    {
        "type": "message",
        "user": "U01ALICE",
        "ts": "1772630100.000500",
        "text": "error rate back to normal, resolved",
    },
]

ALERTMANAGER = {
    "version": "4",
    "groupKey": '{}:{alertname="HighErrorRate"}',
    "truncatedAlerts": 0,
    "status": "resolved",
    "receiver": "hindsight",
    "groupLabels": {"alertname": "HighErrorRate"},
    "commonLabels": {"alertname": "HighErrorRate", "severity": "critical"},
    "commonAnnotations": {"summary": "5xx above 5%"},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        {
            "status": "resolved",
            "labels": {"alertname": "HighErrorRate", "severity": "critical", "service": "api"},
            "annotations": {"summary": "5xx above 5%"},
            "startsAt": "2026-03-04T13:02:00.123456789Z",
            "endsAt": "2026-03-04T13:35:00Z",
            "generatorURL": "https://prometheus.example.com/graph?g0.expr=rate",
            "fingerprint": "c2a0e6b1f1b7e0d0",
        },
        {
            "status": "firing",
            "labels": {"alertname": "LatencyHigh", "severity": "warning"},
            "annotations": {"description": "p99 above 2s"},
            "startsAt": "2026-03-04T13:04:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=latency",
            "fingerprint": "d1",
        },
    ],
}

PAGERDUTY_V3 = {
    "event": {
        "id": "01BZ8T7A8D6QXEQ5H9ZSRV5LRM",
        "event_type": "incident.acknowledged",
        "resource_type": "incident",
        "occurred_at": "2026-03-04T13:06:22.169Z",
        "agent": {
            "html_url": "https://acme.pagerduty.com/users/PLH1HKV",
            "id": "PLH1HKV",
            "self": "https://api.pagerduty.com/users/PLH1HKV",
            "summary": "Tenex Engineer",
            "type": "user_reference",
        },
        "client": None,
        "data": {
            "id": "PGR0VU2",
            "type": "incident",
            "self": "https://api.pagerduty.com/incidents/PGR0VU2",
            "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
            "number": 2,
            "status": "acknowledged",
            "incident_key": "d3640fbd41094207a1c11e58e46b1662",
            "created_at": "2026-03-04T13:02:10Z",
            "title": "A little bump in the road",
            "service": {"id": "PF9KMXH", "summary": "API Service", "type": "service_reference"},
            "urgency": "high",
        },
    }
}

PAGERDUTY_LOG = {
    "log_entries": [
        {
            "id": "R1",
            "type": "trigger_log_entry",
            "summary": "Triggered through the API.",
            "created_at": "2026-03-04T13:02:10Z",
            "incident": {
                "id": "PGR0VU2",
                "summary": "[#2] A little bump in the road",
                "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
            },
            "channel": {"type": "api"},
        },
        {
            "id": "R2",
            "type": "notify_log_entry",
            "summary": "Notified Tenex Engineer by SMS.",
            "created_at": "2026-03-04T13:02:15Z",
            "incident": {"id": "PGR0VU2", "summary": "[#2] A little bump in the road"},
        },
        {
            "id": "R3",
            "type": "resolve_log_entry",
            "summary": "Resolved by Tenex Engineer.",
            "created_at": "2026-03-04T13:40:00Z",
            "incident": {"id": "PGR0VU2", "summary": "[#2] A little bump in the road"},
        },
    ]
}


def parse_bytes(data: bytes) -> ti.Result:
    return ti.parse(data, tz=BERLIN, default_date=DAY)


def test_pasted_lines_in_the_incident_zone_unless_they_say_otherwise():
    text = "\n".join(
        [
            "14:02 Deploy of api v2.3 started",
            "14:05:31 - Error-rate alert fired https://grafana.example.com/d/abc",
            "",
            "2026-03-04 14:20 Rolled back to v2.2",
            "2026-03-04T13:30:00+00:00 Error rate back to normal, resolved",
            "14:45 UTC Status page updated",
            "23:58 Late check",
            "00:03 After midnight",
        ]
    )
    result = ti.parse_text(text, tz=BERLIN, default_date=DAY)
    times = [c.occurred_at.astimezone(dt.UTC).strftime("%d %H:%M:%S") for c in result.candidates]
    assert times == [
        "04 13:02:00",
        "04 13:05:31",
        "04 13:20:00",
        "04 13:30:00",
        "04 14:45:00",
        "04 22:58:00",
        "04 23:03:00",
    ]
    kinds = [c.kind for c in result.candidates]
    assert kinds[:4] == ["trigger", "detection", "mitigation", "resolution"]
    assert result.candidates[1].link == "https://grafana.example.com/d/abc"
    assert result.problems == []


def test_pasted_line_without_a_time_is_named():
    result = ti.parse_text("14:02 Deploy\nthe database was slow\n14:03", tz=BERLIN, default_date=DAY)
    assert len(result.candidates) == 1
    assert result.problems[0].startswith("Line 2 does not start with a time")
    assert "Line 3 has a time but no description" in result.problems[1]


def test_pasted_text_with_nothing_in_it_is_unreadable():
    with pytest.raises(ti.Unreadable, match="nothing to import"):
        ti.parse_text("\n  \n", tz=BERLIN, default_date=DAY)


def test_ten_thousand_lines_are_bounded():
    text = "\n".join(
        f"2026-03-04T{h % 24:02d}:{m % 60:02d}:00Z event {h}-{m}" for h in range(100) for m in range(100)
    )
    result = parse_bytes(text.encode())
    assert len(result.candidates) == ti.MAX_CANDIDATES
    assert any("only the first" in p for p in result.problems)


def test_slack_day_files_with_users_resolve_names_and_skip_joins():
    result = ti.parse_files(
        [
            ("users.json", json.dumps(SLACK_USERS).encode()),
            ("incident-42/2026-03-04.json", json.dumps(SLACK_DAY).encode()),
        ],
        tz=BERLIN,
        default_date=DAY,
    )
    texts = [c.description for c in result.candidates]
    assert len(texts) == 4  # the join is left out
    assert texts[0] == "Alertmanager: [FIRING:1] HighErrorRate api (critical)"
    assert texts[1] == (
        "Alice Example: @Bob Builder looks like the deploy of api#7 (https://git.example.com/api/pull/7)"
        " broke it :fire: & 5xx is up"
    )
    assert texts[2] == "Bob Builder (in a thread): rolling back now"
    assert result.candidates[1].occurred_at == dt.datetime(2026, 3, 4, 13, 3, 0, 300, tzinfo=dt.UTC)
    assert result.candidates[1].link == "https://git.example.com/api/pull/7"
    assert [c.kind for c in result.candidates] == ["detection", "trigger", "mitigation", "resolution"]


def slack_zip(**extra: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("users.json", json.dumps(SLACK_USERS))
        archive.writestr("channels.json", json.dumps([{"id": "C1", "name": "incident-42"}]))
        archive.writestr("incident-42/2026-03-04.json", json.dumps(SLACK_DAY))
        for name, content in extra.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_slack_zip_export():
    result = parse_bytes(slack_zip())
    assert result.format == "a Slack export"
    assert len(result.candidates) == 4
    assert result.candidates[1].description.startswith("Alice Example: @Bob Builder")


def test_slack_zip_bomb_stops_reading():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("c/2026-03-04.json", b"[" + b" " * (ti.MAX_ZIP_TOTAL + 10) + b"]")
    assert len(buffer.getvalue()) < 100_000
    with pytest.raises(ti.Unreadable, match="inflate to more than"):
        parse_bytes(buffer.getvalue())


def test_slack_zip_with_a_truncated_day_names_the_file():
    result = parse_bytes(slack_zip(**{"incident-42/2026-03-05.json": '[{"type": "message", "ts": "17'}))
    assert len(result.candidates) == 4
    assert "incident-42/2026-03-05.json is not valid JSON" in result.problems[0]


def test_mattermost_bulk_export():
    lines = [
        {"type": "version", "version": 1},
        {"type": "user", "user": {"username": "alice", "email": "a@example.com"}},
        {
            "type": "post",
            "post": {
                "team": "ops",
                "channel": "incident-42",
                "user": "alice",
                "message": "Alert fired for checkout",
                "create_at": 1772629380000,
                "replies": [{"user": "bob", "message": "rolled back", "create_at": 1772629500000}],
            },
        },
    ]
    result = parse_bytes("\n".join(json.dumps(line) for line in lines).encode())
    assert [c.description for c in result.candidates] == [
        "alice: Alert fired for checkout",
        "bob (in a thread): rolled back",
    ]
    assert result.candidates[0].occurred_at == dt.datetime(2026, 3, 4, 13, 3, tzinfo=dt.UTC)


def test_alertmanager_v4_firing_and_resolved():
    result = parse_bytes(json.dumps(ALERTMANAGER).encode())
    rows = [(c.occurred_at.strftime("%H:%M"), c.kind, c.description) for c in result.candidates]
    assert rows == [
        ("13:02", "detection", "Alert firing: HighErrorRate — 5xx above 5% (severity=critical, service=api)"),
        ("13:04", "detection", "Alert firing: LatencyHigh — p99 above 2s (severity=warning)"),
        (
            "13:35",
            "resolution",
            "Alert resolved: HighErrorRate — 5xx above 5% (severity=critical, service=api)",
        ),
    ]
    assert result.candidates[0].link == "https://prometheus.example.com/graph?g0.expr=rate"
    assert (
        result.candidates[1].link == ""
    )  # http://prometheus:9090 has no TLD: the link field would refuse it


def test_grafana_alert_links_its_panel():
    payload = {
        **ALERTMANAGER,
        "title": "[FIRING:1]",
        "state": "alerting",
        "alerts": [
            {
                **ALERTMANAGER["alerts"][1],
                "panelURL": "https://grafana.example.com/d/x?viewPanel=2",
                "valueString": "[ var='B' value=3 ]",
            }
        ],
    }
    (candidate,) = parse_bytes(json.dumps(payload).encode()).candidates
    assert candidate.link == "https://grafana.example.com/d/x?viewPanel=2"


def test_pagerduty_v3_webhook_and_log_entries():
    (ack,) = parse_bytes(json.dumps(PAGERDUTY_V3).encode()).candidates
    assert ack.kind == "escalation"
    assert ack.description == "PagerDuty incident acknowledged by Tenex Engineer: A little bump in the road"
    assert ack.link == "https://acme.pagerduty.com/incidents/PGR0VU2"
    log = parse_bytes(json.dumps(PAGERDUTY_LOG).encode()).candidates
    assert [c.kind for c in log] == ["detection", "other", "resolution"]
    assert log[0].description == "PagerDuty: Triggered through the API. — [#2] A little bump in the road"


def public_statuspage_records(count: int = 20) -> list[dict]:
    path = Path(settings.PUBLIC_POSTMORTEMS_DIR) / "github_status_sample.jsonl"
    if not path.exists():
        pytest.skip(f"no public data at {path}")
    with path.open() as lines:
        return [json.loads(line) for _, line in zip(range(count), lines, strict=False)]


def test_public_statuspage_records_become_their_updates():
    for record in public_statuspage_records():
        result = parse_bytes(json.dumps(record).encode())
        updates = record["extra"]["timeline"]
        assert len(result.candidates) == len({(u["at"], u["body"]) for u in updates}) or result.problems
        assert result.candidates[-1].kind == (
            "resolution" if updates[-1]["status"] == "resolved" else result.candidates[-1].kind
        )


def test_statuspage_api_incident():
    incident = {
        "id": "p31zjtct2jer",
        "name": "Elevated errors",
        "shortlink": "https://stspg.io/abc",
        "incident_updates": [
            {
                "status": "resolved",
                "body": "This incident has been resolved.",
                "created_at": "2026-03-04T14:10:00.000-05:00",
                "display_at": "2026-03-04T14:10:00.000-05:00",
            },
            {
                "status": "monitoring",
                "body": "A fix has been implemented.",
                "created_at": "2026-03-04T13:50:00.000-05:00",
            },
            {
                "status": "investigating",
                "body": "We are investigating.",
                "created_at": "2026-03-04T13:30:00.000-05:00",
            },
        ],
    }
    result = parse_bytes(json.dumps({"page": {"id": "x"}, "incident": incident}).encode())
    assert [c.kind for c in result.candidates] == ["detection", "mitigation", "resolution"]
    assert result.candidates[0].occurred_at == dt.datetime(2026, 3, 4, 18, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"alerts": [{"status": "firing"', "not valid JSON at line 1"),
        (b"\xff\xfe\x00junk", "not UTF-8"),
        (b'{"hello": "world"}', "not one we know"),
        (b"", "is empty"),
        (b"PK\x03\x04garbage", "zip file cannot be opened"),
        (b"x" * (ti.MAX_BYTES + 1), "larger than 5 MB"),
        (b"[" * 100_000, "nests too deeply"),
    ],
)
def test_unreadable_input_says_why(data, message):
    with pytest.raises(ti.Unreadable, match=message):
        parse_bytes(data)


def test_alert_with_a_bad_time_is_a_problem_not_a_failure():
    payload = {
        "alerts": [
            {"status": "firing", "labels": {"alertname": "X"}, "startsAt": "yesterday"},
            ALERTMANAGER["alerts"][1],
        ]
    }
    result = parse_bytes(json.dumps(payload).encode())
    assert len(result.candidates) == 1
    assert result.problems == ["Alert 1 (X): startsAt: 'yesterday' is not an ISO 8601 time."]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "alerts",
                    "event",
                    "log_entries",
                    "incident",
                    "incident_updates",
                    "posts",
                    "ts",
                    "text",
                    "status",
                    "startsAt",
                    "endsAt",
                    "created_at",
                    "occurred_at",
                    "event_type",
                    "labels",
                    "extra",
                    "timeline",
                    "type",
                    "post",
                    "message",
                    "create_at",
                    "user",
                ]
            )
            | st.text(max_size=5),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_any_json_is_read_or_refused_with_a_message(value):
    try:
        result = parse_bytes(json.dumps(value).encode())
    except ti.Unreadable as error:
        message = str(error)
    else:
        message = "read"
        assert all(c.occurred_at.tzinfo is not None for c in result.candidates)
    assert message


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_are_read_or_refused_with_a_message(data):
    try:
        parse_bytes(data)
    except ti.Unreadable as error:
        message = str(error)
    else:
        message = "read"
    assert message
