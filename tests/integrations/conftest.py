from __future__ import annotations

import json

import pytest

from integrations.models import ApiToken, TokenAccess


class Api:
    """The Django test client speaking JSON with a personal token, as a script would."""

    def __init__(self, client, secret: str):
        self.client, self.secret = client, secret

    def _call(self, method: str, path: str, body=None, *, if_match=None, **query):
        headers = {"Authorization": f"Bearer {self.secret}"}
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        call = getattr(self.client, method)
        if method == "get":
            response = call(path, query, headers=headers)
        else:
            data = json.dumps(body if body is not None else {})
            response = call(path, data, content_type="application/json", headers=headers)
        response.json_body = response.json() if response.content else None
        return response

    def get(self, path, **query):
        return self._call("get", path, **query)

    def post(self, path, body=None, **kwargs):
        return self._call("post", path, body, **kwargs)

    def patch(self, path, body=None, **kwargs):
        return self._call("patch", path, body, **kwargs)

    def delete(self, path, **kwargs):
        return self._call("delete", path, **kwargs)


@pytest.fixture
def api_as(client):
    """api_as(user, access="write") → an Api client with a fresh token of that user."""

    def make(user, access: str = TokenAccess.WRITE) -> Api:
        _, secret = ApiToken.issue(user=user, name="test", access=access)
        return Api(client, secret)

    return make


@pytest.fixture
def receiver():
    from tests.integrations.receiver import Receiver

    server = Receiver().start()
    yield server
    server.stop()
