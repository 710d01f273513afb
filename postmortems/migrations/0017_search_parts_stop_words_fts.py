"""Search (issue 14): a vector of stop words on PostgreSQL, an FTS5 table on SQLite.

PostgreSQL: the new column and its GIN index, and one of the title, tags and summary; `manage.py reindex_search` fills it and re-indexes the parts
of URLs, hosts and paths (this migration calls no live code that later changes). SQLite: the FTS5 table
that search reads there, filled here from the incidents already saved (the same text as
postmortems.search writes, frozen in this file).
"""

import django.contrib.postgres.indexes
import django.contrib.postgres.search
from django.db import migrations

FTS_CREATE = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS postmortems_incident_fts USING fts5("
    "title, tags, summary, sections, timeline, tokenize = 'porter unicode61 remove_diacritics 2')"
)

FTS_FILL = """
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
"""


class AddIndexOnPostgres(migrations.AddIndex):
    """AddIndex that touches the database only on PostgreSQL; the state has the index everywhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def create_fts_table(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(FTS_CREATE)
        schema_editor.execute(FTS_FILL)


def drop_fts_table(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TABLE IF EXISTS postmortems_incident_fts")


class Migration(migrations.Migration):
    dependencies = [
        ("postmortems", "0016_tags_have_slugs"),
    ]

    operations = [
        migrations.AddField(
            model_name="incident",
            name="search_stop_vector",
            field=django.contrib.postgres.search.SearchVectorField(editable=False, null=True),
        ),
        AddIndexOnPostgres(
            model_name="incident",
            index=django.contrib.postgres.indexes.GinIndex(
                fields=["search_stop_vector"], name="incident_search_stop_idx"
            ),
        ),
        AddIndexOnPostgres(
            model_name="incident",
            index=django.contrib.postgres.indexes.GinIndex(
                fields=["search_rank_vector"], name="incident_search_rank_idx"
            ),
        ),
        migrations.RunPython(create_fts_table, drop_fts_table, elidable=False),
    ]
