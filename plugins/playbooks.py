"""The `playbook ...` commands: list, show, create, edit, delete, members, export, import, templates.

Thin: parse what the user typed, clicked or submitted → PlaybookService → reply. Playbooks are
addressed by title (any case; quote titles with spaces when more words follow) or by id. The team
is the one of the channel where the command is typed; in a direct message with the bot it is the
one team the user shares with the bot, or the one named with ``--team NAME``. Buttons and dialogs
carry the team and playbook ids in signed contexts; identity is always Mattermost's ``user_id``.
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from domain import NotFound, Playbook, ValidationError, limits, outline
from domain.durations import format_duration, parse_duration
from domain.errors import COMMAND, Conflict, DomainError
from domain.models import WebhookTarget
from domain.templates import DEFAULT_TEMPLATE, TEMPLATES, Template, find_template
from domain.webhooks import WORD_OF
from gateway import dialogs, ui
from gateway import payloads as p
from gateway import playbook_yaml as pyaml
from gateway.directory import Directory
from gateway.ids import Action, Dialog
from gateway.messages import (
    ALIASES,
    USAGES,
    inline_code,
    limited_markdown,
    neutralize,
    playbook_help_text,
    unknown_command_text,
)
from gateway.models import (
    ActionCallback,
    ActionReply,
    CommandReply,
    DialogReply,
    DialogSubmission,
    SlashCommand,
)
from gateway.playbook_yaml import PlaybookFormatError
from gateway.routing import on_action, on_command, on_dialog
from plugins.base import FeaturePlugin
from services.context import BotContext
from services.playbooks import MAX_FILE_BYTES, SETTINGS_FIELDS, PlaybookService, SettingsInput

log = logging.getLogger(__name__)

TEXTAREA_MAX = 3000  # the web client's limit for a dialog textarea
# Only the web client enforces a textarea's max_length: anyone can submit more, so it is checked again.
IMPORT_DIALOG_YAML = pyaml.SizeLimit(TEXTAREA_MAX, "Send longer playbooks to me as a .yaml file in a direct "
                                                   f"message (up to {MAX_FILE_BYTES // 1024} KB).")
EDIT_DIALOG_STAGES = pyaml.SizeLimit(TEXTAREA_MAX, f'Edit longer playbooks with quick edits (`{COMMAND}playbook '
                                                   'edit "<title>" step ...`), or export, edit and import the file.')
_MENTION = re.compile(r"^@?([a-z0-9._-]{1,64})$", re.IGNORECASE)
#: Words that end a title in ``edit <title> step|stage <verb> ...``: each kind's verbs and their other names.
_EDIT_KEYWORDS: dict[str, tuple[str, ...]] = {
    kind: verbs + tuple(word for word, verb in outline.SYNONYMS.items() if verb in verbs)
    for kind, verbs in outline.VERBS.items()
}

def _words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # an apostrophe in a title, say
        return text.split()


def _pop_option(words: list[str], name: str) -> tuple[str, list[str]]:
    """Remove ``--name VALUE`` (or ``--name=VALUE``) from ``words``."""
    rest, value = [], ""
    iterator = iter(words)
    for word in iterator:
        if word.lower() == name:
            value = next(iterator, "")
            if not value:
                raise ValidationError(f"Give a value after {name}, for example `{name} acme`.")
        elif word.lower().startswith(name + "="):
            value = word.split("=", 1)[1]
        else:
            rest.append(word)
    return value, rest


def _done_text(change: outline.OutlineChange) -> str:
    """What an outline edit did, for the person who typed it."""
    label, title, value = change.label, neutralize(change.title), change.value
    texts = {
        "stage add": f'added stage {label} "{title}".',
        "stage rename": f'renamed stage {label} to "{title}".',
        "stage remove": f'removed stage {label} "{title}" and its steps.',
        "stage move": f"moved stage {change.before} to position {label}.",
        "step add": f'added step {label} "{title}".',
        "step remove": f'removed step {label} "{title}".',
        "step rename": f'renamed step {label} to "{title}".',
        "step describe": f"{'set' if value else 'cleared'} the description of step {label}.",
        "step command": (f"step {label} now runs {inline_code(value)}." if value
                         else f"step {label} no longer has a command."),
        "step assign": (f"set the default assignee of step {label}." if value
                        else f"cleared the default assignee of step {label}."),
        "step move": f'moved step "{title}" to {label}.',
    }
    return texts[change.what]


def _one_line(text: str, width: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _field_error(error: DomainError, fields: Sequence[str], text: str) -> DialogReply:
    """``text`` (the error in words) at the dialog field the error names (``DomainError.field``), or in
    the dialog's footer when it names none of ``fields`` (the dialog's elements)."""
    if error.field is not None and error.field in fields:
        return DialogReply(errors={error.field: text})
    return DialogReply(error=text)


def webhook_lines(targets: Sequence[WebhookTarget]) -> str:
    """The settings dialog's webhooks: one a line, the URL then its events (none: all)."""
    return "\n".join(" ".join([t.url, *(WORD_OF[k] for k in t.events)]) for t in targets)


