"""Does search find the incident a person remembers? Known-item queries over the public postmortems,
Hindsight's search beside a BM25 baseline (README, "Search, and the benchmark").

    .venv/bin/python bench/relevance.py    # PostgreSQL: on DATABASE_URL's server, hindsight_relevance
    env -u DATABASE_URL .venv/bin/python bench/relevance.py   # SQLite: a temporary file

Sets up its own database (created afresh, migrated, the public postmortems imported with
`manage.py import_postmortems`), then builds queries from each imported record the way a person remembers
an incident, with a fixed seed:

- summary: 2-4 distinctive words of its summary (among its rarest words, links left out, in text order);
- title: 2-4 words of its title (titles such as "Incident on 2012-04-30 …" give none);
- component + symptom: a component (GitHub's components, a Kubernetes story's "involved", a product) and
  a symptom word of its text ("degraded", "outage", "latency" …).

Each query goes through the list view's own code: SearchForm over what a signed-in reader may see,
`form.filter(...)`, and the ids in the order the paginator reads them. The baseline is bm25s (k1 1.2,
b 0.75, English stop words, Snowball stemmer) over the same text the search indexes. A result counts when
it is the remembered incident or one with the very same summary (the collections hold a few duplicates).
Needs the bench extra: `pip install -e ".[bench]"`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
import urllib.parse
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SEED = 14
FILES = ("icco_postmortems.jsonl", "k8s_failure_stories.jsonl", "github_status_sample.jsonl")
_SYMPTOMS_TEXT = """
outage down degraded degradation delayed delays unavailable unavailability errors error failures
failed failing latency slow slowness timeouts timeout interruption unreachable elevated disruption
crash crashed corruption lost loss throttling leak expired broken partial
"""
SYMPTOMS = tuple(_SYMPTOMS_TEXT.split())
# Common English words a person would not remember an incident by (the query words must be the
# incident's own).
_COMMON_TEXT = """
the and for are was were has have had this that with from into over under our we you they their its
been being will would could should can not but all any some more most other such than then them
there these those which while who what when where why how also only just very after before about
again during because between each few both same own out off down further once here incident
incidents issue issues service services users customers
"""
COMMON = set(_COMMON_TEXT.split())


def database_url() -> tuple[str, str]:
    """(DATABASE_URL for this run, what it is), creating the database afresh."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        import psycopg

        parts = urllib.parse.urlsplit(url)
        admin = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS hindsight_relevance")
            conn.execute("CREATE DATABASE hindsight_relevance")
        target = urllib.parse.urlunsplit(parts._replace(path="/hindsight_relevance"))
        return target, f"PostgreSQL ({parts.hostname}:{parts.port or 5432}/hindsight_relevance)"
    folder = tempfile.mkdtemp(prefix="hindsight-relevance-")
    return f"sqlite:///{folder}/relevance.sqlite3", "SQLite (a temporary file)"


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def prose(text: str) -> str:
    """The text a person reads: no link targets or URLs."""
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return re.sub(r"\S*(?:https?://|www\.)\S*|\S+\.(?:com|io|net|org)\S*", " ", text)


