from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone

from integrations.models import (
    ApiToken,
    EndpointKind,
    Event,
    TokenAccess,
    TrackerConnection,
    TrackerKind,
    WebhookEndpoint,
)
from integrations.timeline_import import MAX_BYTES, MAX_CANDIDATES, MAX_DESCRIPTION
from postmortems.models import TimelineEventKind

CHAT_EVENTS = [Event.REVIEW_REQUESTED, Event.CHANGES_REQUESTED, Event.PUBLISHED]


class ApiTokenForm(forms.ModelForm):
    expires_at = forms.DateField(
        label="Expires",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="Optional: the token stops working at the start of this day (UTC).",
    )

    class Meta:
        model = ApiToken
        # expires_at is a day here, made a time by the view: not written onto the instance as a date.
        fields = ["name", "access"]
        widgets = {"access": forms.RadioSelect}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["access"].initial = TokenAccess.READ

    def clean_expires_at(self):
        day = self.cleaned_data["expires_at"]
        if day is not None and day <= timezone.now().date():
            raise forms.ValidationError("Choose a day after today, or leave it empty.")
        return day


class WebhookEndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        label="Events",
        choices=[choice for choice in Event.choices if choice[0] != Event.PING],
        widget=forms.CheckboxSelectMultiple,
        help_text="Chat webhooks get a readable message for each; review requested, changes requested and "
        "published say the most.",
    )
    url = forms.URLField(
        label="URL",
        max_length=500,
        assume_scheme="https",
        help_text="Where events are POSTed. A chat webhook's URL is kept secret: pages show only its host.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["name", "kind", "url", "events", "is_active", "include_restricted"]
        widgets = {"kind": forms.RadioSelect}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # The URL of a chat webhook is its secret: it is not shown again, and a blank field keeps it.
            self.fields["url"].required = False
            self.initial["url"] = "" if self.instance.kind == EndpointKind.SLACK else self.instance.url
            if self.instance.kind == EndpointKind.SLACK:
                self.fields["url"].help_text = "Leave blank to keep the current URL."
        else:
            self.initial.setdefault("events", [event.value for event in CHAT_EVENTS])

    def clean_url(self):
        url = self.cleaned_data["url"]
        if not url and self.instance.pk:
            return self.instance.url
        if not url:
            raise forms.ValidationError("Enter the URL events are sent to.")
        return url


# --- timeline import (integrations/import_views.py) -----------------------------------------------------


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field (Django's documented recipe)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(d, initial) for d in data]
        return [single(data, initial)] if data else []


class ImportSourceForm(forms.Form):
    """What to read: pasted lines and/or files (Slack day files or their zip, Mattermost, Statuspage,
    Alertmanager/Grafana, PagerDuty JSON)."""

    text = forms.CharField(
        label="Paste events",
        required=False,
        max_length=MAX_BYTES,
        widget=forms.Textarea(
            attrs={
                "rows": 6,
                "class": "form-control font-monospace",
                "placeholder": "14:02 Deploy of api v2.3 started\n14:09 Error-rate alert fired",
            }
        ),
        help_text="One event a line, its time first: 14:02, 14:02:31, 2026-03-04 14:02, or ISO 8601 with an "
        "offset (2026-03-04T14:02:00+01:00). Times without a zone are read in the incident’s time zone.",
    )
    files = MultipleFileField(
        label="Or upload files",
        required=False,
        help_text="A Slack channel export (its day files with users.json, or the zip), a Mattermost export, "
        "a Statuspage incident, Alertmanager/Grafana alert webhooks "
        "or PagerDuty webhooks/log entries (JSON). "
        f"At most {MAX_BYTES // (1024 * 1024)} MB.",
    )

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("text", "").strip() and not cleaned.get("files"):
            raise forms.ValidationError("Paste some lines or choose a file to import.")
        too_big = [f.name for f in cleaned.get("files") or [] if f.size > MAX_BYTES]
        if too_big:
            raise forms.ValidationError(
                f"{', '.join(too_big)}: larger than {MAX_BYTES // (1024 * 1024)} MB; import it in parts."
            )
        return cleaned


class CandidateForm(forms.Form):
    """One candidate event, editable before it is accepted; its time is a wall clock in the incident's zone
    (or ISO 8601 with an offset)."""

    include = forms.BooleanField(label="Add", required=False)
    occurred_at = forms.CharField(label="Time", max_length=40)
    kind = forms.ChoiceField(
        label="Kind",
        choices=TimelineEventKind.choices,
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )
    description = forms.CharField(label="Description", max_length=MAX_DESCRIPTION * 2)
    link = forms.URLField(label="Link", required=False, max_length=500, assume_scheme="https")
    pending = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, zone=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = zone or dt.UTC

    def clean_occurred_at(self):
        text = self.cleaned_data["occurred_at"].strip().replace("Z", "+00:00")
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError as error:
            raise forms.ValidationError("Enter a time like 2026-03-04 14:02:31.") from error
        return value if timezone.is_aware(value) else value.replace(tzinfo=self.zone)


class BaseCandidateFormSet(forms.BaseFormSet):
    def __init__(self, *args, zone=None, **kwargs):
        self.zone = zone
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index):
        return {**super().get_form_kwargs(index), "zone": self.zone}

    def chosen(self) -> list[dict]:
        """The accepted rows as TimelineEvent fields (call after is_valid)."""
        return [
            {key: form.cleaned_data[key] for key in ("occurred_at", "kind", "description", "link")}
            for form in self.forms
            if form.cleaned_data.get("include")
        ]


CandidateFormSet = forms.formset_factory(
    CandidateForm,
    formset=BaseCandidateFormSet,
    extra=0,
    max_num=MAX_CANDIDATES,
    absolute_max=MAX_CANDIDATES,
    validate_max=True,
)


class TrackerConnectionForm(forms.ModelForm):
    token = forms.CharField(
        label="API token",
        max_length=300,
        widget=forms.PasswordInput(render_value=False),
        help_text="GitHub: a fine-grained token with Issues read/write on the repository; GitLab: a project "
        "access token with the api scope; Jira: an Atlassian API token of the account below. "
        "Shown on no page.",
    )

    class Meta:
        model = TrackerConnection
        fields = ["kind", "base_url", "project", "email"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") == TrackerKind.JIRA:
            if not cleaned.get("base_url"):
                self.add_error("base_url", "Jira needs its site address, e.g. https://acme.atlassian.net.")
            if not cleaned.get("email"):
                self.add_error("email", "Jira needs the e-mail of the account the token belongs to.")
        if cleaned.get("kind") == TrackerKind.GITHUB and "/" not in cleaned.get("project", ""):
            self.add_error("project", "Name the repository as owner/repository.")
        return cleaned
