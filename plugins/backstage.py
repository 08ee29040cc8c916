"""The ``backstage`` command (issue 19): a one-time login link to the backstage, by direct message.

The link (services/webauth.py) works once and for ten minutes; with "Sign in with Mattermost"
configured the message also carries that link. Typed in a channel, the answer (only the caller sees
it) says where the link went; typed in the direct message with the bot, the link is the answer.
"""

from __future__ import annotations

from urllib.parse import quote

from gateway.ids import BACKSTAGE_PREFIX
from gateway.models import CommandReply, SlashCommand
from gateway.routing import on_command
from plugins.base import FeaturePlugin
from services.context import BotContext
from services.webauth import LOGIN_LINK_TTL_MS, WebAuth


class BackstagePlugin(FeaturePlugin):
    """``backstage``: the caller's login link."""

    def __init__(self, ctx: BotContext, auth: WebAuth) -> None:
        super().__init__(ctx)
        self.auth = auth

    def link_text(self, user_id: str) -> str:
        base = self.ctx.callback_base_url + BACKSTAGE_PREFIX
        link = f"{base}/login/link?t={quote(self.auth.login_token(user_id), safe='')}"
        minutes = LOGIN_LINK_TTL_MS // 60_000
        lines = [f"Your link to the backstage: [sign in to Command Center]({link})",
                 f"It signs you in once and works for {minutes} minutes; do not share it. For another, run "
                 f"`{self.command('backstage')}` again."]
        if self.ctx.settings.oauth_configured:
            lines.append(f"Or [sign in with Mattermost]({base}/oauth/start) at any time.")
        return "\n".join(lines)

    @on_command("backstage")
    async def on_backstage(self, command: SlashCommand) -> CommandReply:
        self.check_words(command, "backstage", command.words[1:])
        text = self.link_text(command.user_id)
        if command.via_dm:
            return CommandReply(text=text)
        dm = await self.ctx.client.direct_channel_with(command.user_id)
        await self.ctx.client.create_post(dm.id, text)
        return CommandReply(text="I sent you a login link to the backstage by direct message. It works once and "
                                 f"for {LOGIN_LINK_TTL_MS // 60_000} minutes.")


__all__ = ["BackstagePlugin"]
