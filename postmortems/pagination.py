"""Pages of long lists whose count stops at a cap: the postmortem list and its searches, /action-items/."""

from django.core.paginator import Paginator
from django.utils.functional import cached_property

# Lists count their rows exactly up to this many; past it they say "more than 1,000".
COUNT_CAP = 1_000


class CappedPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows: an exact count of a common word's matches costs far more
    than the page itself, and nobody pages through a thousand results.

    One query reads the ids of those first COUNT_CAP + 1 rows, in order: it is the count, and every
    page's ids (a capped count makes page COUNT_CAP / per_page + 1 the last one). A page then loads
    only its own rows by id with `load_rows(ids)`, so the expensive filters and the sort run once, on
    ids, and wide rows and headlines are read 20 at a time. Without `load_rows` a page's object list is
    its ids, for the caller to load.
    """

    cap = COUNT_CAP

    def __init__(self, object_list, per_page, *args, load_rows=None, **kwargs):
        super().__init__(object_list, per_page, *args, **kwargs)
        self.load_rows = load_rows

    @cached_property
    def ids(self) -> list[int]:
        return list(self.object_list.values_list("pk", flat=True)[: self.cap + 1])

    @cached_property
    def count(self) -> int:
        return len(self.ids)

    @property
    def is_capped(self) -> bool:
        return self.count > self.cap

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        ids = self.ids[bottom:top]
        if self.load_rows is None:
            return self._get_page(ids, number, self)
        rows = {row.pk: row for row in self.load_rows(ids)} if ids else {}
        return self._get_page([rows[pk] for pk in ids if pk in rows], number, self)
