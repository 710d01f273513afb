"""The forms: one form (or formset) per step of the postmortem template (DESIGN.md section 1), the review
workflow's actions, and the search of the list, read from its query string.

Times are typed as wall-clock times in a named zone and stored aware; every error lands next to its field.
Choice lists that every row of a formset shares are read from the database once per formset.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.forms.fields import BaseTemporalField
from django.forms.models import BaseInlineFormSet, inlineformset_factory
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.functional import cached_property
from django.utils.text import slugify
from markdownx.widgets import MarkdownxWidget
from taggit.forms import TagField, TagWidget
from taggit.models import Tag

from accounts.models import ARCHIVE_USERNAME, Team, validate_time_zone
from postmortems.models import (
    ActionItem,
    ActionItemStatus,
    ContributingFactor,
    Incident,
    Lesson,
    Section,
    Severity,
    TimelineEvent,
)

WALL_CLOCK_FORMAT = "%Y-%m-%dT%H:%M"
MAX_EXTRA_ROWS = 20
URL_MESSAGE = "Enter a full link, like https://grafana.example.com/d/abc."


class WallClockField(forms.DateTimeField):
    """A date and time as typed into a datetime-local input, left naive: the form knows its zone.

    A time typed with an explicit offset ("2026-03-04T10:00+05:00") already names its instant and stays aware.
    """

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format=WALL_CLOCK_FORMAT)
    default_error_messages = {
        "invalid": "Enter a date and time like 2026-03-04 14:05 (year 1 to 9999).",
        "overflow": "This time is outside the calendar this app can store (years 1 to 9999).",
    }
    zone: zoneinfo.ZoneInfo | None = None  # the zone stored values are shown in

    def prepare_value(self, value):
        if isinstance(value, dt.datetime) and timezone.is_aware(value):
            try:
                return timezone.make_naive(value, self.zone or dt.UTC)
            except OverflowError:  # e.g. 0001-01-01 00:00 UTC shown in a zone behind UTC
                return timezone.make_naive(value, dt.UTC)
        return value

    def has_changed(self, initial, data):
        """Compare like with like: a stored (aware) time against the wall clock it is shown as."""
        if self.disabled:
            return False
        try:
            value = self.to_python(data)
        except ValidationError:
            return True
        if isinstance(initial, dt.datetime) and timezone.is_aware(initial):
            if value is not None and timezone.is_aware(value):
                return value != initial
            initial = self.prepare_value(initial)
        return initial != value

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, dt.datetime):
            parsed = value
        else:
            try:
                parsed = parse_datetime(str(value).strip())
            except ValueError:
                parsed = None
            if parsed is None:
                # The format list of DATETIME_INPUT_FORMATS; raises "invalid" for anything else.
                parsed = BaseTemporalField.to_python(self, value)
        if timezone.is_naive(parsed):
            return parsed
        try:
            parsed.astimezone(dt.UTC)
        except OverflowError:
            raise ValidationError(self.error_messages["overflow"], code="overflow") from None
        return check_showable(parsed)


TAG_MAX_LENGTH = 50


class TagsField(TagField):
    """Comma-separated tags, each with a letter or digit (its slug names the tag's page, so a tag of only
    punctuation or emoji would have none) and at most TAG_MAX_LENGTH characters (the database holds 100,
    and a slug made unique gets a suffix)."""

    def clean(self, value):
        tags = super().clean(value)
        for tag in tags:
            if len(tag) > TAG_MAX_LENGTH:
                raise ValidationError(
                    f"“{tag[:40]}…” is {len(tag)} characters long; a tag has at most {TAG_MAX_LENGTH}.",
                    code="tag_too_long",
                )
            if not Tag().slugify(tag):
                raise ValidationError(
                    f"“{tag}” has no letter or digit; a tag needs at least one, as it names the tag's page.",
                    code="tag_without_slug",
                )
        return tags


class TimeZoneField(forms.CharField):
    """A zone name such as Europe/Berlin, typed with suggestions from the page's `time-zones` datalist."""

    default_validators = [validate_time_zone]

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault(
            "widget",
            forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off", "spellcheck": "false"}),
        )
        super().__init__(**kwargs)


