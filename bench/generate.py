"""Fill a PostgreSQL database with published incidents for the benchmark (README, "Benchmark").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hindsight_bench .venv/bin/python bench/generate.py 100000

Built from the real public postmortems in PUBLIC_POSTMORTEMS_DIR, or from the project's own demo
postmortems where that folder is absent: varied titles, dates over ten years, 1–5 tags from a vocabulary of
~300 (a few common, most rare), and per incident 10 timeline events, 3 contributing factors, 3 action items
and 2 lessons. A twentieth more incidents are drafts or in review, one published incident in fifty is
restricted to its team, and the benchmark reader is in one team. Rows go in with COPY; the search
vectors are then computed by the same SQL the app uses. It replaces the incidents already in that
database, so it refuses a database whose name lacks "bench" unless given --force.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hindsight_bench")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils.text import slugify  # noqa: E402

from accounts.models import Team, User  # noqa: E402
from postmortems.models import ActionItem, ContributingFactor, Incident, Lesson, TimelineEvent  # noqa: E402
from postmortems.search import update_search_vectors  # noqa: E402

BENCH_USER, BENCH_PASSWORD = "bench", "bench-password"
SERVICES = [
    "checkout", "payments", "search", "login", "billing", "api gateway", "notifications", "cdn", "dns",
    "storage", "queue", "scheduler", "web frontend", "mobile api", "analytics", "ledger", "inventory",
    "recommendations", "email", "webhooks", "auth", "kafka", "postgres", "redis", "elasticsearch",
]  # fmt: skip
REGIONS = ["eu-west-1", "us-east-1", "us-west-2", "ap-southeast-1", "eu-central-1", "sa-east-1"]
FAILURES = [
    "outage",
    "degraded performance",
    "elevated error rates",
    "partial outage",
    "data delay",
    "latency spike",
]
KINDS = [
    "trigger",
    "detection",
    "escalation",
    "mitigation",
    "mitigation",
    "other",
    "other",
    "other",
    "resolution",
]
CATEGORIES = ["tools", "process", "culture", "technology", "external"]
PRIORITIES = ["P1", "P2", "P3", "P4"]
STATUSES = ["open", "open", "in_progress", "done"]


class Copier:
    """COPY rows of a model: every concrete column, defaults (as the model would set them) for the ones a
    row leaves out, so the generator keeps working when a field is added to the model."""

    def __init__(self, pg, model, now, *, with_id=False):
        self.pg, self.now, self.model = pg, now, model
        self.fields = [
            f
            for f in model._meta.concrete_fields
            if not f.column.startswith("search_") and (with_id or not f.primary_key)
        ]

    def default(self, field):
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            return self.now
        if not field.has_default() and field.null:
            return None
        return field.get_db_prep_save(field.get_default(), connection)

    def __enter__(self):
        self.defaults = {f.attname: self.default(f) for f in self.fields}
        self.names = [f.attname for f in self.fields]
        self.names_sql = ", ".join(f.column for f in self.fields)
        self.copy = self.pg.copy(f"COPY {self.model._meta.db_table} ({self.names_sql}) FROM STDIN")
        self.writer = self.copy.__enter__()
        return self

    def write(self, **row):
        self.writer.write_row(tuple(row[n] if n in row else self.defaults[n] for n in self.names))

    def __exit__(self, *exc):
        return self.copy.__exit__(*exc)


def load_sources() -> list[dict]:
    """Each source: title, summary, body (long text), tags, timeline (list of str)."""
    folder = Path(settings.PUBLIC_POSTMORTEMS_DIR)
    sources = []
    if folder.is_dir():
        for path in sorted(folder.glob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                data = json.loads(line)
                extra = data.get("extra") or {}
                sources.append(
                    {
                        "title": data["title"],
                        "summary": data.get("summary") or "",
                        "body": extra.get("body") or extra.get("impact") or "",
                        "tags": (data.get("tags") or [])
                        + (extra.get("keywords") or [])
                        + (extra.get("components") or []),
                        "timeline": [u["body"] for u in extra.get("timeline") or [] if u.get("body")],
                    }
                )
        print(f"Sources: {len(sources)} public postmortems from {folder}")
    if not sources:
        demo = json.loads((ROOT / "postmortems" / "demo" / "postmortems.json").read_text())
        for data in demo:
            sources.append(
                {
                    "title": data["title"],
                    "summary": data["summary"],
                    "body": "\n\n".join(
                        data[k] for k in ("customer_impact", "response_analysis", "post_incident_analysis")
                    ),
                    "tags": data["tags"],
                    "timeline": [e["description"] for e in data["timeline"]],
                }
            )
        print(f"Sources: {len(sources)} demo postmortems (no public data at {folder})")
    return sources


def vocabulary(sources: list[dict], size: int = 300) -> list[str]:
    """~300 tag names, the sources' most frequent first, so that a Zipf pick makes a few common."""
    counts: dict[str, int] = {}
    for source in sources:
        for tag in source["tags"]:
            name = str(tag).strip().lower()[:60]
            if name and slugify(name):
                counts[name] = counts.get(name, 0) + 1
    names = sorted(counts, key=lambda n: -counts[n])
    seen_slugs, vocab = set(), []
    for name in names + [f"{s} {f}" for s in SERVICES for f in ("latency", "capacity", "deploy")]:
        if slugify(name) not in seen_slugs:
            seen_slugs.add(slugify(name))
            vocab.append(name)
        if len(vocab) == size:
            break
    return vocab


