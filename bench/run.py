"""Load-test Hindsight with wrk against gunicorn (2 sync workers) and print a table (README, "Benchmark").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hindsight_bench .venv/bin/python bench/run.py

Needs a database filled by bench/generate.py and `wrk` on the PATH (Debian: apt-get install wrk). Signs in
once as the benchmark user and passes the session cookie to wrk. Each page is checked once (status and
content) before it is measured, so a table of fast error pages cannot happen.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LUA = Path(__file__).with_name("report.lua")
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/hindsight_bench"
TARGET_P95_MS = 100
NO_CACHE = {"Cache-Control": "no-cache"}
# Pages also read at a person's pace (PACE requests a second, one at a time, for PACED_SECONDS), alone
# and while someone writes a draft: WRITER autosaves its impact step, through the real view, every
# AUTOSAVE_SECONDS (the editor autosaves 1.2 s after typing stops). Under wrk's hundreds of requests a
# second an autosave empties the cache for one request in hundreds; at a person's pace, for one in a few.
PACE = 3
PACED_SECONDS = 20
AUTOSAVE_SECONDS = 2
PACED = ("list", "common-word search", "detail")
WRITER = r"""
import json, sys, time
from django.test import Client
from django.urls import reverse
from postmortems.models import Incident, Status
draft = Incident.objects.filter(status=Status.DRAFT).order_by("pk").first()
client = Client()
client.force_login(draft.owner)
url = reverse("postmortems:edit", args=[draft.pk, "impact"])
revision, saved = draft.revision, 0
while True:
    data = {
        "summary": f"{draft.summary} (typed {saved})",
        "supporting_data": draft.supporting_data,
        "customer_impact": draft.customer_impact,
        "impacted_customers": "" if draft.impacted_customers is None else str(draft.impacted_customers),
        "expected_revision": str(revision),
        "_autosave": "1",
    }
    response = client.post(url, data)
    if response.status_code != 200:
        sys.exit(f"autosave failed: {response.status_code} {response.content[:300]!r}")
    revision, saved = json.loads(response.content)["revision"], saved + 1
    print(saved, flush=True)
    time.sleep(%(seconds)s)
"""


def server_env(database_url: str) -> dict[str, str]:
    return os.environ | {
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": "benchmark-only-secret-key-not-for-production-0123456789abcdef",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
        # As in production (docker-compose.yml): a shared cache holds sessions and cached results.
        "CACHE_URL": os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/3"),
    }


def start_gunicorn(env: dict[str, str], port: int, workers: int) -> subprocess.Popen:
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "config.wsgi",
            f"--bind=127.0.0.1:{port}",
            f"--workers={workers}",
            "--worker-class=sync",
            "--access-logfile=-" if os.environ.get("BENCH_ACCESS_LOG") else "--access-logfile=/dev/null",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        if process.poll() is not None:
            sys.exit(f"gunicorn exited (is port {port} taken? pass --port)")
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1).read()
            return process
        except OSError:
            time.sleep(0.2)
    stop(process)
    sys.exit("gunicorn did not start")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


def sign_in(base: str, username: str, password: str) -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/accounts/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
    request = urllib.request.Request(base + "/accounts/login/", data=data.encode(), headers={"Referer": base})
    opener.open(request).read()
    cookies = {c.name: c.value for c in jar}
    if "sessionid" not in cookies:
        sys.exit(f"could not sign in as {username}")
    return f"sessionid={cookies['sessionid']}"


def pick_pages(env: dict[str, str]) -> list[tuple[str, str, str, dict[str, str]]]:
    """(name, path, text the page must contain, request headers), chosen from the data so that every page
    has results."""
    script = r"""
import json
from django.db import connection
from postmortems.models import Incident
with connection.cursor() as c:
    c.execute('''SELECT t.slug, count(*) FROM taggit_taggeditem ti JOIN taggit_tag t ON t.id = ti.tag_id
                 GROUP BY t.slug ORDER BY count(*) DESC''')
    tags = c.fetchall()
    # Words of the published summaries, where the snippet highlights them.
    c.execute("SELECT word, ndoc FROM ts_stat('SELECT to_tsvector(''english'', summary) "
              "FROM postmortems_incident WHERE status = ''published''') ORDER BY ndoc DESC")
    words = [(w, n) for w, n in c.fetchall() if w.isalpha() and len(w) > 4]
    # The most common word of all the text searched (timeline, factors, action items too).
    c.execute("SELECT word, ndoc FROM ts_stat('SELECT search_vector FROM postmortems_incident') "
              "ORDER BY ndoc DESC LIMIT 20")
    everywhere = [(w, n) for w, n in c.fetchall() if w.isalpha() and len(w) > 4][:1]
