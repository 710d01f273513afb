"""Finding past incidents by text (DESIGN.md section 7), the same way on PostgreSQL and SQLite.

The query language is web search's: every word must appear (stemmed: "deploys" finds "deployment"),
`"quoted words"` must appear together, `-word` excludes, `a or b` takes either. Words are split the way
the index splits text: at anything that is neither a letter nor a digit, so `connection-pool`,
`github.com/blog`, `alice@example.com` and `/var/log/syslog` are phrases of their parts, and the parts of
URLs, e-mail addresses, host names and paths are searchable on their own.

PostgreSQL: a stored, weighted `tsvector` (`Incident.search_vector`, GIN-indexed): title and tags weigh A,
the summary B, the other sections, contributing factors and lessons C, the timeline and action items D.
PostgreSQL's parser keeps a URL, host, e-mail address or path as one token, so their parts are indexed
again after the text (`_with_parts`). English stop words ("down", "off", "over") are not in it: a query
of stop words only reads `search_stop_vector` (a `simple`-configuration vector of just those words); in a
query with other words they are not required, the matches that have them rank first, and the page names
them (`ParsedQuery.ignored`).
SQLite: an FTS5 table (`postmortems_incident_fts`, porter stemmer over unicode61 tokens, which split at
the same characters), one column per weight, kept current by the same `update_search_vector` calls.

Ranking (README, "Search, and the benchmark", has the measurements behind it): BM25-like relevance, a
phrase bonus, then the newest first. PostgreSQL: `ts_rank` with the weights above over the title, tags and
summary (`search_rank_vector`, small enough to stay in the row), normalised by document length, times a
rarity factor per query word; SQLite: FTS5's `bm25()` with the same column weights.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank
from django.db import connection
from django.db.models import Case, F, FloatField, QuerySet, Value, When
from django.db.models.expressions import Combinable, RawSQL
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

SEARCH_CONFIG = "english"
# ts_headline and FTS5's snippet() mark matches with these; `highlight` escapes the text, then turns
# them into <mark>.
MARK_START, MARK_STOP = "\x02", "\x03"

# Each part of a postmortem contributes at most this many characters to its search vector. PostgreSQL
# refuses a tsvector over 1 MB, and a long log paste of distinct tokens reaches that: measured, the worst
# text (two- and three-letter words of many distinct letters) makes 4.6 bytes of vector per character,
# so the twelve parts (title, tags, summary, seven sections and lists, timeline, action items) of 16,000
# characters each stay under 1 MB. The whole text is still stored and shown; words past a part's first
# 16,000 characters are just not found by search.
SEARCH_CHARS_PER_PART = 16_000

# The weights of D, C, B and A (ts_rank's order): timeline, sections, summary, title and tags.
WEIGHTS = (0.1, 0.2, 0.4, 1.0)
# ts_rank normalisation: 1 divides the rank by 1 + log(length of the document).
RANK_NORMALIZATION = 1
# How much more a match of the query's words side by side ranks than the same words scattered.
PHRASE_BONUS = 2.0
# How much more a match ranks that also has the common words the query left out ("pages down").
STOP_WORD_BONUS = 2.0
# PostgreSQL ranks every match of a query up to this many; past that, this many with the words in the
# title, tags or summary and this many with them anywhere (`_postgres_search`). The count's cap + 1.
RANK_CANDIDATES = 1001

FTS_TABLE = "postmortems_incident_fts"
# FTS5 columns, in the order bm25() takes their weights.
FTS_COLUMNS = ("title", "tags", "summary", "sections", "timeline")
FTS_WEIGHTS = (WEIGHTS[3], WEIGHTS[3], WEIGHTS[2], WEIGHTS[1], WEIGHTS[0])

# PostgreSQL's English stop words (share/tsearch_data/english.stop): its `english` configuration drops
# them from text and queries alike.
_ENGLISH_STOP = """
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her
hers herself it its itself they them their theirs themselves what which who whom this that these
those am is are was were be been being have has had having do does did doing a an the and but if or
because as until while of at by for with about against between into through during before after
above below to from up down in out on off over under again further then once here there when where
why how all any both each few more most other some such no nor not only own same so than too very s
t can will just don should now
"""
STOP_WORDS = frozenset(_ENGLISH_STOP.split())


# --- keeping the index current --------------------------------------------------------------------

# Tokens PostgreSQL's parser keeps whole (URLs, hosts, e-mail addresses, paths, dotted names) or splits
# its own way ("HTTP-500" into "http" and "-500"): each is indexed again as its parts, after the text, so
# that "blog" finds github.com/blog/1111 and "http 500" finds HTTP-500.
_PART_TOKEN = (
    r"([^[:space:]]*[[:alnum:]](?:[/@.:]|-[[:digit:]])[^[:space:]]*[[:alnum:]]|/[^[:space:]]*[[:alnum:]])"
)


def _with_parts(sql: str) -> str:
    return (
        f"concat_ws(' ', {sql}, (SELECT string_agg(regexp_replace(m[1], '[^[:alnum:]]+', ' ', 'g'), ' ') "
        f"FROM regexp_matches({sql}, '{_PART_TOKEN}', 'g') AS m))"
    )


_TEXTS_SQL = """
  SELECT x.id,
    concat_ws(' ', left(x.title, {limit}), left((
      SELECT string_agg(tg.name, ' ')
      FROM taggit_taggeditem ti
      JOIN taggit_tag tg ON tg.id = ti.tag_id
      JOIN django_content_type ct ON ct.id = ti.content_type_id
      WHERE ti.object_id = x.id AND ct.app_label = 'postmortems' AND ct.model = 'incident'
    ), {limit})) AS head,
    left(x.summary, {limit}) AS summary,
    concat_ws(' ',
      left(x.company, {limit}), left(x.supporting_data, {limit}), left(x.customer_impact, {limit}),
      left(x.response_analysis, {limit}), left(x.post_incident_analysis, {limit}),
      left((SELECT string_agg(f.description, ' ') FROM postmortems_contributingfactor f
            WHERE f.incident_id = x.id), {limit}),
      left((SELECT string_agg(l.text, ' ') FROM postmortems_lesson l WHERE l.incident_id = x.id), {limit})
    ) AS sections,
    concat_ws(' ',
      left((SELECT string_agg(e.description, ' ') FROM postmortems_timelineevent e
            WHERE e.incident_id = x.id), {limit}),
      left((SELECT string_agg(a.title, ' ') FROM postmortems_actionitem a
            WHERE a.incident_id = x.id), {limit})
    ) AS timeline
  FROM postmortems_incident x
  {where}
