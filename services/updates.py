"""Status updates: posting one, copying it to the broadcast channels, and telling the followers
(docs/status-updates.md; the rules are domain/updates.py and domain/permissions.py).

Every update is one versioned write through ``IncidentService.change`` (the permission, the
``status_update`` timeline event, the due time, the card). The service listens to every stored
change (``IncidentService.listeners``): a status update — also the final update that comes with
an end — is posted in the incident channel before the change is announced, then copied to the
broadcast channels and sent to the followers; an end or a restart is sent to the followers.

Delivery happens once, after the write, in memory: a bot stopped part-way sends nothing again on
restart (the timeline is the record), so nobody gets a copy twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from domain import Incident, TimelineEvent, permissions, validation
from domain import updates as ops
from domain.durations import describe_duration
from domain.limits import POST_MESSAGE_MAX, UPDATE_TEXT_MAX
from domain.models import EventKind
from domain.permissions import BroadcastRefusal
from gateway.errors import MattermostError
from gateway.messages import limited_markdown, neutralize
from gateway.models import Channel
from services.context import BotContext
from services.incidents import IncidentService

log = logging.getLogger(__name__)

#: Marks the bot's status update posts (props), so tests and clients can tell them apart.
UPDATE_MARK = "command_center_update"
#: The default channel roles that grant ``create_post`` (server/public/model/role.go
#: ``MakeDefaultRoles``). A member whose roles are others (a channel scheme's, e.g. a moderated
#: channel) is taken as unable to post: an update is never copied where its author might not post.
_POSTING_CHANNEL_ROLES = frozenset({"channel_user", "channel_admin", "channel_guest"})


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Delivery:
    """Where one update went: the broadcast channels it reached, the ones refused (and why), the followers told."""

    post_id: str = ""
    broadcast: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    followers: int = 0


def update_message(incident: Incident, text: str, author: str, *, channel_name: str, at: int,
                   due_at: int | None, final: bool) -> str:
    """A status update post: a header (incident, author), the text in limited markdown (no mention
    is live, nothing breaks out of the post), a footer with the next due time; within one post."""
    title = "🏁 Final update" if final else "📣 Status update"
    header = f"#### {title} · {neutralize(incident.name)}\nby @{author} in ~{channel_name}"
    if final:
        footer = "_The incident has ended._"
    elif due_at is None:
        footer = "_No next update._"
    else:
        footer = f"_Next update due in {describe_duration(max(0, due_at - at))}._"
    limit = UPDATE_TEXT_MAX
    while True:
        body = limited_markdown(text, limit=limit)
        message = f"{header}\n\n{body}\n\n{footer}"
        if len(message) <= POST_MESSAGE_MAX or limit < 100:
            return message[:POST_MESSAGE_MAX]
        limit = limit * 9 // 10  # escapes made it longer than the text: show a little less


class UpdateService:
    """Posts status updates and delivers them; registered as a listener of the incident service."""

    def __init__(self, ctx: BotContext, incidents: IncidentService) -> None:
        self.ctx = ctx
        self.incidents = incidents
        self.directory = incidents.directory
        #: The time updates are stamped with (epoch ms); tests inject a simulated clock.
        self.clock: Callable[[], int] = lambda: ctx.clock()
        incidents.listeners.append(self.on_change)

    # Posting --------------------------------------------------------------------------------

    async def require_poster(self, incident: Incident, user_id: str) -> None:
        """Any member of the incident channel may post an update; the membership is asked afresh
        (a dialog submission is checked by Mattermost only against the channel its client names)."""
        actor = await self.directory.actor(user_id)
        is_member = await self.directory.is_channel_member(incident.channel_id, user_id, fresh=True)
        is_team_member = is_member or await self.directory.is_team_member(incident.team_id, user_id)
        permissions.require_post_update(actor, incident, is_team_member=is_team_member, is_channel_member=is_member)

    async def post(self, incident: Incident, user_id: str, text: str, next_in: str | None) -> Incident:
        """Record and send a status update by ``user_id``; ``next_in`` is the dialog's choice
        (``default``, a duration such as ``30m``, or ``none``). Field errors name ``text``/``next_in``."""
        await self.require_poster(incident, user_id)
        validation.update_text(text)  # the text's error first, at its field
        interval = ops.next_update_in(incident, next_in)
        updated, _ = await self.incidents.change(
            incident, user_id, lambda current: ops.post_update(current, text, user_id, self.clock(),
                                                               next_in_ms=interval),
            lambda inc, events, who: None)
        return updated

    # Delivering -----------------------------------------------------------------------------

    async def on_change(self, incident: Incident, events: list[TimelineEvent],
                        user_id: str) -> Callable[[], Awaitable[None]] | None:
        """For a stored change: post its status update now (before the change is announced), and
        hand back what is sent afterwards (broadcast, followers)."""
        update = next((e for e in events if e.kind is EventKind.STATUS_UPDATE), None)
        ended = any(e.kind is EventKind.ENDED for e in events)
        restarted = any(e.kind is EventKind.RESTARTED for e in events)
        if update is None and not ended and not restarted:
            return None
        author = await self.directory.username(user_id)
        channel = await self._incident_channel(incident)
        message = ""
        delivery = Delivery()
        if update is not None:
            due = update.details.get("next_update_due_at")
            message = update_message(incident, str(update.details.get("message", "")), author,
                                     channel_name=channel.name if channel else "", at=update.at,
                                     due_at=due if isinstance(due, int) else None,
                                     final=bool(update.details.get("final")))
            try:
                post = await self.ctx.client.create_post(incident.channel_id, message, props={UPDATE_MARK: incident.id})
                delivery.post_id = post.id
            except MattermostError as error:  # recorded already: the timeline keeps the text
                log.warning("the status update post of incident %s was lost: %s", incident.id, error)

        async def then() -> None:
            if update is not None:
                await self._remember_post(incident, update, delivery.post_id)
                await self._broadcast(incident, user_id, message, delivery)
            notice = self._follower_notice(incident, author, channel, message, ended=ended, restarted=restarted)
            delivery.followers = await self._tell_followers(incident, user_id, notice)
            if delivery.refused:
                await self._tell(user_id, incident.channel_id, self._refusal_report(delivery))

        return then

    async def _incident_channel(self, incident: Incident) -> Channel | None:
        try:
            return await self.ctx.client.get_channel(incident.channel_id)
        except MattermostError as error:
            log.warning("cannot read the channel of incident %s: %s", incident.id, error)
            return None

    async def _remember_post(self, incident: Incident, update: TimelineEvent, post_id: str) -> None:
        """Record the update's post on the incident, unless a newer update came meanwhile."""
        if not post_id:
            return

        def remember(current: Incident) -> tuple[Incident, list[TimelineEvent]]:
            if current.last_update_at != update.at or current.last_update_by != update.actor_id:
                return current, []
            return ops.set_update_post(current, post_id), []
        try:
            await self.ctx.store.mutate_incident(incident.id, remember)
        except Exception:
            log.exception("could not record the post of a status update of incident %s", incident.id)

    def _follower_notice(self, incident: Incident, author: str, channel: Channel | None, message: str, *,
                         ended: bool, restarted: bool) -> str:
        where = f" (~{channel.name})" if channel else ""
        name = neutralize(incident.name)
        if ended:
            head = f"You follow **{name}**{where}: it has been ended by @{author}."
            return head + (f"\n\n{message}" if message else "")
        if restarted:
            return f"You follow **{name}**{where}: it has been restarted by @{author}."
        return f"You follow **{name}**{where}.\n\n{message}"

    async def _tell_followers(self, incident: Incident, author_id: str, text: str) -> int:
        """A direct message to each follower but the author who may still see the incident (asked
        afresh: someone who left the team or a private incident's channel is sent nothing)."""
        sent = 0
        for follower_id in incident.follower_ids:
            if follower_id == author_id:
                continue
            try:
                if not await self._may_see(incident, follower_id):
                    continue
                dm = await self.ctx.client.direct_channel_with(follower_id)
                await self.ctx.client.create_post(dm.id, text)
                sent += 1
            except MattermostError as error:
                log.warning("a follower of incident %s was not told: %s", incident.id, error)
        return sent

    async def _may_see(self, incident: Incident, user_id: str) -> bool:
        user = await self.directory.user(user_id)
        if not user.active or user.is_bot:
            return False
        actor = await self.directory.actor(user_id)
        is_member = await self.directory.is_channel_member(incident.channel_id, user_id, fresh=True)
        is_team_member = is_member or await self.directory.is_team_member(incident.team_id, user_id)
        return permissions.can_follow_incident(actor, incident, is_team_member=is_team_member,
                                               is_channel_member=is_member)

    # Broadcast ------------------------------------------------------------------------------

    async def _broadcast(self, incident: Incident, author_id: str, message: str, delivery: Delivery) -> None:
        for channel_id in incident.updates.broadcast_channel_ids:
            try:
                channel, refusal = await self.broadcast_check(incident, channel_id, author_id)
                if refusal:
                    delivery.refused.append(refusal)
                    continue
                assert channel is not None
                await self.ctx.client.create_post(channel.id, message, props={UPDATE_MARK: incident.id})
                delivery.broadcast.append(channel.name)
            except MattermostError as error:
                log.info("a status update of incident %s was not copied to %s: %s", incident.id, channel_id, error)
                delivery.refused.append(f"a broadcast channel: Mattermost refused it ({error.status})")

    async def broadcast_check(self, incident: Incident, channel_id: str,
                              author_id: str) -> tuple[Channel | None, str]:
        """Whether the update may be copied to ``channel_id`` for its author, asked now: (the
        channel, "") or (…, why not, in words).

        The author's membership and roles come from ``GET /channels/{id}/members/{user_id}``
        (api4/channel.go ``getChannelMember``, which needs read_channel, so the bot asks from
        inside the channel); the post itself needs ``create_post`` at channel scope
        (api4/post.go ``createPost`` → app/authorization.go ``SessionHasPermissionToChannel``,
        which a channel member gets from its channel roles).
        """
        client = self.ctx.client
        try:
            channel: Channel | None = await client.get_channel(channel_id)
        except MattermostError as error:
            if error.status not in (403, 404):
                raise
            channel = None
        bot_is_member = channel is not None and await self.directory.is_channel_member(channel_id, client.user_id)
        user_is_member: bool | None = None
        user_can_post: bool | None = None
        if channel is not None and bot_is_member:
            try:
                member = await client.get_channel_member(channel_id, author_id)
                user_is_member = True
                user_can_post = bool(_POSTING_CHANNEL_ROLES & set(member.roles.split()))
            except MattermostError as error:
                if error.status not in (403, 404):
                    raise
                user_is_member = False
        refusal = permissions.broadcast_refusal(
            found=channel is not None, same_team=channel is not None and channel.team_id == incident.team_id,
            team_channel=channel is not None and channel.type in ("O", "P"),
            archived=channel is not None and channel.archived, public=channel is not None and channel.is_public,
            bot_is_member=bot_is_member, user_is_member=user_is_member, user_can_post=user_can_post)
        if refusal is None and not bot_is_member:
            assert channel is not None
            return channel, (f"~{channel.name}: I am not a member of it; add @{client.username} to the channel "
                             "to copy updates there")
        return channel, self._refusal_text(refusal, channel) if refusal else ""

    def _refusal_text(self, refusal: BroadcastRefusal, channel: Channel | None) -> str:
        name = f"~{channel.name}" if channel is not None and refusal is not BroadcastRefusal.UNSEEN else ""
        if refusal is BroadcastRefusal.NOT_A_TEAM_CHANNEL:
            return f"{name or 'a broadcast channel'}: a direct or group message is not a broadcast channel"
        if refusal is BroadcastRefusal.ARCHIVED:
            return f"{name}: the channel is archived"
        if refusal is BroadcastRefusal.NOT_A_MEMBER:
            return f"{name}: you are not a member of it, so I do not post your update there"
        if refusal is BroadcastRefusal.CANNOT_POST:
            return f"{name}: you cannot post in it, so I do not post your update there"
        return (f"a broadcast channel: no such channel in this team that I am in; for a private channel, add "
                f"@{self.ctx.client.username} to it")

    @staticmethod
    def _refusal_report(delivery: Delivery) -> str:
        lines = ["Your status update was posted in the incident channel"
                 + (" and copied to " + ", ".join(f"~{n}" for n in delivery.broadcast) if delivery.broadcast else "")
                 + ", but not copied to:"]
        lines.extend(f"- {item}" for item in dict.fromkeys(delivery.refused))
        return "\n".join(lines)

    async def _tell(self, user_id: str, channel_id: str, text: str) -> None:
        """Ephemeral in ``channel_id`` when the bot may post ephemerally, else by direct message
        (as ``FeaturePlugin.tell``)."""
        client = self.ctx.client
        try:
            if client.may_post_ephemeral:
                try:
                    await client.create_ephemeral_post(user_id, channel_id, text)
                    return
                except MattermostError as error:
                    if error.status != 403:
                        raise
            dm = await client.direct_channel_with(user_id)
            await client.create_post(dm.id, text)
        except MattermostError as error:
            log.warning("could not tell %s where a status update went: %s", user_id, error)


__all__ = ["UPDATE_MARK", "Delivery", "UpdateService", "update_message"]
