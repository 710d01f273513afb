"""Time Hindsight's pages, computed afresh, served by gunicorn, and print a table (README, "Benchmark").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hindsight_bench .venv/bin/python bench/run.py
    .venv/bin/python bench/run.py --before ../hindsight-old    # before and after, in one run

Needs a database filled by bench/generate.py and `wrk` on the PATH (Debian: apt-get install wrk). Signs in
once as the benchmark user. Each page is read at a person's pace (one request at a time) and then under
load (wrk); the targets are p95 at a person's pace, and the list's throughput as a share of the trivial
view's. Each page is checked once (status and content) before it is measured, so a table of fast error
pages cannot happen.
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
# Every page is computed afresh on every request (Hindsight caches no page). A checkout measured with
# --before that still cached pages computes them afresh when asked with this header, so it is always sent.
AFRESH = {"Cache-Control": "no-cache"}
# A person's pace: PACE requests a second, one at a time, for PACED_SECONDS per page.
PACE = 4
PACED_SECONDS = 15
# p95 at a person's pace, per page (issue 13); and the list's throughput at 16 connections, as a share of
# the trivial view's on the same server.
TARGETS_MS = {
    "list": 25,
    "one tag": 35,
    "three-tag AND": 35,
    "rare-word search": 40,
    "common-word search": 80,
    "most-common-word search": 150,
    "three-word search": 60,
    "tag index": 40,
    "detail": 30,
    "my action items": 40,
    "all action items": 40,
    "insights (2 years)": 60,
    "insights (10 years)": 60,
    "insights, one tag": 60,
}
LIST_SHARE_OF_TRIVIAL = 0.10


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
        # As in production (docker-compose.yml): a shared cache, which holds public figures only.
        "CACHE_URL": os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/3"),
    }


def start_gunicorn(env: dict[str, str], port: int, workers: int, root: Path = ROOT) -> subprocess.Popen:
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=root, env=env, check=True
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
        cwd=root,
        env=env | {"PYTHONPATH": str(root)},
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


def pick_pages(env: dict[str, str]) -> list[tuple[str, str, str]]:
    """(name, path, text the page must contain), chosen from the data so that every page has results."""
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
# Three words of one summary, as a person remembers them: one common, two less so.
common = {w for w, n in words[:50]}
three = []
summaries = Incident.objects.published().filter(summary__icontains=words[0][0]).values_list("summary",
                                                                                          flat=True)
for summary in summaries[:200]:
    with connection.cursor() as c:
        c.execute("SELECT lexeme FROM unnest(to_tsvector('english', %s))", [summary])
        mine = [w for (w,) in c.fetchall() if w.isalpha() and len(w) > 4]
    rarer = [w for w in mine if w not in common]
    if words[0][0] in mine and len(rarer) >= 2:
        three = [words[0][0], *sorted(rarer)[:2]]
        break
total = Incident.objects.published().count()
print(json.dumps({"tags": tags, "words": [w for w in words if w[1] <= 0.4 * total][:1]
                  + [w for w in words if 20 <= w[1] <= 200][:1] + everywhere,
                  "detail": [incident.pk, incident.title], "total": total, "three": three}))
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
    # Three words a person might remember of one incident: the common word and two rarer ones.
    three_words = " ".join(facts["three"])
    print(
        f"{facts['total']} published incidents; one tag: {one_tag}; three tags: {', '.join(three)}; "
        f"common word: {common} ({common_n} incidents); rare word: {rare} ({rare_n} incidents); "
        f"most common word: {everywhere} ({everywhere_n} incidents)"
    )
    three_tags = "/postmortems/?" + urllib.parse.urlencode([("tag", t) for t in three])
    return [
        ("trivial view (/healthz)", "/healthz", "ok"),
        ("list", "/postmortems/", "incident-list"),
        ("one tag", f"/tags/{one_tag}/", "incident-list"),
        ("three-tag AND", three_tags, "incident-list"),
        ("rare-word search", f"/postmortems/?q={rare}", "<mark>"),
        ("common-word search", f"/postmortems/?q={common}", "<mark>"),
        ("most-common-word search", f"/postmortems/?q={everywhere}", "incident-list"),
        ("three-word search", "/postmortems/?" + urllib.parse.urlencode({"q": three_words}), "<mark>"),
        ("tag index", "/tags/", 'data-testid="count-'),
        ("detail", f"/postmortems/{detail_id}/", "in common</div>"),
        ("my action items", "/action-items/", 'data-testid="action-item"'),
        ("all action items", "/action-items/?scope=all&status=any", 'data-testid="action-item"'),
        ("insights (2 years)", "/insights/", 'data-testid="chart-monthly"'),
        ("insights (10 years)", "/insights/?from=2015-01-01", 'data-testid="chart-monthly"'),
        ("insights, one tag", f"/insights/?from=2015-01-01&tag={one_tag}", 'data-testid="chart-monthly"'),
    ]


def paced(base: str, cookie: str, path: str) -> dict:
    """Latency of PACE requests a second, one at a time, for PACED_SECONDS: a person's pace, not a load."""
    took = []
    deadline = time.monotonic() + PACED_SECONDS
    request = urllib.request.Request(base + path, headers={"Cookie": cookie, **AFRESH})
    while time.monotonic() < deadline:
        start = time.monotonic()
        with urllib.request.urlopen(request) as response:
            response.read()
        took.append((time.monotonic() - start) * 1000)
        time.sleep(max(0.0, 1 / PACE - (time.monotonic() - start)))
    took.sort()
    return {"n": len(took), "p50": statistics.median(took), "p95": took[round(0.95 * (len(took) - 1))]}


