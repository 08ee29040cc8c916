"""Direct messages with the bot: the same verbs as the slash command, typed as plain words."""

from __future__ import annotations

import logging

from mmpy_bot import listen_to
from mmpy_bot.wrappers import Message

from gateway.errors import user_message
from gateway.models import SlashCommand
from gateway.routing import Router
from plugins.base import BotContext, FeaturePlugin

log = logging.getLogger(__name__)


class DirectMessagePlugin(FeaturePlugin):
    """Routes every direct message to the slash command handlers and posts their answer back."""

    def __init__(self, ctx: BotContext, router: Router) -> None:
        super().__init__(ctx)
        self.router = router

    @listen_to(r"(?s)^(.*)$", direct_only=True)
    async def on_direct_message(self, message: Message, text: str = "") -> None:
        if message.user_id == self.ctx.client.user_id:
            return
        command = SlashCommand(
            token="", channel_id=message.channel_id, channel_name=message.channel_name,
            user_id=message.user_id, user_name=message.sender_name, command="",
            # A file sent without words is a playbook to import (the only files the bot takes).
            text=message.text.lstrip("/") or ("playbook import" if message.file_ids else ""), via_dm=True,
            file_ids=tuple(message.file_ids or ()),
        )
        try:
            reply = await self.router.command_handler(command.subcommand)(command)
            text, props = reply.text, ({"attachments": reply.attachments} if reply.attachments else None)
        except Exception as error:  # refusals and failures become words, never silence
            text, props = user_message(error), None
        if text or props:
            try:
                await self.ctx.client.create_post(message.channel_id, text, props=props)
            except Exception:
                log.exception("could not answer a direct message from %s", message.user_id)
