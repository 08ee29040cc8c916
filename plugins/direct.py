"""Direct messages with the bot: the same verbs as the slash command, typed as plain words, and a short
helpful answer to anything else ("hi, the website is down, what do I do?", "thanks!").

A message whose first word is a command (``list``, ``check 1.1``; ``incident list`` and the slash command's own words
too) runs that command with the same strict arguments as the slash command. Anything else is read as
plain words (domain.conversation): trouble gets a Start incident button per team (the same button as
``start``, which opens the start dialog within the trigger id's life), the ongoing incidents the person
may see with links, and ``help``; thanks gets a short reply; a near-miss of a command gets "did you mean".
"""

from __future__ import annotations

import logging

from mmpy_bot import listen_to
from mmpy_bot.wrappers import Message

from domain import IncidentStatus
from domain.conversation import Intent, intent_of
from gateway.messages import ALIASES, USAGES, neutralize, unknown_command_text
from gateway.models import CommandReply, SlashCommand, Team
from gateway.routing import DEFAULT_COMMAND, Registry, Surface
from plugins.base import FeaturePlugin
from plugins.incidents import start_buttons
from services.context import BotContext
from services.history import HistoryService, ListFilters

log = logging.getLogger(__name__)

ONGOING_SHOWN = 5
TROUBLE_TEXT = ("Sounds like something is wrong. Start an incident: I create its channel, make you its commander "
                "and pin a checklist for everyone to work through.")
THANKS_TEXT = "You're welcome! If something breaks, tell me here, or send `start` to start an incident."
OTHER_TEXT = ("I did not understand that. If something is broken, tell me (\"the website is down\") or send `start`; "
              "`list` shows the incidents you can see.")
HELP_HINT = "Send `help` for everything I can do."


class DirectMessagePlugin(FeaturePlugin):
    """Sends direct messages that are commands through the registry to the slash command handlers
    (the same pipeline as the slash command); answers the others."""

    def __init__(self, ctx: BotContext, registry: Registry, history: HistoryService) -> None:
        super().__init__(ctx)
        self.registry = registry
        self.history = history
        self.directory = history.directory

    @listen_to(r"(?s)^(.*)$", direct_only=True)
    async def on_direct_message(self, message: Message, text: str = "") -> None:
        if message.user_id == self.ctx.client.user_id:
            return
        command = SlashCommand(
            token="", channel_id=message.channel_id, channel_name=message.channel_name,
            user_id=message.user_id, user_name=message.sender_name, command="",
            # A file sent without words is a playbook to import (the only files the bot takes).
            text=self._command_text(message.text) or ("playbook import" if message.file_ids else ""), via_dm=True,
            file_ids=tuple(message.file_ids or ()),
        )
        try:
            if self._is_command(command):
                reply = await self.registry.command(command)
            else:
                reply = await self.converse(command)
            text, props = reply.text, ({"attachments": reply.attachments} if reply.attachments else None)
        except Exception as error:  # refusals and failures become words, never silence
            text, props = self.error_text(error), None
        if text or props:
            try:
                await self.ctx.client.create_post(message.channel_id, text, props=props)
            except Exception:
                log.exception("could not answer a direct message from %s", message.user_id)

    def _command_text(self, text: str) -> str:
        """The trigger's words (``/<trigger> list`` and ``<trigger> list``) typed here mean ``list``."""
        text = text.strip().lstrip("/")
        words = text.split(None, 1)
        if len(words) == 2 and words[0].lower() == self.ctx.settings.command_trigger.lower():
            return words[1]
        return text

    def _is_command(self, command: SlashCommand) -> bool:
        subcommand = command.subcommand
        if not subcommand:
            return True  # nothing but a file, or an empty message: the import, or the help
        if subcommand == DEFAULT_COMMAND or not self.registry.handles(Surface.COMMAND, subcommand):
            return False
        if subcommand == "help":
            # "help, the site is down" is a person asking for help, not for the command list.
            rest = command.words[1:]
            return not rest or rest[0].lower() in USAGES or rest[0].lower() in ALIASES
        return True

    async def converse(self, command: SlashCommand) -> CommandReply:
        """A short answer to plain words: what to do next, never the whole command table."""
        intent = intent_of(command.text)
        if intent is Intent.OTHER:
            words = command.words
            near = unknown_command_text(words[0], " ".join(words[1:]), "") if words[0].isalpha() else ""
            if near:
                return CommandReply(text=near)
        if intent is Intent.THANKS:
            return CommandReply(text=THANKS_TEXT)
        parts: list[str] = []
        attachments: list[dict] = []
        teams = [team for team in await self.ctx.client.my_teams()
                 if await self.directory.is_team_member(team.id, command.user_id)]
        if intent is Intent.TROUBLE:
            start = start_buttons(self.ctx, teams, command.channel_id)
            parts.append(TROUBLE_TEXT)
            if start.attachments:
                attachments = start.attachments
            elif start.text:
                parts.append(start.text)
        else:
            parts.append(OTHER_TEXT)
        ongoing = await self._ongoing(command.user_id, teams)
        if ongoing:
            parts.append(ongoing)
        parts.append(HELP_HINT)
        return CommandReply(text="\n\n".join(parts), attachments=attachments)

    async def _ongoing(self, user_id: str, teams: list[Team]) -> str:
        """Links to the ongoing incidents ``user_id`` may see, newest first ("" when there are none)."""
        lines: list[str] = []
        more = 0
        for team in teams:
            page = await self.history.list_page(user_id, team.id, ListFilters(status=IncidentStatus.ONGOING),
                                                0, per_page=ONGOING_SHOWN)
            room = ONGOING_SHOWN - len(lines)
            shown = page.items[:max(0, room)]
            channels = await self.history.channel_names((i.channel_id for i in shown), team.id)
            for incident in shown:
                channel = channels.get(incident.channel_id)
                name = f"**{neutralize(incident.name)}**"
                if channel:
                    url = f"{self.ctx.client.base_url}/{team.name}/channels/{channel}"
                    name = f"[{name}]({url})"
                lines.append(f"- {name}")
            more += len(page.items) - len(shown) + (1 if page.has_more else 0)
        if not lines:
            return ""
        tail = "\n- … and more: send `list ongoing`" if more else ""
        return "Ongoing incidents you can see:\n" + "\n".join(lines) + tail
