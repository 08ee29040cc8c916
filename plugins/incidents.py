"""Incidents from chat: start, commander, stages, steps, end/restart, announce, reaction trigger.

Thin: parse what the user typed or clicked → IncidentService → reply.  Identity is always the
``user_id`` Mattermost put in the request; incident and step ids come from signed contexts.

Dialogs open within a trigger id's life (3 s on older servers): before ``open_dialog`` a handler
asks Mattermost only for what the dialog shows and only what Mattermost has not vouched for
already. Whether the user may *change* something is checked when the dialog is submitted (every
change goes through ``IncidentService.change``), not before it opens.
"""

from __future__ import annotations

import logging
import re
import shlex

from domain import DomainError, NotFound, ValidationError, parse_stage_number, parse_step_ref
from domain.errors import COMMAND
from domain.freshness import status_mark
from domain.ids import is_valid_id
from domain.models import Incident, StepRef
from gateway import dialogs, ui
from gateway import payloads as p
from gateway.cards import step_details
from gateway.errors import MattermostError
from gateway.ids import Action, Dialog
from gateway.messages import ALIASES, USAGES, inline_code, neutralize, unknown_command_text, usage_line
from gateway.models import (
    ActionCallback,
    ActionReply,
    CommandReply,
    DialogReply,
    DialogSubmission,
    SlashCommand,
    Team,
    User,
    WebSocketEvent,
)
from gateway.routing import on_action, on_command, on_dialog, on_event, on_outdated_button
from gateway.signing import spends_own_key
from plugins.base import FeaturePlugin
from services.context import BotContext
from services.incidents import IncidentService, StartRequest, post_id_from

log = logging.getLogger(__name__)

_MENTION = re.compile(r"^@?([a-z0-9._-]{1,64})$", re.IGNORECASE)
_CHANNEL_MENTION = re.compile(r"^~([a-z0-9_-]{1,64})$", re.IGNORECASE)
NO_PLAYBOOKS = ("You are not a member of any playbook in this team yet, so there is nothing to start an incident "
                f"with. Create one with `{COMMAND}playbook create` (templates included), or ask a teammate to add "
                f"you to theirs with `{COMMAND}playbook members add @you`.")


def _usage(text: str) -> ValidationError:
    return ValidationError(text)


def start_buttons(ctx: BotContext, teams: list[Team], channel_id: str, post_id: str = "") -> CommandReply:
    """A Start incident button per team (``teams``: the ones the user shares with the bot), bound to
    ``channel_id``; a click opens the start dialog (IncidentPlugin.on_start_clicked)."""
    if not teams:
        return CommandReply(text="We share no team, so I cannot start an incident for you.")
    buttons = tuple(ui.Button(f"start{team.id}", f"Start incident in {team.display_name or team.name}",
                              p.StartIncident(team_id=team.id, post_id=post_id), "primary") for team in teams)
    attachment = ui.Attachment(fallback="Start an incident", actions=buttons)
    return CommandReply(text="Click to open the start dialog:",
                        attachments=[attachment.to_json(ctx.signer, ctx.action_url, channel_id)])

#: What a click on a button posted by a previous version gets (and the card is redrawn).
OUTDATED_CARD = "This card is out of date — it has been refreshed; try again."