"""

_UPDATE_SQL = """
UPDATE postmortems_incident AS i
SET search_rank_vector = v.a || v.b,
    search_vector = v.a || v.b || v.c || v.d,
    search_stop_vector = v.stop
FROM (
  SELECT t.id,
    setweight(to_tsvector('{config}', {head}), 'A') AS a,
    setweight(to_tsvector('{config}', {summary}), 'B') AS b,
    setweight(to_tsvector('{config}', {sections}), 'C') AS c,
    setweight(to_tsvector('{config}', {timeline}), 'D') AS d,
    array_to_tsvector(ARRAY(
      SELECT DISTINCT s.lexeme
      FROM unnest(to_tsvector('simple', concat_ws(' ', t.head, t.summary, t.sections, t.timeline))) AS s
      WHERE s.lexeme = ANY('{stop}'::text[])
    )) AS stop
  FROM ({texts}) AS t
) AS v
WHERE v.id = i.id
"""


def update_search_vectors_sql(where: str = "") -> str:
    """The UPDATE that recomputes stored search vectors (all rows, or those `where` selects on `x`)."""
    return _UPDATE_SQL.format(
        config=SEARCH_CONFIG,
        head=_with_parts("t.head"),
        summary=_with_parts("t.summary"),
        sections=_with_parts("t.sections"),
        timeline=_with_parts("t.timeline"),
        stop="{" + ",".join(sorted(STOP_WORDS)) + "}",
        texts=_TEXTS_SQL.format(where=where, limit=SEARCH_CHARS_PER_PART),
    )


# SQLite has no string_agg, concat_ws or regexp: the same texts, in its words.
_FTS_TEXTS_SQL = """
INSERT INTO postmortems_incident_fts (rowid, title, tags, summary, sections, timeline)
SELECT x.id, x.title,
  coalesce((
    SELECT group_concat(tg.name, ' ')
    FROM taggit_taggeditem ti
    JOIN taggit_tag tg ON tg.id = ti.tag_id
    JOIN django_content_type ct ON ct.id = ti.content_type_id
    WHERE ti.object_id = x.id AND ct.app_label = 'postmortems' AND ct.model = 'incident'
  ), ''),
  x.summary,
  x.company || ' ' || x.supporting_data || ' ' || x.customer_impact || ' ' || x.response_analysis || ' '
    || x.post_incident_analysis || ' '
    || coalesce((SELECT group_concat(f.description, ' ') FROM postmortems_contributingfactor f
                 WHERE f.incident_id = x.id), '') || ' '
    || coalesce((SELECT group_concat(l.text, ' ') FROM postmortems_lesson l WHERE l.incident_id = x.id), ''),
  coalesce((SELECT group_concat(e.description, ' ') FROM postmortems_timelineevent e
            WHERE e.incident_id = x.id), '') || ' '
    || coalesce((SELECT group_concat(a.title, ' ') FROM postmortems_actionitem a
                 WHERE a.incident_id = x.id), '')
