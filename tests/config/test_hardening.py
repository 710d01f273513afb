"""Response headers, request limits, idle sessions and the refusal to start without a secret key."""

import re
import time

import pytest
from django.conf import settings as django_settings

from tests import factories
from tests.config.test_settings import run_python


@pytest.mark.parametrize("server", ["config.wsgi", "config.asgi"])
def test_without_a_secret_key_debug_off_the_server_refuses_to_start(server):
    started = run_python(f"import {server}", DEBUG="0", SECRET_KEY="")
    assert started.returncode != 0
    assert "SECRET_KEY is not set" in started.stderr
    assert "DEBUG=1" in started.stderr


def test_without_a_secret_key_debug_off_commands_that_sign_nothing_still_run():
    checked = run_python(
        "import django; django.setup(); from django.core.management import call_command; "
        "call_command('makemigrations', '--check', '--dry-run')",
        DEBUG="0",
        SECRET_KEY="",
    )
    assert checked.returncode == 0, checked.stderr


def test_without_a_secret_key_debug_on_starts_with_the_development_key():
    started = run_python(
        "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)",
        DEBUG="1",
        SECRET_KEY="",
    )
    assert started.returncode == 0, started.stderr
    assert "insecure" in started.stdout


@pytest.mark.django_db
def test_every_page_has_a_strict_csp_with_a_nonce(client, user):
    client.force_login(user)
    response = client.get("/postmortems/")
    policy = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert re.fullmatch(r"'self' 'nonce-[A-Za-z0-9+/=]+'", directives["script-src"])
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy
    nonce = directives["script-src"].split("'nonce-")[1].rstrip("'")
    assert f'nonce="{nonce}"' in response.content.decode()
    assert "<script>" not in response.content.decode()  # nothing inline


@pytest.mark.django_db
def test_the_sign_in_page_has_the_policy_too(client):
    response = client.get("/accounts/login/")
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert "camera=()" in response["Permissions-Policy"]


def test_images_from_markdown_image_hosts_are_allowed_by_the_policy():
    started = run_python(
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['img-src'])",
        MARKDOWN_IMAGE_HOSTS="grafana.example.com,img.example.org",
    )
    assert started.returncode == 0, started.stderr
    assert "https://grafana.example.com" in started.stdout
    assert "https://img.example.org" in started.stdout


@pytest.mark.django_db
def test_signed_in_pages_are_private_and_not_stored(client, user):
    client.force_login(user)
    cache_control = client.get("/postmortems/")["Cache-Control"]
    assert "private" in cache_control
    assert "no-store" in cache_control
    assert "Permissions-Policy" in client.get("/postmortems/")


@pytest.mark.django_db
def test_a_body_over_the_limit_is_refused_from_its_content_length_before_it_is_read(client, user):
    client.force_login(user)

    class Unreadable:
        def read(self, *args):
            raise AssertionError("the body was read")

        readline = read

    response = client.generic(
        "POST",
        "/postmortems/new/",
        b"",
        content_type="application/x-www-form-urlencoded",
        CONTENT_LENGTH=str(django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1),
        **{"wsgi.input": Unreadable()},
    )
    assert response.status_code == 413
    assert "the limit here is 10.0 MB" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/postmortems/tags.json?q=a%00b", "/postmortems/?q=%00", "/tags/a%00b/", "/insights/?tag=%00"]
)
def test_a_nul_byte_in_the_address_is_a_400(client, user, url):
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


@pytest.mark.django_db
def test_sessions_expire_after_twelve_idle_hours_by_default(client, user):
    assert django_settings.SESSION_COOKIE_AGE == 12 * 3600
    client.force_login(user)
    session = client.session
    session["_refreshed_at"] = int(time.time()) - 3600  # the last refresh was an hour ago
    session.save()
    client.get("/postmortems/")
    refreshed = client.session
    assert refreshed["_refreshed_at"] >= int(time.time()) - 5
    assert refreshed.get_expiry_age() > 12 * 3600 - 60


@pytest.mark.django_db
def test_an_idle_session_is_signed_out(client, user, clock):
    client.force_login(user)
    assert client.get("/postmortems/").status_code == 200
    clock.advance(hours=12, minutes=1)
    assert client.get("/postmortems/").status_code == 302


@pytest.mark.django_db
def test_pages_read_within_a_few_minutes_do_not_write_the_session(client, user, django_assert_num_queries):
    client.force_login(user)
    client.get("/accounts/password/")
    factories.UserFactory()
    with django_assert_num_queries(2):  # the session and the user: no UPDATE of the session
        client.get("/accounts/password/")


@pytest.mark.django_db
def test_the_headers_cost_no_query_where_the_page_reads_no_session(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert "Permissions-Policy" in response
