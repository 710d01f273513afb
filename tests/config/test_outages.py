"""Outages with real parts: a Redis of the test's own (as broker and cache) stopped and started again, a
real Celery worker, PostgreSQL connections killed under the app. README, "When a service is down".

The settings are the ones production builds from its environment (`config/settings.py` run with CACHE_URL
set), the broker and the cache a `redis-server` started here on a free port, so that stopping it touches
nobody else's.
"""

from __future__ import annotations

import email
import logging
import os
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import kombu.pools
import pytest
import redis
from django.core import mail
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse

from config.celery import app as celery_app
from postmortems import tasks
from postmortems.models import (
    ActionItem,
    ActionItemStatus,
    ActivityVerb,
    Decision,
    Notification,
    SentNotification,
    SignOff,
    Status,
)
from tests.postmortems.reviewing import make_cast, postmortem

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def production_settings(monkeypatch, **environ) -> dict:
    """What config/settings.py builds from this environment, without touching the running settings."""
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "config" / "settings.py"))


class RedisServer:
    """A `redis-server` of the test's own, without persistence: a restart empties it, as a failover can."""

    def __init__(self, folder: Path):
        self.port = _free_port()
        self.folder = folder
        self.process: subprocess.Popen | None = None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.process.poll() is None:
        server.stop()


def _forget_connections() -> None:
    """Celery's pools keep the broker URL they were made with (tests/postmortems/test_celery_worker.py)."""
    kombu.pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def app_on(redis_server, monkeypatch):
    """This process runs the app as production does with CACHE_URL and CELERY_BROKER_URL on that Redis."""
    if connection.vendor != "postgresql":
        pytest.skip("the worker is a separate process: it needs a database server (PostgreSQL), not SQLite")
    built = production_settings(monkeypatch, CACHE_URL=redis_server.url(1))
    saved = {key: celery_app.conf[key] for key in ("broker_url", "task_always_eager")}
    _forget_connections()
    celery_app.conf.update(broker_url=redis_server.url(0), task_always_eager=False)
    with override_settings(CACHES=built["CACHES"], SESSION_ENGINE=built["SESSION_ENGINE"]):
        yield redis_server
    celery_app.conf.update(saved)
    _forget_connections()


def child_database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(broker_url: str, outbox: Path, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": child_database_url(),
        "CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": broker_url,
        "EMAIL_URL": f"filemail:///{outbox}",
        "SITE_URL": "http://hindsight.test",
    }
    return subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "--loglevel=INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def read_emails(outbox: Path) -> list[email.message.Message]:
    return [
        email.message_from_string(chunk)
        for path in sorted(outbox.glob("*.log"))
        for chunk in path.read_text().split("\n" + "-" * 79 + "\n")
        if chunk.strip()
    ]


def wait_for_emails(outbox: Path, count: int, *, seconds: float = 60) -> list[email.message.Message]:
    deadline = time.monotonic() + seconds
    messages = read_emails(outbox)
    while len(messages) < count and time.monotonic() < deadline:
        time.sleep(0.1)
        messages = read_emails(outbox)
    return messages


