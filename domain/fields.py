"""Severity and custom fields (issue 18), as pure operations.

A playbook defines its fields (:func:`validate_fields`); an incident copies them at the start and
keeps the values set, by field id. Every change is one ``FIELD_CHANGED`` timeline event with the
old and the new value. Who may change a value is the rule for steps (members of the incident
channel, the incident ongoing): the service checks membership, :func:`set_field` the state.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Sequence

from . import limits
from ._ops import Result, event, require_ongoing
from .errors import COMMAND, ValidationError
from .ids import is_valid_id
from .models import DEFAULT_SEVERITY, EventKind, FieldDef, FieldKind, Incident

#: The field of every error about a playbook's fields (DomainError.field).
FIELDS = "fields"
#: What a field id may look like: it is a key in stored JSON and in ``field:<id>=`` list filters.
FIELD_ID = re.compile(rf"^[a-z0-9][a-z0-9_-]{{0,{limits.FIELD_ID_MAX - 1}}}$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_KINDS_WITH_OPTIONS = (FieldKind.SEVERITY, FieldKind.SELECT)


def _printable(text: str) -> bool:
    return not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text)


def field_id_of(name: str) -> str:
    """The id a field gets from its name when none is given: lowercase letters, digits and dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")
    return slug[: limits.FIELD_ID_MAX].strip("-")


def _one_line(value: str, what: str, most: int, *, field: str) -> str:
    text = value.strip()
    if not text:
        raise ValidationError(f"{what} must not be empty.", field=field)
    if len(text) > most:
        raise ValidationError(f"{what} may be at most {most} characters; this one has {len(text)}.", field=field)
    if not _printable(text):
        raise ValidationError(f"{what} must be one line of text without control characters.", field=field)
    return text


def validate_field(field: FieldDef, position: int = 1) -> FieldDef:
    """One checked field definition (names and options stripped); errors say which field."""
    where = f"Field {position}"
    name = _one_line(field.name, f"{where}: the name", limits.FIELD_NAME_MAX, field=FIELDS)
    where = f'Field {position} "{name}"'
    field_id = field.id.strip() or (DEFAULT_SEVERITY.id if field.kind is FieldKind.SEVERITY else field_id_of(name))
    if not FIELD_ID.match(field_id):
        raise ValidationError(
            f"{where}: the id {field_id[:40]!r} may hold only lowercase letters, digits, - and _"
            f" (at most {limits.FIELD_ID_MAX}, starting with a letter or digit).", field=FIELDS)
    if field.kind is FieldKind.SEVERITY and field_id != DEFAULT_SEVERITY.id:
        raise ValidationError(f'{where}: the severity field\'s id is "{DEFAULT_SEVERITY.id}".', field=FIELDS)
    description = field.description.strip()
    if len(description) > limits.FIELD_DESCRIPTION_MAX:
        raise ValidationError(f"{where}: the description may be at most {limits.FIELD_DESCRIPTION_MAX}"
                              f" characters; this one has {len(description)}.", field=FIELDS)
    options: list[str] = []
    if field.kind in _KINDS_WITH_OPTIONS:
        if not field.options:
            raise ValidationError(f"{where}: a {field.kind.value} field needs at least one option.", field=FIELDS)
        if len(field.options) > limits.FIELD_OPTIONS_MAX:
            raise ValidationError(f"{where}: at most {limits.FIELD_OPTIONS_MAX} options; this one has"
                                  f" {len(field.options)}.", field=FIELDS)
        seen: set[str] = set()
        for n, option in enumerate(field.options, start=1):
            text = _one_line(option, f"{where}, option {n}", limits.FIELD_OPTION_MAX, field=FIELDS)
            if text.casefold() in seen:
                raise ValidationError(f'{where}: the option "{text}" is listed twice.', field=FIELDS)
            seen.add(text.casefold())
            options.append(text)
    elif field.options:
        raise ValidationError(f"{where}: only severity and select fields have options.", field=FIELDS)
    return FieldDef(id=field_id, name=name, kind=field.kind, options=tuple(options), description=description)


def validate_fields(fields: Sequence[FieldDef]) -> tuple[FieldDef, ...]:
    """A playbook's checked field definitions: ids and names unique, at most one severity field."""
    if len(fields) > limits.FIELDS_MAX:
        raise ValidationError(f"A playbook may have at most {limits.FIELDS_MAX} fields; this one has {len(fields)}.",
                              field=FIELDS)
    checked = [validate_field(field, n) for n, field in enumerate(fields, start=1)]
    if sum(1 for field in checked if field.kind is FieldKind.SEVERITY) > 1:
        raise ValidationError("A playbook may have only one severity field.", field=FIELDS)
    ids: set[str] = set()
    names: set[str] = set()
    for field in checked:
        if field.id in ids:
            raise ValidationError(f'Two fields have the id "{field.id}"; give each field its own id.', field=FIELDS)
        if field.name.casefold() in names:
            raise ValidationError(f'Two fields are named "{field.name}"; give each field its own name.', field=FIELDS)
        ids.add(field.id)
        names.add(field.name.casefold())
    return tuple(checked)


