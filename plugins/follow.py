"""Following incidents and one's own to-do list: ``follow``, ``unfollow``, ``todo`` and the card's
Follow button (issue 17, docs/status-updates.md).

Thin: parse what was typed or clicked → FollowService → reply. The card is shared by everyone in
the channel, so its Follow button answers ephemerally, to whoever clicked.
"""

from __future__ import annotations

from collections.abc import Callable

from domain import Incident, NotFound
from domain.updates import overdue
from gateway import payloads as p
from gateway.cards import format_time
from gateway.ids import Action
from gateway.messages import neutralize
from gateway.models import ActionCallback, ActionReply, CommandReply, SlashCommand
from gateway.routing import on_action, on_command
from plugins.base import FeaturePlugin
from services.context import BotContext
from services.follow import TODO_OVERDUE_SHOWN, TODO_STEPS_SHOWN, FollowService, Todo

#: What following brings (the updates slice sends these messages).
FOLLOWING = "updates, the end and restarts come to you by direct message"


class FollowPlugin(FeaturePlugin):
    """The ``follow``, ``unfollow`` and ``todo`` commands, and the Follow / Unfollow buttons."""

    def __init__(self, ctx: BotContext, service: FollowService) -> None:
        super().__init__(ctx)
        self.service = service

    # Following ----------------------------------------------------------------------------

    def _followed(self, incident: Incident, changed: bool) -> str:
        name = neutralize(incident.name)
        if changed:
            return f"You follow **{name}** — {FOLLOWING}. Stop with `{self.command('unfollow')}`."
        return f"You already follow **{name}** — {FOLLOWING}."

    def _unfollowed(self, incident: Incident, changed: bool) -> str:
        name = neutralize(incident.name)
        if changed:
            return f"You no longer follow **{name}**."
        return f"You do not follow **{name}**, so nothing changed."

    @on_command("follow")
    async def on_follow(self, command: SlashCommand) -> CommandReply:
        incident = await self.service.resolve(command.user_id, command.team_id, command.channel_id,
                                              command.arguments, "follow")
        incident, changed = await self.service.follow(incident, command.user_id)
        return CommandReply(text=self._followed(incident, changed))

    @on_command("unfollow")
    async def on_unfollow(self, command: SlashCommand) -> CommandReply:
        incident = await self.service.resolve(command.user_id, command.team_id, command.channel_id,
                                              command.arguments, "unfollow")
        incident, changed = await self.service.unfollow(incident, command.user_id)
        return CommandReply(text=self._unfollowed(incident, changed))

    async def _clicked(self, callback: ActionCallback, button: p.IncidentButton) -> Incident:
        incident = await self.service.incident(button.incident_id, channel_id=callback.channel_id)
        if incident is None:
            raise NotFound("This incident no longer exists.")
        return incident

    @on_action(Action.FOLLOW)
    async def on_follow_clicked(self, callback: ActionCallback, button: p.FollowIncident) -> ActionReply:
        incident, changed = await self.service.follow(await self._clicked(callback, button), callback.user_id)
        return ActionReply(ephemeral_text=self._followed(incident, changed))

    @on_action(Action.UNFOLLOW)
    async def on_unfollow_clicked(self, callback: ActionCallback, button: p.UnfollowIncident) -> ActionReply:
        incident, changed = await self.service.unfollow(await self._clicked(callback, button), callback.user_id)
        return ActionReply(ephemeral_text=self._unfollowed(incident, changed))

    # My to-do list ------------------------------------------------------------------------

    @on_command("todo")
    async def on_todo(self, command: SlashCommand) -> CommandReply:
        self.check_words(command, "todo", command.words[1:])
        now = self.ctx.clock()
        todo = await self.service.todo(command.user_id, command.team_id, now=now)
        names = await self.service.channel_names([item.incident for item in todo.items])
        return CommandReply(text=render_todo(todo, names, now, self.command))


def render_todo(todo: Todo, channel_names: dict[str, str], now: int, command: Callable[[str], str]) -> str:
    """The to-do list as markdown: per incident (newest first) its ~channel, the overdue update I
    owe as commander, and my open steps; at most TODO_STEPS_SHOWN steps, the rest counted."""
    if not todo.items:
        return ("Nothing to do: no open step of an ongoing incident is assigned to you, and no status update "
                f"you owe as commander is overdue. Steps are assigned with `{command('assign S.N @user')}`.")
    steps, owed = todo.step_count, todo.overdue_count
    summary = [f"{steps} open step{'s' if steps != 1 else ''}"]
    if owed:
        summary.append(f"{owed} overdue update{'s' if owed != 1 else ''}")
    lines = [f"#### Your to-do · {' · '.join(summary)}"]
    shown_steps = shown_overdue = 0
    left_steps = left_overdue = 0
    for item in todo.items:
        incident = item.incident
        room = TODO_STEPS_SHOWN - shown_steps
        show_overdue = item.overdue and shown_overdue < TODO_OVERDUE_SHOWN
        steps_here = item.steps[:max(room, 0)]
        left_steps += len(item.steps) - len(steps_here)
        left_overdue += int(item.overdue and not show_overdue)
        if not steps_here and not show_overdue:
            continue
        channel = channel_names.get(incident.channel_id)
        lines.append(f"**{neutralize(incident.name)}**" + (f" · ~{channel}" if channel else ""))
        if show_overdue:
            shown_overdue += 1
            due = incident.next_update_due_at
            since = f" since {format_time(due)}" if due is not None and overdue(incident, now) else ""
            lines.append(f"- ⏰ Status update overdue{since}: post one with `{command('update')}` in its channel")
        for mine in steps_here:
            shown_steps += 1
            lines.append(f"- [ ] {mine.ref.stage + 1}.{mine.ref.index + 1} {neutralize(mine.step.title)}")
    rest = []
    if left_steps:
        rest.append(f"{left_steps} more step{'s' if left_steps != 1 else ''}")
    if left_overdue:
        rest.append(f"{left_overdue} more overdue update{'s' if left_overdue != 1 else ''}")
    if rest:
        lines.append(f"…and {' and '.join(rest)}.")
    if todo.more:
        lines.append(f"…and more incidents than one list holds: see `{command('list ongoing')}`.")
    return "\n".join(lines)
