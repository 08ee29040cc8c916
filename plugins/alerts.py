"""Alerts in chat (README "Alerts"): the Start incident button of an alert suggestion.

A click opens the ordinary start dialog, filled from the alert group (name from the rule's
template, a description quoting the alerts, the rule's playbook chosen when the clicker may use it).
The submission is the start dialog's own (IncidentPlugin.on_start_submitted), so whoever clicks
is checked exactly as for the start command: only their playbooks are offered, and a forged
submission naming another one is refused by IncidentService.start_named.
"""

from __future__ import annotations

from gateway import dialogs, ui
from gateway import payloads as p
from gateway.ids import Action, Dialog
from gateway.messages import neutralize
from gateway.models import ActionCallback, ActionReply
from gateway.routing import on_action
from plugins.base import FeaturePlugin
from plugins.incidents import NO_PLAYBOOKS
from services.alerts import AlertService
from services.context import BotContext
from services.incidents import IncidentService


class AlertPlugin(FeaturePlugin):
    """Handles the suggestion post's button."""

    def __init__(self, ctx: BotContext, alerts: AlertService, incidents: IncidentService) -> None:
        super().__init__(ctx)
        self.alerts = alerts
        self.incidents = incidents

    @on_action(Action.START_FROM_ALERT)
    async def on_start_from_alert(self, callback: ActionCallback, start: p.StartFromAlert) -> ActionReply:
        started = await self.alerts.started_from(start.group_id)
        if started is not None:
            return ActionReply(ephemeral_text=f"An incident was already started from this alert: "
                                              f"**{neutralize(started)}**. Look for it with {self.command('list')}.")
        defaults = await self.alerts.start_dialog_defaults(start.group_id)
        if defaults is None:
            return ActionReply(ephemeral_text="This alert is no longer routed by any rule, so there is nothing to "
                                              f"fill the dialog from. Start one with {self.command('start')}.")
        name, description, playbook_name = defaults
        playbooks = await self.incidents.playbooks_for(start.team_id, callback.user_id)
        if not playbooks:
            return ActionReply(ephemeral_text=self.rendered(NO_PLAYBOOKS))
        wanted = playbook_name.strip().lower()
        chosen = next((pb.id for pb in playbooks if pb.id == playbook_name or pb.title.strip().lower() == wanted), None)
        options = sorted(((pb.title, pb.id) for pb in playbooks), key=lambda item: (item[0].lower(), item[1]))
        intro = "Start an incident from this alert: the alert post is quoted in the new channel."
        if chosen is None:
            intro += (f" The rule's playbook \"{neutralize(playbook_name)}\" is not one you may start from; "
                      "choose one of yours.")
        state = self.ctx.signer.dialog_state(p.StartDialog(team_id=start.team_id, post_id=callback.post_id),
                                             callback.user_id, callback.channel_id)
        body = ui.DialogForm(Dialog.START, "Start incident", state,
                             dialogs.start_incident_elements(options, name, description=description, playbook_id=chosen),
                             submit_label="Start", introduction=intro)
        await self.alerts.remember_start(callback.post_id, start.group_id)
        await self.ctx.client.open_dialog(callback.trigger_id, self.ctx.dialog_url, body.to_json())
        return ActionReply()
