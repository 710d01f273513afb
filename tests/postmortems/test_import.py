import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command

from postmortems.importing import ARCHIVE_USERNAME
from postmortems.models import Incident, Status, TimelineEventKind
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def line(**fields) -> str:
    record = {
        "title": "Database failover stalled",
        "company": "Acme",
        "date": "2023-04-05",
        "tags": ["database", "config-change"],
        "summary": "A failover stalled for ten minutes.",
        "url": "https://status.example.com/1",
        "source": "test",
        "extra": {},
    }
    return json.dumps(record | fields)


def run(path, *args, stderr=None):
    out, err = io.StringIO(), stderr or io.StringIO()
    call_command("import_postmortems", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_creates_published_incidents_with_tags(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text(line() + "\n" + line(title="Second", url="https://status.example.com/2", tags=[]) + "\n")
    out, _ = run(path)
    assert "2 created, 0 skipped (already imported), 0 failed." in out
    incident = Incident.objects.get(source_url="https://status.example.com/1")
    assert incident.status == Status.PUBLISHED
    assert incident.incident_date == dt.date(2023, 4, 5)
    assert incident.company == "Acme"
    assert sorted(incident.tags.names()) == ["config-change", "database"]
    assert incident.owner.username == ARCHIVE_USERNAME
    assert not incident.owner.has_usable_password()


def test_bad_line_is_reported_with_its_number_and_the_rest_still_imports(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text(
        "\n".join(
            [
                line(url="https://status.example.com/1"),
                '{"title": "broken", ',
                line(title="", url="https://status.example.com/3"),
                line(url="https://status.example.com/4", date="05/04/2023"),
                "",
                line(title="Fine", url="https://status.example.com/6"),
            ]
        )
    )
    out, err = run(path)
    assert f"{path}:2: skipped, not valid JSON" in err
    assert f"{path}:3: skipped, no title" in err
    assert f"{path}:4: skipped, date '05/04/2023' is not YYYY-MM-DD" in err
    assert "2 created, 0 skipped (already imported), 3 failed." in out
    assert set(Incident.objects.values_list("source_url", flat=True)) == {
        "https://status.example.com/1",
        "https://status.example.com/6",
    }


def test_import_is_idempotent_by_url(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text(line() + "\n" + line(title="Same url, other title") + "\n")
    out, _ = run(path)
    assert "1 created, 1 skipped (already imported), 0 failed." in out
    out, _ = run(path)
    assert "0 created, 2 skipped (already imported), 0 failed." in out
    assert Incident.objects.get().title == "Database failover stalled"


def test_missing_date_falls_back_to_start_time_or_year_else_the_line_is_skipped(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text(
        "\n".join(
            [
                line(date=None, url="https://a.example/1", extra={"started_at": "2021-07-08T23:30:00Z"}),
                line(date=None, url="https://a.example/2", extra={"year": 2019, "month": None}),
                line(date=None, url="https://a.example/3", extra={"start_time": None}),
            ]
        )
    )
    out, err = run(path)
    assert "2 created, 0 skipped (already imported), 1 failed." in out
    assert f"{path}:3: skipped, no date (neither date, start time nor year)" in err
    dates = dict(Incident.objects.values_list("source_url", "incident_date"))
    assert dates == {"https://a.example/1": dt.date(2021, 7, 8), "https://a.example/2": dt.date(2019, 1, 1)}


def test_github_status_timeline_is_imported_with_utc_times(tmp_path):
    path = tmp_path / "github.jsonl"
    extra = {
        "started_at": "2023-01-10T17:04:42.456Z",
        "resolved_at": "2023-01-10T18:14:45.860Z",
        "timeline": [
            {"at": "2023-01-10T17:04:42.496Z", "status": "investigating", "body": "We are investigating."},
            {
                "at": "2023-01-10T18:14:45.860Z",
                "status": "resolved",
                "body": "This incident has been resolved.",
            },
            {"at": None, "status": "resolved", "body": "no time, left out"},
        ],
    }
    path.write_text(line(extra=extra))
    run(path)
    incident = Incident.objects.get()
    events = list(incident.timeline_events.all())
    assert [(e.occurred_at, e.kind) for e in events] == [
        (dt.datetime(2023, 1, 10, 17, 4, 42, 496000, tzinfo=dt.UTC), TimelineEventKind.DETECTION),
        (dt.datetime(2023, 1, 10, 18, 14, 45, 860000, tzinfo=dt.UTC), TimelineEventKind.RESOLUTION),
    ]
    assert incident.time_to_resolve == dt.timedelta(hours=1, minutes=10, seconds=3, microseconds=404000)


def test_owner_option_names_the_owner_and_an_unknown_one_is_refused(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text(line())
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        run(path, "--owner", "nobody")
    alice = UserFactory(username="alice")
    run(path, "--owner", "alice")
    assert Incident.objects.get().owner == alice


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        run(tmp_path / "nope.jsonl")


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(line(url=f"https://a.example/{i}") for i in range(4)))
    _, err = run(path)
    assert "[" not in err
    terminal = FakeTerminal()
    _, err = run(tmp_path / "records.jsonl", stderr=terminal)
    assert "\rrecords.jsonl [" in err
    assert "4/4" in err


def test_import_of_the_public_files(public_data_dir):
    out, _ = run(public_data_dir / "k8s_failure_stories.jsonl")
    assert "50 created, 0 skipped (already imported), 0 failed." in out
    assert Incident.objects.filter(tags__slug="etcd").count() == 7