def find_field(fields: Iterable[FieldDef], name: str) -> FieldDef:
    """The field called ``name`` (its name ignoring case, or its id); ValidationError listing them if none."""
    wanted = name.strip().casefold()
    fields = tuple(fields)
    for field in fields:
        if field.id == wanted or field.name.casefold() == wanted:
            return field
    if not fields:
        raise ValidationError("This incident has no fields.", field="field")
    names = ", ".join(f.name for f in fields)
    raise ValidationError(f'This incident has no field "{name.strip()[:40]}". Its fields: {names}.', field="field")


def parse_value(field: FieldDef, raw: str) -> str:
    """The value ``raw`` stands for in ``field``, as stored; ValidationError saying what fits.

    Severity and select: one of the options (ignoring case; stored as the option is spelled).
    User: a user id. Date: ``YYYY-MM-DD``, a real date. Text: one line, at most FIELD_TEXT_MAX.
    """
    text = raw.strip()
    if field.kind in _KINDS_WITH_OPTIONS:
        for option in field.options:
            if option.casefold() == text.casefold():
                return option
        raise ValidationError(f'"{text[:40]}" is not a {field.name} option. Choose one of: '
                              f"{', '.join(field.options)}.", field=field.id)
    if field.kind is FieldKind.USER:
        if not is_valid_id(text):
            raise ValidationError(f"{field.name} must be a user (@name).", field=field.id)
        return text
    if field.kind is FieldKind.DATE:
        try:
            if not _DATE.match(text):
                raise ValueError(text)
            dt.date.fromisoformat(text)
        except ValueError:
            raise ValidationError(f'{field.name} must be a date written YYYY-MM-DD (like 2026-03-31), not'
                                  f' "{text[:20]}".', field=field.id) from None
        return text
    if len(text) > limits.FIELD_TEXT_MAX:
        raise ValidationError(f"{field.name} may be at most {limits.FIELD_TEXT_MAX} characters; this value has"
                              f" {len(text)}.", field=field.id)
    if not _printable(text):
        raise ValidationError(f"{field.name} must be one line of text without control characters.",
                              field=field.id)
    if not text:
        raise ValidationError(f"Give {field.name} a value, or clear it with {COMMAND}field clear.", field=field.id)
    return text


def set_field(incident: Incident, field_id: str, value: str | None, actor: str, now: int) -> Result:
    """Set (``value``, already parsed by :func:`parse_value`) or clear (None) one field of an ongoing
    incident; a FIELD_CHANGED event with the old and new value. Setting the same value is a no-op."""
    require_ongoing(incident)
    field = next((f for f in incident.fields if f.id == field_id), None)
    if field is None:
        raise ValidationError("This incident has no such field.", field="field")
    if value is not None:
        value = parse_value(field, value)
    old = incident.field_values.get(field_id)
    if old == value:
        return incident, []
    values = dict(incident.field_values)
    if value is None:
        values.pop(field_id, None)
    else:
        values[field_id] = value
    updated = incident.model_copy(update={"field_values": values})
    return updated, [event(incident, EventKind.FIELD_CHANGED, actor, now, field_id=field_id, name=field.name,
                           old=old, new=value)]


def set_fields(incident: Incident, values: dict[str, str | None], actor: str, now: int) -> Result:
    """Several fields at once (the Fields dialog): one event per field that changed."""
    events = []
    for field_id, value in values.items():
        incident, changed = set_field(incident, field_id, value, actor, now)
        events.extend(changed)
    return incident, events


def shown_values(incident: Incident) -> list[tuple[FieldDef, str]]:
    """The set fields, in the playbook's order, with their values (what the card and info show)."""
    return [(field, incident.field_values[field.id]) for field in incident.fields if field.id in incident.field_values]


def severity_field(fields: Iterable[FieldDef]) -> FieldDef | None:
    """The severity field among ``fields``, if there is one."""
    return next((field for field in fields if field.kind is FieldKind.SEVERITY), None)


def list_filter(candidates: Iterable[FieldDef], name: str, value: str) -> tuple[FieldDef | None, str, str]:
    """A typed list filter (``severity=sev1``, ``field:customer=acme``): the field it names among
    ``candidates`` (the team's playbooks' fields; None if none), its id, and the value as stored (an
    option or level in its own spelling; anything else as typed, a user field's ``@name`` left to the
    caller). ValidationError for an empty value or a name that cannot be a field."""
    wanted = name.strip().casefold()
    text = value.strip()
    if not text:
        raise ValidationError(f"Give {name.strip()[:40]} a value, e.g. {COMMAND}list severity=SEV1.", field="field")
    for field in candidates:
        if field.id != wanted and field.name.casefold() != wanted:
            continue
        for option in field.options:
            if option.casefold() == text.casefold():
                return field, field.id, option
        return field, field.id, text
    field_id = wanted if FIELD_ID.match(wanted) else field_id_of(name)
    if not field_id:
        raise ValidationError(f'"{name.strip()[:40]}" is not a field name.', field="field")
    return None, field_id, text