# Every zone can show an instant between these (zones lie within a day of UTC); nearer the calendar's edges,
# years 1 and 9999, a reader in some zone could not be shown it.
SHOWABLE_FROM = dt.datetime(1, 1, 2, tzinfo=dt.UTC)
SHOWABLE_UNTIL = dt.datetime(9999, 12, 30, 23, 59, tzinfo=dt.UTC)


def check_showable(aware: dt.datetime) -> dt.datetime:
    """Refuse a time at the very edge of the calendar, which some time zones cannot show."""
    if not SHOWABLE_FROM <= aware <= SHOWABLE_UNTIL:
        raise ValidationError(
            f"{aware:%Y-%m-%d %H:%M} is too close to the edge of the calendar (years 1 and 9999) to be shown "
            "in every time zone. Check the year.",
            code="unshowable",
        )
    return aware


def attach_zone(wall_clock: dt.datetime, zone_name: str) -> dt.datetime:
    """The aware time a wall-clock reading in `zone_name` means; refuses times DST skips or repeats."""
    zone = zoneinfo.ZoneInfo(zone_name)
    aware = wall_clock.replace(tzinfo=zone)
    try:
        round_trip = aware.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None)
    except OverflowError:
        raise ValidationError(
            f"{wall_clock:%Y-%m-%d %H:%M} in {zone_name} falls outside the calendar this app can store "
            "(years 1 to 9999 in UTC). Check the year."
        ) from None
    if round_trip != wall_clock:
        raise ValidationError(
            f"{wall_clock:%Y-%m-%d %H:%M} does not exist in {zone_name}: the clocks skipped it. "
            "Check the time, or write it in UTC."
        )
    if aware.utcoffset() != aware.replace(fold=1).utcoffset():
        raise ValidationError(
            f"{wall_clock:%Y-%m-%d %H:%M} happened twice in {zone_name} (the clocks went back). "
            "Write it in UTC so it is unambiguous."
        )
    return check_showable(aware)


def _markdown_attrs(rows: int = 8) -> dict[str, str]:
    return {"rows": str(rows), "data-autosave": "on", "class": "form-control font-monospace"}


class MarkdownEditor(MarkdownxWidget):
    """markdownx's editor whose pasted and dropped images are uploaded into the postmortem being written
    (markdownx itself writes one upload address, from settings, into every editor)."""

    def __init__(self, *, incident: Incident, attrs=None):
        super().__init__(attrs=attrs)
        self.upload_url = reverse("postmortems:upload", args=[incident.pk])

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["widget"]["attrs"]["data-markdownx-upload-urls-path"] = self.upload_url
        return context


def _markdown_editors(form: forms.ModelForm, names, *, rows: int = 8) -> None:
    for name in names:
        form.fields[name].widget = MarkdownEditor(incident=form.instance, attrs=_markdown_attrs(rows))


def _checkbox_list() -> forms.CheckboxSelectMultiple:
    return forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"})


def _people():
    """Everyone who may be picked for a postmortem: active people, never the public archive's pseudo-user."""
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .exclude(username=ARCHIVE_USERNAME)
        .order_by("display_name", "username")
    )


def search_people(text: str, *, limit: int = 20):
    """Active people whose name, username, e-mail or team contains `text`, for the people picker."""
    text = text.strip()[:100]
    if not text:
        return _people().none()
    matches = (
        Q(username__icontains=text)
        | Q(display_name__icontains=text)
        | Q(first_name__icontains=text)
        | Q(last_name__icontains=text)
        | Q(email__icontains=text)
    )
    in_team = Team.members.through.objects.filter(user_id=OuterRef("pk"), team__name__icontains=text)
    return _people().filter(matches | Exists(in_team))[:limit]


def _tokens(value) -> list[str]:
    """Usernames (or ids) as posted: one "alice, bob" field, several values, or a list of ids."""
    if value in (None, ""):
        return []
    values = value if isinstance(value, list | tuple) else [value]
    return [token.strip() for item in values for token in str(item).split(",") if token.strip()]


