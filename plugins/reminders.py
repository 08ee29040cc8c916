"""Reminders from chat: *Snooze 15 min* on a reminder, *Request update* (card button and command).

Thin: the signed button or the typed command → ReminderService → reply. *Post update* on a
reminder is the updates feature's action (it opens the update dialog); this plugin only draws it
(services/reminders.py).
"""

from __future__ import annotations

from gateway import payloads as p
from gateway.ids import Action
from gateway.messages import neutralize
from gateway.models import ActionCallback, ActionReply, CommandReply, SlashCommand
from gateway.routing import on_action, on_command
from plugins.base import FeaturePlugin
from services.context import BotContext
from services.incidents import IncidentService
from services.reminders import ReminderService, clock_time


class ReminderPlugin(FeaturePlugin):
    """Handles Snooze, Request update and the ``request-update`` command."""

    def __init__(self, ctx: BotContext, reminders: ReminderService, incidents: IncidentService) -> None:
        super().__init__(ctx)
        self.reminders = reminders
        self.incidents = incidents

    @on_action(Action.SNOOZE_REMINDER)
    async def on_snooze_clicked(self, callback: ActionCallback, button: p.SnoozeReminder) -> ActionReply:
        incident = await self.reminders.incident_for_button(button.incident_id)
        updated = await self.reminders.snooze(incident, callback.user_id, drawn_for=button.due_at)
        due = updated.next_update_due_at
        when = clock_time(due) if due is not None else "later"
        return ActionReply(ephemeral_text=f"Snoozed: the next status update of **{neutralize(updated.name)}** is "
                                          f"due at {when}.")

    @on_action(Action.REQUEST_UPDATE)
    async def on_request_update_clicked(self, callback: ActionCallback, button: p.RequestUpdate) -> ActionReply:
        incident = await self.reminders.incident_for_button(button.incident_id)
        await self.reminders.request_update(incident, callback.user_id)
        return ActionReply(ephemeral_text="The commander has been asked for a status update.")

    @on_command("request-update")
    async def on_request_update(self, command: SlashCommand) -> CommandReply:
        self.check_words(command, "request-update", command.arguments.split())
        incident = await self.incidents.in_channel(command.channel_id)
        await self.reminders.request_update(incident, command.user_id)
        return CommandReply(text="The commander has been asked for a status update.")
