"""The ``report [incident]`` command: the incident's report as a Markdown file by direct message.

Thin: which incident (this channel's, or named from anywhere, a DM included) → ReportService → reply.
"""

from __future__ import annotations

from gateway.messages import neutralize
from gateway.models import CommandReply, SlashCommand
from gateway.routing import on_command
from plugins.base import FeaturePlugin
from services.context import BotContext
from services.report import ReportService


class ReportPlugin(FeaturePlugin):
    """The ``report`` command."""

    def __init__(self, ctx: BotContext, service: ReportService) -> None:
        super().__init__(ctx)
        self.service = service

    @on_command("report")
    async def on_report(self, command: SlashCommand) -> CommandReply:
        incident = await self.service.resolve(command.user_id, command.team_id, command.channel_id, command.arguments)
        result = await self.service.send(incident, command.user_id)
        return CommandReply(text=f"I sent you the report of **{neutralize(incident.name)}** ({result.filename}) in "
                                 f"your direct messages with @{self.ctx.client.username}.")


__all__ = ["ReportPlugin"]
