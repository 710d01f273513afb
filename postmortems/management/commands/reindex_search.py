"""Rebuild every incident's search index entry, e.g. after an upgrade or a bulk change outside the app."""

from django.core.management.base import BaseCommand

from postmortems import search


class Command(BaseCommand):
    help = (
        "Rebuild the stored full-text search index of every incident (PostgreSQL's search vectors, "
        "SQLite's FTS5 table)."
    )

    def handle(self, *args, **options):
        search.update_search_vectors()
        self.stdout.write("Search index rebuilt.")
