from __future__ import annotations

from django import forms
from django.utils import timezone

from integrations.models import ApiToken, EndpointKind, Event, TokenAccess, WebhookEndpoint

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
