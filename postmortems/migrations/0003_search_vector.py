"""The stored search vectors (PostgreSQL full-text search, DESIGN.md section 7).

The columns exist on every database; the GIN index and the raised statistics target are PostgreSQL-only,
so this migration applies on SQLite too (where search uses the plain fallback). It fills no vectors: it
must not call live code that later changes; `manage.py reindex_search` (re)builds them all.
"""

import django.contrib.postgres.indexes
import django.contrib.postgres.search
from django.db import migrations


class AddIndexOnPostgres(migrations.AddIndex):
    """AddIndex that touches the database only on PostgreSQL; the state has the index everywhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def raise_statistics_target(apps, schema_editor):
    # With the default target (100) the planner underestimates how rare most words are and walks the
    # date index for a rare word (~40x slower than the GIN index). 1000 keeps 10,000 lexemes in the stats.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE postmortems_incident ALTER COLUMN search_vector SET STATISTICS 1000"
        )


def reset_statistics_target(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE postmortems_incident ALTER COLUMN search_vector SET STATISTICS -1")


class Migration(migrations.Migration):
    dependencies = [
        ("postmortems", "0002_review_workflow"),
        ("taggit", "0006_rename_taggeditem_content_type_object_id_taggit_tagg_content_8fc721_idx"),
    ]

    operations = [
        migrations.AddField(
            model_name="incident",
            name="search_rank_vector",
            field=django.contrib.postgres.search.SearchVectorField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="incident",
            name="search_vector",
            field=django.contrib.postgres.search.SearchVectorField(editable=False, null=True),
        ),
        AddIndexOnPostgres(
            model_name="incident",
            index=django.contrib.postgres.indexes.GinIndex(
                fields=["search_vector"], name="incident_search_vector_idx"
            ),
        ),
        migrations.RunPython(raise_statistics_target, reset_statistics_target, elidable=False),
    ]
