"""Status updates from chat: the ``update`` command, the card's (and a reminder's) Update button, the update dialog.

Thin: the dialog is built from the incident (its template, its "next update in" choices); posting,
broadcasting and telling the followers is services/updates.py. Who may post is checked when the
dialog is submitted, not before it opens (the trigger id lives 3 s).
"""

from __future__ import annotations

from domain import DomainError, Incident, NotFound
from domain import updates as ops
from domain.errors import COMMAND, InvalidState
from gateway import dialogs, ui
from gateway import payloads as p
from gateway.ids import Action, Dialog
from gateway.messages import neutralize
from gateway.models import ActionCallback, ActionReply, CommandReply, DialogReply, DialogSubmission, SlashCommand
from gateway.routing import on_action, on_command, on_dialog
from plugins.base import FeaturePlugin
from services.context import BotContext
from services.history import HistoryService
from services.updates import UpdateService

_FIELDS = ("text", "next_in")
ENDED_NO_UPDATES = (f"This incident has ended, so it takes no more status updates. Type {COMMAND}restart to "
                    "reopen it.")


class UpdatesPlugin(FeaturePlugin):
    """Handles ``update``, the Update button and the update dialog."""

    def __init__(self, ctx: BotContext, service: UpdateService, history: HistoryService) -> None:
        super().__init__(ctx)
        self.service = service
        self.history = history

    async def _open(self, trigger_id: str, user_id: str, channel_id: str, incident: Incident, *,
                    final: bool = False) -> None:
        if not incident.is_ongoing:
            raise InvalidState(ENDED_NO_UPDATES)
        choices = [(choice.value, choice.label) for choice in ops.next_update_choices(incident)]
        state = self.ctx.signer.dialog_state(p.UpdateDialog(incident_id=incident.id, final=final), user_id, channel_id)
        body = ui.DialogForm(Dialog.UPDATE, "Status update", state,
                             dialogs.update_elements(choices, incident.updates.template), submit_label="Post update",
                             introduction=f"A status update of **{neutralize(incident.name)}**, posted in its "
                                          "channel under your name.")
        await self.ctx.client.open_dialog(trigger_id, self.ctx.dialog_url, body.to_json())

    @on_command("update")
    async def on_update(self, command: SlashCommand) -> CommandReply:
        incident = await self.history.resolve(command.user_id, command.team_id, command.channel_id,
                                              command.arguments, "update")
        if not incident.is_ongoing:
            return CommandReply(text=self.rendered(ENDED_NO_UPDATES))
        if command.via_dm or not command.trigger_id:
            # No trigger id here (a direct message): a button gets one from the click.
            button = ui.Button("postupdate", "Post update", p.PostUpdate(incident_id=incident.id), "primary")
            attachment = ui.Attachment(fallback="Post a status update", actions=(button,))
            return CommandReply(text=f"Click to write a status update of **{neutralize(incident.name)}**:",
                                attachments=[attachment.to_json(self.ctx.signer, self.ctx.action_url,
                                                                command.channel_id)])
        await self._open(command.trigger_id, command.user_id, command.channel_id, incident)
        return CommandReply()

    @on_action(Action.POST_UPDATE)
    async def on_update_clicked(self, callback: ActionCallback, button: p.PostUpdate) -> ActionReply:
        # Not bound to the card's channel: a reminder's button in a direct message opens it too.
        incident = await self.service.incidents.incident(button.incident_id)
        if incident is None:
            raise NotFound("This incident no longer exists.")
        await self._open(callback.trigger_id, callback.user_id, callback.channel_id, incident)
        return ActionReply()

    @on_dialog(Dialog.UPDATE)
    async def on_update_submitted(self, form: DialogSubmission, dialog: p.UpdateDialog) -> DialogReply:
        if form.cancelled:
            return DialogReply()
        incident = await self.service.incidents.incident(dialog.incident_id)
        if incident is None:
            return DialogReply(error="This incident no longer exists.")
        text = form.submission.get("text")
        next_in = form.submission.get("next_in")
        text = text if isinstance(text, str) else ""
        try:
            if dialog.final:
                await self.service.require_poster(incident, form.user_id)
                await self.service.incidents.end(incident, form.user_id, fresh=True, final_update=text)
            else:
                await self.service.post(incident, form.user_id, text, next_in if isinstance(next_in, str) else None)
        except DomainError as error:
            if error.field in _FIELDS:
                return DialogReply(errors={str(error.field): self.error_text(error)})
            return DialogReply(error=self.error_text(error))
        return DialogReply()