def webhook_secrets_text(secrets: Sequence[tuple[str, str]]) -> str:
    """The signing secret of each new webhook, told once to whoever added it (docs/webhooks.md)."""
    if not secrets:
        return ""
    lines = [f"- {inline_code(url)}: {inline_code(secret)}" for url, secret in secrets]
    return ("\n\nSigning secret of each new webhook (shown only now; configure it in the receiver to verify "
            "the X-CommandCenter-Signature header, see docs/webhooks.md):\n" + "\n".join(lines))


def _names(text: str) -> list[str]:
    """``~a, ~b`` / ``@a @b``: the names typed, separated by spaces or commas."""
    return [word for word in re.split(r"[\s,]+", text) if word.strip("~@")]


def _template_for(value: Any) -> Template | None:
    return find_template(value) if isinstance(value, str) else None


class PlaybookPlugin(FeaturePlugin):
    """Handles the `playbook ...` commands, their buttons and dialogs, and YAML files sent by DM."""

    def __init__(self, ctx: BotContext, service: PlaybookService) -> None:
        super().__init__(ctx)
        self.service = service
        self.directory: Directory = service.directory

    # Parsing helpers -------------------------------------------------------------------------

    async def _team(self, command: SlashCommand, team_name: str) -> str:
        """The team the command is about (see the module docstring)."""
        if not team_name and command.team_id:
            return command.team_id
        teams = [t for t in await self.ctx.client.my_teams()
                 if await self.directory.is_team_member(t.id, command.user_id)]
        if team_name:
            wanted = team_name.strip().lstrip("~").lower()
            for team in teams:
                if wanted in (team.name.lower(), team.display_name.lower()):
                    return team.id
            raise NotFound(f'We share no team called "{neutralize(team_name)}". Teams we share: '
                           + (", ".join(t.name for t in teams) or "none") + ".")
        if len(teams) == 1:
            return teams[0].id
        if not teams:
            raise NotFound("We share no team, so there are no playbooks to show you here.")
        names = ", ".join(t.name for t in teams)
        raise ValidationError(f"We share several teams; say which one with `--team NAME` ({names}).")

    @staticmethod
    def _split_title(words: list[str], keywords: dict[str, tuple[str, ...]]) -> tuple[str, list[str]]:
        """Split ``<title words> <keyword> <verb> ...`` at the first keyword followed by one of its verbs."""
        for index in range(1, len(words) - 1):
            verbs = keywords.get(words[index].lower())
            if verbs and words[index + 1].lower() in verbs:
                return " ".join(words[:index]), words[index:]
        return " ".join(words), []

    def _actions(self, playbook: Playbook, team_id: str, channel_id: str) -> dict[str, Any]:
        """The Edit, Export and Delete buttons of ``show``, as an attachment's JSON."""
        ids = {"team_id": team_id, "playbook_id": playbook.id}
        return self._attachment(ui.Attachment(fallback="Playbook actions", actions=(
            ui.Button(Action.PLAYBOOK_EDIT.value, "Edit", p.EditPlaybook(**ids), "primary"),
            ui.Button(Action.PLAYBOOK_SETTINGS.value, "Settings", p.PlaybookSettings(**ids)),
            ui.Button(Action.PLAYBOOK_EXPORT.value, "Export YAML", p.ExportPlaybook(**ids)),
            ui.Button(Action.PLAYBOOK_DELETE.value, "Delete", p.DeletePlaybook(**ids), "danger"))), channel_id)

    def _attachment(self, attachment: ui.Attachment, channel_id: str) -> dict[str, Any]:
        return attachment.to_json(self.ctx.signer, self.ctx.action_url, channel_id)

    # Rendering -----------------------------------------------------------------------------

    async def render(self, playbook: Playbook) -> str:
        """The full outline of a playbook, as `show` prints it."""
        ids = list(playbook.member_ids) + [s.assignee_id for st in playbook.stages for s in st.steps if s.assignee_id]
        names = await self.service.usernames(ids)
        members = ", ".join(f"@{names[m]}" for m in playbook.member_ids if m in names) or "nobody"
        channel = "public" if playbook.create_public_channel else "private"
        lines = [f"#### {neutralize(playbook.title)}",
                 (f"Incident channels: **{channel}** · {len(playbook.stages)} stages · {playbook.step_count} steps"
                  f" · members: {members}")]
        if playbook.description:
            lines.append(f"> {neutralize(_one_line(playbook.description, 600))}")
        for s, stage in enumerate(playbook.stages, start=1):
            lines.append(f"**Stage {s}: {neutralize(stage.title)}**" + ("" if stage.steps else " — no steps yet"))
            for n, step in enumerate(stage.steps, start=1):
                extras = []
                if step.command:
                    extras.append(inline_code(step.command))
                if step.assignee_id:
                    extras.append(f"default assignee @{names.get(step.assignee_id, 'a former member')}")
                lines.append(f"- **{s}.{n}** {limited_markdown(step.title, one_line=True)}"
                             + "".join(f" · {x}" for x in extras))
                if step.description:
                    lines.append(f"  {limited_markdown(step.description, one_line=True, limit=200)}")
        return "\n".join(lines)

    # The command -------------------------------------------------------------------------------

    @on_command("playbook", "playbooks")
    async def on_playbook(self, command: SlashCommand) -> CommandReply:
        words = _words(command.arguments)
        team_name, words = _pop_option(words, "--team")
        verb = words[0].lower() if words else "help"
        handlers: dict[str, Callable[[SlashCommand, str, list[str]], Awaitable[CommandReply]]] = {
            "list": self._list, "show": self._show, "templates": self._templates, "create": self._create,
            "new": self._create, "edit": self._edit, "settings": self._settings, "delete": self._delete, "members": self._members,
            "export": self._export, "import": self._import,
        }
        handler = handlers.get(verb)
        if handler is None:
            help_table = playbook_help_text(self.ctx.settings.command_trigger, via_dm=command.via_dm)
            if verb == "help":
                return CommandReply(text=help_table)
            near = unknown_command_text(words[0], " ".join(words[1:]), self.prefix(command), family="playbook")
            return CommandReply(text=near or f"{inline_code(verb, limit=200)} is not a playbook command.\n\n"
                                + help_table)
        self.check_words(command, ALIASES.get(f"playbook {verb}", f"playbook {verb}"), words[1:])
        if verb == "templates":
            return await handler(command, "", words[1:])
        return await handler(command, await self._team(command, team_name), words[1:])

    async def _list(self, command: SlashCommand, team_id: str, words: list[str]) -> CommandReply:
        playbooks = await self.service.visible(team_id, command.user_id, vouched=command.vouches_for_team(team_id))
        if not playbooks:
            return CommandReply(text="You are not a member of any playbook in this team yet. Create one with "
                                     f"`{self.command('playbook create')}` (see `{self.command('playbook templates')}`), "
                                     "or ask a teammate to add you with "
                                     "`" + self.command('playbook members "<title>" add @you') + "`.")
        rows = ["#### Playbooks you can use in this team", "",
                "| Playbook | Stages | Steps | Incident channels | Members |", "|:--|--:|--:|:--|--:|"]
        for playbook in playbooks:
            rows.append(f"| {neutralize(playbook.title)} | {len(playbook.stages)} | {playbook.step_count} | "
                        f"{'public' if playbook.create_public_channel else 'private'} | {len(playbook.member_ids)} |")
        rows += ["", f"Details: `{self.command('playbook show <title>')}` · new: `{self.command('playbook create')}`"]
        return CommandReply(text="\n".join(rows))

    async def _show(self, command: SlashCommand, team_id: str, words: list[str]) -> CommandReply:
        playbook = await self.service.find(team_id, command.user_id, " ".join(words),
                                          vouched=command.vouches_for_team(team_id))
        return CommandReply(text=await self.render(playbook),
                            attachments=[self._actions(playbook, team_id, command.channel_id)])

    async def _templates(self, command: SlashCommand, team_id: str, words: list[str]) -> CommandReply:
        lines = ["#### Playbook templates", "", "| Template | Stages | Steps | Channels | About |",
                 "|:--|--:|--:|:--|:--|"]
        for template in TEMPLATES:
            lines.append(f"| **{template.title}** (`{template.key}`) | {len(template.stages)} | {template.step_count} "
                         f"| {'public' if template.create_public_channel else 'private'} | {template.summary} |")
        lines += ["", "Create one: `" + self.command('playbook create service-outage "Payments outage"') + "`"]
        return CommandReply(text="\n".join(lines))

    # Create ----------------------------------------------------------------------------------

    def _create_dialog(self, team_id: str, user_id: str, channel_id: str, template: Template, title: str) -> dict:
        state = self.ctx.signer.dialog_state(p.CreatePlaybookDialog(team_id=team_id), user_id, channel_id)
        elements = (
            dialogs.select("template", "Template", [(f"{t.title}: {t.summary}", t.key) for t in TEMPLATES],
                           default=template.key, help_text="The stages and steps to start from; edit them later."),
            dialogs.text("title", "Title", default=title, min_length=limits.PLAYBOOK_TITLE_MIN,
                         max_length=limits.PLAYBOOK_TITLE_MAX, placeholder="e.g. Payments outage",
                         help_text="Unique in this team. You address the playbook by it."),
            dialogs.text("description", "Description", optional=True, textarea=True, max_length=TEXTAREA_MAX,
                         placeholder="Leave empty to use the template's description."),
            dialogs.select("channel", "Incident channels", [("Public: every team member can join", "public"),
                                                            ("Private: members are added", "private")],
                           optional=True, help_text="Leave empty for the template's choice "
                                                    "(Security Incident: private; the others: public)."),
        )
        return ui.DialogForm(Dialog.PLAYBOOK_CREATE, "Create playbook", state, elements, submit_label="Create",
                             introduction="You become the playbook's first member; share it with "
                                          f"`{self.command('playbook members')}`.").to_json()

    async def _create(self, command: SlashCommand, team_id: str, words: list[str]) -> CommandReply:
        await self.service.require_team(team_id, command.user_id, vouched=command.vouches_for_team(team_id))
        template = find_template(words[0]) if words else None
        title_words = words[1:] if template else words
        title = " ".join(title_words)
        if command.via_dm or not command.trigger_id:
            if title:  # everything is known: no dialog needed
                playbook = await self.service.create(team_id, command.user_id, title=title,
                                                     template=template or DEFAULT_TEMPLATE)
                return CommandReply(text=self._created_text(playbook, template or DEFAULT_TEMPLATE))
            return self._dialog_button("Create a playbook", command.channel_id,
                                       p.CreatePlaybook(team_id=team_id, template=(template or DEFAULT_TEMPLATE).key))
        await self.ctx.client.open_dialog(command.trigger_id, self.ctx.dialog_url, self._create_dialog(
            team_id, command.user_id, command.channel_id, template or DEFAULT_TEMPLATE, title))
        return CommandReply()

    def _dialog_button(self, label: str, channel_id: str, payload: p.ActionPayload) -> CommandReply:
        """Direct messages carry no trigger id, so dialogs open from a button instead."""
        button = ui.Button(payload.action.value, label, payload, "primary")
        return CommandReply(text="Click to open the dialog:",
                            attachments=[self._attachment(ui.Attachment(fallback=label, actions=(button,)), channel_id)])

    @on_action(Action.PLAYBOOK_CREATE)
    async def on_create_clicked(self, callback: ActionCallback, button: p.CreatePlaybook) -> ActionReply:
        team_id = button.team_id
        # The dialog shows only templates; whether the user may create in the team is checked on
        # submission (PlaybookService.create), so the dialog opens within the trigger id's life.
        template = find_template(button.template) or DEFAULT_TEMPLATE
        await self.ctx.client.open_dialog(callback.trigger_id, self.ctx.dialog_url, self._create_dialog(
            team_id, callback.user_id, callback.channel_id, template, ""))
        return ActionReply()

    def _created_text(self, playbook: Playbook, template: Template) -> str:
        quoted = playbook.title.replace('"', "")
        edit = inline_code(self.command(f'playbook edit "{quoted}"'))
        share = inline_code(self.command(f'playbook members "{quoted}" add @someone'))
        return (f"Created playbook **{neutralize(playbook.title)}** from the {template.title} template: "
                f"{len(playbook.stages)} stages, {playbook.step_count} steps, "
                f"{'public' if playbook.create_public_channel else 'private'} incident channels. You are its only "
                f"member.\nNext: {edit} to change it, {share} to share it, "
                f"`{self.command('start')}` to use it.")

    @on_dialog(Dialog.PLAYBOOK_CREATE)
    async def on_create_submitted(self, form: DialogSubmission, dialog: p.CreatePlaybookDialog) -> DialogReply:
        if form.cancelled:
            return DialogReply()
        values = form.submission
        template = _template_for(values.get("template"))
        title = values.get("title")
        description = values.get("description")
        channel = values.get("channel")
        errors = {}
        if template is None:
            errors["template"] = "Choose a template."
        if not isinstance(title, str):
            errors["title"] = "Type a title."
        if description is not None and not isinstance(description, str):
            errors["description"] = "The description must be text."
        if channel not in (None, "", "public", "private"):
            errors["channel"] = "Choose public or private."
        if errors:
            return DialogReply(errors=errors)
        assert template is not None and isinstance(title, str)
        try:
            playbook = await self.service.create(
                dialog.team_id, form.user_id, title=title, template=template,
                description=description or None, public=None if not channel else channel == "public")
        except (ValidationError, Conflict) as error:
            return _field_error(error, ("title", "description"), self.error_text(error))
        await self._tell(form, self._created_text(playbook, template))
        return DialogReply()

    async def _tell(self, form: DialogSubmission, text: str) -> None:
        """Confirm a dialog's effect; the change is saved already, so a lost confirmation is only logged."""
        try:
            await self.tell(form.user_id, form.channel_id, text)
        except Exception:
            log.exception("could not confirm a playbook change to %s", form.user_id)

    # Edit --------------------------------------------------------------------------------------

    async def _edit(self, command: SlashCommand, team_id: str, words: list[str]) -> CommandReply:
        reference, operation = self._split_title(words, _EDIT_KEYWORDS)
        playbook = await self.service.find(team_id, command.user_id, reference,
                                          vouched=command.vouches_for_team(team_id))
        if operation:
            return await self._edit_outline(command, team_id, playbook, operation)
        if command.via_dm or not command.trigger_id:
            return self._dialog_button(f"Edit {playbook.title}"[:60], command.channel_id,
                                       p.EditPlaybook(team_id=team_id, playbook_id=playbook.id))
        await self._open_edit_dialog(command.trigger_id, command.user_id, command.channel_id, team_id, playbook)
        return CommandReply()

    async def _open_edit_dialog(self, trigger_id: str, user_id: str, channel_id: str, team_id: str,
                                playbook: Playbook) -> None:
        spec = await self.service.spec(playbook)
        outline = pyaml.dump_stages(spec.stages)
        state = self.ctx.signer.dialog_state(
            p.EditPlaybookDialog(team_id=team_id, playbook_id=playbook.id, version=playbook.version),
            user_id, channel_id)
        elements: list[ui.Element] = [dialogs.text("title", "Title", default=playbook.title, min_length=limits.PLAYBOOK_TITLE_MIN,
                                 max_length=limits.PLAYBOOK_TITLE_MAX)]
        notes = []
        if len(playbook.description) <= TEXTAREA_MAX:
            elements.append(dialogs.text("description", "Description", default=playbook.description, optional=True,
                                         textarea=True, max_length=TEXTAREA_MAX))
        else:
            notes.append("the description")
        elements.append(ui.Radio("channel", "Incident channels",
                                 options=(ui.Option("Public", "public"), ui.Option("Private", "private")),
                                 default="public" if playbook.create_public_channel else "private"))
        if len(outline) <= TEXTAREA_MAX:
            elements.append(dialogs.text(
                "stages", "Stages and steps", default=outline, textarea=True, max_length=TEXTAREA_MAX,
                help_text="YAML: stages with a title and steps; a step is a title, or title/description/command/"
                          "assignee fields. Edit lines freely."))
        else:
            notes.append("the stages")
        intro = "Edit the playbook. Incidents already started keep their own checklists."
        if notes:
            intro += (f" {' and '.join(notes).capitalize()} are too long for this dialog: edit them with "
                      "`" + self.command('playbook edit "<title>" step ...') + "` or export, edit and import the "
                      "YAML file.")
        body = ui.DialogForm(Dialog.PLAYBOOK_EDIT, "Edit playbook", state, tuple(elements), submit_label="Save",
                             introduction=intro)
        await self.ctx.client.open_dialog(trigger_id, self.ctx.dialog_url, body.to_json())

    @on_action(Action.PLAYBOOK_EDIT)
    async def on_edit_clicked(self, callback: ActionCallback, button: p.EditPlaybook) -> ActionReply:
        team_id = button.team_id
        playbook = await self.service.get(team_id, callback.user_id, button.playbook_id)
        await self._open_edit_dialog(callback.trigger_id, callback.user_id, callback.channel_id, team_id, playbook)
        return ActionReply()

    @on_dialog(Dialog.PLAYBOOK_EDIT)
    async def on_edit_submitted(self, form: DialogSubmission, dialog: p.EditPlaybookDialog) -> DialogReply:
        if form.cancelled:
            return DialogReply()
        values = form.submission
        title, description, channel = values.get("title"), values.get("description"), values.get("channel")
        errors: dict[str, str] = {}
        if not isinstance(title, str):
            errors["title"] = "Type a title."
        if description is not None and not isinstance(description, str):
            errors["description"] = "The description must be text."
        if channel not in ("public", "private"):
            errors["channel"] = "Choose public or private."
        stages = None
        if "stages" in values:
            outline = values.get("stages")
            try:
                stages = await pyaml.read_stages(outline if isinstance(outline, str) else "", EDIT_DIALOG_STAGES)
            except PlaybookFormatError as error:
                errors["stages"] = self.error_text(error)
        if errors:
            return DialogReply(errors=errors)
        try:
            playbook = await self.service.update(
                dialog.team_id, form.user_id, dialog.playbook_id,
                expected_version=dialog.version, title=title,
                description=(description or "") if "description" in values else None,
                public=channel == "public", stages=stages)
        except PlaybookFormatError as error:  # an assignee who does not exist, at its line
            return DialogReply(errors={"stages": self.error_text(error)})
        except ValidationError as error:
            return _field_error(error, [name for name in ("title", "description", "stages") if name in values],
                                self.error_text(error))
        except Conflict as error:
            if error.field == "title":  # the title is taken; another Conflict (a newer version) is answered as usual
                return _field_error(error, ("title",), self.error_text(error))
            raise
        await self._tell(form, f"Saved playbook **{neutralize(playbook.title)}**: {len(playbook.stages)} stages, "
                               f"{playbook.step_count} steps. Incidents already started are unchanged.")
        return DialogReply()

    async def _edit_outline(self, command: SlashCommand, team_id: str, playbook: Playbook,
                            words: list[str]) -> CommandReply:
        """``step ...`` / ``stage ...`` edits typed after the title."""
        edit = outline.OutlineEdit.of(words[0], words[1], words[2:])
        if f"playbook edit {edit.kind} {edit.verb}" in USAGES:
            self.check_words(command, f"playbook edit {edit.kind} {edit.verb}", list(edit.args))
        if edit.kind == "step" and edit.verb == "assign":
            if len(edit.args) < 2:
                raise ValidationError("Write: step assign S.N @user (or none).")
            if edit.args[1].lower() not in outline.NONE_WORDS:
                match = _MENTION.match(edit.args[1])
                if not match:
                    raise ValidationError(f'"{neutralize(edit.args[1])}" is not a username. Write it as @username.')
                person = await self.service.team_person(team_id, match.group(1))
                edit = outline.OutlineEdit.of(edit.kind, edit.verb, edit.args, assignee_id=person)
        updated, change = await self.service.edit_outline(team_id, command.user_id, playbook.id, edit)
        show = inline_code(self.command('playbook show "{}"'.format(updated.title.replace('"', ""))))
        return CommandReply(text=f"Playbook **{neutralize(updated.title)}**: {_done_text(change)} See it with {show}.")

    # Settings ---------------------------------------------------------------------------------

    async def _settings(self, command: SlashCommand, team_id: str, words: list[str]) -> CommandReply:
        playbook = await self.service.find(team_id, command.user_id, " ".join(words),
                                          vouched=command.vouches_for_team(team_id))
        if command.via_dm or not command.trigger_id:
            return self._dialog_button(f"Settings of {playbook.title}"[:60], command.channel_id,
                                       p.PlaybookSettings(team_id=team_id, playbook_id=playbook.id))
        await self._open_settings_dialog(command.trigger_id, command.user_id, command.channel_id, team_id, playbook)
        return CommandReply()

    @on_action(Action.PLAYBOOK_SETTINGS)
    async def on_settings_clicked(self, callback: ActionCallback, button: p.PlaybookSettings) -> ActionReply:
        playbook = await self.service.get(button.team_id, callback.user_id, button.playbook_id)
        await self._open_settings_dialog(callback.trigger_id, callback.user_id, callback.channel_id, button.team_id,
                                         playbook)
        return ActionReply()

    async def _open_settings_dialog(self, trigger_id: str, user_id: str, channel_id: str, team_id: str,
                                    playbook: Playbook) -> None:
        names = await self.service.usernames(self.service.people_ids(playbook))
        channels = await self.service.channel_names(playbook.updates.broadcast_channel_ids)
        updates = playbook.updates

        def people(ids: Sequence[str]) -> str:
            return " ".join(f"@{names[i]}" for i in ids if i in names)

        template = updates.template if len(updates.template) <= dialogs.SETTINGS_TEXTAREA_MAX else None
        elements = dialogs.playbook_settings_elements(
            broadcast=" ".join(f"~{channels[c]}" for c in updates.broadcast_channel_ids if c in channels),
            interval=format_duration(updates.interval_ms), template=template,
            reminders=updates.reminder_delivery.value, invite=people(playbook.invited_user_ids),
            commander=people([playbook.default_commander_id or ""]), followers=people(playbook.auto_follower_ids),
            webhooks=webhook_lines(playbook.webhooks))
        state = self.ctx.signer.dialog_state(
            p.PlaybookSettingsDialog(team_id=team_id, playbook_id=playbook.id, version=playbook.version),
            user_id, channel_id)
        intro = (f"Status updates and start settings of **{neutralize(playbook.title)}**. Incidents already "
                 "started keep the settings they started with.")
        if template is None:
            intro += " The update template is too long for this dialog: export, edit and import the YAML file."
        await self.ctx.client.open_dialog(trigger_id, self.ctx.dialog_url, ui.DialogForm(
            Dialog.PLAYBOOK_SETTINGS, "Playbook settings", state, elements, submit_label="Save",
            introduction=intro).to_json())

    @on_dialog(Dialog.PLAYBOOK_SETTINGS)
    async def on_settings_submitted(self, form: DialogSubmission, dialog: p.PlaybookSettingsDialog) -> DialogReply:
        if form.cancelled:
            return DialogReply()
        values = form.submission
        errors: dict[str, str] = {}

        def typed(name: str) -> str:
            value = values.get(name)
            if value is None:
                return ""
            if not isinstance(value, str):
                errors[name] = "This must be text."
                return ""
            return value

        interval_ms = None
        try:
            interval_ms = parse_duration(typed("interval") or "none", field="interval")
        except ValidationError as error:
            errors["interval"] = self.error_text(error)
        reminders = typed("reminders") or "both"
        broadcast, invite, commander, followers = (_names(typed(n)) for n in ("broadcast", "invite", "commander",
                                                                               "followers"))
        if len(commander) > 1:
            errors["commander"] = "Name one person, as @username (or leave it empty)."
        if errors:
            return DialogReply(errors=errors)
        current = None
        if "template" not in values:  # left out of the dialog (too long): unchanged
            current = await self.service.get(dialog.team_id, form.user_id, dialog.playbook_id)
        settings = SettingsInput(
            broadcast_channels=broadcast, interval_ms=interval_ms,
            template=typed("template") if current is None else current.updates.template, reminders=reminders,
            invite=invite, commander=commander[0] if commander else "", followers=followers,
            webhooks=typed("webhooks").splitlines() if "webhooks" in values else None)
        before = current or await self.service.get(dialog.team_id, form.user_id, dialog.playbook_id)
        try:
            playbook = await self.service.save_settings(dialog.team_id, form.user_id, dialog.playbook_id,
                                                        expected_version=dialog.version, settings=settings)
        except ValidationError as error:
            element = SETTINGS_FIELDS.get(error.field or "")
            if element and (element in values or element != "template"):
                return DialogReply(errors={element: self.error_text(error)})
            return DialogReply(error=self.error_text(error))
        await self._tell(form, f"Saved the settings of playbook **{neutralize(playbook.title)}**. Incidents already "
                               "started keep theirs." + webhook_secrets_text(
                                   self.service.webhook_secrets(before.webhooks, playbook.webhooks)))
        return DialogReply()

    # Delete -----------------------------------------------------------------------------------

    async def _open_delete_dialog(self, trigger_id: str, user_id: str, channel_id: str, team_id: str,
                                  playbook: Playbook) -> None:
        state = self.ctx.signer.dialog_state(
            p.DeletePlaybookDialog(team_id=team_id, playbook_id=playbook.id, version=playbook.version),
            user_id, channel_id)
        intro = (f"Delete the playbook **{neutralize(playbook.title)}** for everyone? This cannot be undone. "
                 "Incidents already started from it keep their checklists. Export it first to keep a copy.")
        await self.ctx.client.open_dialog(trigger_id, self.ctx.dialog_url, ui.DialogForm(
            Dialog.PLAYBOOK_DELETE, "Delete playbook", state, (), submit_label="Delete", introduction=intro).to_json())

    async def _delete(self, command: SlashCommand, team_id: str, words: list[str]) -> CommandReply:
        playbook = await self.service.find(team_id, command.user_id, " ".join(words),
                                          vouched=command.vouches_for_team(team_id))
        if command.via_dm or not command.trigger_id:
            return self._dialog_button(f"Delete {playbook.title}"[:60], command.channel_id,
                                       p.DeletePlaybook(team_id=team_id, playbook_id=playbook.id))
        await self._open_delete_dialog(command.trigger_id, command.user_id, command.channel_id, team_id, playbook)
        return CommandReply()

    @on_action(Action.PLAYBOOK_DELETE)
    async def on_delete_clicked(self, callback: ActionCallback, button: p.DeletePlaybook) -> ActionReply:
        team_id = button.team_id
        playbook = await self.service.get(team_id, callback.user_id, button.playbook_id)
        await self._open_delete_dialog(callback.trigger_id, callback.user_id, callback.channel_id, team_id, playbook)
        return ActionReply()

    @on_dialog(Dialog.PLAYBOOK_DELETE)
    async def on_delete_submitted(self, form: DialogSubmission, dialog: p.DeletePlaybookDialog) -> DialogReply:
        if form.cancelled:
            return DialogReply()
        playbook = await self.service.delete(dialog.team_id, form.user_id, dialog.playbook_id,
                                             expected_version=dialog.version)
        await self._tell(form, f"Deleted playbook **{neutralize(playbook.title)}**. Incidents started from it are "
                               "unchanged.")
        return DialogReply()

    # Members ----------------------------------------------------------------------------------

    async def _members(self, command: SlashCommand, team_id: str, words: list[str]) -> CommandReply:
        operation, names = "", []
        if words and words[0].lower() in ("add", "remove"):  # members add @a @b <title>
            operation = words[0].lower()
            rest = words[1:]
            while rest and rest[0].startswith("@"):
                names.append(rest.pop(0))
            reference = " ".join(rest)
        else:  # members <title> [add|remove @a @b]
            tail = len(words)
            while tail > 0 and words[tail - 1].startswith("@"):
                tail -= 1
            if tail >= 2 and words[tail - 1].lower() in ("add", "remove"):
                operation, names, words = words[tail - 1].lower(), words[tail:], words[: tail - 1]
            reference = " ".join(words)
        if operation and not names:
            raise ValidationError(f"Say whom to {operation}: `{COMMAND}playbook members \"<title>\" {operation} "
                                  "@user`.")
        playbook = await self.service.find(team_id, command.user_id, reference,
                                          vouched=command.vouches_for_team(team_id))
        if operation == "add":
            playbook = await self.service.add_members(team_id, command.user_id, playbook.id, names)
        elif operation == "remove":
            playbook = await self.service.remove_members(team_id, command.user_id, playbook.id, names)
        users = await self.service.usernames(playbook.member_ids)
        listed = ", ".join(f"@{users[m]}" for m in playbook.member_ids if m in users) or "nobody"
        done = {"add": "Shared. ", "remove": "Removed. ", "": ""}[operation]
        return CommandReply(text=f"{done}Members of **{neutralize(playbook.title)}** ({len(playbook.member_ids)}): "
                                 f"{listed}. Only they (and system admins) can see, use and edit it.")

    # Export / import ---------------------------------------------------------------------------

    async def _export(self, command: SlashCommand, team_id: str, words: list[str]) -> CommandReply:
        playbook = await self.service.find(team_id, command.user_id, " ".join(words),
                                          vouched=command.vouches_for_team(team_id))
        return CommandReply(text=await self._send_export(command.user_id, playbook, via_dm=command.via_dm))

    async def _send_export(self, user_id: str, playbook: Playbook, *, via_dm: bool) -> str:
        post = await self.service.send_export(user_id, playbook)
        if via_dm:
            return ""  # the file itself is the answer
        link = f"{self.ctx.client.base_url}/_redirect/pl/{post.id}"
        return (f"I sent you **{neutralize(playbook.title)}** as a YAML file in [a direct message]({link}). "
                "Send it back to me after editing to update the playbook.")

    @on_action(Action.PLAYBOOK_EXPORT)
    async def on_export_clicked(self, callback: ActionCallback, button: p.ExportPlaybook) -> ActionReply:
        playbook = await self.service.get(button.team_id, callback.user_id, button.playbook_id)
        dm = await self.ctx.client.direct_channel_with(callback.user_id)
        return ActionReply(ephemeral_text=await self._send_export(callback.user_id, playbook,
                                                                  via_dm=dm.id == callback.channel_id))

    async def _import(self, command: SlashCommand, team_id: str, words: list[str]) -> CommandReply:
        await self.service.require_team(team_id, command.user_id, vouched=command.vouches_for_team(team_id))
        if command.file_ids:
            text = await self.service.read_attachment(command.user_id, command.channel_id, command.file_ids)
            return CommandReply(text=await self._imported(team_id, command.user_id, text))
        if command.via_dm or not command.trigger_id:
            return CommandReply(text="Attach the playbook's .yaml file to a message to me (the message text can be "
                                     "empty or `playbook import`). Export one with `playbook export <title>` to see "
                                     "the format.")
        state = self.ctx.signer.dialog_state(p.ImportPlaybookDialog(team_id=team_id), command.user_id,
                                             command.channel_id)
        body = ui.DialogForm(Dialog.PLAYBOOK_IMPORT, "Import playbook", state, (
            dialogs.text("yaml", "Playbook YAML", textarea=True, max_length=TEXTAREA_MAX,
                         placeholder="title: Payments outage\nstages:\n  - title: Triage\n    steps:\n"
                                     "      - Acknowledge the alert",
                         help_text="The format of exported playbooks. Longer files: send the file to me in a "
                                   "direct message."),
        ), submit_label="Import", introduction="A playbook with the same title is replaced (if you are its member); "
                                               "otherwise a new one is created. Nothing is saved if anything is wrong.")
        await self.ctx.client.open_dialog(command.trigger_id, self.ctx.dialog_url, body.to_json())
        return CommandReply()

    async def _imported(self, team_id: str, user_id: str, text: str,
                        limit: pyaml.SizeLimit = pyaml.ANY_SIZE) -> str:
        result = await self.service.import_text(team_id, user_id, text, limit)
        playbook = result.playbook
        verb = "Imported a new" if result.created else "Updated the"
        return (f"{verb} playbook **{neutralize(playbook.title)}**: {len(playbook.stages)} stages, "
                f"{playbook.step_count} steps, {len(playbook.member_ids)} member"
                f"{'s' if len(playbook.member_ids) != 1 else ''}." + webhook_secrets_text(result.new_webhooks))

    @on_dialog(Dialog.PLAYBOOK_IMPORT)
    async def on_import_submitted(self, form: DialogSubmission, dialog: p.ImportPlaybookDialog) -> DialogReply:
        if form.cancelled:
            return DialogReply()
        text = form.submission.get("yaml")
        try:
            message = await self._imported(dialog.team_id, form.user_id,
                                           text if isinstance(text, str) else "", IMPORT_DIALOG_YAML)
        except (PlaybookFormatError, Conflict) as error:
            return DialogReply(errors={"yaml": self.error_text(error)})
        except DomainError as error:
            return DialogReply(errors={"yaml": self.error_text(error)})
        await self._tell(form, message)
        return DialogReply()


__all__ = ["PlaybookPlugin"]
