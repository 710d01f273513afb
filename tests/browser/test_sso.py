"""Single sign-on through a real OpenID Connect provider (npm `oidc-provider`, in its own process on a free
port), in a real browser: the first sign-in creates the account with its teams, the second reuses it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from django.test import override_settings

from accounts.models import Team, User
from integrations.models import SsoIdentity
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc_provider"
CLIENT_SECRET = "test-client-secret-do-not-log"
ACCOUNTS = {
    "ada-sub-0001": {
        "email": "ada@example.com",
        "email_verified": True,
        "name": "Ada Lovelace",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "preferred_username": "ada",
        "groups": ["payments", "hindsight-admins", "unknown-group"],
    }
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def oidc_provider(live_server, tmp_path):
    node = shutil.which("node")
    if node is None or not (PROVIDER_DIR / "node_modules" / "oidc-provider").exists():
        message = "the OIDC provider needs node and `make test` (npm ci in tests/browser/oidc_provider)"
        if os.environ.get("REQUIRE_BROWSER") == "1" and node is not None:
            pytest.fail(message)
        pytest.skip(message)
    port = _free_port()
    issuer = f"http://127.0.0.1:{port}"
    log = tmp_path / "provider.log"
    env = {**os.environ, "OIDC_TEST_ACCOUNTS": json.dumps(ACCOUNTS), "OIDC_TEST_CLIENT_SECRET": CLIENT_SECRET}
    process = subprocess.Popen(
        [node, "provider.mjs", str(port), f"{live_server.url}/oidc/callback/"],
        cwd=PROVIDER_DIR, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while "listening" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the OIDC provider did not start: " + log.read_text()
            time.sleep(0.1)
        with override_settings(
            AUTHENTICATION_BACKENDS=[
                "integrations.sso.SsoBackend",
                "django.contrib.auth.backends.ModelBackend",
            ],
            OIDC_ENABLED=True,
            OIDC_PROVIDER_NAME="Example SSO",
            OIDC_RP_CLIENT_ID="hindsight",
            OIDC_RP_CLIENT_SECRET=CLIENT_SECRET,
            OIDC_OP_AUTHORIZATION_ENDPOINT=f"{issuer}/auth",
            OIDC_OP_TOKEN_ENDPOINT=f"{issuer}/token",
            OIDC_OP_USER_ENDPOINT=f"{issuer}/me",
            OIDC_OP_JWKS_ENDPOINT=f"{issuer}/jwks",
            OIDC_RP_SIGN_ALGO="RS256",
            OIDC_RP_SCOPES="openid email profile groups",
            OIDC_STAFF_GROUPS=["hindsight-admins"],
        ):
            yield log
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _sign_in_with_sso(page, live_server) -> None:
    # The provider's development pages load a web font; nothing outside 127.0.0.1 is reached.
    page.route("https://**", lambda route: route.abort())
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("link", name="Sign in with Example SSO").click()
    page.locator("input[name=login]").fill("ada-sub-0001")
    page.locator("input[name=password]").fill("any password")
    page.get_by_role("button", name="Sign-in").click()
    consent = page.get_by_role("button", name="Continue")
    consent.wait_for(timeout=10_000)
    consent.click()
    page.wait_for_url(f"{live_server.url}/postmortems/")


def test_sign_in_with_sso_creates_the_account_then_reuses_it(oidc_provider, live_server, new_page, caplog):
    payments = TeamFactory(name="Payments", slug="payments")
    search = TeamFactory(name="Search", slug="search")
    UserFactory(username="ada")  # a local account with the same name is not taken over
    existing_users = User.objects.count()

    page = new_page()
    _sign_in_with_sso(page, live_server)

    assert "Signed in as Ada Lovelace" in page.get_by_test_id("signed-in-user").inner_text()
    identity = SsoIdentity.objects.select_related("user").get(subject="ada-sub-0001")
    user = identity.user
    assert user.username == "ada-2"
    assert (user.email, user.first_name, user.last_name) == ("ada@example.com", "Ada", "Lovelace")
    assert list(user.teams.all()) == [payments]  # groups mapped to teams; unknown groups ignored
    assert search not in user.teams.all()
    assert user.is_staff  # hindsight-admins
    assert not user.has_usable_password()
    assert User.objects.count() == existing_users + 1
    assert not Team.objects.filter(slug="unknown-group").exists()

    second = new_page()  # a new browser: signs in at the provider again
    _sign_in_with_sso(second, live_server)

    assert "Signed in as Ada Lovelace" in second.get_by_test_id("signed-in-user").inner_text()
    assert User.objects.count() == existing_users + 1
    assert SsoIdentity.objects.get().user_id == user.pk
    assert CLIENT_SECRET not in caplog.text
    assert CLIENT_SECRET not in oidc_provider.read_text()


def test_password_sign_in_can_be_turned_off(client, settings):
    settings.PASSWORD_SIGN_IN = False
    settings.OIDC_ENABLED = True
    settings.OIDC_PROVIDER_NAME = "Okta"
    settings.AUTHENTICATION_BACKENDS = ["integrations.sso.SsoBackend"]
    UserFactory(username="kim")

    page = client.get("/accounts/login/").content.decode()
    refused = client.post("/accounts/login/", {"username": "kim", "password": "correct-horse-battery"})

    assert "Sign in with Okta" in page
    assert 'name="password"' not in page
    assert refused.status_code == 403
    assert "_auth_user_id" not in client.session
