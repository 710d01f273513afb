"""Settings read from the environment (config/settings.py): what a newcomer's first start meets."""

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.settings import BASE_DIR, database_from_url


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter with the project's settings and `env` on top of this environment."""
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_database_url_means_sqlite(value):
    config = database_from_url(value)
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == str(BASE_DIR / "db.sqlite3")


def test_a_database_url_is_read_as_before():
    config = database_from_url("postgres://hindsight:secret@db.example.com:5433/postmortems")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.example.com", 5433, "postmortems")
    assert (config["USER"], config["PASSWORD"]) == ("hindsight", "secret")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("hindsight.sqlite3", "it has no scheme"),
        ("postgres//db.example.com/hindsight", "it has no scheme"),
        ("postgress://hindsight:secret@db.example.com/hindsight", "the scheme 'postgress' is not a database"),
        ("postgres://hindsight:secret@db.example.com:port/hindsight", "Port could not be cast to integer"),
        ("postgres://hindsight:secret@db.example.com:5432/", "names no database"),
    ],
)
def test_a_malformed_database_url_is_refused_naming_the_variable(value, reason):
    with pytest.raises(ImproperlyConfigured) as refused:
        database_from_url(value)
    message = str(refused.value)
    assert message.startswith("DATABASE_URL ")
    assert reason in message
    assert "secret" not in message  # the value may hold a password: it is not repeated


def test_an_empty_database_url_in_the_environment_starts_on_sqlite():
    started = run_python(
        "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])", DATABASE_URL=""
    )
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == "django.db.backends.sqlite3"


def test_a_malformed_database_url_stops_manage_py_with_its_name():
    environment = {**os.environ, "DATABASE_URL": "postgress://hindsight:secret@db.example.com/hindsight"}
    stopped = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert stopped.returncode != 0
    last_line = stopped.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured: DATABASE_URL is not a database URL" in last_line
    assert "KeyError" not in stopped.stderr
    assert "secret" not in stopped.stderr


def test_each_log_record_is_printed_once_with_debug_on():
    logged = run_python(
        "import django, logging; django.setup(); "
        "logging.getLogger('django.request').warning('Not Found: /nowhere/'); "
        "logging.getLogger('postmortems.tasks').warning('not emailing someone')",
        DEBUG="1",
    )
    assert logged.returncode == 0, logged.stderr
    assert logged.stderr.count("Not Found: /nowhere/") == 1
    assert logged.stderr.count("not emailing someone") == 1


def test_djangos_errors_are_still_logged_with_debug_off():
    logged = run_python(
        "import django, logging; django.setup(); "
        "logging.getLogger('django.request').error('Internal Server Error: /postmortems/')",
        DEBUG="0",
    )
    assert logged.stderr.count("Internal Server Error: /postmortems/") == 1