def check(base: str, cookie: str, path: str, must_contain: str) -> str | None:
    """Why the page is not what should be measured, or None."""
    request = urllib.request.Request(base + path, headers={"Cookie": cookie, **AFRESH})
    with urllib.request.urlopen(request) as response:
        body = response.read().decode()
        if response.status != 200 or must_contain not in body:
            return f"status {response.status}, {must_contain!r} missing"
    return None


def wrk(base: str, cookie: str, path: str, *, connections: int, seconds: int, threads: int) -> dict:
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout=10s",
        "-s", str(LUA), "-H", f"Cookie: {cookie}",
        *[arg for name, value in AFRESH.items() for arg in ("-H", f"{name}: {value}")], base + path,
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = json.loads(output[output.index("{") :])
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["errors"] = int(errors.group(1)) if errors else 0
    result["errors"] += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    return result


def measure(root: Path, env: dict[str, str], pages, args) -> dict[str, dict]:
    """Every page of `pages` served by gunicorn from the checkout at `root`: at a person's pace, then
    under wrk. {name: {"paced": …, "load": …}}; a page that is not what it should be is left out."""
    port = free_port()
    server = start_gunicorn(env, port, args.workers, root)
    base = f"http://127.0.0.1:{port}"
    found = {}
    try:
        cookie = sign_in(base, args.user, args.password)
        for name, path, must_contain in pages:
            problem = check(base, cookie, path, must_contain)
            if problem:  # never time an error page; the table says so instead
                print(f"  NOT measured {name} ({root.name}): {problem}", file=sys.stderr)
                continue
            found[name] = {"paced": paced(base, cookie, path)}
            if not args.no_load:
                load = {"connections": args.connections, "threads": args.threads}
                wrk(base, cookie, path, seconds=2, **load)  # warm-up
                found[name]["load"] = wrk(base, cookie, path, seconds=args.seconds, **load)
            print(f"  measured {name} ({root.name})", file=sys.stderr)
    finally:
        stop(server)
    return found


def verdict(name: str, result: dict, ceiling: float) -> str:
    if name.startswith("trivial"):
        return "ceiling"
    target = TARGETS_MS.get(name)
    ok = target is None or result["paced"]["p95"] <= target
    if name == "list" and "load" in result:
        ok = ok and result["load"]["rps"] >= LIST_SHARE_OF_TRIVIAL * ceiling
    if "load" in result:
        ok = ok and result["load"]["errors"] == 0
    return ("met" if ok else "MISSED") if target or name == "list" else "—"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--user", default="bench")
    parser.add_argument("--password", default="bench-password")
    parser.add_argument("--no-load", action="store_true", help="a person's pace only, no wrk")
    parser.add_argument(
        "--before", type=Path, metavar="CHECKOUT", help="also measure another checkout (e.g. a git worktree)"
    )
    parser.add_argument(
        "--only", action="append", default=[], metavar="TEXT", help="measure only pages whose name has TEXT"
    )
    args = parser.parse_args()
    if not args.no_load and not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian: apt-get install wrk); or pass --no-load")
    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DB
    env = server_env(database_url)
    pages = pick_pages(env)
    if args.only:  # the trivial view stays: the table's ceiling
        pages = pages[:1] + [page for page in pages[1:] if any(text in page[0] for text in args.only)]
    before = measure(args.before.resolve(), env, pages, args) if args.before else {}
    after = measure(ROOT, env, pages, args)

    print()
    print(
        f"A person's pace: {PACE} requests a second, one at a time, {PACED_SECONDS} s per page. "
        + ("" if args.no_load else f"Load: wrk, {args.connections} connections, {args.seconds} s per page. ")
        + f"gunicorn {args.workers} sync workers; {os.cpu_count()} CPUs; every request computed afresh."
    )
    ceiling = after.get(pages[0][0], {}).get("load", {}).get("rps", 0)
    before_ceiling = before.get(pages[0][0], {}).get("load", {}).get("rps", 0)
    header = "| page | median ms | p95 ms | target p95 | req/s at load | of trivial | verdict |"
    if before:
        header += " before: median ms | before: p95 ms | before: of trivial |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name, _path, _must in pages:
        if name not in after:
            print(f"| {name} | not measured |")
            continue
        result = after[name]
        load = result.get("load", {})
        share = f"{load['rps'] / ceiling:.2f}" if load and ceiling else "—"
        target = TARGETS_MS.get(name)
        row = (
            f"| {name} | {result['paced']['p50']:.1f} | {result['paced']['p95']:.1f} "
            f"| {f'≤ {target}' if target else '—'} | {load.get('rps', 0):,.0f} | {share} "
            f"| {verdict(name, result, ceiling)} |"
        )
        if before:
            old = before.get(name)
            if old is None:
                row += " not measured | | |"
            else:
                old_load = old.get("load", {})
                old_share = f"{old_load['rps'] / before_ceiling:.2f}" if old_load and before_ceiling else "—"
                row += f" {old['paced']['p50']:.1f} | {old['paced']['p95']:.1f} | {old_share} |"
        print(row)
    print()
    for name, path, _must in pages:
        print(f"  {name}: {path}")


if __name__ == "__main__":
    main()