def sentences(text: str) -> list[str]:
    parts = [p.strip() for p in text.replace("\n", " ").split(". ") if len(p.strip()) > 20]
    return parts or ["The service degraded and the on-call engineer was paged"]


def prepare(reset: bool) -> None:
    call_command("migrate", verbosity=0)
    if reset:
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE postmortems_incident, taggit_tag, taggit_taggeditem RESTART IDENTITY CASCADE"
            )


def make_people() -> tuple[User, list[int], list[int]]:
    bench, _ = User.objects.update_or_create(
        username=BENCH_USER,
        defaults={
            "display_name": "Benchmark reader",
            "password": make_password(BENCH_PASSWORD),
            "time_zone": "UTC",
        },
    )
    owners = []
    for i in range(50):
        user, _ = User.objects.get_or_create(
            username=f"engineer{i:02d}", defaults={"display_name": f"Engineer {i:02d}", "time_zone": "UTC"}
        )
        owners.append(user.pk)
    teams = []
    for name in ("Platform", "Payments", "Data", "Mobile", "Security"):
        team, _ = Team.objects.get_or_create(name=name, defaults={"slug": slugify(name)})
        teams.append(team.pk)
    # The reader is in one team: it sees that team's restricted incidents, as people do, so the pages are
    # measured for someone whose audience is not "everyone's".
    Team.objects.get(pk=teams[0]).members.add(bench)
    return bench, owners, teams