FROM postmortems_incident x
{where}
"""


def update_search_vector(incident_id: int) -> None:
    """Recompute one incident's search index entry from it, its child rows and tags.

    Call it after every save of an incident, its tags, or its timeline events, contributing factors,
    lessons or action items, in the same transaction (the importer, seed_demo, the admin and the
    authoring forms do). PostgreSQL: one UPDATE; SQLite: a DELETE and an INSERT of its FTS5 row.
    """
    update_search_vectors([incident_id])


def update_search_vectors(incident_ids: Iterable[int] | None = None) -> None:
    """Recompute the search index entries of many incidents (all when `None`)."""
    ids = None if incident_ids is None else list(incident_ids)
    if ids is not None and not ids:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if ids is None:
                cursor.execute(update_search_vectors_sql())
            else:
                cursor.execute(update_search_vectors_sql("WHERE x.id = ANY(%s)"), [ids])
        elif connection.vendor == "sqlite":
            if ids is None:
                cursor.execute(f"DELETE FROM {FTS_TABLE}")
                cursor.execute(_FTS_TEXTS_SQL.format(where=""))
                return
            for low in range(0, len(ids), 500):  # SQLite's limit on parameters
                chunk = ids[low : low + 500]
                marks = ", ".join(["%s"] * len(chunk))
                cursor.execute(f"DELETE FROM {FTS_TABLE} WHERE rowid IN ({marks})", chunk)
                cursor.execute(_FTS_TEXTS_SQL.format(where=f"WHERE x.id IN ({marks})"), chunk)


# --- the query language ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    words: tuple[str, ...]  # one word, or the words of a quoted phrase (or of `github.com/blog`)
    exclude: bool = False
    quoted: bool = False

    @property
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def is_stop(self) -> bool:
        return all(word.lower() in STOP_WORDS for word in self.words)


_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
# Index and query split text alike: at anything that is neither a letter nor a digit.
_WORD = re.compile(r"[^\W_]+")


def parse_terms(text: str) -> list[list[Term]]:
    """Web-search syntax as groups ANDed together, each group a list of Terms ORed (`a or b`)."""
    groups: list[list[Term]] = []
    join_next = False
    for match in _TOKEN.finditer(text):
        negate, phrase, word = match.groups()
        if word is not None:
            if word.lower() == "or" and groups:
                join_next = True
                continue
            negate = "-" if word.startswith("-") and len(word) > 1 else ""
            words = tuple(_WORD.findall(word))
        else:
            words = tuple(_WORD.findall(phrase))
        if not words:
            continue
        term = Term(words=words, exclude=bool(negate), quoted=phrase is not None)
        if join_next and not term.exclude and not groups[-1][0].exclude:
            groups[-1].append(term)
        else:
            groups.append([term])
        join_next = False
    return groups


@dataclass
class ParsedQuery:
    """A query as the database will run it: the groups it needs (ANDed), what it excludes, and the stop
    words it leaves out (PostgreSQL only; `stop_words_only` when nothing else is left)."""

    groups: list[list[Term]] = field(default_factory=list)
    excluded: list[Term] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    # Stop words left out of what must match; on PostgreSQL the matches that have them rank higher.
    ignored_terms: list[Term] = field(default_factory=list)
    stop_words_only: bool = False

    @property
    def is_empty(self) -> bool:
        return not self.groups and not self.excluded

    @property
    def phrase(self) -> tuple[str, ...]:
        """The words of an unquoted query of two words or more, which rank higher side by side."""
        if len(self.groups) < 2 or any(len(g) > 1 or g[0].quoted for g in self.groups):
            return ()
        return tuple(word for group in self.groups for word in group[0].words)


def parse_query(text: str, *, drops_stop_words: bool | None = None) -> ParsedQuery:
    """`text` parsed for the database in use; on PostgreSQL stop words outside quotes are ignored
    (listed in `ignored`) unless the query has nothing else, then only they are looked for."""
    if drops_stop_words is None:
        drops_stop_words = uses_full_text()
    parsed = ParsedQuery()
    for group in parse_terms(text or ""):
        if group[0].exclude:
            for term in group:
                if drops_stop_words and term.is_stop:
                    parsed.ignored.append("-" + term.text)
                else:
                    parsed.excluded.append(term)
        else:
            parsed.groups.append(group)
    if drops_stop_words and parsed.groups:
        kept = [group for group in parsed.groups if not all(term.is_stop for term in group)]
        if kept:
            for group in parsed.groups:
                if group not in kept:
                    parsed.ignored.extend(term.text for term in group)
                    parsed.ignored_terms.extend(group)
            parsed.groups = kept
        else:
            parsed.stop_words_only = True
    return parsed


def ignored_words(text: str) -> list[str]:
    """The words of `text` that the search leaves out (common English words, next to other words)."""
    return parse_query(text).ignored


# --- searching -------------------------------------------------------------------------------------


def uses_full_text() -> bool:
    return connection.vendor == "postgresql"


def search(queryset: QuerySet, text: str, *, any_word: bool = False) -> QuerySet:
    """Incidents of `queryset` matching `text`, best first (then newest first). With `any_word`, an
    incident needs only one of the query's words (or phrases), and ranks higher the more it has: for a
    query that nothing matches whole."""
    parsed = parse_query((text or "").strip())
    if parsed.is_empty:
        return queryset
    if connection.vendor == "postgresql":
        return _postgres_search(queryset, parsed, any_word=any_word)
    return _sqlite_search(queryset, parsed, any_word=any_word)


def can_widen(text: str) -> bool:
    """Whether `any_word` would find more for `text` (it has two words or phrases that must match)."""
    return len(parse_query((text or "").strip()).groups) > 1


def _term_query(term: Term, config: str = SEARCH_CONFIG) -> SearchQuery:
    return SearchQuery(term.text, config=config, search_type="phrase")


def _any_of(terms: list[Term], config: str = SEARCH_CONFIG) -> SearchQuery:
    query = _term_query(terms[0], config)
    for term in terms[1:]:
        query |= _term_query(term, config)
    return query


def _all_of(terms: list[Term], config: str = SEARCH_CONFIG) -> SearchQuery:
    query = _term_query(terms[0], config)
    for term in terms[1:]:
        query &= _term_query(term, config)
    return query


def _postgres_query(parsed: ParsedQuery, *, any_word: bool = False) -> SearchQuery | None:
    """What `search_vector` must match (None: only exclusions, or stop words only)."""
    if parsed.stop_words_only or not parsed.groups:
        return None
    query = _any_of(parsed.groups[0])
    for group in parsed.groups[1:]:
        if any_word:
            query |= _any_of(group)
        else:
            query &= _any_of(group)
    return query


def _excluded_query(parsed: ParsedQuery) -> SearchQuery | None:
    return _any_of(parsed.excluded) if parsed.excluded else None


def _stop_query(parsed: ParsedQuery) -> SearchQuery:
    query = _any_of(parsed.groups[0], "simple")
    for group in parsed.groups[1:]:
        query &= _any_of(group, "simple")
    return query


def _postgres_search(queryset: QuerySet, parsed: ParsedQuery, *, any_word: bool = False) -> QuerySet:
    query = _postgres_query(parsed, any_word=any_word)
    excluded = _excluded_query(parsed)
    if excluded is not None:
        queryset = queryset.exclude(search_vector=excluded)
    if query is None:
        if parsed.stop_words_only:
            queryset = queryset.filter(search_stop_vector=_stop_query(parsed))
        return queryset.order_by("-incident_date", "-id")
    # Every match is ranked when there are at most RANK_CANDIDATES; past that, the first RANK_CANDIDATES
    # found with the words in the title, tags or summary and the first found anywhere (index order).
    in_head = queryset.filter(search_rank_vector=query).order_by().values("pk")[:RANK_CANDIDATES]
    anywhere = queryset.filter(search_vector=query).order_by().values("pk")[:RANK_CANDIDATES]
    matches = queryset.filter(pk__in=in_head.union(anywhere))
    rank = _relevance(parsed)
    if parsed.phrase:
        phrase = SearchQuery(" ".join(parsed.phrase), config=SEARCH_CONFIG, search_type="phrase")
        rank = rank * Case(
            When(search_rank_vector=phrase, then=Value(PHRASE_BONUS)),
            default=Value(1.0),
            output_field=FloatField(),
        )
    if parsed.ignored_terms:
        rank = rank * Case(
            When(search_stop_vector=_all_of(parsed.ignored_terms, "simple"), then=Value(STOP_WORD_BONUS)),
            default=Value(1.0),
            output_field=FloatField(),
        )
    return matches.annotate(rank=rank).order_by("-rank", "-incident_date", "-id")


# A word's rarity, BM25's inverse document frequency, from the share of incidents that have it as
# PostgreSQL's statistics of `search_vector` keep it (its 10,000 most common words, refreshed by ANALYZE);
# a word not among them is rare, and counts as in RARE_SHARE of the incidents.
RARE_SHARE = 0.001
_IDF_SQL = f"""
ln(1 + 1 / greatest({RARE_SHARE}, coalesce((
  SELECT max(m.share)
  FROM pg_stats AS s, unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) AS m(word, share)
  WHERE s.schemaname = current_schema() AND s.tablename = 'postmortems_incident'
    AND s.attname = 'search_vector' AND m.word = ANY(tsvector_to_array(to_tsvector('{SEARCH_CONFIG}', %s)))
), 0)))
"""


def _relevance(parsed: ParsedQuery) -> Combinable:
    """The sum, over the query's words (or phrases, or `or` groups), of its ts_rank (weights, length
    normalisation) times its rarity: BM25's shape, from what the vector and the statistics hold."""
    rank = None
    for group in parsed.groups:
        part = SearchRank(
            F("search_rank_vector"),
            _any_of(group),
            weights=list(WEIGHTS),
            normalization=Value(RANK_NORMALIZATION),
        ) * RawSQL(_IDF_SQL, [" ".join(term.text for term in group)], output_field=FloatField())
        rank = part if rank is None else rank + part
    return rank


