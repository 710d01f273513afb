from django import forms

from accounts.models import User
from postmortems.forms import TimeZoneField


class ProfileForm(forms.ModelForm):
    time_zone = TimeZoneField(label="Time zone", help_text=User._meta.get_field("time_zone").help_text)

    class Meta:
        model = User
        fields = ["display_name", "time_zone"]
