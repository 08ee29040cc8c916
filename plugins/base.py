"""What every feature plugin gets: the shared services, and mmpy_bot's Plugin base."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mmpy_bot import Plugin

from gateway.client import MattermostClient
from gateway.errors import MattermostError
from gateway.ids import Route
from gateway.messages import check_words, command_prefix
from gateway.models import SlashCommand
from gateway.signing import Signer
from settings import Settings


@dataclass
class BotContext:
    """Services shared by the plugins, built once by the composition root (bot.py)."""

    settings: Settings
    client: MattermostClient
    signer: Signer
    store: Any = None
    callback_base_url: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def action_url(self) -> str:
        return self.callback_base_url + Route.ACTION.value

    @property
    def dialog_url(self) -> str:
        return self.callback_base_url + Route.DIALOG.value


class FeaturePlugin(Plugin):
    """An mmpy_bot plugin that also handles slash commands, buttons and dialogs via the router."""

    def __init__(self, ctx: BotContext) -> None:
        super().__init__()
        self.ctx = ctx

    async def tell(self, user_id: str, channel_id: str, text: str) -> None:
        """Tell one user something after a dialog: ephemeral in ``channel_id`` when the bot may post
        ephemerally (Mattermost allows that only to system admins' tokens), else by direct message."""
        client = self.ctx.client
        dm = await client.direct_channel_with(user_id)  # remembered per person: asked once
        # Whether the bot may is learned at login, so a bot that may not never sends a request sure to fail.
        if client.may_post_ephemeral and channel_id and channel_id != dm["id"]:
            try:
                await client.create_ephemeral_post(user_id, channel_id, text)
                return
            except MattermostError as error:
                if error.status != 403:
                    raise
        await client.create_post(dm["id"], text)

    def prefix(self, command: SlashCommand) -> str:
        """What comes before a command's words where ``command`` was typed (``/incident `` or nothing in a DM)."""
        return command_prefix(self.ctx.settings.command_trigger, via_dm=command.via_dm)

    def check_words(self, command: SlashCommand, key: str, words: list[str]) -> None:
        """Refuse missing or extra words after ``key`` with its usage line (gateway.messages.USAGES)."""
        check_words(key, words, self.prefix(command))
