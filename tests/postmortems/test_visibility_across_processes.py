"""Who may see a restricted postmortem is decided afresh on every request, in every server process.

Two gunicorn processes serve the app with the default per-process cache, as the Dockerfile runs it without
CACHE_URL. Every page that shows a restricted incident is read in both before each change (so that a page
or figure kept from before would show), then the change is made (team membership, the incident's teams,
its restriction), and the very next request in each process must follow it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from accounts.models import Team
from postmortems.models import ActionItemStatus, Incident, Status, Visibility
from postmortems.search import update_search_vector
from tests.factories import ActionItemFactory, IncidentFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
TITLE = "Vault sealed itself"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def servers():
    """Two separate server processes on the test database, each with its own per-process cache."""
    if connection.vendor != "postgresql":
        pytest.skip(
            "two server processes need a database server (PostgreSQL), not SQLite's in-memory test db"
        )
    db = connection.settings_dict
    url = (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}"
        f"/{db['NAME']}"
    )
    env = {k: v for k, v in os.environ.items() if k != "CACHE_URL"} | {
        "DATABASE_URL": url,
        "DEBUG": "1",  # static files from the app; no HTTPS redirect
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    processes, bases = [], []
    for _ in range(2):
        port = _free_port()
        processes.append(
            subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("gunicorn")),
                    "config.wsgi",
                    f"--bind=127.0.0.1:{port}",
                    "--workers=1",
                    "--access-logfile=/dev/null",
                ],
                cwd=ROOT,
                env=env,
                start_new_session=True,
            )
        )
        bases.append(f"http://127.0.0.1:{port}")
    try:
        for process, base in zip(processes, bases, strict=True):
            for _ in range(150):
                if process.poll() is not None:
                    pytest.fail("a server process exited at start")
                try:
                    urllib.request.urlopen(base + "/healthz", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.1)
        yield bases
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)


def _get(base: str, path: str, session: str) -> tuple[int, str]:
    request = urllib.request.Request(base + path, headers={"Cookie": f"sessionid={session}"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _session_of(user) -> str:
    client = Client()
    client.force_login(user)  # a session row in the shared database
    return client.cookies["sessionid"].value


def _what_is_seen(base: str, session: str, restricted, public) -> dict[str, bool]:
    """For each page that can show the restricted incident, whether it does."""
    seen = {}
    status, page = _get(base, "/postmortems/", session)
    seen["list"] = TITLE in page
    seen["search"] = TITLE in _get(base, "/postmortems/?q=zebracorn", session)[1]
    status, page = _get(base, "/tags/vault-secrets/", session)
    seen["tag page"] = status == 200 and TITLE in page
    seen["tag index"] = "vault-secrets" in _get(base, "/tags/", session)[1]
    seen["related"] = TITLE in _get(base, public.get_absolute_url(), session)[1]
    page = _get(base, "/action-items/?scope=all&status=any", session)[1]
    seen["action items"] = "Rotate the unseal keys" in page
    page = _get(base, "/insights/?from=2026-01-01&to=2026-06-30&tag=vault-secrets", session)[1]
    found = re.search(r"Incidents per month.{0,200}?n = (\d+)", page, re.DOTALL)
    seen["insights"] = bool(found) and int(found.group(1)) > 0
    seen["detail"] = _get(base, restricted.get_absolute_url(), session)[0] == 200
    return seen


def test_a_change_of_who_may_see_a_restricted_postmortem_shows_at_once_in_every_process(servers):
    team, other_team = Team.objects.create(name="Platform"), Team.objects.create(name="Payments")
    member, outsider = UserFactory(), UserFactory()
    team.members.add(member)
    date = dt.date(2026, 3, 4)
    restricted = IncidentFactory(
        title=TITLE,
        summary="The zebracorn vault sealed itself after a failed health check.",
        incident_date=date,
        status=Status.PUBLISHED,
        visibility=Visibility.RESTRICTED,
        teams=[team],
        tags=["vault-secrets", "storage"],
    )
    ActionItemFactory(incident=restricted, title="Rotate the unseal keys", status=ActionItemStatus.OPEN)
    public = IncidentFactory(title="Disk full on the storage nodes", incident_date=date, tags=["storage"])
    for incident in (restricted, public):
        update_search_vector(incident.pk)
    sessions = {"member": _session_of(member), "outsider": _session_of(outsider)}

    def seen_everywhere(who: str) -> list[dict[str, bool]]:
        return [_what_is_seen(base, sessions[who], restricted, public) for base in servers]

    def assert_seen(who: str, expected: bool) -> None:
        for process, seen in enumerate(seen_everywhere(who), start=1):
            wrong = [page for page, shown in seen.items() if shown != expected]
            assert not wrong, f"process {process}, {who}: {'hidden' if expected else 'shown'} on {wrong}"

    assert_seen("member", True)
    assert_seen("outsider", False)

    # Team membership: the member leaves the incident's only team.
    team.members.remove(member)
    assert_seen("member", False)
    team.members.add(member)
    assert_seen("member", True)

    # The incident's teams: it moves to another team.
    restricted.teams.set([other_team])
    assert_seen("member", False)
    restricted.teams.set([team])
    assert_seen("member", True)

    # The restriction itself, off and on again (on the row as the app reads it: the factory's instance
    # would write its empty search vector back).
    restricted = Incident.objects.get(pk=restricted.pk)
    restricted.visibility = Visibility.NORMAL
    restricted.save()
    assert_seen("outsider", True)
    restricted.visibility = Visibility.RESTRICTED
    restricted.save()
    assert_seen("outsider", False)
    assert_seen("member", True)
