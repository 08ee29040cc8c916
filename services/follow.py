"""Following incidents and one's own to-do list (issue 17, docs/status-updates.md).

``follow``/``unfollow``: anyone who can see an incident (``permissions.can_follow_incident``, the
rule of the list and of info) may follow it, without joining its channel; following gives no right
to act (every change still goes through ``IncidentService.change``, which refuses non-members).
The updates slice sends followers their direct messages; this service keeps the list.

``todo``: my open steps (assigned to me) in the ongoing incidents I can see, and the incidents I
command whose status update is overdue, per team, newest first, capped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from domain import Incident, IncidentStatus, NotFound, TimelineEvent, permissions
from domain import updates as ops
from domain.todo import MyStep, open_steps_of
from gateway.directory import Directory
from services.context import BotContext
from services.history import HistoryService
from storage.base import Store

#: Incidents looked at per list (per team): beyond that, "and more".
TODO_INCIDENTS_MAX = 50
#: Steps shown in one answer (one post): the rest are counted ("and N more").
TODO_STEPS_SHOWN = 25
#: Overdue incidents shown in one answer.
TODO_OVERDUE_SHOWN = 10




@dataclass
class TodoIncident:
    """One incident of my list: my open steps in it (in checklist order), and whether its update,
    which I owe as its commander, is overdue."""

    incident: Incident
    steps: list[MyStep] = field(default_factory=list)
    overdue: bool = False


@dataclass
class Todo:
    """The ``todo`` command: the incidents with something for me, newest first; ``more``: whether
    incidents were left out beyond the caps of the query."""

    items: list[TodoIncident]
    more: bool = False

    @property
    def step_count(self) -> int:
        return sum(len(item.steps) for item in self.items)

    @property
    def overdue_count(self) -> int:
        return sum(1 for item in self.items if item.overdue)


class FollowService:
    """Followers of incidents and the to-do list, always as seen by one user."""

    def __init__(self, ctx: BotContext, directory: Directory, history: HistoryService) -> None:
        self.ctx = ctx
        self.directory = directory
        self.history = history

    @property
    def store(self) -> Store:
        return self.ctx.store

    # Finding the incident -----------------------------------------------------------------

    async def resolve(self, user_id: str, team_id: str, channel_id: str, reference: str, verb: str) -> Incident:
        """The incident meant, as the ``info`` command finds it (this channel's, or by name or ~channel);
        one the user may not see is answered like a missing one."""
        return await self.history.resolve(user_id, team_id, channel_id, reference, verb)

    async def incident(self, incident_id: str, *, channel_id: str) -> Incident | None:
        """The incident a button names, if it is still the one of the channel the button is in."""
        incident = await self.store.get_incident(incident_id) if incident_id else None
        return incident if incident is not None and incident.channel_id == channel_id else None

    async def _require_follower(self, incident: Incident, user_id: str) -> None:
        actor = await self.directory.actor(user_id)
        is_member = await self.directory.is_channel_member(incident.channel_id, user_id)
        is_team_member = is_member or await self.directory.is_team_member(incident.team_id, user_id)
        permissions.require_follow_incident(actor, incident, is_team_member=is_team_member,
                                            is_channel_member=is_member)

    # Following ----------------------------------------------------------------------------

    async def follow(self, incident: Incident, user_id: str, *, now: int | None = None) -> tuple[Incident, bool]:
        """``user_id`` follows the incident; returns it and whether that changed anything (following
        twice changes nothing). NotFound for someone who cannot see it, InvalidState at the limit."""
        return await self._change(incident, user_id, ops.follow, now)

    async def unfollow(self, incident: Incident, user_id: str, *, now: int | None = None) -> tuple[Incident, bool]:
        """``user_id`` stops following the incident (nothing changes if they did not follow it)."""
        return await self._change(incident, user_id, ops.unfollow, now)

    async def _change(self, incident: Incident, user_id: str,
                      operation: Callable[[Incident, str, int], tuple[Incident, list[TimelineEvent]]],
                      now: int | None) -> tuple[Incident, bool]:
        await self._require_follower(incident, user_id)
        at = self.ctx.clock() if now is None else now
        try:
            updated, events = await self.store.mutate_incident(incident.id, lambda i: operation(i, user_id, at))
        except NotFound:
            raise NotFound(permissions.INCIDENT_NOT_FOUND) from None
        return updated, bool(events)

    # My to-do list ------------------------------------------------------------------------

    async def todo(self, user_id: str, team_id: str, *, now: int | None = None) -> Todo:
        """My open steps and my overdue updates across the incidents of ``team_id`` (in a direct
        message, ``team_id`` is "" and every team shared with the bot is looked at)."""
        at = self.ctx.clock() if now is None else now
        teams = await self.history.teams_of(user_id, team_id)
        if team_id:
            await self.history.require_team(team_id, user_id)
        found: dict[str, TodoIncident] = {}
        more = False
        for team in teams:
            with_steps = await self.store.incidents_with_open_steps_of(team, user_id, limit=TODO_INCIDENTS_MAX + 1)
            overdue = await self.store.list_incidents(team, is_admin=True, status=IncidentStatus.ONGOING,
                                                      commander_id=user_id, overdue_at=at,
                                                      per_page=TODO_INCIDENTS_MAX)
            more = more or len(with_steps) > TODO_INCIDENTS_MAX or overdue.total > len(overdue.items)
            for incident in with_steps[:TODO_INCIDENTS_MAX]:
                found[incident.id] = TodoIncident(incident, open_steps_of(incident, user_id))
            for incident in overdue.items:
                if ops.overdue(incident, at):
                    found.setdefault(incident.id, TodoIncident(incident)).overdue = True
        visible = await self._visible([item.incident for item in found.values()], user_id)
        items = [item for item in found.values() if item.incident.id in visible]
        items.sort(key=lambda item: (-item.incident.created_at, item.incident.id))
        return Todo(items, more)

    async def _visible(self, incidents: list[Incident], user_id: str) -> set[str]:
        """The ids of ``incidents`` the user may see now: an assignment in a private incident whose
        channel they have left is not shown (its name would leak)."""
        if not incidents:
            return set()
        actor = await self.directory.actor(user_id)
        if actor.is_system_admin:
            return {incident.id for incident in incidents}
        # Team membership decides public incidents (one cached answer per team); only private ones
        # need the channel's membership.
        member_of = await self.directory.members_among([i.channel_id for i in incidents if not i.public], user_id)
        teams = {team: await self.directory.is_team_member(team, user_id)
                 for team in dict.fromkeys(i.team_id for i in incidents)}
        seen = set()
        for incident in incidents:
            is_member = incident.channel_id in member_of
            is_team_member = is_member or teams[incident.team_id]
            if permissions.can_view_incident(actor, incident, is_team_member=is_team_member,
                                             is_channel_member=is_member):
                seen.add(incident.id)
        return seen

    async def channel_names(self, incidents: list[Incident]) -> dict[str, str]:
        """Names for the ~links of the list (one request per team, see HistoryService.channel_names)."""
        names: dict[str, str] = {}
        for team in dict.fromkeys(i.team_id for i in incidents):
            names.update(await self.history.channel_names(
                (i.channel_id for i in incidents if i.team_id == team), team))
        return names