incident = Incident.objects.published().filter(visibility="normal").order_by("-incident_date").first()
total = Incident.objects.published().count()
print(json.dumps({"tags": tags, "words": [w for w in words if w[1] <= 0.4 * total][:1]
                  + [w for w in words if 20 <= w[1] <= 200][:1] + everywhere,
                  "detail": [incident.pk, incident.title], "total": total}))
"""
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    facts = json.loads(out.stdout.decode().strip().splitlines()[-1])
    tags = facts["tags"]
    one_tag = tags[len(tags) // 10][0]  # a tag on ~1% of incidents
    three = [slug for slug, _ in tags[:3]]
    (common, common_n), (rare, rare_n), (everywhere, everywhere_n) = facts["words"]
    detail_id, _ = facts["detail"]
    print(
        f"{facts['total']} published incidents; one tag: {one_tag}; three tags: {', '.join(three)}; "
        f"common word: {common} ({common_n} incidents); rare word: {rare} ({rare_n} incidents); "
        f"most common word: {everywhere} ({everywhere_n} incidents)"
    )
    cached = [
        ("list", "/postmortems/", "incident-list"),
        ("one tag", f"/tags/{one_tag}/", "incident-list"),
        (
            "three-tag AND",
            "/postmortems/?" + urllib.parse.urlencode([("tag", t) for t in three]),
            "incident-list",
        ),
        ("rare-word search", f"/postmortems/?q={rare}", "<mark>"),
        ("common-word search", f"/postmortems/?q={common}", "<mark>"),
        ("most-common-word search", f"/postmortems/?q={everywhere}", "incident-list"),
    ]
    # The same searches computed afresh on every request, as a hard reload asks (postmortems/caching.py):
    # what a search nobody has made since the data last changed costs.
    fresh = [(f"{name}, uncached", path, text, NO_CACHE) for name, path, text in cached]
    return [
        ("trivial view (/healthz)", "/healthz", "ok", {}),
        *[(name, path, text, {}) for name, path, text in cached],
        *fresh,
        ("tag index", "/tags/", 'data-testid="count-', {}),
        ("tag index, uncached", "/tags/", 'data-testid="count-', NO_CACHE),
        ("detail", f"/postmortems/{detail_id}/", "in common</div>", {}),
        ("detail, uncached", f"/postmortems/{detail_id}/", "in common</div>", NO_CACHE),
        ("my action items", "/action-items/", 'data-testid="action-item"', {}),
        ("my action items, uncached", "/action-items/", 'data-testid="action-item"', NO_CACHE),
        ("all action items", "/action-items/?scope=all&status=any", 'data-testid="action-item"', {}),
        ("insights (2 years)", "/insights/", 'data-testid="chart-monthly"', {}),
        ("insights (10 years)", "/insights/?from=2015-01-01", 'data-testid="chart-monthly"', {}),
        (
            "insights, one tag",
            f"/insights/?from=2015-01-01&tag={one_tag}",
            'data-testid="chart-monthly"',
            {},
        ),
    ]


def start_writer(env: dict[str, str]) -> subprocess.Popen:
    """Someone writing a draft, in a process of its own (the same database and cache as the server)."""
    writer = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", WRITER % {"seconds": AUTOSAVE_SECONDS}],
        cwd=ROOT,
        env=env | {"ALLOWED_HOSTS": "testserver"},
        stdout=subprocess.PIPE,
        text=True,
    )
    if not writer.stdout.readline():  # its first autosave, before anything is measured
        sys.exit("the writer could not autosave")
    return writer


def stop_writer(writer: subprocess.Popen) -> int:
    """Stop the writer; how many autosaves it made."""
    writer.terminate()
    output, _ = writer.communicate(timeout=20)
    saves = output.split()
    if not saves:
        sys.exit("the writer made no autosave")
    return int(saves[-1])


def paced(base: str, cookie: str, path: str) -> dict:
    """Latency of PACE requests a second, one at a time, for PACED_SECONDS: a person's pace, not a load."""
    took = []
    deadline = time.monotonic() + PACED_SECONDS
    while time.monotonic() < deadline:
        start = time.monotonic()
        with urllib.request.urlopen(
            urllib.request.Request(base + path, headers={"Cookie": cookie})
        ) as response:
            response.read()
        took.append((time.monotonic() - start) * 1000)
        time.sleep(max(0.0, 1 / PACE - (time.monotonic() - start)))
    took.sort()
    return {"n": len(took), "p50": statistics.median(took), "p95": took[round(0.95 * (len(took) - 1))]}


