"""Status updates: posting one, copying it to the broadcast channels, and telling the followers
(docs/status-updates.md; the rules are domain/updates.py and domain/permissions.py).

Every update is one versioned write through ``IncidentService.change`` (the permission, the
``status_update`` timeline event, the due time, the card). The service listens to every stored
change (``IncidentService.listeners``): a status update — also the final update that comes with
an end — is posted in the incident channel before the change is announced; its copies (the
broadcast channels, the followers' direct messages — also for an end or a restart) are sent by
the scheduler.

**The copies survive a crash.** One job of kind :data:`FANOUT_KIND`, due now, keyed by the change's
timeline event, is written *inside the update's own store transaction*
(``IncidentService.in_transaction``): the update and its copies are committed together or not at
all. It carries ids and the names the header shows, never the text (the handler reads the update
from the timeline). The author's answer does not wait for it. Each copy carries
the job id and its target in its props (:data:`FANOUT_PROP`, :data:`FANOUT_TO_PROP`); after a
crash mid-delivery the scheduler asks :meth:`UpdateService.delivered`, which reads the newest
posts of each target channel and finds the copies already made, and the handler sends only the
others: every copy exactly once. Whether the author may post in a broadcast channel is asked when
the copy is sent, by the same check as when it is configured (services/channels.py).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from domain import Incident, TimelineEvent, permissions, validation
from domain import updates as ops
from domain.durations import describe_duration
from domain.limits import POST_MESSAGE_MAX, UPDATE_TEXT_MAX
from domain.models import EventKind
from domain.permissions import BroadcastRefusal
from gateway.errors import MattermostError
from gateway.messages import limited_markdown, neutralize, page_link
from gateway.models import Channel
from services.channels import ChannelPosting
from services.context import BotContext
from services.incidents import IncidentService
from services.scheduler import Firing, Scheduler
from storage.jobs import Job

log = logging.getLogger(__name__)

#: Marks the bot's status update posts (props), so tests and clients can tell them apart.
UPDATE_MARK = "command_center_update"
#: The scheduler's job kind for an update's copies (key: the timeline event of the change).
FANOUT_KIND = "update_fanout"
#: The prop of a copy that names its job, and the one that names its target (``channel:<id>``,
#: ``user:<id>``): the delivery check looks for them.
FANOUT_PROP = "command_center_fanout"
FANOUT_TO_PROP = "command_center_fanout_to"
#: Posts read per target by the delivery check (a copy is among the newest after a crash).
DELIVERY_CHECK_POSTS = 100
#: Test-only kill points (``CC_TEST_KILL_AT``, services/scheduler.py ``CrashHooks``).
KILL_BEFORE_UPDATE_COMMIT = "before_update_commit"
KILL_AFTER_UPDATE_WRITE = "after_update_write"
KILL_AFTER_FIRST_COPY = "after_first_copy"



@dataclass
class Delivery:
    """Where one update's copies went: the broadcast channels reached, the ones refused (and why), the followers told."""

    broadcast: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    followers: int = 0


