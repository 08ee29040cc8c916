"""`help`, `help <command>`, unknown subcommands (with "did you mean"), and `help` by direct message."""

from __future__ import annotations

from gateway.messages import (
    ALIASES,
    USAGES,
    help_text,
    inline_code,
    playbook_help_text,
    unknown_command_text,
    usage_line,
)
from gateway.models import CommandReply, SlashCommand
from gateway.routing import DEFAULT_COMMAND, on_command
from plugins.base import FeaturePlugin


class HelpPlugin(FeaturePlugin):
    """Answers with the command list and examples, or with how to type one command."""

    @on_command("help", DEFAULT_COMMAND)
    async def on_help(self, command: SlashCommand) -> CommandReply:
        trigger, prefix = self.ctx.settings.command_trigger, self.prefix(command)
        words = command.words
        if command.subcommand not in ("", "help"):
            # A near miss (`chek 1.1`) gets the one command it was probably meant to be, not the whole list.
            near = unknown_command_text(words[0], " ".join(words[1:]), prefix)
            return CommandReply(text=near or help_text(trigger, unknown=command.subcommand, via_dm=command.via_dm))
        arguments = words[1:]
        if not arguments:
            return CommandReply(text=help_text(trigger, via_dm=command.via_dm))
        self.check_words(command, "help", arguments)
        return CommandReply(text=self._about(command, arguments[0].lower()))

    def _about(self, command: SlashCommand, word: str) -> str:
        """How to type one command (``help assign``); its family's verbs too (``help step``)."""
        trigger, prefix = self.ctx.settings.command_trigger, self.prefix(command)
        key = ALIASES.get(word, word)
        if key == "playbook":
            return playbook_help_text(trigger, via_dm=command.via_dm)
        if key in USAGES and not key.startswith("--"):
            lines = [usage_line(key, prefix)]
            lines += [usage_line(other, prefix) for other in USAGES if other.startswith(key + " ")]
            return "\n".join(lines)
        near = unknown_command_text(word, "", prefix)
        if near:
            return near
        return (f"{inline_code(word, limit=80)} is not a Command Center command.\n\n"
                + help_text(trigger, via_dm=command.via_dm))
