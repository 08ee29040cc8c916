"""What every feature plugin is: an mmpy_bot ``Plugin`` with the shared context (services.context)."""

from __future__ import annotations

from mmpy_bot import Plugin

from gateway.errors import user_message
from gateway.messages import check_words, command_prefix, with_trigger
from gateway.messages import command as typed_command
from gateway.models import SlashCommand
from services.context import BotContext


class FeaturePlugin(Plugin):
    """An mmpy_bot plugin: its handlers are methods marked with ``listen_to`` (direct messages) or with
    gateway.routing's ``on_command``/``on_action``/``on_dialog``/``on_event``, collected by the one
    ``Registry``."""

    def __init__(self, ctx: BotContext) -> None:
        super().__init__()
        self.ctx = ctx

    async def tell(self, user_id: str, channel_id: str, text: str) -> None:
        """Tell one user something after a dialog (``BotContext.tell``)."""
        await self.ctx.tell(user_id, channel_id, text)

    @property
    def trigger(self) -> str:
        return self.ctx.settings.command_trigger

    def command(self, words: str = "") -> str:
        """``words`` as a command typed with the configured trigger (gateway.messages.command)."""
        return typed_command(self.trigger, words)

    def rendered(self, text: str) -> str:
        """``text`` with the domain's command placeholders written for this bot's trigger."""
        return with_trigger(text, self.trigger)

    def error_text(self, error: BaseException) -> str:
        """``error`` in words for the user (gateway.errors.user_message), with this bot's trigger."""
        return user_message(error, self.trigger)

    def prefix(self, command: SlashCommand) -> str:
        """What comes before a command's words where ``command`` was typed (the trigger, or nothing in a DM)."""
        return command_prefix(self.ctx.settings.command_trigger, via_dm=command.via_dm)

    def check_words(self, command: SlashCommand, key: str, words: list[str]) -> None:
        """Refuse missing or extra words after ``key`` with its usage line (gateway.messages.USAGES)."""
        check_words(key, words, self.prefix(command))
