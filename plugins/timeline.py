"""The ``timeline`` command: the incident's full timeline, adding posts to it, hiding events; and the
channel events it records (pins with the timeline emoji, edits, deletes, joins and leaves).

Thin: parse → TimelineService → markdown. The WebSocket handlers take live and caught-up events
alike (gateway/events.py, gateway/catchup.py).
"""

from __future__ import annotations

from domain import ValidationError
from gateway.messages import inline_code, neutralize
from gateway.models import CommandReply, SlashCommand, WebSocketEvent
from gateway.routing import on_command, on_event
from gateway.timeline import render_event
from plugins.base import FeaturePlugin
from services.context import BotContext
from services.timeline import TimelinePage, TimelineService


def _page_and_reference(words: list[str]) -> tuple[str, int, bool]:
    """``[incident] [page] [--all]`` → (reference, page from 0, --all)."""
    include_hidden = False
    kept = []
    for word in words:
        if word.lower() == "--all":
            include_hidden = True
        elif word.startswith("--") and len(word) > 2:
            raise ValidationError(f"{inline_code(word, limit=60)} is not a timeline option: only --all is.")
        else:
            kept.append(word)
    page = 0
    if kept and kept[-1].isdigit():
        number = int(kept.pop())
        if number < 1:
            raise ValidationError("Pages count from 1.")
        page = number - 1
    return " ".join(kept), page, include_hidden


class TimelinePlugin(FeaturePlugin):
    """The ``timeline`` command and the channel events that feed the timeline."""

    def __init__(self, ctx: BotContext, service: TimelineService) -> None:
        super().__init__(ctx)
        self.service = service

    @on_command("timeline")
    async def on_timeline(self, command: SlashCommand) -> CommandReply:
        words = command.words[1:]
        verb = words[0].lower() if words else ""
        if verb == "add":
            return await self._add(command, words[1:])
        if verb == "hide":
            return await self._hide(command, words[1:])
        reference, page, include_hidden = _page_and_reference(words)
        shown = await self.service.page(command.user_id, command.team_id, command.channel_id, reference,
                                        page=page, include_hidden=include_hidden)
        return CommandReply(text=self.render(shown, reference, command))

    async def _add(self, command: SlashCommand, words: list[str]) -> CommandReply:
        self.check_words(command, "timeline add", words)
        link, note = words[0], command.arguments.split(None, 2)[2] if len(words) > 1 else ""
        _, number = await self.service.add_link(command.user_id, command.channel_id, link, note)
        return CommandReply(text=f"Added the post to the timeline as `#{number}`.")

    async def _hide(self, command: SlashCommand, words: list[str]) -> CommandReply:
        self.check_words(command, "timeline hide", words)
        raw = words[0].lstrip("#")
        if not raw.isdigit() or int(raw) < 1:
            raise ValidationError(f"{inline_code(words[0], limit=40)} is not an event number: use the number shown "
                                  f"before an event, e.g. {inline_code(self.prefix(command) + 'timeline hide 5')}.")
        await self.service.hide(command.user_id, command.channel_id, int(raw))
        return CommandReply(text=f"Event `#{int(raw)}` is hidden from the timeline "
                                 f"(the commander still sees it with {inline_code(self.prefix(command) + 'timeline --all')}).")

    def render(self, shown: TimelinePage, reference: str, command: SlashCommand) -> str:
        incident, now = shown.incident, self.ctx.clock()
        title = f"#### Timeline · {neutralize(incident.name)}"
        if shown.pages > 1:
            title += f" (page {shown.page + 1}/{shown.pages})"
        lines = [title]
        if not shown.entries:
            lines.append("Nothing is on the timeline yet.")
        for entry in shown.entries:
            line = render_event(entry.event, incident, now, shown.names, number=entry.number)
            if entry.hidden:
                name = shown.names.get(entry.hidden_by or "")
                line = f"~~{line}~~ (hidden by {'@' + name if name else 'the commander'})"
            lines.append("- " + line)
        words = " ".join(word for word in (reference, "--all" if shown.include_hidden else "") if word)
        if shown.page + 1 < shown.pages:
            more = self.prefix(command) + " ".join(w for w in ("timeline", words, str(shown.page + 2)) if w)
            lines.append(f"\n{shown.total} events · next page: {inline_code(more)}")
        elif shown.pages > 1:
            lines.append(f"\n{shown.total} events")
        return "\n".join(lines)

    # Channel events (live, or replayed by the catch-up) ---------------------------------------

    @on_event("reaction_added")
    async def on_reaction_added(self, event: WebSocketEvent) -> None:
        await self.service.reaction_added(event)

    @on_event("reaction_removed")
    async def on_reaction_removed(self, event: WebSocketEvent) -> None:
        await self.service.reaction_removed(event)

    @on_event("post_edited")
    async def on_post_edited(self, event: WebSocketEvent) -> None:
        await self.service.post_changed(event)

    @on_event("post_deleted")
    async def on_post_deleted(self, event: WebSocketEvent) -> None:
        await self.service.post_changed(event)

    @on_event("post_changed")
    async def on_post_changed(self, event: WebSocketEvent) -> None:
        """Not a Mattermost event: the catch-up's word for a post that changed while disconnected."""
        await self.service.post_changed(event)

    @on_event("user_added")
    async def on_user_added(self, event: WebSocketEvent) -> None:
        await self.service.membership(event)

    @on_event("user_removed")
    async def on_user_removed(self, event: WebSocketEvent) -> None:
        await self.service.membership(event)
