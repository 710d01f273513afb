"""Demo users, a team, the project's own demo postmortems, and some real public ones where available."""

import datetime as dt
import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Team, User
from postmortems import changes
from postmortems.importing import RecordError, import_record, parse_record
from postmortems.models import (
    ActionItem,
    Activity,
    ActivityVerb,
    ContributingFactor,
    Decision,
    Incident,
    Lesson,
    SignOff,
    Status,
    TimelineEvent,
    Visibility,
)
from postmortems.search import update_search_vector

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
DEMO_PASSWORD = "hindsight-demo"
DEMO_USERS = [
    ("alice", "Alice Moreau", "Europe/Berlin", True),
    ("bob", "Bob Okafor", "America/New_York", False),
    ("carol", "Carol Tanaka", "Asia/Tokyo", False),
]
PUBLIC_FILES = {
    "icco_postmortems.jsonl": 15,
    "github_status_sample.jsonl": 15,
    "k8s_failure_stories.jsonl": 10,
}


def _dt(value):
    return dt.datetime.fromisoformat(value) if value else None


class Command(BaseCommand):
    help = "Load demo users (password “hindsight-demo”) and demo postmortems. Safe to run twice."

    def add_arguments(self, parser):
        parser.add_argument(
            "--public-data",
            type=Path,
            default=Path(settings.PUBLIC_POSTMORTEMS_DIR),
            help="Folder of public postmortems as JSON Lines (skipped when absent).",
        )

    def handle(self, *args, public_data: Path, **options):
        users = self.ensure_users()
        teams = self.ensure_teams(users)
        created = 0
        for name in ("postmortems.json", "drafts.json"):
            for data in json.loads((DEMO_DIR / name).read_text()):
                created += self.load_incident(data, users, teams)
        self.stdout.write(f"Demo postmortems: {created} created.")
        self.load_public(public_data)

    def ensure_users(self) -> dict[str, User]:
        users = {}
        for username, display_name, time_zone, is_staff in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "display_name": display_name,
                    "time_zone": time_zone,
                    "email": f"{username}@example.com",
                    "is_staff": is_staff,
                    "is_superuser": is_staff,
                },
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            users[username] = user
        return users

    def ensure_teams(self, users) -> dict[str, Team]:
        platform, _ = Team.objects.get_or_create(name="Platform", defaults={"slug": "platform"})
        payments, _ = Team.objects.get_or_create(name="Payments", defaults={"slug": "payments"})
        platform.members.add(users["alice"], users["carol"])
        payments.members.add(users["bob"])
        return {"Platform": platform, "Payments": payments}

    @transaction.atomic
    def load_incident(self, data, users, teams) -> bool:
        owner = users[data["owner"]]
        if Incident.objects.filter(title=data["title"], owner=owner).exists():
            return False
        status = data.get("status", Status.PUBLISHED)
        resolved_at = _dt(data.get("resolved_at"))
        incident = Incident.objects.create(
            title=data["title"],
            incident_date=dt.date.fromisoformat(data["incident_date"]),
            severity=data["severity"],
            time_zone=data["time_zone"],
            started_at=_dt(data.get("started_at")),
            detected_at=_dt(data.get("detected_at")),
            mitigated_at=_dt(data.get("mitigated_at")),
            resolved_at=resolved_at,
            owner=owner,
            summary=data["summary"],
            supporting_data=data["supporting_data"],
            customer_impact=data["customer_impact"],
            impacted_customers=data["impacted_customers"],
            response_analysis=data["response_analysis"],
            post_incident_analysis=data["post_incident_analysis"],
            status=status,
            visibility=Visibility.RESTRICTED if data.get("restricted") else Visibility.NORMAL,
        )
        incident.committee.set(users[name] for name in data["committee"])
        incident.co_authors.set(users[name] for name in data["co_authors"])
        if data.get("team"):
            incident.teams.add(teams[data["team"]])
        incident.tags.add(*data["tags"])
        TimelineEvent.objects.bulk_create(
            TimelineEvent(
                incident=incident,
                occurred_at=_dt(event["at"]),
                kind=event["kind"],
                description=event["description"],
                link=event["link"],
            )
            for event in data["timeline"]
        )
        factors = {}

        def plant(nodes, parent):
            for node in nodes:
                factor = ContributingFactor.objects.create(
                    incident=incident,
                    parent=parent,
                    description=node["description"],
                    category=node["category"],
                    is_human_error=node["human_error"],
                )
                factors[node["key"]] = factor
                plant(node.get("children", []), factor)

        plant(data["factors"], None)
        items = {}
        for spec in data["action_items"]:
            item = ActionItem.objects.create(
                incident=incident,
                title=spec["title"],
                owner=users[spec["owner"]] if spec.get("owner") else None,
                due_date=dt.date.fromisoformat(spec["due_date"]) if spec.get("due_date") else None,
                priority=spec.get("priority", ""),
                status=spec["status"],
                wont_do_reason=spec.get("wont_do_reason", ""),
                completed_at=_dt(spec.get("completed_at")),
                backlog_link=spec.get("backlog_link", ""),
            )
            item.factors.set(factors[key] for key in spec["factors"])
            items[spec["key"]] = item
        for spec in data["lessons"]:
            lesson = Lesson.objects.create(incident=incident, text=spec["text"])
            lesson.action_items.set(items[key] for key in spec["action_items"])
        self.write_history(incident, data, users)
        update_search_vector(incident.pk)
        return True

    def write_history(self, incident, data, users):
        log = [Activity(incident=incident, actor=incident.owner, verb=ActivityVerb.CREATED, revision=1)]
        if incident.status != Status.DRAFT:
            log.append(
                Activity(
                    incident=incident, actor=incident.owner, verb=ActivityVerb.REVIEW_REQUESTED, revision=1
                )
            )
        sign_offs = data.get("sign_offs")
        if incident.status == Status.PUBLISHED:
            sign_offs = [
                {"reviewer": name, "decision": Decision.APPROVE, "comment": ""} for name in data["committee"]
            ]
        content = changes.snapshot(incident) if sign_offs else {}
        for spec in sign_offs or []:
            reviewer = users[spec["reviewer"]]
            SignOff.objects.create(
                incident=incident,
                reviewer=reviewer,
                decision=spec["decision"],
                comment=spec["comment"],
                revision=incident.revision,
                snapshot=content,
            )
            verb = (
                ActivityVerb.APPROVED
                if spec["decision"] == Decision.APPROVE
                else ActivityVerb.CHANGES_REQUESTED
            )
            log.append(
                Activity(incident=incident, actor=reviewer, verb=verb, detail=spec["comment"], revision=1)
            )
        if incident.status == Status.PUBLISHED:
            log.append(
                Activity(incident=incident, actor=incident.owner, verb=ActivityVerb.PUBLISHED, revision=1)
            )
        Activity.objects.bulk_create(log)
        # Spread the history over the days after the incident, as it would have happened.
        start = incident.resolved_at or dt.datetime.combine(incident.incident_date, dt.time(12), dt.UTC)
        if incident.status != Status.PUBLISHED:
            start = min(start, dt.datetime.now(dt.UTC) - dt.timedelta(days=len(log)))
        for day, activity in enumerate(log, start=1):
            Activity.objects.filter(pk=activity.pk).update(
                created_at=start + dt.timedelta(days=day, hours=day)
            )
        incident.sign_offs.update(created_at=start + dt.timedelta(days=len(log) - 1))
        if incident.status == Status.PUBLISHED:
            published_at = start + dt.timedelta(days=len(log), hours=len(log))
            Incident.objects.filter(pk=incident.pk).update(published_at=published_at)

    def load_public(self, folder: Path):
        if not folder.is_dir():
            self.stdout.write(
                f"No public postmortems at {folder}; skipping them (the demo data is complete without)."
            )
            return
        archive, created = User.objects.get_or_create(
            username="public-archive",
            defaults={"display_name": "Public postmortem archive", "is_active": True},
        )
        if created:
            archive.set_unusable_password()
            archive.save(update_fields=["password"])
        counts = {"created": 0, "existing": 0}
        skipped = []  # "file line N: why", so that a reader can find and judge each one
        for name, limit in PUBLIC_FILES.items():
            path = folder / name
            if not path.exists():
                self.stdout.write(f"{path} is missing; skipping it.")
                continue
            taken = 0
            with path.open(encoding="utf-8") as lines:
                for number, line in enumerate(lines, start=1):
                    if taken >= limit:
                        break
                    if not line.strip():
                        continue
                    try:
                        record = parse_record(line)
                    except RecordError as error:
                        skipped.append(f"{name} line {number}: {error}")
                        continue
                    _, was_created = import_record(record, owner=archive)
                    counts["created" if was_created else "existing"] += 1
                    taken += 1
        self.stdout.write(
            f"Public postmortems: {counts['created']} created, {counts['existing']} already there, "
            f"{len(skipped)} skipped{':' if skipped else '.'}"
        )
        for reason in skipped:
            self.stdout.write(f"  {reason}")