def _fts_phrase(words: Iterable[str]) -> str:
    return '"' + " ".join(words) + '"'  # words hold letters and digits only


def _fts_any_of(terms: list[Term]) -> str:
    parts = [_fts_phrase(term.words) for term in terms]
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def fts_match(parsed: ParsedQuery, *, any_word: bool = False) -> str:
    """The FTS5 MATCH expression of what must be there (exclusions are applied apart)."""
    return (" OR " if any_word else " AND ").join(_fts_any_of(group) for group in parsed.groups)


def _fts_rowids(expression: str) -> RawSQL:
    return RawSQL(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s", [expression])


def _sqlite_search(queryset: QuerySet, parsed: ParsedQuery, *, any_word: bool = False) -> QuerySet:
    if parsed.excluded:
        queryset = queryset.exclude(pk__in=_fts_rowids(_fts_any_of(parsed.excluded)))
    if not parsed.groups:
        return queryset.order_by("-incident_date", "-id")
    expression = fts_match(parsed, any_word=any_word)
    weights = ", ".join(str(w) for w in FTS_WEIGHTS)
    # bm25() is lower for better matches: negated, so that both databases sort the rank descending.
    rank = RawSQL(
        f"SELECT -bm25({FTS_TABLE}, {weights}) FROM {FTS_TABLE} "
        f"WHERE {FTS_TABLE} MATCH %s AND rowid = postmortems_incident.id",
        [expression],
        output_field=FloatField(),
    )
    if parsed.phrase:
        rank = rank * Case(
            When(pk__in=_fts_rowids(_fts_phrase(parsed.phrase)), then=Value(PHRASE_BONUS)),
            default=Value(1.0),
            output_field=FloatField(),
        )
    return (
        queryset.filter(pk__in=_fts_rowids(expression))
        .annotate(rank=rank)
        .order_by("-rank", "-incident_date", "-id")
    )


# --- snippets --------------------------------------------------------------------------------------


def with_headline(queryset: QuerySet, text: str) -> QuerySet:
    """`queryset` annotated with `headline`, the marked snippet of its summary around `text`'s matches.
    Costly: ask for it on the rows a page shows, not on every match."""
    parsed = parse_query((text or "").strip())
    if not parsed.groups:
        return queryset
    if connection.vendor == "postgresql":
        if parsed.stop_words_only:
            query, config = _stop_query(parsed), "simple"
        else:
            query, config = _postgres_query(parsed), SEARCH_CONFIG
        return queryset.annotate(
            headline=SearchHeadline(
                "summary",
                query,
                config=config,
                start_sel=MARK_START,
                stop_sel=MARK_STOP,
                max_words=40,
                min_words=15,
                max_fragments=2,
                fragment_delimiter=" … ",
            )
        )
    return queryset.annotate(
        headline=RawSQL(
            f"SELECT snippet({FTS_TABLE}, {FTS_COLUMNS.index('summary')}, %s, %s, ' … ', 40) "
            f"FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s AND rowid = postmortems_incident.id",
            [MARK_START, MARK_STOP, fts_match(parsed, any_word=True)],
        )
    )


_MARKDOWN = [
    (re.compile(r"!?\[([^\]]*)\]\([^)\s]*\)?"), r"\1"),  # links and images: their text
    (re.compile(r"</?[A-Za-z][^>]*>"), " "),  # HTML tags
    (re.compile(r"^\s{0,3}(?:#{1,6}|>|[-*+]|\d+[.)])\s+", re.MULTILINE), ""),  # headings, quotes, lists
    (re.compile(r"^\s*\|?(?:\s*:?-{3,}:?\s*\|?)+\s*$", re.MULTILINE), " "),  # table rules
    (re.compile(r"`+|\*+|~~|(?<![^\W_])_+|_+(?![^\W_])|\|"), ""),  # code, emphasis, table pipes
    (re.compile(r"\s+"), " "),
]


def plain_text(markdown: str) -> str:
    """Markdown without its syntax, as a snippet shows it (the markers of matches are kept)."""
    text = markdown or ""
    for pattern, replacement in _MARKDOWN:
        text = pattern.sub(replacement, text)
    return text.strip()


def highlight(snippet: str) -> SafeString:
    """A marked snippet as plain text: Markdown syntax gone, escaped, its matches shown as <mark>."""
    html = escape(plain_text(snippet)).replace(MARK_START, "<mark>").replace(MARK_STOP, "</mark>")
    return mark_safe(html)  # escaped above; only our own markers become tags
