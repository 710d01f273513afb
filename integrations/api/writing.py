"""JSON writes through the authoring forms: the same validation and the same save as the browser.

A request names only the fields it changes; the rest of the form is filled with what is saved now, so a
partial write is a whole form to postmortems/forms.py and a step save to postmortems/editing.py (which
checks the revision the client read, locks the row, bumps the revision and logs the edit).
"""

from __future__ import annotations

from typing import Any

from django.forms import BaseForm, BaseFormSet
from django.forms.formsets import INITIAL_FORM_COUNT, TOTAL_FORM_COUNT
from taggit.utils import edit_string_for_tags

from postmortems.forms import INCIDENT_FORMS, ROW_FORMS, step_forms
from postmortems.models import Incident

# The API's names for the steps whose rows it adds, changes and removes.
ROW_STEPS = {"timeline": "timeline", "factors": "factors", "lessons": "lessons", "action-items": "actions"}
INCIDENT_STEPS = tuple(INCIDENT_FORMS)


class FormErrors(Exception):
    """The forms refused the data: `errors` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("Some fields are not valid.")
        self.errors = errors


def _current(form: BaseForm, name: str) -> Any:
    value = form[name].value()
    if name == "tags" and isinstance(value, list | tuple):
        return edit_string_for_tags(value)
    return value


def _json_value(value: Any) -> Any:
    """A JSON value as a form reads it from a request: lists stay lists, null is empty, tags a string."""
    if value is None:
        return ""
    return value


def _merge(base: dict, changes: dict, fields, prefix: str = "", *, locked: dict | None = None) -> dict:
    """`base` with `changes` over it; a field the form does not have, or locks for this person, is refused."""
    locked = locked or {}
    refused = {name: [locked[name]] for name in changes if name in locked}
    refused |= {name: ["Unknown field."] for name in changes if name not in fields and name not in locked}
    if refused:
        raise FormErrors(refused)
    for name, value in changes.items():
        if name == "tags" and isinstance(value, list):
            value = ", ".join(f'"{tag}"' if "," in str(tag) else str(tag) for tag in value)
        base[f"{prefix}{name}"] = _json_value(value)
    return base


def form_errors(form: BaseForm) -> dict[str, list[str]]:
    """Each field's messages under the name the request used (SearchForm reads `from` into date_from)."""
    names = getattr(form, "URL_NAMES", {})
    return {
        names.get(name, name) if name != "__all__" else "non_field_errors": list(messages)
        for name, messages in form.errors.items()
    }


def incident_forms(step: str, incident: Incident, changes: dict, *, editor) -> list[BaseForm]:
    """The step's form bound to what is saved now with `changes` over it; raises FormErrors."""
    (unbound,) = step_forms(step, incident, editor=editor)
    fields = [name for name in unbound.fields if not unbound.fields[name].disabled]
    locked = {name: field.help_text for name, field in unbound.fields.items() if field.disabled}
    data = {name: _current(unbound, name) for name in unbound.fields}
    data = _merge(data, changes, fields, locked=locked)
    forms = step_forms(step, incident, data=data, editor=editor)
    if not forms[0].is_valid():
        raise FormErrors(form_errors(forms[0]))
    return forms


def row_formset(
    step: str,
    incident: Incident,
    *,
    add: dict | None = None,
    change: tuple[int, dict] | None = None,
    delete: int | None = None,
) -> tuple[BaseFormSet, int | None]:
    """The step's formset bound to every saved row, with one row added, changed or removed; returns it and
    the index of the row the request is about. Raises FormErrors, or LookupError for an unknown row."""
    (unbound,) = step_forms(step, incident)
    prefix = unbound.prefix
    rows = unbound.initial_forms
    data: dict[str, Any] = {}
    target = None
    for index, form in enumerate(rows):
        row_prefix = f"{prefix}-{index}-"
        for name in form.fields:
            if name != "DELETE":
                data[row_prefix + name] = _current(form, name)
        pk = form.instance.pk
        if change is not None and pk == change[0]:
            target = index
            _merge(data, change[1], _row_fields(form), row_prefix)
        if delete is not None and pk == delete:
            target = index
            data[row_prefix + "DELETE"] = "on"
    if (change or delete) and target is None:
        raise LookupError("No such row on this postmortem.")
    total = len(rows)
    if add is not None:
        target = total
        extra = unbound.forms[total] if len(unbound.forms) > total else unbound.empty_form
        _merge(data, add, _row_fields(extra), f"{prefix}-{total}-")
        total += 1
    data[f"{prefix}-{TOTAL_FORM_COUNT}"] = total
    data[f"{prefix}-{INITIAL_FORM_COUNT}"] = len(rows)
    (formset,) = step_forms(step, incident, data=data)
    if not formset.is_valid():
        errors: dict[str, list[str]] = {}
        for index, form in enumerate(formset.forms):
            for name, messages in form_errors(form).items():
                key = name if index == target else f"row {index + 1}: {name}"
                errors.setdefault(key, []).extend(messages)
        if formset.non_form_errors():
            errors["non_field_errors"] = list(formset.non_form_errors())
        raise FormErrors(errors)
    return formset, target


def _row_fields(form: BaseForm) -> list[str]:
    return [name for name in form.fields if name not in ("id", "DELETE", "incident")]


__all__ = ["INCIDENT_STEPS", "ROW_FORMS", "ROW_STEPS", "FormErrors", "incident_forms", "row_formset"]
