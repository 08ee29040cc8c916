"""The ``report`` command: the incident's report as a Markdown file, sent by direct message (issue 18).

The privacy rules are the export's (services/history.py): the incident is found as the user may
see it (``HistoryService.resolve``, which answers an invisible incident exactly like a missing
one), visibility is checked again right before anything is read, and the file goes only to the
person who asked, in their direct messages with the bot: uploaded to that channel
(``POST /files``, api4/file.go ``uploadFileStream``: the bot may upload where it may post), then
attached to one post there (``file_ids``: app/post.go ``attachFileIDsToPost`` →
store ``FileInfo.AttachToPost`` attaches only a file its author uploaded and no post holds yet;
the sandbox does the same).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from domain import Incident, NotFound, permissions
from gateway.messages import neutralize
from gateway.report import ReportInput, render_report, report_filename, user_ids
from services.context import BotContext
from services.history import HistoryService


@dataclass(frozen=True)
class ReportResult:
    """The file that was sent."""

    filename: str
    size: int


class ReportService:
    """Builds and sends incident reports."""

    def __init__(self, ctx: BotContext, history: HistoryService) -> None:
        self.ctx = ctx
        self.history = history

    async def resolve(self, user_id: str, team_id: str, channel_id: str, reference: str) -> Incident:
        return await self.history.resolve(user_id, team_id, channel_id, reference, "report")

    async def gather(self, incident: Incident) -> ReportInput:
        """What the report shows, read once: the timeline, the channel's name and its participants."""
        events, figures, channel_name = await asyncio.gather(
            self.ctx.store.timeline(incident.id), self.history.channel_figures(incident.channel_id),
            self.history.channel_name(incident.channel_id))
        participants = figures.members_involved if figures.readable else None
        names = await self.history.usernames(user_ids(incident, events, participants or ()))
        return ReportInput(incident, events, channel_name, participants, names)

    async def render(self, incident: Incident) -> tuple[str, str]:
        """The report's file name and Markdown text, as of now (the context's clock)."""
        data = await self.gather(incident)
        now = self.ctx.clock()
        return report_filename(incident, data.channel_name, now), render_report(data, now)

    async def download(self, incident: Incident, user_id: str) -> tuple[str, str]:
        """The report as :meth:`send` makes it, handed back (the backstage's download) instead of sent:
        the same visibility check first. Returns (file name, Markdown)."""
        if not await self.history.can_view(incident, user_id):
            raise NotFound(permissions.INCIDENT_NOT_FOUND)
        current = await self.ctx.store.get_incident(incident.id) or incident
        return await self.render(current)

    async def send(self, incident: Incident, user_id: str) -> ReportResult:
        """Send ``user_id`` the report by direct message, if they may see the incident."""
        if not await self.history.can_view(incident, user_id):
            raise NotFound(permissions.INCIDENT_NOT_FOUND)
        current = await self.ctx.store.get_incident(incident.id) or incident
        filename, text = await self.render(current)
        data = text.encode()
        dm = await self.ctx.client.direct_channel_with(user_id)
        info = await self.ctx.client.upload_file(dm.id, filename, data, "text/markdown")
        await self.ctx.client.create_post(
            dm.id, f"Report of **{neutralize(current.name)}**: summary, fields, people, metrics, checklist, status "
                   "updates, retrospective and timeline, as a Markdown file.", file_ids=[info.id])
        return ReportResult(filename, len(data))


__all__ = ["ReportResult", "ReportService"]