class PeopleInput(forms.TextInput):
    """A plain text field of usernames ("alice, bob"), which static/js/people_picker.js turns into a
    type-ahead over /postmortems/people.json; without JavaScript, typing usernames works as it is."""

    def __init__(self, *, multiple: bool = False, attrs=None):
        self.multiple = multiple
        defaults = {
            "autocomplete": "off",
            "spellcheck": "false",
            "data-people-picker": "many" if multiple else "one",
        }
        super().__init__(attrs=defaults | (attrs or {}))

    def value_from_datadict(self, data, files, name):
        if self.multiple:
            return _tokens(data.getlist(name) if hasattr(data, "getlist") else data.get(name))
        return data.get(name)

    def format_value(self, value):
        """Stored values arrive as ids (or people) and are shown as usernames; typed text stays as typed."""
        values = value if isinstance(value, list | tuple) else [value]
        ids = [getattr(v, "pk", v) for v in values if isinstance(v, int) or hasattr(v, "pk")]
        names = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username")) if ids else {}
        shown = []
        for v in values:
            if hasattr(v, "username"):
                shown.append(v.username)
            elif isinstance(v, int):
                shown.append(names.get(v, str(v)))
            else:
                shown.extend(_tokens(v))
        if not shown:
            return None
        return ", ".join(shown) + (", " if self.multiple else "")


def _find_people(queryset, tokens: list[str]) -> tuple[dict[str, object], list[str]]:
    ids = [int(token) for token in tokens if token.isascii() and token.isdigit()]
    found = queryset.filter(Q(username__in=tokens) | Q(pk__in=ids))
    people = list(found)
    by_token = {person.username: person for person in people}
    for person in people:  # a username wins over an id that reads the same
        by_token.setdefault(str(person.pk), person)
    return by_token, [token for token in tokens if token not in by_token]


def _unknown(missing: list[str]) -> ValidationError:
    names = ", ".join(f"“{token}”" for token in missing)
    return ValidationError(
        f"No active person with the username {names}. "
        "Type part of a name, username, e-mail or team to find them."
    )


