"""A real Celery worker, on Redis, sends the review emails that a committed transition enqueued.

Eager mode hides serialisation and transaction bugs (DESIGN.md section 2), so this test runs the production
shape: the test process enqueues on commit to Redis, a separate `celery -A config worker` process reads the
committed rows from the same PostgreSQL test database and writes the emails with Django's file backend.
"""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import kombu.pools
import pytest
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app
from postmortems import workflow
from postmortems.models import ActivityVerb, SentNotification
from tests.postmortems.reviewing import make_cast, postmortem

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BROKER_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/4")
ROOT = Path(__file__).resolve().parents[2]


def _redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(BROKER_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis is not reachable at {BROKER_URL} ({error}); start it to run the real-worker test")


@pytest.fixture
def broker_queue():
    """Enqueue to Redis (not in-process) for this test, on a queue of its own."""
    if connection.vendor != "postgresql":
        pytest.skip("the worker is a separate process: it needs a database server (PostgreSQL), not SQLite")
    _redis_or_skip()
    queue = f"hindsight-test-{uuid.uuid4().hex[:8]}"
    saved = {key: celery_app.conf[key] for key in ("broker_url", "task_always_eager", "task_default_queue")}
    _forget_connections()
    celery_app.conf.update(broker_url=BROKER_URL, task_always_eager=False, task_default_queue=queue)
    yield queue
    celery_app.conf.update(saved)
    _forget_connections()


def _forget_connections() -> None:
    """Drop the app's cached connection and producer pools: eager runs create them for the default broker
    (even unused), and a pool keeps the broker URL it was made with."""
    kombu.pools.reset()  # closes and forgets every pooled connection and producer
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def worker(broker_queue, tmp_path):
    """`celery -A config worker` against the test database; yields the folder its emails land in."""
    outbox = tmp_path / "emails"
    outbox.mkdir()
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": BROKER_URL,
        "EMAIL_URL": f"filemail:///{outbox}",
        "SITE_URL": "http://hindsight.test",
    }
    log = tmp_path / "worker.log"
    process = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "config", "worker",
            "--pool=solo", "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
            "-Q", broker_queue, "-n", f"{broker_queue}@%h",
        ],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield outbox, log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_real_worker_sends_the_review_request_emails(worker):
    outbox, log = worker
    cast = make_cast()
    incident = postmortem(cast)

    workflow.request_review(incident, by=cast.owner)  # commits; delay_on_commit sends to Redis

    deadline = time.monotonic() + 60
    messages = []
    while time.monotonic() < deadline and len(messages) < 2:
        time.sleep(0.25)
        messages = [
            email.message_from_string(chunk)
            for path in sorted(outbox.glob("*.log"))
            for chunk in path.read_text().split("\n" + "-" * 79 + "\n")
            if chunk.strip()
        ]
    diagnosis = (
        f"eager={celery_app.conf.task_always_eager} queue={celery_app.conf.task_default_queue} "
        f"in_atomic={connection.in_atomic_block} sent={SentNotification.objects.count()}\n"
    )
    assert len(messages) == 2, diagnosis + log.read_text()[-3000:]
    assert sorted(message["To"] for message in messages) == ["reva@example.com", "revb@example.com"]
    for message in messages:
        assert " ".join(message["Subject"].split()) == f"Please review: {incident.title}"
        assert f"http://hindsight.test/postmortems/{incident.pk}/" in message.get_payload()
    activity = incident.activities.get(verb=ActivityVerb.REVIEW_REQUESTED)
    assert SentNotification.objects.filter(key__startswith=f"review_requested:{activity.pk}:").count() == 2
    assert settings.CELERY_TASK_ALWAYS_EAGER  # the rest of the suite still runs tasks in-process
