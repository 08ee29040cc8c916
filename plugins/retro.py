"""The retrospective from chat: ``retro`` (the dialog) and ``retro none``, the reminder's and the
reminder's *Write retrospective* and *No retrospective* buttons, the dialog. Thin: the rules are
domain/retro.py, the flow services/retro.py."""

from __future__ import annotations

from domain import DomainError, Incident, NotFound
from domain.errors import COMMAND
from domain.limits import RETRO_TEXT_MAX
from gateway import dialogs, ui
from gateway import payloads as p
from gateway.ids import Action, Dialog
from gateway.messages import neutralize
from gateway.models import ActionCallback, ActionReply, CommandReply, DialogReply, DialogSubmission, SlashCommand
from gateway.routing import on_action, on_command, on_dialog
from plugins.base import FeaturePlugin
from services.context import BotContext
from services.history import HistoryService
from services.retro import RetroService

_NONE_WORDS = ("none", "skip", "no")


class RetroPlugin(FeaturePlugin):
    """Handles ``retro``, the retrospective buttons and dialog."""

    def __init__(self, ctx: BotContext, service: RetroService, history: HistoryService) -> None:
        super().__init__(ctx)
        self.service = service
        self.history = history

    async def _open(self, trigger_id: str, user_id: str, channel_id: str, incident: Incident) -> None:
        text = await self.service.prefill(incident, user_id)
        intro = f"The retrospective of **{neutralize(incident.name)}**, posted under your name."
        if len(text) > ui.TEXTAREA_MAX:
            # A dialog prefills at most TEXTAREA_MAX characters: a longer published text is not cut
            # (publishing the cut text would lose the rest), it is left out and the dialog says so.
            text = ""
            intro += (" Its published text is longer than this dialog can show; what you publish here replaces it"
                      f" (it is in the incident channel, and in {COMMAND}info).")
        state = self.ctx.signer.dialog_state(p.RetroDialog(incident_id=incident.id), user_id, channel_id)
        body = ui.DialogForm(Dialog.RETRO, "Retrospective", state, (
            dialogs.text("text", "Retrospective", default=text, textarea=True, min_length=1,
                         max_length=RETRO_TEXT_MAX, help_text="Markdown. Posted in the incident channel and its "
                                                              "broadcast channels."),),
            submit_label="Publish", introduction=self.rendered(intro))
        await self.ctx.client.open_dialog(trigger_id, self.ctx.dialog_url, body.to_json())

    @on_command("retro")
    async def on_retro(self, command: SlashCommand) -> CommandReply:
        words = command.arguments.split()
        skip = bool(words) and words[-1].lower() in _NONE_WORDS
        reference = " ".join(words[:-1] if skip else words)
        incident = await self.history.resolve(command.user_id, command.team_id, command.channel_id, reference, "retro")
        if skip:
            await self.service.skip(incident, command.user_id)
            return CommandReply(text=f"Recorded: **{neutralize(incident.name)}** has no retrospective.")
        if command.via_dm or not command.trigger_id:
            await self.service.prefill(incident, command.user_id)  # refusals first, here
            button = ui.Button("writeretro", "Write retrospective", p.WriteRetro(incident_id=incident.id), "primary")
            attachment = ui.Attachment(fallback="Write the retrospective", actions=(button,))
            return CommandReply(text=f"Click to write the retrospective of **{neutralize(incident.name)}**:",
                                attachments=[attachment.to_json(self.ctx.signer, self.ctx.action_url,
                                                                command.channel_id)])
        await self._open(command.trigger_id, command.user_id, command.channel_id, incident)
        return CommandReply()

    @on_action(Action.WRITE_RETRO)
    async def on_write_clicked(self, callback: ActionCallback, button: p.WriteRetro) -> ActionReply:
        # Not bound to the card's channel: the reminder's button in a direct message opens it too.
        incident = await self.service.incident(button.incident_id)
        await self._open(callback.trigger_id, callback.user_id, callback.channel_id, incident)
        return ActionReply()

    @on_action(Action.SKIP_RETRO)
    async def on_skip_clicked(self, callback: ActionCallback, button: p.SkipRetro) -> ActionReply:
        incident = await self.service.incident(button.incident_id)
        await self.service.skip(incident, callback.user_id)
        return ActionReply(ephemeral_text=f"Recorded: **{neutralize(incident.name)}** has no retrospective.")

    @on_dialog(Dialog.RETRO)
    async def on_retro_submitted(self, form: DialogSubmission, dialog: p.RetroDialog) -> DialogReply:
        if form.cancelled:
            return DialogReply()
        try:
            incident = await self.service.incident(dialog.incident_id)
        except NotFound as error:
            return DialogReply(error=self.error_text(error))
        text = form.submission.get("text")
        try:
            await self.service.publish(incident, form.user_id, text if isinstance(text, str) else "")
        except DomainError as error:
            if error.field == "text":
                return DialogReply(errors={"text": self.error_text(error)})
            return DialogReply(error=self.error_text(error))
        return DialogReply()


__all__ = ["RetroPlugin"]