class PersonField(forms.ModelChoiceField):
    """One person, typed as a username (an id is accepted too, as the form posted before the picker)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("queryset", _people())
        kwargs.setdefault("widget", PeopleInput())
        super().__init__(**kwargs)

    def to_python(self, value):
        tokens = _tokens(value)
        if not tokens:
            return None
        found, missing = _find_people(self.queryset, tokens[:1])
        if missing:
            raise _unknown(missing)
        return found[tokens[0]]


class PeopleField(forms.ModelMultipleChoiceField):
    """Several people, typed as usernames separated by commas."""

    def __init__(self, **kwargs):
        kwargs.setdefault("queryset", _people())
        kwargs.setdefault("widget", PeopleInput(multiple=True))
        super().__init__(**kwargs)

    def _check_values(self, value):
        tokens = list(dict.fromkeys(_tokens(value)))
        found, missing = _find_people(self.queryset, tokens)
        if missing:
            raise _unknown(missing)
        return self.queryset.filter(pk__in={person.pk for person in found.values()})

    def has_changed(self, initial, data):
        try:
            chosen = {str(person.pk) for person in self._check_values(data)}
        except ValidationError:
            return True
        return chosen != {str(v) for v in self.prepare_value(initial or [])}


def may_change_owner(incident: Incident, user) -> bool:
    """Only the owner (or staff) hands a postmortem over; anyone may pick the owner of a new one."""
    return incident.pk is None or incident.owner_id == user.pk or user.is_staff


class IncidentBasicsForm(forms.ModelForm):
    time_zone = TimeZoneField(
        label="Time zone",
        help_text="The zone the times below are written in, e.g. Europe/Berlin; the page shows them in it.",
    )
    tags = TagsField(
        required=False,
        label="Tags",
        help_text="Comma-separated keywords, e.g. Configuration, Database, Dependency, Latent.",
        widget=TagWidget(attrs={"autocomplete": "off", "data-tag-input": "on", "list": "tag-suggestions"}),
    )

    class Meta:
        model = Incident
        fields = [
            "title",
            "incident_date",
            "severity",
            "time_zone",
            "started_at",
            "detected_at",
            "mitigated_at",
            "resolved_at",
            "owner",
            "committee",
            "co_authors",
            "tags",
            "visibility",
            "teams",
        ]
        field_classes = dict.fromkeys(
            ("started_at", "detected_at", "mitigated_at", "resolved_at"), WallClockField
        ) | {"owner": PersonField, "committee": PeopleField, "co_authors": PeopleField}
        widgets = {
            "incident_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "owner": PeopleInput(),
            "committee": PeopleInput(multiple=True),
            "co_authors": PeopleInput(multiple=True),
            "teams": _checkbox_list(),
        }

    TIME_FIELDS = ("started_at", "detected_at", "mitigated_at", "resolved_at")

    def __init__(self, *args, editor=None, **kwargs):
        super().__init__(*args, **kwargs)
        people = _people()
        self.fields["owner"].queryset = people
        self.fields[
            "owner"
        ].help_text = (
            "Who owns the postmortem process: a username; type part of a name, e-mail or team to search."
        )
        if editor is not None and not may_change_owner(self.instance, editor):
            # Posted values are ignored; postmortems/editing.py keeps the owner whatever the form says.
            self.fields["owner"].disabled = True
            self.fields["owner"].help_text = "Only the owner hands a postmortem over to someone else."
        self.fields["committee"].queryset = people
        self.fields["co_authors"].queryset = people
        self.fields[
            "committee"
        ].help_text = (
            "Who verifies its quality before it is published: usernames separated by commas; type to search."
        )
        self.fields[
            "co_authors"
        ].help_text = "People who may edit it with the owner: usernames separated by commas; type to search."
        self.fields["teams"].queryset = Team.objects.order_by("name")
        for name in self.TIME_FIELDS:
            self.fields[name].zone = self.instance.tz if self.instance.pk else None
            self.fields[name].help_text = "Optional; in the time zone above."

    def clean(self):
        cleaned = super().clean()
        zone_name = cleaned.get("time_zone")
        for name in self.TIME_FIELDS:
            value = cleaned.get(name)
            if value is None or timezone.is_aware(value):
                continue
            if not zone_name:
                self.add_error(name, "Choose the time zone this time was written in.")
                continue
            try:
                cleaned[name] = attach_zone(value, zone_name)
            except ValidationError as error:
                self.add_error(name, error)
        return cleaned


class IncidentImpactForm(forms.ModelForm):
    impacted_customers = forms.IntegerField(
        label="Number of impacted customers",
        required=False,
        min_value=0,
        help_text="Leave blank until you know; 0 is an answer.",
        error_messages={
            "min_value": "The number of impacted customers cannot be negative; leave it blank if unknown.",
            "invalid": "Enter a whole number of customers, e.g. 1200.",
        },
        widget=forms.NumberInput(attrs={"min": "0", "inputmode": "numeric"}),
    )

    class Meta:
        model = Incident
        fields = ["summary", "supporting_data", "customer_impact", "impacted_customers"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _markdown_editors(self, ("summary", "supporting_data", "customer_impact"))
        self.fields["supporting_data"].help_text += " Paste or drop PNG, JPEG or WebP images; tables work."


class IncidentAnalysisForm(forms.ModelForm):
    class Meta:
        model = Incident
        fields = ["response_analysis", "post_incident_analysis"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _markdown_editors(self, self.Meta.fields, rows=12)


class IncidentRowForm(forms.ModelForm):
    """A row of one of the incident's formsets; `choices` carries lists read once per formset."""

    def __init__(self, *args, incident: Incident, choices: dict[str, list], **kwargs):
        self.incident = incident
        super().__init__(*args, **kwargs)
        self.setup_fields()
        for name, options in choices.items():
            if name in self.fields:
                self.fields[name].widget.choices = options

    def setup_fields(self) -> None:
        """Narrow querysets to the incident; runs before the shared choice lists are put in place."""


