"""Severity and custom fields from chat: ``field``, ``severity``, the card's severity menu and Fields
button, the Fields dialog. Thin: the rules are domain/fields.py, the changes services/fields.py."""

from __future__ import annotations

import hashlib

from domain import DomainError, Incident, NotFound, ValidationError
from domain.errors import COMMAND
from domain.fields import severity_field, shown_values
from domain.limits import FIELD_TEXT_MAX
from domain.models import FieldDef, FieldKind
from gateway import dialogs, ui
from gateway import payloads as p
from gateway.ids import Action, Dialog
from gateway.messages import limited_markdown, neutralize
from gateway.models import ActionCallback, ActionReply, CommandReply, DialogReply, DialogSubmission, SlashCommand
from gateway.routing import on_action, on_command, on_dialog
from plugins.base import FeaturePlugin
from services.context import BotContext
from services.fields import FieldService

NO_FIELDS = "This incident has no fields (its playbook defines none)."


def split_name(arguments: str) -> tuple[str, str]:
    """``"Due date" 2026-03-01`` → (Due date, 2026-03-01); ``customer ACME Corp`` → (customer, ACME Corp)."""
    text = arguments.strip()
    if text[:1] in ('"', "“"):
        closing = "”" if text[0] == "“" else '"'
        end = text.find(closing, 1)
        if end > 0:
            return text[1:end].strip(), text[end + 1:].strip()
    name, _, rest = text.partition(" ")
    return name, rest.strip()


def render_fields(incident: Incident, usernames: dict[str, str]) -> str:
    """Every field of the incident with its value (or "not set"), as Markdown lines."""
    lines = []
    for field in incident.fields:
        value = incident.field_values.get(field.id)
        if value is None:
            shown = "_not set_"
        elif field.kind is FieldKind.USER:
            shown = f"@{usernames[value]}" if value in usernames else "a former member"
        else:
            shown = f"**{limited_markdown(value, one_line=True)}**"
        choices = f" ({', '.join(neutralize(o) for o in field.options)})" if field.options else ""
        lines.append(f"- {neutralize(field.name)}{choices}: {shown}")
    return "\n".join(lines)