def build_queries(records, extras: dict[str, dict], rng: random.Random) -> list[tuple[str, str, str]]:
    """(kind, query, url of the remembered record)."""
    df = Counter()
    for record in records:
        df.update(set(words(record.title + " " + record.summary)))
    queries = []
    for record in records:
        extra = extras[record.url]
        # summary: distinctive words, among the rarest of the summary
        candidates = []
        for word in dict.fromkeys(words(prose(record.summary))):
            if len(word) >= 4 and word not in COMMON:
                candidates.append(word)
        if len(candidates) >= 2:
            rarest = sorted(candidates, key=lambda w: (df[w], w))[:8]
            chosen = set(rng.sample(rarest, min(len(rarest), rng.randint(2, 4))))
            queries.append(("summary", " ".join(w for w in candidates if w in chosen), record.url))
        # title: words of the title
        title_words = [w for w in dict.fromkeys(words(record.title)) if len(w) >= 3 and w not in COMMON]
        if len(title_words) >= 2:
            k = min(len(title_words), rng.randint(2, 4))
            chosen = set(rng.sample(title_words, k))
            queries.append(("title", " ".join(w for w in title_words if w in chosen), record.url))
        # a component and a symptom
        components = extra.get("components") or extra.get("involved") or []
        if isinstance(components, str):
            components = re.findall(r"'([^']+)'", components) or [components]
        if not components and extra.get("product"):
            components = [p.strip() for p in str(extra["product"]).split(",") if p.strip()]
        text = " ".join([record.summary, str(extra.get("impact") or "")]).lower()
        symptoms = [s for s in SYMPTOMS if re.search(rf"\b{s}\b", text)]
        components = [c for c in components if words(c) and not set(words(c)) & set(COMMON)]
        if components and symptoms:
            component = rng.choice(components)
            queries.append(("component + symptom", f"{component.lower()} {rng.choice(symptoms)}", record.url))
    return queries


def indexed_text(record) -> str:
    """What Hindsight indexes of an imported record: title, tags, summary, company, timeline."""
    timeline = " ".join(body for _at, _status, body in record.timeline)
    return " ".join([record.title, " ".join(record.tags), record.summary, record.company, timeline])


def bm25_baseline(records, queries) -> list[list[int]]:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    corpus = bm25s.tokenize(
        [indexed_text(r) for r in records], stopwords="en", stemmer=stemmer, show_progress=False
    )
    retriever = bm25s.BM25(k1=1.2, b=0.75)
    retriever.index(corpus, show_progress=False)
    tokens = bm25s.tokenize(
        [q for _kind, q, _url in queries], stopwords="en", stemmer=stemmer, show_progress=False
    )
    found, scores = retriever.retrieve(tokens, k=10, show_progress=False, n_threads=1)
    # Documents that do not contain a query word score 0: not results.
    return [
        [int(d) for d, s in zip(row, score_row, strict=True) if s > 0]
        for row, score_row in zip(found, scores, strict=True)
    ]