class TimelineEventForm(IncidentRowForm):
    occurred_at = WallClockField(label="Time")
    zone = TimeZoneField(label="Time zone", required=False)
    link = forms.URLField(
        label="Link",
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text="A graph or log that shows it.",
        error_messages={"invalid": URL_MESSAGE},
    )

    class Meta:
        model = TimelineEvent
        fields = ["occurred_at", "zone", "kind", "description", "link"]
        widgets = {"description": forms.Textarea(attrs={"rows": 1})}

    def setup_fields(self):
        self.fields["occurred_at"].zone = self.incident.tz
        self.fields["zone"].initial = self.incident.time_zone
        # One compact row per event (edit/_timeline_row.html renders the bare widgets).
        for name, field in self.fields.items():
            css = "form-select form-select-sm" if name == "kind" else "form-control form-control-sm"
            field.widget.attrs["class"] = css
        self.fields["link"].widget.attrs["placeholder"] = "https://… graph or log"
        self.fields["description"].widget.attrs["placeholder"] = "What happened"

    def clean(self):
        cleaned = super().clean()
        wall_clock, zone_name = cleaned.get("occurred_at"), cleaned.get("zone")
        if wall_clock is None or timezone.is_aware(wall_clock) or "zone" in self.errors:
            return cleaned  # a time typed with an offset already names its instant
        if not zone_name:
            self.add_error("zone", "Choose the time zone this time was written in, e.g. UTC or Europe/Berlin")
            return cleaned
        try:
            cleaned["occurred_at"] = attach_zone(wall_clock, zone_name)
        except ValidationError as error:
            self.add_error("occurred_at", error)
        return cleaned