def check(base: str, cookie: str, path: str, must_contain: str, headers: dict[str, str]) -> str | None:
    """Why the page is not what should be measured, or None."""
    request = urllib.request.Request(base + path, headers={"Cookie": cookie, **headers})
    with urllib.request.urlopen(request) as response:
        body = response.read().decode()
        if response.status != 200 or must_contain not in body:
            return f"status {response.status}, {must_contain!r} missing"
    return None


def wrk(base: str, cookie: str, path: str, headers: dict, *, connections: int, seconds: int, threads: int):
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout=10s",
        "-s", str(LUA), "-H", f"Cookie: {cookie}",
        *[arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")], base + path,
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = json.loads(output[output.index("{") :])
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["errors"] = int(errors.group(1)) if errors else 0
    result["errors"] += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--user", default="bench")
    parser.add_argument("--password", default="bench-password")
    parser.add_argument(
        "--only", action="append", default=[], metavar="TEXT", help="measure only pages whose name has TEXT"
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DB
    env = server_env(database_url)
    pages = pick_pages(env)
    if args.only:  # the trivial view stays: the table's ceiling
        pages = pages[:1] + [page for page in pages[1:] if any(text in page[0] for text in args.only)]
    port = args.port or free_port()
    server = start_gunicorn(env, port, args.workers)
    base = f"http://127.0.0.1:{port}"
    rows, paced_rows = [], []
    try:
        cookie = sign_in(base, args.user, args.password)
        for name, path, must_contain, headers in pages:
            problem = check(base, cookie, path, must_contain, headers)
            if problem:
                # Never time an error page; the table says so instead.
                print(f"  NOT measured {name}: {problem}", file=sys.stderr)
                rows.append((name, path, {"rps": 0, "p50": 0, "p95": 0, "errors": -1}))
                continue
            # warm-up
            wrk(base, cookie, path, headers, connections=args.connections, seconds=2, threads=args.threads)
            result = wrk(
                base,
                cookie,
                path,
                headers,
                connections=args.connections,
                seconds=args.seconds,
                threads=args.threads,
            )
            rows.append((name, path, result))
            print(f"  measured {name}", file=sys.stderr)
        for name, path, _must_contain, headers in pages:
            if name not in PACED or headers:
                continue
            alone = paced(base, cookie, path)
            writer = start_writer(env)
            try:
                writing = paced(base, cookie, path)
            finally:
                autosaves = stop_writer(writer)
            paced_rows.append((name, alone, writing, autosaves))
            print(f"  measured {name} at a person's pace", file=sys.stderr)
    finally:
        stop(server)
    ceiling = rows[0][2]["rps"]
    print()
    print(
        f"wrk, {args.connections} connections, {args.seconds} s each; gunicorn {args.workers} sync workers; "
        f"{os.cpu_count()} CPUs"
    )
    # "of trivial": throughput as a share of the trivial view's on the same server, comparable between
    # machines of different speed where the milliseconds are not.
    header = (
        f"| {'page':<34} | {'req/s':>7} | {'of trivial':>10} | {'median ms':>9} | {'p95 ms':>7} "
        f"| {'errors':>6} | target |"
    )
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for name, _path, r in rows:
        if name.startswith("trivial"):
            verdict = "ceiling"
        else:
            ok = r["rps"] > 0 and r["p95"] < TARGET_P95_MS and r["errors"] == 0
            if name.startswith("list"):
                ok = ok and r["rps"] >= ceiling / 10
            verdict = "met" if ok else "MISSED"
        share = f"{r['rps'] / ceiling:.2f}" if ceiling else "—"
        cells = f"{r['rps']:>7.0f} | {share:>10} | {r['p50']:>9.1f} | {r['p95']:>7.1f} | {r['errors']:>6}"
        print(f"| {name:<34} | {cells} | {verdict:<6} |")
    print()
    for name, path, _ in rows:
        if not name.endswith("uncached"):
            print(f"  {name}: {path}")
    print("  uncached: the same path with the header Cache-Control: no-cache")
    if paced_rows:
        print()
        print(
            f"At a person's pace ({PACE} requests a second, one at a time, {PACED_SECONDS} s), alone and "
            f"while another process autosaves a draft every {AUTOSAVE_SECONDS} s through the real view:"
        )
        print("| page | requests | median ms | p95 ms | writing: median ms | writing: p95 ms | autosaves |")
        print("|---|---|---|---|---|---|---|")
        for name, alone, writing, autosaves in paced_rows:
            print(
                f"| {name} | {alone['n']} | {alone['p50']:.1f} | {alone['p95']:.1f} "
                f"| {writing['p50']:.1f} | {writing['p95']:.1f} | {autosaves} |"
            )


if __name__ == "__main__":
    main()