def score(results: list[list[int]], targets: list[set[int]]) -> dict[str, float]:
    n = len(targets)
    at1 = sum(1 for found, good in zip(results, targets, strict=True) if found[:1] and found[0] in good)
    at10 = sum(1 for found, good in zip(results, targets, strict=True) if set(found[:10]) & good)
    rr = 0.0
    for found, good in zip(results, targets, strict=True):
        for rank, doc in enumerate(found[:10], start=1):
            if doc in good:
                rr += 1 / rank
                break
    return {"n": n, "s1": at1 / n, "s10": at10 / n, "mrr": rr / n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="folder of the public postmortems")
    parser.add_argument("--show", type=int, default=0, metavar="N", help="print N queries of each kind")
    parser.add_argument("--misses", action="store_true", help="print every query not found first")
    args = parser.parse_args()
    started = time.monotonic()
    url, where = database_url()
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import User
    from postmortems import search
    from postmortems.forms import SearchForm
    from postmortems.importing import RecordError, parse_record
    from postmortems.models import Incident
    from postmortems.pagination import CappedPaginator

    folder = args.data or Path(settings.PUBLIC_POSTMORTEMS_DIR)
    files = [folder / name for name in FILES]
    if not all(f.exists() for f in files):
        sys.exit(f"public postmortems not found in {folder}")
    call_command("migrate", verbosity=0)
    devnull = open(os.devnull, "w")  # noqa: SIM115
    call_command("import_postmortems", *files, stdout=devnull, stderr=devnull)

    records, seen, extras = [], set(), {}
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = parse_record(line)
            except RecordError:
                continue
            if record.url in seen:
                continue
            seen.add(record.url)
            extras[record.url] = json.loads(line).get("extra") or {}
            records.append(record)
    ids = dict(Incident.objects.values_list("source_url", "pk"))
    records = [r for r in records if r.url in ids]
    same_summary = defaultdict(set)
    for record in records:
        same_summary[" ".join(record.summary.split()).lower()].add(ids[record.url])
    position = {ids[r.url]: i for i, r in enumerate(records)}

    queries = build_queries(records, extras, random.Random(SEED))
    by_url = {r.url: r for r in records}
    targets = [same_summary[" ".join(by_url[u].summary.split()).lower()] for _kind, _query, u in queries]

    reader = User.objects.create_user("relevance-reader", password=None)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE postmortems_incident")  # as autovacuum does after a bulk import

    def first_ten(query: str) -> list[int]:
        """The first page's ids, as IncidentListView finds them (widened when nothing has every word)."""
        form = SearchForm({"q": query})
        form.is_valid()
        visible = Incident.objects.visible_to(reader).published()
        ids = CappedPaginator(form.filter(visible), 20).ids
        if not ids and search.can_widen(form.text):
            ids = CappedPaginator(form.filter(visible, any_word=True), 20).ids
        return ids[:10]

    setup_seconds = time.monotonic() - started
    baseline_positions = bm25_baseline(records, queries)
    baseline = [[ids[records[d].url] for d in row] for row in baseline_positions]
    hindsight = [first_ten(query) for _kind, query, _url in queries]
    search_seconds = time.monotonic() - started - setup_seconds
    baseline_positions = bm25_baseline(records, queries)
    baseline = [[ids[records[d].url] for d in row] for row in baseline_positions]
    assert all(d in position for row in hindsight for d in row)

    kinds = ["summary", "title", "component + symptom"]
    print(
        f"{len(records)} public postmortems, {len(queries)} known-item queries (seed {SEED}); {where}; "
        f"set-up {setup_seconds:.0f} s, searches {search_seconds:.1f} s."
    )
    print()
    print(
        "| queries | N | S@1 Hindsight | S@1 BM25 | S@10 Hindsight | S@10 BM25 "
        "| MRR@10 Hindsight | MRR@10 BM25 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for kind in [*kinds, "all"]:
        pick = [i for i, q in enumerate(queries) if kind == "all" or q[0] == kind]
        ours = score([hindsight[i] for i in pick], [targets[i] for i in pick])
        theirs = score([baseline[i] for i in pick], [targets[i] for i in pick])
        print(
            f"| {kind} | {ours['n']} | {ours['s1']:.3f} | {theirs['s1']:.3f} | {ours['s10']:.3f} | "
            f"{theirs['s10']:.3f} | {ours['mrr']:.3f} | {theirs['mrr']:.3f} |"
        )
        if kind == "all":
            print()
            print(
                f"All queries, Hindsight over BM25: S@1 {ours['s1'] / theirs['s1'] - 1:+.1%}, "
                f"S@10 {ours['s10'] / theirs['s10'] - 1:+.1%}, MRR@10 {ours['mrr'] / theirs['mrr'] - 1:+.1%}"
            )
    if args.misses:
        for i, q in enumerate(queries):
            if not (hindsight[i][:1] and hindsight[i][0] in targets[i]):
                b = [k for k, d in enumerate(baseline[i]) if d in targets[i]]
                h = [k for k, d in enumerate(hindsight[i]) if d in targets[i]]
                top = Incident.objects.filter(pk__in=hindsight[i][:1]).values_list("title", flat=True)
                print(
                    f"MISS {q[0]:12} {q[1]!r:40} ours={h} n={len(hindsight[i])} bm25={b} "
                    f"want={by_url[q[2]].title[:40]!r} got={list(top)[:1]}"
                )
    if args.show:
        for kind in kinds:
            for i in [i for i, q in enumerate(queries) if q[0] == kind][: args.show]:
                hit = "hit" if hindsight[i][:1] and hindsight[i][0] in targets[i] else "miss"
                print(f"  {kind}: {queries[i][1]!r} -> {hit}")


if __name__ == "__main__":
    main()