class IncidentPlugin(FeaturePlugin):
    """Handles the incident commands, the card's buttons and the incident dialogs."""

    def __init__(self, ctx: BotContext, service: IncidentService) -> None:
        super().__init__(ctx)
        self.service = service
        self.directory = service.directory

    # Helpers -------------------------------------------------------------------------------

    async def _user_arg(self, text: str, team_id: str) -> User:
        match = _MENTION.match(text.strip())
        if not match:
            raise _usage(f'"{neutralize(text)}" is not a username. Write it as @username.')
        # Missing and outside the incident's team get one answer (the bot sees other teams' users).
        user = await self.directory.team_user_by_username(team_id, match.group(1))
        if user is None:
            raise NotFound(f"There is no user @{neutralize(match.group(1))} in this team. Check the spelling.")
        return user

    async def _incident_for_action(self, callback: ActionCallback, button: p.IncidentButton) -> Incident:
        incident = await self.service.incident(button.incident_id, channel_id=callback.channel_id)
        if incident is None:
            raise NotFound("This incident no longer exists.")
        return incident

    def _step_target(self, incident: Incident, text: str) -> StepRef:
        if not text:
            raise _usage("Say which step: S.N (stage and step, e.g. 2.3) or N for the active stage.")
        ref = parse_step_ref(text, incident.active_stage)
        incident.locate(ref)
        return ref

    async def _open_start_dialog(self, trigger_id: str, user_id: str, team_id: str, channel_id: str,
                                 name: str = "", post_id: str = "", *, vouched: bool = False) -> str:
        """Open the start dialog; return an error text for the user when it cannot be opened.

        ``vouched``: the team is a slash command's, so Mattermost has checked the membership.
        """
        playbooks = await self.service.playbooks_for(team_id, user_id, vouched=vouched)
        if not playbooks:
            return self.rendered(NO_PLAYBOOKS)
        options = sorted(((p.title, p.id) for p in playbooks), key=lambda item: (item[0].lower(), item[1]))
        state = self.ctx.signer.dialog_state(p.StartDialog(team_id=team_id, post_id=post_id), user_id, channel_id)
        intro = "Start an incident: Command Center creates its channel, adds you as commander and pins its card."
        if post_id:
            intro += " The post you chose is quoted in the new channel."
        body = ui.DialogForm(Dialog.START, "Start incident", state,
                             dialogs.start_incident_elements(options, name[:64]), submit_label="Start",
                             introduction=intro)
        await self.ctx.client.open_dialog(trigger_id, self.ctx.dialog_url, body.to_json())
        return ""

    async def _member_options(self, incident: Incident) -> list[tuple[str, str]]:
        """The people in the incident channel. Whoever clicked a card button may read that channel
        (api4/integration_action.go ``doPostAction`` checks read permission on the post), so may see them."""
        ids = await self.directory.channel_member_ids(incident.channel_id)
        users = await self.directory.users(i for i in ids if i != self.ctx.client.user_id)
        people = [u for u in users if not u.is_bot and u.active]
        return sorted(((f"@{u.username}", u.id) for u in people), key=lambda item: item[0])

    # Start ---------------------------------------------------------------------------------

    @on_command("start")
    async def on_start_incident(self, command: SlashCommand) -> CommandReply:
        try:
            words = shlex.split(command.arguments)
        except ValueError:
            words = command.arguments.split()
        post_id = ""
        if words and words[0].lower() == "--post":
            self.check_words(command, "start --post", words[1:])
            post_id = post_id_from(words[1])
            words = words[2:]
        option = next((word for word in words if word.startswith("--") and len(word) > 2), "")
        if option:
            raise _usage(f"{inline_code(option, limit=60)} is not an option of start (only --post, first).\n"
                         + usage_line("start --post", self.prefix(command)))
        name = " ".join(words)
        if command.via_dm or not command.trigger_id:
            return await self._start_buttons(command.user_id, command.channel_id, post_id)
        error = await self._open_start_dialog(command.trigger_id, command.user_id, command.team_id,
                                              command.channel_id, name, post_id,
                                              vouched=command.vouches_for_team(command.team_id))
        return CommandReply(text=error)

    async def _start_buttons(self, user_id: str, channel_id: str, post_id: str) -> CommandReply:
        """In a direct message there is no team and no trigger id: offer a button per team."""
        teams = []
        for team in await self.ctx.client.my_teams():
            if await self.directory.is_team_member(team.id, user_id):
                teams.append(team)
        return start_buttons(self.ctx, teams, channel_id, post_id)

    @on_action(Action.START)
    async def on_start_clicked(self, callback: ActionCallback, start: p.StartIncident) -> ActionReply:
        error = await self._open_start_dialog(callback.trigger_id, callback.user_id, start.team_id,
                                              callback.channel_id, post_id=start.post_id)
        return ActionReply(ephemeral_text=error)

    @on_action(Action.START_FROM_POST)
    async def on_start_from_post_clicked(self, callback: ActionCallback, start: p.StartFromPost) -> ActionReply:
        return await self.on_start_clicked(callback, start)

    @on_outdated_button()
    async def on_outdated_button(self, callback: ActionCallback) -> ActionReply:
        """A button posted by a previous version: never acted on; its card (if it was one) is redrawn
        with current buttons, and the user is told to click again."""
        incident_id = callback.args.get("i")
        incident = (await self.service.incident(incident_id, channel_id=callback.channel_id)
                    if isinstance(incident_id, str) and incident_id else None)
        if incident is None:
            return ActionReply(ephemeral_text="This message is out of date. Type "
                                              f"{self.command('help')} to see what you can do.")
        await self.service.show_current_card(incident)
        return ActionReply(ephemeral_text=OUTDATED_CARD)

    @on_event("reaction_added")
    async def on_reaction_added(self, event: WebSocketEvent) -> None:
        """The reaction trigger: offer the reacting user a button that starts an incident from the post."""
        reaction = event.reaction
        if reaction is None or reaction.emoji_name != self.ctx.settings.reaction_emoji:
            return
        user_id, post_id = reaction.user_id, reaction.post_id
        if not user_id or not post_id or user_id == self.ctx.client.user_id or await self.directory.is_bot(user_id):
            return
        channel_id = event.channel_id
        channel = await self.ctx.client.get_channel(channel_id)
        team_id = channel.team_id
        if not team_id:
            return  # direct and group messages belong to no team
        dm = await self.ctx.client.direct_channel_with(user_id)
        attachment = ui.Attachment(fallback="Start incident from this post", actions=(
            ui.Button("startfrompost", "Start incident from this post",
                      p.StartFromPost(team_id=team_id, post_id=post_id), "primary"),))
        link = f"{self.ctx.client.base_url}/_redirect/pl/{post_id}"
        await self.ctx.client.create_post(
            dm.id, f"You reacted with :{self.ctx.settings.reaction_emoji}: to [a post]({link}) in "
                   f"~{channel.name}.",
            props={"attachments": [attachment.to_json(self.ctx.signer, self.ctx.action_url, dm.id)]})

    @on_dialog(Dialog.START)
    @spends_own_key  # with the start's journal (services.incidents.start_named): nothing before it has an effect
    async def on_start_submitted(self, form: DialogSubmission, start: p.StartDialog) -> DialogReply:
        if form.cancelled:
            return DialogReply()
        submission = form.submission
        errors: dict[str, str] = {}
        playbook_id = submission.get("playbook")
        name = submission.get("name")
        description = submission.get("description") or ""
        if not isinstance(playbook_id, str) or not playbook_id:
            errors["playbook"] = "Choose a playbook."
        try:
            from domain import validation
            validation.incident_name(name if isinstance(name, str) else "")
        except ValidationError as error:
            errors["name"] = self.error_text(error)
        if not isinstance(description, str):
            errors["description"] = "The description must be text."
        if errors or not isinstance(playbook_id, str) or not isinstance(name, str):
            return DialogReply(errors=errors)
        request = StartRequest(actor_id=form.user_id, team_id=start.team_id, playbook_id=playbook_id,
                               name=name, description=description, source_post_id=start.post_id or None)
        try:
            started = await self.service.start_named(request)
        except ValidationError as error:  # at its field (the name, the description), else in the footer
            if error.field in ("name", "description"):
                return DialogReply(errors={error.field: self.error_text(error)})
            return DialogReply(error=self.error_text(error))
        try:
            await self._tell_creator(form, start, started.incident, started.channel_name, started.not_invited)
        except MattermostError as error:
            # The incident is started (and the creator is in its channel): say so, not that it failed.
            log.warning("could not tell the creator of incident %s where it is: %s", started.incident.id, error)
        return DialogReply()

    async def _tell_creator(self, form: DialogSubmission, start: p.StartDialog, incident: Incident,
                            channel_name: str, not_invited: tuple[str, ...] = ()) -> None:
        text = f"Your incident **{neutralize(incident.name)}** has started: ~{channel_name}. "
        if incident.commander_id == form.user_id:
            text += "You are its commander."
        else:  # the playbook's default commander
            text += f"Its commander is @{await self.directory.username(incident.commander_id)}, as the playbook says."
        if not_invited:
            names = ", ".join([f"@{await self.directory.username(user_id)}" for user_id in not_invited])
            text += (f" The playbook invites {names}, who could not be added to the channel: no longer a member "
                     "of the team.")
        if start.post_id and not incident.source_post_id:
            text += " The post you chose was not quoted because you cannot read it."
        await self.tell(form.user_id, form.channel_id, text)

    # Commander -----------------------------------------------------------------------------

    @on_command("commander")
    async def on_commander(self, command: SlashCommand) -> CommandReply:
        words = command.arguments.split()
        self.check_words(command, "commander", words)
        incident = await self.service.in_channel(command.channel_id)
        if not words:
            name = await self.directory.username(incident.commander_id)
            return CommandReply(text=f"The commander of **{neutralize(incident.name)}** is @{name}. "
                                     f"Change it with `{self.command('commander @user')}`.")
        user = await self._user_arg(words[0], incident.team_id)
        _, events = await self.service.change_commander(incident, command.user_id, user.id)
        return CommandReply(text="" if events else f"@{user.username} is already the commander.")

    @on_action(Action.COMMANDER)
    async def on_commander_clicked(self, callback: ActionCallback, button: p.ChangeCommander) -> ActionReply:
        incident = await self._incident_for_action(callback, button)
        options = await self._member_options(incident)
        state = self.ctx.signer.dialog_state(p.CommanderDialog(incident_id=incident.id), callback.user_id,
                                             callback.channel_id)
        body = ui.DialogForm(Dialog.COMMANDER, "Change commander", state, (
            dialogs.select("commander", "New commander", options, default=incident.commander_id,
                           help_text="Only members of the incident channel can be commander."),),
            submit_label="Change")
        await self.ctx.client.open_dialog(callback.trigger_id, self.ctx.dialog_url, body.to_json())
        return ActionReply()

    @on_dialog(Dialog.COMMANDER)
    async def on_commander_submitted(self, form: DialogSubmission, dialog: p.CommanderDialog) -> DialogReply:
        if form.cancelled:
            return DialogReply()
        incident = await self.service.incident(dialog.incident_id)
        if incident is None:
            return DialogReply(error="This incident no longer exists.")
        chosen = form.submission.get("commander")
        if not isinstance(chosen, str) or not chosen:
            return DialogReply(errors={"commander": "Choose the new commander."})
        if not is_valid_id(chosen):
            return DialogReply(errors={"commander": "Choose the new commander from the list."})
        try:
            await self.service.change_commander(incident, form.user_id, chosen, fresh=True)
        except ValidationError as error:
            return DialogReply(errors={"commander": self.error_text(error)})
        return DialogReply()

    # Stages --------------------------------------------------------------------------------

    @on_command("stage")
    async def on_stage(self, command: SlashCommand) -> CommandReply:
        words = command.arguments.split()
        if words and words[0].lower() == "show":
            self.check_words(command, "stage show", words[1:])
            incident = await self.service.in_channel(command.channel_id)
            view, _ = await self.service.stage_view(incident, command.user_id,
                                                    parse_stage_number(words[1], len(incident.stages)))
            return CommandReply(text=view["text"], attachments=view["attachments"])
        self.check_words(command, "stage", words)
        incident = await self.service.in_channel(command.channel_id)
        argument = words[0].lower() if words else ""
        if not argument:
            stage = incident.current_stage
            return CommandReply(
                text=f"Active stage: **{incident.active_stage + 1}/{len(incident.stages)} {neutralize(stage.title)}** "
                     f"({stage.done_count}/{len(stage.steps)} done).\n"
                     f"Change it with `{self.command('stage next')}`, `{self.command('stage prev')}` or "
                     f"`{self.command('stage <number>')}`; look at another with `{self.command('stage show <number>')}`.")
        if argument in ("next", "prev", "previous"):
            how: str | int = "next" if argument == "next" else "prev"
        else:
            how = parse_stage_number(argument, len(incident.stages))
        _, events = await self.service.set_stage(incident, command.user_id, how)
        return CommandReply(text="" if events else "That stage is already the active one.")

    @on_action(Action.NEXT_STAGE)
    async def on_next_stage_clicked(self, callback: ActionCallback, button: p.NextStage) -> ActionReply:
        await self.service.set_stage(await self._incident_for_action(callback, button), callback.user_id, "next",
                                     drawn=button.mark)
        return ActionReply()

    @on_action(Action.VIEW_STAGE)
    async def on_view_stage_clicked(self, callback: ActionCallback, button: p.ViewStage) -> ActionReply:
        """A private look at another stage. Its buttons need an ephemeral post, which only a bot allowed
        create_post_ephemeral (system admins, api4/post.go ``createEphemeralPost``) can make from a
        click; otherwise the view comes as text, and the ``stage show S`` command gives the buttons."""
        incident = await self._incident_for_action(callback, button)
        stage_index = button.stage
        view, text = await self.service.stage_view(incident, callback.user_id, stage_index)
        if self.ctx.client.may_post_ephemeral:  # learned at login, and forgotten on a refusal
            try:
                await self.ctx.client.create_ephemeral_post(callback.user_id, callback.channel_id, view["text"],
                                                            props={"attachments": view["attachments"]})
                return ActionReply()
            except MattermostError as error:
                if error.status != 403:
                    raise
        return ActionReply(ephemeral_text=f"{text}\n\nOnly you can see this. To work these steps with buttons, "
                                          f"type `{self.command(f'stage show {stage_index + 1}')}`.")

    @on_action(Action.SET_STAGE)
    async def on_set_stage_clicked(self, callback: ActionCallback, button: p.SetStage) -> ActionReply:
        """"Make this the active stage" in a private stage view: answered privately (no ``update``)."""
        incident = await self._incident_for_action(callback, button)
        stage_index = button.stage
        if not 0 <= stage_index < len(incident.stages):
            raise NotFound("This stage no longer exists.")
        _updated, events = await self.service.set_stage(incident, callback.user_id, stage_index)
        if not events:
            return ActionReply(ephemeral_text=f"Stage {stage_index + 1} is already the active stage.")
        return ActionReply(ephemeral_text=f"Stage {stage_index + 1} is now the active stage; the card shows it.")

    @on_action(Action.PREV_STAGE)
    async def on_prev_stage_clicked(self, callback: ActionCallback, button: p.PreviousStage) -> ActionReply:
        await self.service.set_stage(await self._incident_for_action(callback, button), callback.user_id, "prev",
                                     drawn=button.mark)
        return ActionReply()

    # Steps ---------------------------------------------------------------------------------

    async def _check_command(self, command: SlashCommand, done: bool) -> CommandReply:
        words = command.arguments.split()
        self.check_words(command, "check" if done else "uncheck", words)
        incident = await self.service.in_channel(command.channel_id)
        ref = self._step_target(incident, words[0])
        _, events = await self.service.check(incident, command.user_id, ref, done)
        if events:
            return CommandReply()
        return CommandReply(text=f"Step {ref.label} is already {'done' if done else 'open'}; nothing changed.")

    @on_command("check")
    async def on_check(self, command: SlashCommand) -> CommandReply:
        return await self._check_command(command, True)

    @on_command("uncheck")
    async def on_uncheck(self, command: SlashCommand) -> CommandReply:
        return await self._check_command(command, False)

    async def _check_clicked(self, callback: ActionCallback, button: p.MarkedStepButton, done: bool) -> ActionReply:
        incident = await self._incident_for_action(callback, button)
        step_id = button.step_id
        updated, events = await self.service.check(incident, callback.user_id, step_id, done, drawn=button.mark)
        if not button.from_view:
            return ActionReply()
        # A button in a private stage view: that post cannot be updated (an ephemeral post), so say what happened.
        ref = updated.locate(step_id)
        title = neutralize(updated.step(step_id).title)
        if not events:
            return ActionReply(ephemeral_text=f"Step {ref.label} **{title}** is already "
                                              f"{'done' if done else 'open'}; nothing changed.")
        return ActionReply(ephemeral_text=f"{'Checked' if done else 'Unchecked'} {ref.label} **{title}**; "
                                          "the card shows it.")

    @on_action(Action.CHECK)
    async def on_check_clicked(self, callback: ActionCallback, button: p.CheckStep) -> ActionReply:
        return await self._check_clicked(callback, button, True)

    @on_action(Action.UNCHECK)
    async def on_uncheck_clicked(self, callback: ActionCallback, button: p.UncheckStep) -> ActionReply:
        return await self._check_clicked(callback, button, False)

    @on_command("assign")
    async def on_assign(self, command: SlashCommand) -> CommandReply:
        parts = command.arguments.split()
        self.check_words(command, "assign", parts)
        incident = await self.service.in_channel(command.channel_id)
        ref = self._step_target(incident, parts[0])
        assignee = None if parts[1].lower() in ("none", "nobody", "-") else (await self._user_arg(parts[1], incident.team_id)).id
        _, events = await self.service.assign(incident, command.user_id, ref, assignee)
        return CommandReply(text="" if events else "Nothing changed: that is already the assignee.")

    @on_action(Action.ASSIGN)
    async def on_assign_clicked(self, callback: ActionCallback, button: p.AssignStep) -> ActionReply:
        incident = await self._incident_for_action(callback, button)
        step_id = button.step_id
        step = incident.step(step_id)
        ref = incident.locate(step_id)
        options = [("Nobody", "none")] + await self._member_options(incident)
        state = self.ctx.signer.dialog_state(p.AssignDialog(incident_id=incident.id, step_id=step_id),
                                             callback.user_id, callback.channel_id)
        body = ui.DialogForm(Dialog.ASSIGN, ui.fit_title(f"Assign step {ref.label}"), state, (
            dialogs.select("assignee", "Assignee", options, default=step.assignee_id or "none",
                           help_text="Members of the incident channel."),),
            submit_label="Assign", introduction=f"**{ref.label}** {neutralize(step.title)}")
        await self.ctx.client.open_dialog(callback.trigger_id, self.ctx.dialog_url, body.to_json())
        return ActionReply()

    @on_dialog(Dialog.ASSIGN)
    async def on_assign_submitted(self, form: DialogSubmission, dialog: p.AssignDialog) -> DialogReply:
        if form.cancelled:
            return DialogReply()
        incident = await self.service.incident(dialog.incident_id)
        if incident is None:
            return DialogReply(error="This incident no longer exists.")
        chosen = form.submission.get("assignee")
        if not isinstance(chosen, str) or not chosen:
            return DialogReply(errors={"assignee": "Choose someone, or Nobody."})
        if chosen != "none" and not is_valid_id(chosen):
            return DialogReply(errors={"assignee": "Choose someone from the list, or Nobody."})
        try:
            await self.service.assign(incident, form.user_id, dialog.step_id,
                                      None if chosen == "none" else chosen, fresh=True)
        except ValidationError as error:
            return DialogReply(errors={"assignee": self.error_text(error)})
        return DialogReply()

    @on_command("run")
    async def on_run(self, command: SlashCommand) -> CommandReply:
        words = command.arguments.split()
        self.check_words(command, "run", words)
        incident = await self.service.in_channel(command.channel_id)
        ref = self._step_target(incident, words[0])
        return await self.service.run_step(incident, command.user_id, ref, trigger_id=command.trigger_id)

    @on_action(Action.RUN)
    async def on_run_clicked(self, callback: ActionCallback, button: p.RunStep) -> ActionReply:
        incident = await self._incident_for_action(callback, button)
        step_id = button.step_id
        reply = await self.service.run_step(incident, callback.user_id, step_id, trigger_id=callback.trigger_id,
                                            drawn=button.mark)
        text = reply.text
        if not text and button.from_view:  # from a private stage view: say it ran
            text = f"Ran {incident.locate(step_id).label}; the channel shows it."
        return ActionReply(ephemeral_text=text)

    async def _step_details(self, incident: Incident, user_id: str, ref: StepRef) -> str:
        await self.service.require_viewer(incident, user_id)
        step = incident.stages[ref.stage].steps[ref.index]
        ids = [x for x in (step.assignee_id, step.state_changed_by) if x]
        names = {uid: name for uid in ids if (name := await self.directory.username(uid))}
        return step_details(incident, ref, names)

    @on_action(Action.STEP_DETAILS)
    async def on_step_details_clicked(self, callback: ActionCallback, button: p.StepDetails) -> ActionReply:
        """Read-only, and the card is not ephemeral: answer with private text, leave the card as it is."""
        incident = await self._incident_for_action(callback, button)
        ref = incident.locate(button.step_id)
        return ActionReply(ephemeral_text=await self._step_details(incident, callback.user_id, ref))

    @on_command("step")
    async def on_step(self, command: SlashCommand) -> CommandReply:
        words = command.arguments.split(None, 1)
        self.check_words(command, "step", words)
        verb = ALIASES.get(f"step {words[0].lower()}", f"step {words[0].lower()}").split()[1]
        rest = words[1].strip() if len(words) > 1 else ""
        if f"step {verb}" not in USAGES:
            near = unknown_command_text(words[0], rest, self.prefix(command), family="step")
            raise _usage(near or f"{inline_code(words[0], limit=60)} is not a step command.\n"
                         + usage_line("step", self.prefix(command)))
        self.check_words(command, f"step {verb}", rest.split())
        incident = await self.service.in_channel(command.channel_id)
        if verb == "show":
            return CommandReply(text=await self._step_details(incident, command.user_id,
                                                              self._step_target(incident, rest)))
        if verb == "add":
            parts = rest.split(None, 1)
            if parts and parts[0].isdigit() and len(parts) == 2:
                stage, title = parse_stage_number(parts[0], len(incident.stages)), parts[1]
            else:
                stage, title = incident.active_stage, rest
            await self.service.add_step(incident, command.user_id, stage, title)
            return CommandReply()
        if verb == "remove":
            await self.service.remove_step(incident, command.user_id, self._step_target(incident, rest))
            return CommandReply()
        if verb == "rename":
            parts = rest.split(None, 1)
            _, events = await self.service.rename_step(incident, command.user_id,
                                                       self._step_target(incident, parts[0]), parts[1])
            return CommandReply(text="" if events else "That is already the step's title.")
        if verb == "move":
            parts = rest.split()
            if not parts[1].isdigit():
                raise _usage(f"{inline_code(parts[1], limit=60)} is not a position: write a number from 1.\n"
                             + usage_line("step move", self.prefix(command)))
            _, events = await self.service.move_step(incident, command.user_id, self._step_target(incident, parts[0]),
                                                     int(parts[1]) - 1)
            return CommandReply(text="" if events else "The step is already at that position.")
        raise AssertionError(f"step {verb} has a usage but no handler")

    # End and restart -----------------------------------------------------------------------

    async def _confirm(self, dialog_id: Dialog, trigger_id: str, user_id: str, channel_id: str,
                       incident: Incident) -> None:
        """Ask before ending or restarting; who may do it is checked when the user confirms, and the
        confirmation holds only for the state it was asked in (an incident ended and restarted meanwhile
        is not ended by an old dialog)."""
        confirmation = (p.EndDialog if dialog_id is Dialog.END else p.RestartDialog)(
            incident_id=incident.id, mark=status_mark(incident))
        state = self.ctx.signer.dialog_state(confirmation, user_id, channel_id)
        if dialog_id is Dialog.END:
            title, label = "End incident", "End incident"
            intro = (f"End **{neutralize(incident.name)}**? Its duration stops and its checklist becomes read-only; "
                     f"{incident.steps_done}/{incident.steps_total} steps are done. You can restart it later.")
        else:
            title, label = "Restart incident", "Restart"
            intro = f"Reopen **{neutralize(incident.name)}**? Its duration runs again from the original start."
        elements = dialogs.end_incident_elements() if dialog_id is Dialog.END else ()
        await self.ctx.client.open_dialog(trigger_id, self.ctx.dialog_url,
                                          ui.DialogForm(dialog_id, title, state, elements, submit_label=label,
                                                        introduction=intro).to_json())

    async def _confirm_command(self, command: SlashCommand, dialog_id: Dialog) -> CommandReply:
        self.check_words(command, "end" if dialog_id is Dialog.END else "restart", command.arguments.split())
        incident = await self.service.in_channel(command.channel_id)
        if dialog_id is Dialog.END and not incident.is_ongoing:
            return CommandReply(text=f"This incident has already ended. Type {self.command('restart')} to reopen it.")
        if dialog_id is Dialog.RESTART and incident.is_ongoing:
            return CommandReply(text="This incident is still ongoing; there is nothing to restart.")
        if not command.trigger_id:
            raise _usage("Confirm this in the incident channel with the slash command.")
        await self._confirm(dialog_id, command.trigger_id, command.user_id, command.channel_id, incident)
        return CommandReply()

    @on_command("end")
    async def on_end(self, command: SlashCommand) -> CommandReply:
        return await self._confirm_command(command, Dialog.END)

    @on_command("restart")
    async def on_restart(self, command: SlashCommand) -> CommandReply:
        return await self._confirm_command(command, Dialog.RESTART)

    @on_action(Action.END)
    async def on_end_clicked(self, callback: ActionCallback, button: p.EndIncident) -> ActionReply:
        incident = await self._incident_for_action(callback, button)
        await self.service.require_drawn(incident, button.mark)
        await self._confirm(Dialog.END, callback.trigger_id, callback.user_id, callback.channel_id, incident)
        return ActionReply()

    @on_action(Action.RESTART)
    async def on_restart_clicked(self, callback: ActionCallback, button: p.RestartIncident) -> ActionReply:
        incident = await self._incident_for_action(callback, button)
        await self.service.require_drawn(incident, button.mark)
        await self._confirm(Dialog.RESTART, callback.trigger_id, callback.user_id, callback.channel_id, incident)
        return ActionReply()

    async def _confirmed(self, form: DialogSubmission, dialog: p.EndDialog | p.RestartDialog) -> DialogReply:
        if form.cancelled:
            return DialogReply()
        incident = await self.service.incident(dialog.incident_id)
        if incident is None:
            return DialogReply(error="This incident no longer exists.")
        try:
            # Mattermost checks a submission only against the channel the client names (api4
            # submitDialog), so the membership is asked afresh.
            if isinstance(dialog, p.EndDialog):
                final = form.submission.get("final_update")
                await self.service.end(incident, form.user_id, fresh=True, drawn=dialog.mark,
                                       final_update=final if isinstance(final, str) else "")
            else:
                await self.service.restart(incident, form.user_id, fresh=True, drawn=dialog.mark)
        except DomainError as error:
            if error.field == "text" and isinstance(dialog, p.EndDialog):  # the final update's text
                return DialogReply(errors={"final_update": self.error_text(error)})
            return DialogReply(error=self.error_text(error))
        except Exception as error:  # shown in the dialog's footer
            return DialogReply(error=self.error_text(error))
        return DialogReply()

    @on_dialog(Dialog.END)
    async def on_end_submitted(self, form: DialogSubmission, dialog: p.EndDialog) -> DialogReply:
        return await self._confirmed(form, dialog)

    @on_dialog(Dialog.RESTART)
    async def on_restart_submitted(self, form: DialogSubmission, dialog: p.RestartDialog) -> DialogReply:
        return await self._confirmed(form, dialog)

    # Announce ------------------------------------------------------------------------------

    @on_command("announce")
    async def on_announce(self, command: SlashCommand) -> CommandReply:
        words = command.arguments.split()
        self.check_words(command, "announce", words)
        incident = await self.service.in_channel(command.channel_id)
        typed = list(dict.fromkeys(words))
        names = {raw: match.group(1).lower() for raw in typed if (match := _CHANNEL_MENTION.match(raw))}
        outcomes = await self.service.announce(incident, command.user_id, list(names.values()))
        done, refused = [], []
        for raw in typed:
            if raw not in names:
                refused.append(f"{inline_code(raw, limit=200)} is not a channel; write it as ~channel-name")
            elif outcomes[names[raw]]:
                refused.append(f"~{names[raw]}: {outcomes[names[raw]]}")
            else:
                done.append(f"~{names[raw]}")
        lines = []
        if done:
            lines.append("Announced in " + ", ".join(dict.fromkeys(done)) + ".")
        if refused:
            lines.append("Not announced:\n" + "\n".join(f"- {item}" for item in dict.fromkeys(refused)))
        return CommandReply(text="\n".join(lines))