def generate(count: int, *, seed: int = 6) -> None:
    rng = random.Random(seed)
    sources = load_sources()
    vocab = vocabulary(sources)
    bench, owners, teams = make_people()
    # The benchmark reader owns a share of the action items, so that /action-items/ has rows.
    item_owners = [*owners, bench.pk]
    content_type = ContentType.objects.get_for_model(Incident)
    now = dt.datetime.now(dt.UTC)
    start_day = dt.date.today() - dt.timedelta(days=3650)
    # Zipf-like weights: the first tags are on many incidents, the tail on a few dozen.
    weights = [1 / (rank + 1) ** 0.9 for rank in range(len(vocab))]

    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM postmortems_incident")
        first_id = cursor.fetchone()[0] + 1
        tag_ids = {}
        for name in vocab:
            cursor.execute(
                "INSERT INTO taggit_tag (name, slug) VALUES (%s, %s) "
                "ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name "
                "RETURNING id",
                [name, slugify(name)[:100]],
            )
            tag_ids[name] = cursor.fetchone()[0]
        tag_list = list(tag_ids.values())
        raw = cursor.connection  # psycopg 3: COPY from Python rows
        # Beyond the `count` published incidents, a twentieth more are drafts or in review, and one published
        # incident in fifty is restricted to its team: what visibility has to hide in a real instance.
        total = count + count // 20
        ids = range(first_id, first_id + total)
        with raw.cursor() as pg:
            with Copier(pg, Incident, now, with_id=True) as copy:
                for incident_id in ids:
                    source = sources[incident_id % len(sources)]
                    day = start_day + dt.timedelta(days=rng.randrange(3650))
                    begun = dt.datetime.combine(day, dt.time(rng.randrange(24), rng.randrange(60)), dt.UTC)
                    body = sentences(source["body"] or source["summary"])
                    service, region = rng.choice(SERVICES), rng.choice(REGIONS)
                    published = incident_id < first_id + count
                    copy.write(
                        id=incident_id,
                        title=f"{service.title()} {rng.choice(FAILURES)} in {region}: {source['title']}"[
                            :200
                        ],
                        incident_date=day,
                        started_at=begun,
                        detected_at=begun + dt.timedelta(minutes=rng.randrange(1, 60)),
                        mitigated_at=begun + dt.timedelta(minutes=rng.randrange(60, 240)),
                        resolved_at=begun + dt.timedelta(minutes=rng.randrange(240, 900)),
                        severity=rng.choice(["SEV1", "SEV2", "SEV2", "SEV3", "SEV3", "SEV3", "SEV4"]),
                        owner_id=rng.choice(owners),
                        summary=source["summary"] or ". ".join(body[:3]),
                        supporting_data=f"Errors of {service} peaked at {rng.randrange(2, 90)}% in {region}.",
                        customer_impact=". ".join(rng.sample(body, min(3, len(body)))),
                        impacted_customers=rng.randrange(0, 50000),
                        response_analysis=". ".join(rng.sample(body, min(4, len(body)))),
                        post_incident_analysis=". ".join(rng.sample(body, min(4, len(body)))),
                        status="published" if published else rng.choice(["draft", "draft", "in_review"]),
                        visibility="restricted" if published and incident_id % 50 == 0 else "normal",
                        published_at=begun + dt.timedelta(days=7) if published else None,
                    )
            print(f"  incidents: {time.monotonic() - started:.0f} s")
            with pg.copy("COPY taggit_taggeditem (object_id, content_type_id, tag_id) FROM STDIN") as copy:
                for incident_id in ids:
                    for tag_id in set(rng.choices(tag_list, weights=weights, k=rng.randint(1, 5))):
                        copy.write_row((incident_id, content_type.pk, tag_id))
            with pg.copy("COPY postmortems_incident_teams (incident_id, team_id) FROM STDIN") as copy:
                for incident_id in ids:
                    copy.write_row((incident_id, rng.choice(teams)))
            print(f"  tags and teams: {time.monotonic() - started:.0f} s")
            with Copier(pg, TimelineEvent, now) as copy:
                for incident_id in ids:
                    source = sources[incident_id % len(sources)]
                    lines = source["timeline"] or sentences(source["body"] or source["summary"])
                    at = now - dt.timedelta(days=incident_id % 3650)
                    for n in range(10):
                        copy.write(
                            incident_id=incident_id,
                            occurred_at=at + dt.timedelta(minutes=7 * n),
                            kind=KINDS[n % len(KINDS)],
                            description=lines[n % len(lines)][:500],
                        )
            print(f"  timeline: {time.monotonic() - started:.0f} s")
            with Copier(pg, ContributingFactor, now) as copy:
                for incident_id in ids:
                    body = sentences(sources[incident_id % len(sources)]["body"])
                    for n in range(3):
                        copy.write(
                            incident_id=incident_id,
                            description=body[(incident_id + n) % len(body)][:400],
                            category=CATEGORIES[n],
                        )
            with Copier(pg, ActionItem, now) as copy:
                for incident_id in ids:
                    for n in range(3):
                        status = STATUSES[(incident_id + n) % len(STATUSES)]
                        copy.write(
                            incident_id=incident_id,
                            title=f"Add a safeguard for {rng.choice(SERVICES)} ({n + 1})",
                            owner_id=rng.choice(item_owners),
                            due_date=dt.date.today() + dt.timedelta(days=rng.randrange(-200, 200)),
                            priority=PRIORITIES[n],
                            backlog_link=f"https://tracker.example.com/OPS-{incident_id * 3 + n}",
                            status=status,
                            completed_at=now if status == "done" else None,
                        )
            with Copier(pg, Lesson, now) as copy:
                for incident_id in ids:
                    body = sentences(sources[incident_id % len(sources)]["body"])
                    for n in range(2):
                        copy.write(
                            incident_id=incident_id, text=body[(incident_id * 7 + n) % len(body)][:400]
                        )
            print(f"  factors, action items, lessons: {time.monotonic() - started:.0f} s")
        tables = [m._meta.db_table for m in (Incident, TimelineEvent, ContributingFactor, ActionItem, Lesson)]
        for table in [*tables, "taggit_tag", "taggit_taggeditem"]:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
    batch = 5000
    for low in range(first_id, first_id + total, batch):
        update_search_vectors(range(low, min(low + batch, first_id + total)))
        done = min(low + batch, first_id + total) - first_id
        print(f"\r  search vectors: {done}/{total} ({time.monotonic() - started:.0f} s)", end="", flush=True)
    print()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    print(
        f"Done: {count} incidents in {time.monotonic() - started:.0f} s; "
        f"sign in as {BENCH_USER} / {BENCH_PASSWORD}."
    )


def ensure_database(settings_dict) -> None:
    import psycopg

    params = {k: v for k, v in {
        "host": settings_dict["HOST"], "port": settings_dict["PORT"] or None,
        "user": settings_dict["USER"], "password": settings_dict["PASSWORD"] or None,
    }.items() if v}  # fmt: skip
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [settings_dict["NAME"]]
        ).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{settings_dict["NAME"]}"')
            print(f"Created database {settings_dict['NAME']}")


def has_incidents(count: int) -> bool:
    call_command("migrate", verbosity=0)
    return Incident.objects.published().count() >= count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", type=int, nargs="?", default=100_000)
    parser.add_argument("--keep", action="store_true", help="add to the incidents already there")
    parser.add_argument("--force", action="store_true", help="allow a database whose name lacks “bench”")
    parser.add_argument("--if-needed", action="store_true", help="do nothing when it holds that many already")
    args = parser.parse_args()
    name = connection.settings_dict["NAME"]
    if connection.vendor != "postgresql":
        sys.exit("The benchmark needs PostgreSQL: set DATABASE_URL.")
    ensure_database(connection.settings_dict)
    if args.if_needed and has_incidents(args.count):
        print(
            f"{name} already holds {args.count} published incidents; not generating (drop it to regenerate)."
        )
        return
    if "bench" not in name and not args.force:
        sys.exit(
            f"Refusing to replace the incidents of database {name!r}; use a *bench* database or --force."
        )
    prepare(reset=not args.keep)
    generate(args.count)


if __name__ == "__main__":
    main()