def sign_in(username: str) -> Client:
    """Through the sign-in form, as a person does (not force_login)."""
    client = Client()
    response = client.post(reverse("accounts:login"), {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:2000]
    return client


def test_production_settings_keep_sessions_off_the_cache_and_read_cache_errors_as_misses(monkeypatch):
    built = production_settings(monkeypatch, CACHE_URL="redis://127.0.0.1:6379/1")

    cache = built["CACHES"]["default"]
    assert cache["BACKEND"] == "django_redis.cache.RedisCache"
    assert cache["OPTIONS"]["IGNORE_EXCEPTIONS"] is True
    assert cache["OPTIONS"]["SOCKET_CONNECT_TIMEOUT"] <= 1
    assert built["DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS"] is True
    assert built["SESSION_ENGINE"] == "django.contrib.sessions.backends.db"


def test_production_settings_bound_every_wait_on_the_broker_and_never_give_up_on_it(monkeypatch):
    built = production_settings(monkeypatch, CELERY_BROKER_URL="redis://127.0.0.1:6379/0")

    assert built["CELERY_TASK_ALWAYS_EAGER"] is False
    assert built["CELERY_BROKER_TRANSPORT_OPTIONS"]["socket_timeout"] > 1  # above the worker's 1 s BRPOP
    assert built["CELERY_BROKER_TRANSPORT_OPTIONS"]["socket_connect_timeout"]
    assert built["CELERY_TASK_PUBLISH_RETRY_POLICY"]["max_retries"] <= 1
    assert built["CELERY_BROKER_CONNECTION_MAX_RETRIES"] is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_people_keep_working_while_redis_is_down_and_every_email_arrives_once_after(app_on, tmp_path, caplog):
    redis_server = app_on
    cast = make_cast()
    incident = postmortem(cast)
    item = incident.action_items.first()
    outbox = tmp_path / "emails"
    outbox.mkdir()

    # Redis up, no worker yet: the review request is queued in Redis, then lost with it (no persistence).
    owner = sign_in("owner")
    response = owner.post(reverse("postmortems:request_review", args=[incident.pk]))
    assert response.status_code == 302
    redis_server.stop()

    # Redis down: as cache and as broker.
    caplog.set_level(logging.WARNING)
    started = time.monotonic()
    reviewer_a = sign_in("reva")
    page = reviewer_a.get(incident.get_absolute_url())
    assert page.status_code == 200
    assert incident.title in page.content.decode()
    response = reviewer_a.post(
        reverse("postmortems:approve", args=[incident.pk]), {"revision": incident.revision, "comment": ""}
    )
    assert response.status_code == 302
    reviewer_b = sign_in("revb")
    response = reviewer_b.post(
        reverse("postmortems:request_changes", args=[incident.pk]),
        {"revision": incident.revision, "comment": "Say which region."},
    )
    assert response.status_code == 302
    response = reviewer_b.post(
        reverse("postmortems:approve", args=[incident.pk]),
        {"revision": incident.revision, "comment": "Fine."},
    )
    assert response.status_code == 302
    owner = sign_in("owner")
    response = owner.post(reverse("postmortems:publish", args=[incident.pk]))
    assert response.status_code == 302
    prefix = f"item-{item.pk}"
    response = owner.post(
        reverse("postmortems:action_item_update", args=[item.pk]),
        {
            f"{prefix}-status": ActionItemStatus.IN_PROGRESS,
            f"{prefix}-backlog_link": item.backlog_link,
            f"{prefix}-wont_do_reason": "",
            f"{prefix}-next": "",
            f"{prefix}-seen": ActionItem.objects.get(pk=item.pk).updated_at.isoformat(),
        },
    )
    assert response.status_code == 302
    for page in ("action_items", "list", "tags", "insights"):  # the last two read cached public figures
        response = owner.get(reverse(f"postmortems:{page}"))
        assert response.status_code == 200
        assert "Hindsight" in response.content.decode()
    during_outage = time.monotonic() - started

    incident.refresh_from_db()
    assert incident.status == Status.PUBLISHED
    assert list(
        SignOff.objects.filter(incident=incident).order_by("id").values_list("reviewer__username", "decision")
    ) == [("reva", Decision.APPROVE), ("revb", Decision.REQUEST_CHANGES), ("revb", Decision.APPROVE)]
    assert ActionItem.objects.get(pk=item.pk).status == ActionItemStatus.IN_PROGRESS
    assert list(incident.activities.order_by("id").values_list("verb", flat=True)) == [
        ActivityVerb.REVIEW_REQUESTED,
        ActivityVerb.APPROVED,
        ActivityVerb.CHANGES_REQUESTED,
        ActivityVerb.APPROVED,
        ActivityVerb.PUBLISHED,
        ActivityVerb.ACTION_ITEM_UPDATED,
    ]
    assert Notification.objects.pending().count() == 5  # review request, three sign-offs, publication
    refused = [r for r in caplog.records if r.name == "postmortems.notifications"]
    assert len(refused) == 4
    assert all(r.levelno == logging.WARNING and "not sent now" in r.getMessage() for r in refused)
    assert any(r.name == "django_redis.cache" for r in caplog.records)  # the cache errors, read as misses
    assert mail.outbox == []

    # Redis back, and a worker starts: it sends what waited, each email once.
    redis_server.start()
    back = time.monotonic()
    log = tmp_path / "worker.log"
    worker = start_worker(redis_server.url(0), outbox, log)
    try:
        messages = wait_for_emails(outbox, 7)
        caught_up = time.monotonic() - back
        assert len(messages) == 7, log.read_text()[-3000:]

        # The web process enqueues again once Redis is back; a second catch-up finds nothing to send.
        second = postmortem(cast, title="Disk filled on the build host")
        response = sign_in("owner").post(reverse("postmortems:request_review", args=[second.pk]))
        assert response.status_code == 302
        tasks.send_pending_notifications.delay()
        messages = wait_for_emails(outbox, 9)
        time.sleep(1)  # anything sent twice would arrive now
        messages = read_emails(outbox)
    finally:
        stop(worker)

    sent = sorted((m["To"], " ".join(m["Subject"].split())) for m in messages)
    assert sent == sorted(
        [
            ("reva@example.com", f"Please review: {incident.title}"),
            ("revb@example.com", f"Please review: {incident.title}"),
            ("owner@example.com", f"Approved: {incident.title}"),
            ("owner@example.com", f"Changes requested: {incident.title}"),
            ("owner@example.com", f"Approved: {incident.title}"),
            ("reva@example.com", f"Published: {incident.title}"),
            ("revb@example.com", f"Published: {incident.title}"),
            ("reva@example.com", f"Please review: {second.title}"),
            ("revb@example.com", f"Please review: {second.title}"),
        ]
    ), log.read_text()[-3000:]
    assert SentNotification.objects.count() == 9
    assert not Notification.objects.pending().exists()
    print(f"\noutage: 11 requests in {during_outage:.1f} s; Redis back to 7 emails sent: {caught_up:.1f} s")


@pytest.fixture
def hung_redis():
    """A server that accepts connections and never answers, as a Redis behind a dead NAT entry or a
    half-failed-over host looks: without socket timeouts a request waits on it for ever."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # connections complete in the backlog; nothing is ever read or written
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}"


@pytest.mark.django_db(transaction=True)
def test_a_hung_redis_slows_an_action_down_but_never_fails_or_holds_it(hung_redis, monkeypatch, caplog):
    built = production_settings(monkeypatch, CACHE_URL=f"{hung_redis}/1")
    cast = make_cast()
    incident = postmortem(cast, status=Status.IN_REVIEW)
    saved = {key: celery_app.conf[key] for key in ("broker_url", "task_always_eager")}
    _forget_connections()
    celery_app.conf.update(broker_url=f"{hung_redis}/0", task_always_eager=False)
    try:
        with override_settings(CACHES=built["CACHES"]), caplog.at_level(logging.WARNING):
            started = time.monotonic()
            response = sign_in("reva").post(
                reverse("postmortems:approve", args=[incident.pk]), {"revision": incident.revision}
            )
            took = time.monotonic() - started
    finally:
        celery_app.conf.update(saved)
        _forget_connections()

    assert response.status_code == 302
    assert SignOff.objects.filter(incident=incident, reviewer=cast.reviewer_a, is_current=True).exists()
    assert Notification.objects.pending().count() == 1
    assert "Timeout" in caplog.text
    assert took < 12, took  # two publish attempts of 3 s, and half a second per cache operation


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_request_after_the_database_dropped_the_apps_connections_answers_normally(tmp_path, client):
    """gunicorn keeps its connection between requests (CONN_MAX_AGE); killing it must cost no request."""
    if connection.vendor != "postgresql":
        pytest.skip("pg_terminate_backend is PostgreSQL's")
    cast = make_cast()
    incident = postmortem(cast, status=Status.PUBLISHED)
    client.force_login(cast.other)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": child_database_url(),
        "CONN_MAX_AGE": "600",
        "DEBUG": "1",  # static files without collectstatic; the connection handling is the same
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    log = tmp_path / "gunicorn.log"
    server = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
            "--workers", "1",
        ],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip

    def get(path: str) -> tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Cookie": cookie})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()

    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                status, body = get(incident.get_absolute_url())
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(log.read_text()[-3000:])
                time.sleep(0.1)
        assert status == 200
        assert incident.title in body

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            killed = cursor.fetchall()
        assert killed  # gunicorn's connection, kept open between requests

        status, body = get(incident.get_absolute_url())
        assert status == 200
        assert incident.title in body
    finally:
        stop(server)
