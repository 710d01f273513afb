"""Forms of the follow-through pages: updating an action item, filtering /action-items/ and /insights/."""

import datetime as dt

from django import forms
from django.utils import timezone

from accounts.models import Team
from postmortems.followthrough import Scope
from postmortems.models import ActionItemStatus, Priority, Severity


class ActionItemUpdateForm(forms.Form):
    status = forms.ChoiceField(label="Status", choices=ActionItemStatus.choices)
    wont_do_reason = forms.CharField(
        label="Reason it won’t be done",
        required=False,
        max_length=2000,
        help_text="Required for “Won’t do”.",
    )
    backlog_link = forms.URLField(
        label="Backlog link",
        required=False,
        max_length=500,
        assume_scheme="https",
        error_messages={
            "invalid": "Enter the full address of the backlog item, e.g. https://tracker/OPS-12."
        },
    )
    due_date = forms.DateField(
        label="Due",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={
            "invalid": "Enter a date like 2026-03-31.",
            "required": "An action item keeps a due date.",
        },
    )
    next = forms.CharField(required=False, widget=forms.HiddenInput)
    # The item's updated_at when the form was shown: a change made on an older view is refused.
    seen = forms.CharField(
        widget=forms.HiddenInput,
        error_messages={"required": "This form is out of date: reload the page and make the change again."},
    )
    # Set by the view when the item changed since the form was shown (followthrough.ItemChanged).
    conflict = ""

    @classmethod
    def for_item(cls, item, data=None, *, next_url: str = "") -> "ActionItemUpdateForm":
        """The form of one action item, prefixed with its id so that a page can hold one per item."""
        initial = {
            "status": item.status,
            "wont_do_reason": item.wont_do_reason,
            "backlog_link": item.backlog_link,
            "due_date": item.due_date,
            "next": next_url,
            "seen": item.updated_at.isoformat() if item.updated_at else "",
        }
        return cls(data, prefix=f"item-{item.pk}", initial=initial)

    def clean_seen(self):
        try:
            seen = dt.datetime.fromisoformat(self.cleaned_data["seen"])
        except ValueError:
            raise forms.ValidationError("This form is out of date: reload the page.") from None
        return seen if timezone.is_aware(seen) else None

    def clean(self):
        cleaned = super().clean()
        if (
            cleaned.get("status") == ActionItemStatus.WONT_DO
            and not cleaned.get("wont_do_reason", "").strip()
        ):
            self.add_error("wont_do_reason", "Say why it won’t be done: a reason is required.")
        return cleaned


STATUS_FILTERS = [
    ("unfinished", "Open or in progress"),
    *ActionItemStatus.choices,
    ("any", "Any status"),
]


class ActionItemFilterForm(forms.Form):
    scope = forms.ChoiceField(label="Whose", choices=Scope.CHOICES, required=False)
    status = forms.ChoiceField(label="Status", choices=STATUS_FILTERS, required=False)
    priority = forms.ChoiceField(
        label="Priority", choices=[("", "Any priority"), *Priority.choices], required=False
    )
    overdue = forms.BooleanField(label="Overdue only", required=False)

    def clean_scope(self):
        return self.cleaned_data["scope"] or Scope.MINE

    def clean_status(self):
        return self.cleaned_data["status"] or "unfinished"


class InsightsFilterForm(forms.Form):
    date_from = forms.DateField(
        label="From",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": "Enter a date like 2025-01-31."},
    )
    date_to = forms.DateField(
        label="To",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": "Enter a date like 2025-12-31."},
    )
    tag = forms.SlugField(
        label="Tag",
        required=False,
        max_length=100,
        allow_unicode=True,  # taggit's slugs keep accented and non-Latin letters
        error_messages={"invalid": "A tag is one word of letters, digits and dashes, e.g. dns."},
    )
    team = forms.ModelChoiceField(
        label="Team",
        queryset=Team.objects.all(),
        to_field_name="slug",
        required=False,
        empty_label="Any team",
    )
    severity = forms.ChoiceField(
        label="Severity", choices=[("", "Any severity"), *Severity.choices], required=False
    )

    # The period shown when none is chosen: the last two years, to the end of this month.
    DEFAULT_MONTHS = 24

    def __init__(self, data=None, **kwargs):
        # The URL says `from` and `to`, as on the list page.
        if data is not None:
            data = data.copy()
            for short, name in (("from", "date_from"), ("to", "date_to")):
                if short in data and name not in data:
                    data[name] = data[short]
        super().__init__(data, **kwargs)

    # Figures are drawn month by month: a period must stay within years people have incidents in.
    EARLIEST = dt.date(1970, 1, 1)

    def clean(self):
        cleaned = super().clean()
        today = timezone.localdate()
        latest = today.replace(year=today.year + 1, day=1)
        for name in ("date_from", "date_to"):
            value = cleaned.get(name)
            if value is not None and not self.EARLIEST <= value <= latest:
                self.add_error(name, f"Choose a date between {self.EARLIEST:%Y-%m-%d} and {latest:%Y-%m-%d}.")
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end of the period must be after its start.")
            return cleaned
        if end is None and "date_to" not in self.errors:
            cleaned["date_to"] = end = today
        if start is None and "date_from" not in self.errors and end is not None:
            first = end.replace(day=1)
            for _ in range(self.DEFAULT_MONTHS - 1):
                first = (first - dt.timedelta(days=1)).replace(day=1)
            cleaned["date_from"] = first
        return cleaned
