"""A fake GitHub, GitLab and Jira on 127.0.0.1: the few endpoints Hindsight calls, answering as the trackers
document (201 with the issue; 401, 404, 422, 429 with Retry-After when told to)."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ERRORS = {
    401: ({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}, {}),
    404: ({"message": "Not Found"}, {}),
    422: ({"message": "Validation Failed", "errors": [{"resource": "Issue", "code": "missing_field"}]}, {}),
    429: ({"message": "API rate limit exceeded"}, {"Retry-After": "30"}),
    500: ({"message": "Server Error"}, {}),
}


@dataclass
class FakeTracker:
    """Answers the queued `failures` (HTTP statuses) first, then creates issues numbered from 42."""

    failures: list[int] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    number: int = 41

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, path: str) -> tuple[int, dict, dict]:
        if self.failures:
            status = self.failures.pop(0)
            body, headers = ERRORS[status]
            return status, body, headers
        self.number += 1
        if re.fullmatch(r"/repos/[^/]+/[^/]+/issues", path):  # GitHub
            return (
                201,
                {
                    "number": self.number,
                    "html_url": f"https://github.com/acme/api/issues/{self.number}",
                    "state": "open",
                    "title": "…",
                },
                {},
            )
        if re.fullmatch(r"/api/v4/projects/[^/]+/issues", path):  # GitLab
            return (
                201,
                {
                    "id": 9000 + self.number,
                    "iid": self.number,
                    "state": "opened",
                    "web_url": f"https://gitlab.com/acme/api/-/issues/{self.number}",
                },
                {},
            )
        if path == "/rest/api/3/issue":  # Jira
            return (
                201,
                {
                    "id": str(10000 + self.number),
                    "key": f"OPS-{self.number}",
                    "self": f"{self.url}/rest/api/3/issue/{10000 + self.number}",
                },
                {},
            )
        return 404, {"message": "Not Found"}, {}

    def start(self) -> FakeTracker:
        tracker = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                tracker.requests.append(
                    {
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "json": json.loads(body or b"null"),
                    }
                )
                status, answer, headers = tracker.answer(self.path)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