class ContributingFactorForm(IncidentRowForm):
    class Meta:
        model = ContributingFactor
        fields = ["description", "category", "is_human_error", "parent"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def setup_fields(self):
        parent = self.fields["parent"]
        parent.queryset = self.incident.factors.all()
        parent.label = "Answers “why?” for"
        parent.empty_label = "— a starting point (no parent) —"
        # A compact row of the "why?" tree (edit/_factor_row.html renders the bare widgets).
        self.fields["description"].widget.attrs.update(
            {"class": "form-control", "placeholder": "What contributed? Then ask “why?” again."}
        )
        self.fields["category"].widget.attrs["class"] = "form-select form-select-sm w-auto"
        parent.widget.attrs["class"] = "form-select form-select-sm w-auto d-inline-block"
        self.fields["is_human_error"].widget.attrs["class"] = "form-check-input"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        parent = self.fields["parent"]
        if self.instance.pk:
            parent.widget.choices = [c for c in parent.widget.choices if c[0] != self.instance.pk]


class LessonForm(IncidentRowForm):
    class Meta:
        model = Lesson
        fields = ["text", "action_items"]
        widgets = {"text": forms.Textarea(attrs={"rows": 2}), "action_items": _checkbox_list()}

    def setup_fields(self):
        self.fields["action_items"].queryset = self.incident.action_items.all()
        self.fields["action_items"].help_text = "Each lesson should lead to an action item."


class ActionItemForm(IncidentRowForm):
    backlog_link = forms.URLField(
        label="Backlog link",
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text="The item in your tracker.",
        error_messages={"invalid": URL_MESSAGE},
    )
    lessons = forms.ModelMultipleChoiceField(
        label="Follows from lessons",
        queryset=Lesson.objects.none(),
        required=False,
        widget=_checkbox_list(),
    )

    class Meta:
        model = ActionItem
        fields = ["title", "owner", "priority", "due_date", "backlog_link", "factors", "lessons"]
        field_classes = {"owner": PersonField}
        widgets = {
            "owner": PeopleInput(),
            "due_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "factors": _checkbox_list(),
        }

    def setup_fields(self):
        self.fields["owner"].queryset = _people()
        if self.instance.pk and self.instance.owner_id:  # shown by name without a query per row
            self.initial["owner"] = self.instance.owner.username
        self.fields["factors"].queryset = self.incident.factors.all()
        self.fields["factors"].label = "Addresses factors"
        self.fields["lessons"].queryset = self.incident.lessons.all()
        self.fields["due_date"].help_text = "Leave blank for the priority's default (P1 28 days … P4 180)."
        if self.instance.pk:
            self.initial.setdefault("lessons", [lesson.pk for lesson in self.instance.lessons.all()])

    def clean_due_date(self):
        due = self.cleaned_data["due_date"]
        if due is not None and "due_date" in self.changed_data and due < timezone.localdate():
            raise ValidationError("The due date is in the past; pick today or a later day.")
        return due

    def clean(self):
        cleaned = super().clean()
        priority = cleaned.get("priority")
        if cleaned.get("due_date") is None and priority and "due_date" not in self.errors:
            days = settings.ACTION_ITEM_SLO_DAYS.get(priority)
            if days is not None:
                cleaned["due_date"] = timezone.localdate() + dt.timedelta(days=int(days))
        return cleaned

    def _save_m2m(self):
        super()._save_m2m()
        self.instance.lessons.set(self.cleaned_data["lessons"])


class IncidentFormSet(BaseInlineFormSet):
    """Rows of one incident; shared choice lists are read once, not once per row."""

    shared_choices: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        incident = kwargs["instance"]
        form_kwargs = kwargs.setdefault("form_kwargs", {})
        form_kwargs["incident"] = incident
        form_kwargs["choices"] = {name: self._choices(name, incident) for name in self.shared_choices}
        super().__init__(*args, **kwargs)

    def add_fields(self, form, index):
        super().add_fields(form, index)
        if "DELETE" in form.fields:
            form.fields["DELETE"].label = "Remove"
            form.fields["DELETE"].widget.attrs["class"] = "form-check-input"

    def _choices(self, name: str, incident: Incident) -> list[tuple]:
        form = self.form(incident=incident, choices={}, prefix="__probe__")
        field = form.fields[name]
        return [(getattr(value, "value", value), label) for value, label in field.choices]


class FactorFormSet(IncidentFormSet):
    def clean(self):
        """Refuse a “why?” chain made circular by several rows at once (each row alone looks fine)."""
        super().clean()
        parents = dict(self.instance.factors.values_list("pk", "parent_id"))
        for form in self.initial_forms:
            if form.cleaned_data and not self._should_delete_form(form):
                parent = form.cleaned_data.get("parent")
                parents[form.instance.pk] = parent.pk if parent else None
        for form in self.initial_forms:
            seen, current = set(), form.instance.pk
            while current is not None and current not in seen:
                seen.add(current)
                current = parents.get(current)
            if current is not None and current == form.instance.pk:
                form.add_error(
                    "parent", "A factor cannot answer “why?” for itself, even through other factors."
                )


def _formset(model, form, *, shared: tuple[str, ...], extra: int):
    formset = inlineformset_factory(
        Incident,
        model,
        form=form,
        formset=FactorFormSet if model is ContributingFactor else IncidentFormSet,
        extra=extra,
        can_delete=True,
        can_delete_extra=True,  # a row added in the page can be removed (and the removal undone) in it too
        max_num=500,
    )
    formset.shared_choices = shared
    return formset


# Each step: the incident form or formsets it edits, and what a formset row's queryset prefetches.
ROW_FORMS = {
    "timeline": (TimelineEvent, TimelineEventForm, (), ()),
    "factors": (ContributingFactor, ContributingFactorForm, ("parent",), ()),
    "lessons": (Lesson, LessonForm, ("action_items",), ("action_items",)),
    "actions": (ActionItem, ActionItemForm, ("factors", "lessons"), ("owner", "factors", "lessons")),
}
INCIDENT_FORMS = {
    "basics": IncidentBasicsForm,
    "impact": IncidentImpactForm,
    "analysis": IncidentAnalysisForm,
}


def step_forms(
    step: str, incident: Incident, *, data=None, extra: int = 0, why: int | None = None, editor=None
) -> list:
    """The forms a step edits, bound to `data` if given; `extra` adds blank rows, `why` pre-fills a parent.

    `editor`, the user editing, locks the basics' owner field unless they may change it.
    """
    if step == "basics":
        return [IncidentBasicsForm(data, instance=incident, editor=editor)]
    if step in INCIDENT_FORMS:
        return [INCIDENT_FORMS[step](data, instance=incident)]
    if step not in ROW_FORMS:
        return []
    model, form, shared, prefetch = ROW_FORMS[step]
    formset_class = _formset(model, form, shared=shared, extra=0)
    queryset = model.objects.filter(incident=incident).prefetch_related(*prefetch)
    formset = formset_class(data, instance=incident, queryset=queryset, prefix=step)
    # No blank row to skip over: blank rows only when asked for, or one to start an empty step with.
    rows = max(0, min(extra, MAX_EXTRA_ROWS))
    if why is not None or (data is None and not formset.initial_form_count()):
        rows = max(rows, 1)
    formset.extra = rows
    if why is not None:
        formset.initial_extra = [{"parent": why}]
    return [formset]


class RevisionForm(forms.Form):
    """The revision the page was rendered with; a save of a step changed since then is a conflict."""

    expected_revision = forms.IntegerField(min_value=1, widget=forms.HiddenInput)


# --- the review workflow's actions (sign-off, reopen, section comments) ---


class SignOffForm(forms.Form):
    """Approve or request changes; `revision` is the one the reviewer read, so an edit meanwhile is caught."""

    revision = forms.IntegerField(
        widget=forms.HiddenInput,
        min_value=1,
        error_messages={"required": "Reload the page and sign off again.", "invalid": "Reload the page."},
    )
    comment = forms.CharField(
        label="Comment",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required when you request changes: say what needs to change.",
    )

    def __init__(self, *args, comment_required: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if comment_required:
            self.fields["comment"].required = True
            self.fields["comment"].error_messages["required"] = (
                "Say what needs to change: a comment is required to request changes."
            )


class ReopenForm(forms.Form):
    reason = forms.CharField(
        label="Reason for reopening",
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why it is reopened: a reason is required."},
        help_text="Logged in the activity; the postmortem goes through review again.",
    )


class CommentForm(forms.Form):
    section = forms.ChoiceField(choices=Section.choices, widget=forms.HiddenInput)
    text = forms.CharField(
        label="Comment",
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Write a comment first."},
    )


# --- search (the list's query string) -------------------------------------------------------------


class SlugListField(forms.Field):
    """A repeated query-string parameter of tag slugs (`?tag=dns&tag=aws`); a typed tag name works too."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[str]:
        values = value if isinstance(value, list | tuple) else [value] if value else []
        return list(dict.fromkeys(slug for slug in (slugify(str(v)) for v in values) if slug))


class SearchForm(forms.Form):
    """Everything a search can say, read from the query string; the URL holds the whole search."""

    q = forms.CharField(label="Search", required=False, max_length=200)
    tag = SlugListField(label="Tags", required=False)
    severity = forms.MultipleChoiceField(
        label="Severity", required=False, choices=Severity.choices, widget=forms.CheckboxSelectMultiple
    )
    date_from = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    owner = forms.ModelChoiceField(
        label="Owner",
        required=False,
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        to_field_name="username",
        empty_label="Anyone",
        error_messages={"invalid_choice": "Nobody by that username."},
    )
    team = forms.ModelChoiceField(
        label="Team",
        required=False,
        queryset=Team.objects.order_by("name"),
        to_field_name="slug",
        empty_label="Any team",
        error_messages={"invalid_choice": "No team by that name."},
    )
    open_actions = forms.BooleanField(label="Has open action items", required=False)

    # The query string says `from`, `to` and `open` (DESIGN.md section 9); Python cannot name a field `from`.
    URL_NAMES = {"date_from": "from", "date_to": "to", "open_actions": "open"}

    def add_prefix(self, field_name):
        # Used both to read the data and to name the inputs.
        return self.URL_NAMES.get(field_name, field_name)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end of the range is before its start.")
        return cleaned

    def filter(self, queryset: QuerySet, *, any_word: bool = False) -> QuerySet:
        """`queryset` narrowed by every valid field; invalid fields are ignored (their errors are shown).
        With `any_word`, the text needs only some of its words (for a search that found nothing)."""
        data = self.cleaned_data if self.is_bound else {}
        if data.get("tag"):
            queryset = queryset.with_tags(data["tag"])
        if data.get("severity"):
            queryset = queryset.filter(severity__in=data["severity"])
        if data.get("date_from"):
            queryset = queryset.filter(incident_date__gte=data["date_from"])
        if data.get("date_to"):
            queryset = queryset.filter(incident_date__lte=data["date_to"])
        if data.get("owner"):
            queryset = queryset.filter(owner=data["owner"])
        if data.get("team"):
            queryset = queryset.filter(
                Exists(Incident.teams.through.objects.filter(incident=OuterRef("pk"), team=data["team"]))
            )
        if data.get("open_actions"):
            open_items = ActionItem.objects.filter(
                incident=OuterRef("pk"), status__in=[ActionItemStatus.OPEN, ActionItemStatus.IN_PROGRESS]
            )
            queryset = queryset.filter(Exists(open_items))
        if data.get("q"):
            queryset = queryset.search(data["q"], any_word=any_word)
        return queryset

    @property
    def text(self) -> str:
        return self.cleaned_data.get("q", "") if self.is_bound and hasattr(self, "cleaned_data") else ""

    @cached_property
    def _tag_query_parts(self) -> tuple[str, str, str, list[str]]:
        """The list URL, the query string without `page` split where one more `tag` would go, and the
        tags in it: computed once, for the tag links of every row of a page."""
        before, after, tags = [], [], []
        seen_tag = False
        for key, values in self.data.lists():
            if key == "page":
                continue
            if key == "tag":
                tags = list(values)
                seen_tag = True
            target = after if seen_tag and key != "tag" else before
            target.extend(urlencode({key: str(value)}) for value in values)
        return reverse("postmortems:list"), "&".join(before), "&".join(after), tags

    def add_tag_url(self, slug: str) -> str:
        """The list URL with this search narrowed further by one more tag (tags combine with AND)."""
        url, before, after, tags = self._tag_query_parts
        middle = "" if slug in tags else urlencode({"tag": slug})
        query = "&".join(part for part in (before, middle, after) if part)
        return f"{url}?{query}"

    def chips(self, tag_names: dict[str, str] | None = None) -> list[tuple[str, str]]:
        """(label, query string without it) for every narrowing in force, so each can be removed."""
        if not self.is_bound:
            return []
        data = self.cleaned_data
        chips = []

        def without(key: str, value: str | None = None) -> str:
            query = QueryDict(mutable=True)
            for k, values in self.data.lists():
                kept = [v for v in values if not (k == key and (value is None or v == value))]
                if kept and k != "page":
                    query.setlist(k, kept)
            return query.urlencode()

        if data.get("q"):
            chips.append((f"“{data['q']}”", without("q")))
        for slug in data.get("tag") or []:
            chips.append((f"tag: {(tag_names or {}).get(slug, slug)}", without("tag", slug)))
        for severity in data.get("severity") or []:
            chips.append((f"severity: {severity}", without("severity", severity)))
        if data.get("date_from"):
            chips.append((f"from {data['date_from']:%Y-%m-%d}", without("from")))
        if data.get("date_to"):
            chips.append((f"to {data['date_to']:%Y-%m-%d}", without("to")))
        if data.get("owner"):
            chips.append((f"owner: {data['owner']}", without("owner")))
        if data.get("team"):
            chips.append((f"team: {data['team'].name}", without("team")))
        if data.get("open_actions"):
            chips.append(("has open action items", without("open")))
        return chips