class FieldsPlugin(FeaturePlugin):
    """Handles ``field``, ``severity``, the severity menu, the Fields button and dialog."""

    def __init__(self, ctx: BotContext, service: FieldService) -> None:
        super().__init__(ctx)
        self.service = service
        self.incidents = service.incidents

    async def _shown(self, incident: Incident) -> str:
        return render_fields(incident, await self.service.usernames(incident))

    @on_command("field")
    async def on_field(self, command: SlashCommand) -> CommandReply:
        incident = await self.incidents.in_channel(command.channel_id)
        if not command.arguments:
            await self.incidents.require_viewer(incident, command.user_id)
            if not incident.fields:
                return CommandReply(text=NO_FIELDS)
            return CommandReply(text=f"**Fields of {neutralize(incident.name)}**\n{await self._shown(incident)}\n"
                                     f"Set one with {self.command('field <name> <value>')} ("
                                     f"{self.command('field <name> none')} clears it).")
        name, value = split_name(command.arguments)
        if not value:
            raise ValidationError(f"Say the value: {COMMAND}field {name} <value>, or {COMMAND}field {name} none.")
        updated, field = await self.service.set_typed(incident, command.user_id, name, value)
        if updated == incident:
            return CommandReply(text=f"Nothing changed: that is already the {neutralize(field.name)}.")
        return CommandReply()

    @on_command("severity")
    async def on_severity(self, command: SlashCommand) -> CommandReply:
        incident = await self.incidents.in_channel(command.channel_id)
        field = severity_field(incident.fields)
        if field is None:
            raise ValidationError("This incident has no severity field (its playbook defines none).")
        if not command.arguments:
            await self.incidents.require_viewer(incident, command.user_id)
            current = incident.field_values.get(field.id)
            return CommandReply(text=f"{neutralize(field.name)}: **{neutralize(current)}**" if current else
                                f"{neutralize(field.name)} is not set. Levels: {', '.join(field.options)}; "
                                f"set it with {self.command('severity ' + field.options[0])}.")
        updated, _ = await self.service.set_typed(incident, command.user_id, field.id, command.arguments)
        if updated == incident:
            return CommandReply(text=f"Nothing changed: the {neutralize(field.name)} is already that.")
        return CommandReply()

    @on_action(Action.SET_SEVERITY)
    async def on_severity_chosen(self, callback: ActionCallback, menu: p.SetSeverity) -> ActionReply:
        incident = await self.incidents.incident(menu.incident_id, channel_id=callback.channel_id)
        if incident is None:
            raise NotFound("This incident no longer exists.")
        field = severity_field(incident.fields)
        chosen = callback.selected_option or ""
        if field is None or chosen not in field.options:
            raise ValidationError("That level is not one of this incident's severities; choose one from the menu.")
        await self.service.set_values(incident, callback.user_id, {field.id: chosen})
        return ActionReply()

    @on_action(Action.EDIT_FIELDS)
    async def on_fields_clicked(self, callback: ActionCallback, button: p.EditFields) -> ActionReply:
        incident = await self.incidents.incident(button.incident_id, channel_id=callback.channel_id)
        if incident is None:
            raise NotFound("This incident no longer exists.")
        await self.service.require_changer(incident, callback.user_id)
        if not incident.fields:
            return ActionReply(ephemeral_text=NO_FIELDS)
        shown = {field.id: form_digest(incident.field_values.get(field.id, "")) for field in incident.fields}
        state = self.ctx.signer.dialog_state(p.FieldsDialog(incident_id=incident.id, shown=shown),
                                             callback.user_id, callback.channel_id)
        body = ui.DialogForm(Dialog.FIELDS, "Fields", state, tuple(_element(f, incident) for f in incident.fields),
                             submit_label="Save",
                             introduction=f"The fields of **{neutralize(incident.name)}**. Leave one empty to clear it.")
        await self.ctx.client.open_dialog(callback.trigger_id, self.ctx.dialog_url, body.to_json())
        return ActionReply()

    @on_dialog(Dialog.FIELDS)
    async def on_fields_submitted(self, form: DialogSubmission, dialog: p.FieldsDialog) -> DialogReply:
        if form.cancelled:
            return DialogReply()
        incident = await self.incidents.incident(dialog.incident_id)
        if incident is None:
            return DialogReply(error="This incident no longer exists.")
        values: dict[str, str | None] = {}
        for field in incident.fields:
            raw = form.submission.get(field.id)
            value = raw if isinstance(raw, str) and raw.strip() else None
            if dialog.shown.get(field.id) == form_digest(value or ""):
                continue  # left as prefilled: whatever it is now (someone else may have changed it) stands
            values[field.id] = value
        try:
            await self.service.set_values(incident, form.user_id, values, fresh=True)
        except DomainError as error:
            if error.field in values:
                return DialogReply(errors={str(error.field): self.error_text(error)})
            return DialogReply(error=self.error_text(error))
        return DialogReply()


def form_digest(value: str) -> str:
    """A short digest of a value as a form shows it (what the Fields dialog's state keeps per field)."""
    return hashlib.sha256(value.strip().encode()).hexdigest()[:16]


def _element(field: FieldDef, incident: Incident) -> ui.Element:
    """The dialog element of one field (its name is the field id), prefilled with the value."""
    current = incident.field_values.get(field.id, "")
    label = ui.fit_title(field.name, ui.ELEMENT_DISPLAY_NAME_MAX)
    if field.kind in (FieldKind.SEVERITY, FieldKind.SELECT):
        return dialogs.select(field.id, label, [(option, option) for option in field.options], default=current,
                              help_text=field.description, optional=True)
    if field.kind is FieldKind.USER:
        return ui.Select(field.id, label, data_source="users", default=current, optional=True,
                         help_text=ui.fit_title(field.description, ui.ELEMENT_HELP_TEXT_MAX))
    if field.kind is FieldKind.DATE:
        return dialogs.text(field.id, label, default=current, placeholder="YYYY-MM-DD", optional=True,
                            max_length=10, help_text=field.description or "A date, written YYYY-MM-DD.")
    return dialogs.text(field.id, label, default=current, optional=True, max_length=FIELD_TEXT_MAX,
                        help_text=field.description)


__all__ = ["FieldsPlugin", "render_fields", "shown_values", "split_name"]
