"""`/incident help`, unknown subcommands, and `help` by direct message."""

from __future__ import annotations

from gateway.messages import help_text
from gateway.models import CommandReply, SlashCommand
from gateway.routing import DEFAULT_COMMAND, on_command
from plugins.base import FeaturePlugin


class HelpPlugin(FeaturePlugin):
    """Answers with the command list and examples."""

    @on_command("help", DEFAULT_COMMAND)
    async def on_help(self, command: SlashCommand) -> CommandReply:
        unknown = command.subcommand if command.subcommand not in ("", "help") else ""
        return CommandReply(text=help_text(self.ctx.settings.command_trigger, unknown=unknown,
                                           via_dm=command.via_dm))
