"""Severity and custom fields of an incident (issue 18): set by command, by the Fields dialog and by
the card's severity menu; the rules are domain/fields.py, who may is domain/permissions.py.

Every change goes through ``IncidentService.change`` (the channel membership, the versioned write,
one ``field_changed`` event per field, the announcement, the card). The incident must be ongoing,
as for checking a step: an ended incident's record is read-only until it is restarted.
"""

from __future__ import annotations

from collections.abc import Mapping

from domain import Incident, PermissionDenied, TimelineEvent, ValidationError, permissions
from domain import fields as ops
from domain.models import FieldDef, FieldKind
from gateway.messages import neutralize
from services.context import BotContext
from services.incidents import IncidentService

#: The words that clear a field (``field customer none``).
CLEAR_WORDS = ("none", "clear", "-")


class FieldService:
    """Reads and changes an incident's field values; resolves the list's field filters."""

    def __init__(self, ctx: BotContext, incidents: IncidentService) -> None:
        self.ctx = ctx
        self.incidents = incidents
        self.directory = incidents.directory

    async def require_changer(self, incident: Incident, user_id: str, *, fresh: bool = False) -> None:
        """NotFound if the incident is hidden from the user, PermissionDenied outside its channel."""
        actor = await self.directory.actor(user_id)
        is_member = await self.directory.is_channel_member(incident.channel_id, user_id, fresh=fresh)
        is_team_member = is_member or await self.directory.is_team_member(incident.team_id, user_id)
        permissions.require_view_incident(actor, incident, is_team_member=is_team_member, is_channel_member=is_member)
        if not permissions.can_change_fields(actor, incident, is_channel_member=is_member):
            raise PermissionDenied(
                f'Only members of the incident channel can change the fields of "{incident.name}". '
                "Join the channel first.")

    async def typed_value(self, incident: Incident, field: FieldDef, raw: str) -> str | None:
        """What a typed value means (None: clear): ``@name`` for a user field is looked up in the
        incident's team; anything else is checked by the domain when it is set."""
        text = raw.strip()
        if text.lower() in CLEAR_WORDS:
            return None
        if field.kind is FieldKind.USER:
            user = await self.directory.team_user_by_username(incident.team_id, text)
            if user is None or user.is_bot:
                name = neutralize(text.lstrip("@")[:64])
                raise ValidationError(f'There is no person called "{name}" in this team; write @username.',
                                      field=field.id)
            return user.id
        return ops.parse_value(field, text)

    async def set_typed(self, incident: Incident, user_id: str, name: str, raw: str) -> tuple[Incident, FieldDef]:
        """``field <name> <value>`` and ``severity <level>``."""
        await self.require_changer(incident, user_id)
        field = ops.find_field(incident.fields, name)
        value = await self.typed_value(incident, field, raw)
        updated, _ = await self._change(incident, user_id, {field.id: value})
        return updated, field

    async def set_values(self, incident: Incident, user_id: str, values: Mapping[str, str | None], *,
                         fresh: bool = False) -> Incident:
        """The Fields dialog or the severity menu: values by field id, already ids for user fields
        (checked to be people of the team); None or "" clears."""
        await self.require_changer(incident, user_id, fresh=fresh)
        known = {field.id: field for field in incident.fields}
        cleaned: dict[str, str | None] = {}
        for field_id, value in values.items():
            field = known.get(field_id)
            if field is None:
                raise ValidationError("This form is out of date: the incident's fields changed. Open it again.")
            value = value.strip() if isinstance(value, str) else None
            if value and field.kind is FieldKind.USER and value != incident.field_values.get(field_id):
                if not await self.directory.is_team_member(incident.team_id, value) or await self.directory.is_bot(value):
                    raise ValidationError(f"{field.name} must be a person in this team.", field=field_id)
            cleaned[field_id] = value or None
        updated, _ = await self._change(incident, user_id, cleaned, fresh=fresh)
        return updated

    async def _change(self, incident: Incident, user_id: str, values: Mapping[str, str | None], *,
                      fresh: bool = False) -> tuple[Incident, list[TimelineEvent]]:
        names = await self._value_names(incident, values)

        def describe(inc: Incident, events: list[TimelineEvent], who: str) -> str:
            parts = []
            for event in events:
                name = neutralize(str(event.details.get("name", "")))
                new = event.details.get("new")
                parts.append(f"{name} to **{names.get(str(new), neutralize(str(new)))}**" if new is not None
                             else f"cleared {name}")
            changes = "; ".join(p if p.startswith("cleared") else f"set {p}" for p in parts)
            return f"@{who} {changes}."

        return await self.incidents.change(
            incident, user_id, lambda current: ops.set_fields(current, dict(values), user_id, self.ctx.clock()),
            describe, fresh=fresh)

    async def _value_names(self, incident: Incident, values: Mapping[str, str | None]) -> dict[str, str]:
        """``@name`` for the user ids among ``values`` (how messages show them)."""
        kinds = {field.id: field.kind for field in incident.fields}
        return {value: f"@{await self.directory.username(value)}" for field_id, value in values.items()
                if value and kinds.get(field_id) is FieldKind.USER}

    async def usernames(self, incident: Incident) -> dict[str, str]:
        """Usernames of the people the incident's user fields name."""
        ids = [v for f, v in ops.shown_values(incident) if f.kind is FieldKind.USER]
        return {user_id: await self.directory.username(user_id) for user_id in ids}
