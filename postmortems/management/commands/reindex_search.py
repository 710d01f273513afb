"""Rebuild every incident's stored search vectors (PostgreSQL), e.g. after a bulk change outside the app."""

from django.core.management.base import BaseCommand

from postmortems import search


class Command(BaseCommand):
    help = "Rebuild the stored full-text search vectors of every incident (PostgreSQL only)."

    def handle(self, *args, **options):
        if not search.uses_full_text():
            self.stdout.write("This database uses the plain search fallback; there is nothing to rebuild.")
            return
        search.update_search_vectors()
        self.stdout.write("Search vectors rebuilt.")