def update_message(incident: Incident, text: str, author: str, *, channel_name: str, at: int,
                   due_at: int | None, final: bool, page: str = "") -> str:
    """A status update post: a header (incident, author), the text in limited markdown (no mention
    is live, nothing breaks out of the post), a footer with the next due time; within one post."""
    title = "🏁 Final update" if final else "📣 Status update"
    header = f"#### {title} · {neutralize(incident.name)}\nby @{author} in ~{channel_name}"
    if page:  # a link to the incident's backstage page (issue 19)
        header += f" · {page}"
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

    def __init__(self, ctx: BotContext, incidents: IncidentService, scheduler: Scheduler,
                 posting: ChannelPosting | None = None) -> None:
        self.ctx = ctx
        self.incidents = incidents
        self.directory = incidents.directory
        self.scheduler = scheduler
        #: The one "may post" check (services/channels.py), shared with the playbook settings.
        self.posting = posting or ChannelPosting(ctx.client)
        #: The time updates are stamped with (epoch ms); tests inject a simulated clock.
        self.clock: Callable[[], int] = lambda: ctx.clock()
        self._found: dict[str, set[str]] = {}  # job id → targets the delivery check found sent
        self._scheduled: set[str] = set()  # keys of copies' jobs written in a transaction, until it is announced
        incidents.listeners.append(self.on_change)
        incidents.in_transaction.append(self.schedule_copies)
        scheduler.register(FANOUT_KIND, self.fan_out, delivered=self.delivered, while_ongoing=False)

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
        """For a stored change (its copies' job committed with it): wake the scheduler for the copies,
        post its status update now (before the change is announced), and hand back what is done afterwards."""
        update = next((e for e in events if e.kind is EventKind.STATUS_UPDATE), None)
        ended = any(e.kind is EventKind.ENDED for e in events)
        restarted = any(e.kind is EventKind.RESTARTED for e in events)
        if update is None and not ended and not restarted:
            return None
        key = (update or events[0]).id
        if key in self._scheduled:
            self._scheduled.discard(key)
            self.scheduler.wake()  # the claim is a write: it runs now that the commit made the job visible
        hooks = self.scheduler.hooks
        if hooks is not None:
            hooks.kill_if(KILL_AFTER_UPDATE_WRITE)
        author = await self.directory.username(user_id)
        channel = await self._incident_channel(incident)
        channel_name = channel.name if channel else ""
        post_id = ""
        if update is not None:
            message = self._message(incident, update, author, channel_name)
            try:
                post = await self.ctx.client.create_post(incident.channel_id, message, props={UPDATE_MARK: incident.id})
                post_id = post.id
            except MattermostError as error:  # recorded already: the timeline keeps the text
                log.warning("the status update post of incident %s was lost: %s", incident.id, error)

        async def then() -> None:
            if update is not None:
                await self._remember_post(incident, update, post_id)

        return then

    def _message(self, incident: Incident, update: TimelineEvent, author: str, channel_name: str) -> str:
        due = update.details.get("next_update_due_at")
        return update_message(incident, str(update.details.get("message", "")), author, channel_name=channel_name,
                              at=update.at, due_at=due if isinstance(due, int) else None,
                              final=bool(update.details.get("final")),
                              page=page_link(self.ctx.callback_base_url, incident.id, "incident page"))

    def _has_copies(self, incident: Incident, author_id: str, *, with_update: bool) -> bool:
        return ((with_update and bool(incident.updates.broadcast_channel_ids))
                or any(f != author_id for f in incident.follower_ids))

    async def schedule_copies(self, incident: Incident, events: list[TimelineEvent]) -> None:
        """In the change's store transaction: one :data:`FANOUT_KIND` job for a status update, an end
        or a restart, due now (none when nobody gets a copy). Not tied to the incident in the store
        (``incident_id`` unset), so an end's own copies are not cancelled with the ended incident's jobs."""
        update = next((e for e in events if e.kind is EventKind.STATUS_UPDATE), None)
        ended = next((e for e in events if e.kind is EventKind.ENDED), None)
        restarted = next((e for e in events if e.kind is EventKind.RESTARTED), None)
        cause = update or ended or restarted
        if cause is None:
            return
        author_id = cause.actor_id
        if self._has_copies(incident, author_id, with_update=update is not None):
            payload = {"incident_id": incident.id, "update_event_id": update.id if update else "",
                       "author_id": author_id, "ended": ended is not None, "restarted": restarted is not None}
            now = self.scheduler.clock.now_ms()
            key = (update or events[0]).id
            await self.ctx.store.schedule_job(FANOUT_KIND, key, due_at=now, now=now, payload=payload)
            self._scheduled.add(key)
        hooks = self.scheduler.hooks
        if hooks is not None:
            hooks.kill_if(KILL_BEFORE_UPDATE_COMMIT)

    # The copies (the scheduler's job) ----------------------------------------------------------

    def _targets(self, incident: Incident, job: Job) -> list[str]:
        """Every copy the job is for: ``channel:<id>`` per broadcast channel (an update only), then
        ``user:<id>`` per follower but the author; who may get one is asked when sending."""
        payload = job.payload
        targets = []
        if payload.get("update_event_id"):
            targets += [f"channel:{c}" for c in incident.updates.broadcast_channel_ids]
        author_id = str(payload.get("author_id", ""))
        targets += [f"user:{f}" for f in incident.follower_ids if f != author_id]
        return list(dict.fromkeys(targets))

    async def _target_channel(self, target: str) -> str:
        kind, _, ident = target.partition(":")
        if kind == "channel":
            return ident
        return (await self.ctx.client.direct_channel_with(ident)).id

    async def delivered(self, job: Job) -> bool:
        """Whether every copy of the job was sent (asked after a crash mid-delivery or a failed
        attempt): one ``GET /channels/{id}/posts`` of the newest :data:`DELIVERY_CHECK_POSTS` per
        target (and the direct channel of each follower) looking for the job id and target."""
        incident = await self.ctx.store.get_incident(str(job.payload.get("incident_id", "")))
        if incident is None:
            return True
        targets = self._targets(incident, job)
        found: set[str] = set()
        for target in targets:
            try:
                channel_id = await self._target_channel(target)
                posts = await self.ctx.client.channel_posts(channel_id, per_page=DELIVERY_CHECK_POSTS)
            except MattermostError as error:  # not readable: nothing found, the handler asks again
                log.info("the delivery check of job %s cannot read %s: %s", job.id, target, error)
                continue
            if any(post.user_id == self.ctx.client.user_id and post.props.get(FANOUT_PROP) == job.id
                   and post.props.get(FANOUT_TO_PROP) == target for post in posts.posts.values()):
                found.add(target)
        self._found[job.id] = found
        return found >= set(targets)

    async def fan_out(self, firing: Firing) -> None:
        """Send the copies of one change not sent yet (after a crash: those the check did not find)."""
        job = firing.job
        payload = job.payload
        done = self._found.pop(job.id, set())
        incident = await self.ctx.store.get_incident(str(payload.get("incident_id", "")))
        if incident is None:
            return
        author_id = str(payload.get("author_id", ""))
        author = await self.directory.username(author_id)
        channel = await self._incident_channel(incident)
        channel_name = channel.name if channel else ""
        update: TimelineEvent | None = None
        if payload.get("update_event_id"):
            update = next((e for e in await self.ctx.store.timeline(incident.id)
                           if e.id == payload["update_event_id"]), None)
            if update is None:
                log.warning("the status update of job %s is not on the timeline of incident %s; no copies",
                            job.id, incident.id)
                return
        message = self._message(incident, update, author, channel_name) if update is not None else ""
        delivery = Delivery()
        if update is not None:
            await self._broadcast(incident, author_id, message, delivery, job, done)
        notice = self._follower_notice(incident, author, channel_name, message, ended=bool(payload.get("ended")),
                                       restarted=bool(payload.get("restarted")))
        delivery.followers = await self._tell_followers(incident, author_id, notice, job, done)
        if delivery.refused:
            await self._tell(author_id, incident.channel_id, self._refusal_report(delivery))

    async def _copy(self, channel_id: str, text: str, job: Job, target: str, props: dict[str, Any]) -> None:
        await self.ctx.client.create_post(channel_id, text, props={**props, FANOUT_PROP: job.id,
                                                                    FANOUT_TO_PROP: target})
        hooks = self.scheduler.hooks
        if hooks is not None:
            hooks.kill_if(KILL_AFTER_FIRST_COPY)

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

    def _follower_notice(self, incident: Incident, author: str, channel_name: str, message: str, *,
                         ended: bool, restarted: bool) -> str:
        where = f" (~{channel_name})" if channel_name else ""
        name = neutralize(incident.name)
        if ended:
            head = f"You follow **{name}**{where}: it has been ended by @{author}."
            return head + (f"\n\n{message}" if message else "")
        if restarted:
            return f"You follow **{name}**{where}: it has been restarted by @{author}."
        return f"You follow **{name}**{where}.\n\n{message}"

    async def _tell_followers(self, incident: Incident, author_id: str, text: str, job: Job, done: set[str]) -> int:
        """A direct message to each follower but the author who may still see the incident (asked
        afresh: someone who left the team or a private incident's channel is sent nothing); those
        in ``done`` (found by the delivery check) are not sent it again."""
        sent = 0
        for target in self._targets(incident, job):
            kind, _, follower_id = target.partition(":")
            if kind != "user" or target in done:
                continue
            try:
                if not await self._may_see(incident, follower_id):
                    continue
                dm = await self.ctx.client.direct_channel_with(follower_id)
                await self._copy(dm.id, text, job, target, {})
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

    async def _broadcast(self, incident: Incident, author_id: str, message: str, delivery: Delivery, job: Job,
                         done: set[str]) -> None:
        for target in self._targets(incident, job):
            kind, _, channel_id = target.partition(":")
            if kind != "channel" or target in done:
                continue
            try:
                channel, refusal = await self.broadcast_check(incident, channel_id, author_id)
                if refusal:
                    delivery.refused.append(refusal)
                    continue
                assert channel is not None
                await self._copy(channel.id, message, job, target, {UPDATE_MARK: incident.id})
                delivery.broadcast.append(channel.name)
            except MattermostError as error:
                log.info("a status update of incident %s was not copied to %s: %s", incident.id, channel_id, error)
                delivery.refused.append(f"a broadcast channel: Mattermost refused it ({error.status})")

    async def broadcast_check(self, incident: Incident, channel_id: str,
                              author_id: str) -> tuple[Channel | None, str]:
        """Whether the update may be copied to ``channel_id`` for its author, asked now: (the
        channel, "") or (…, why not, in words).

        Whether the author may post there is the check of the playbook settings
        (services/channels.py ``ChannelPosting``: the membership, then whether its roles grant
        ``create_post``, as ``SessionHasPermissionToChannel`` decides; the bot asks from inside
        the channel, since reading a membership needs read_channel).
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
            user_is_member, can_post = await self.posting.may_post(channel_id, author_id)
            user_can_post = can_post if user_is_member else None
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
        """Privately (``BotContext.tell``); a failure is logged, the update stands."""
        try:
            await self.ctx.tell(user_id, channel_id, text)
        except MattermostError as error:
            log.warning("could not tell %s where a status update went: %s", user_id, error)


__all__ = ["DELIVERY_CHECK_POSTS", "FANOUT_KIND", "FANOUT_PROP", "FANOUT_TO_PROP", "UPDATE_MARK", "Delivery",
           "UpdateService", "update_message"]
