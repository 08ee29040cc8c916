"""The retrospective of an ended incident (issue 18; the rules are domain/retro.py, who may is
``domain.permissions.can_manage_retro``: the commander or a system admin, in the channel).

**End.** Ending makes the retrospective PENDING. When the incident's retrospective settings (copied
from the playbook at the start) have a reminder interval, one job of kind :data:`RETRO_REMINDER_KIND`
is scheduled, keyed by the incident id, due that long after the end. It is not tied to the incident
in the store (``incident_id`` unset): the scheduler cancels an ended incident's jobs, and this one is
for an ended incident. Publishing, "no retrospective" and a restart cancel it; the handler also
does nothing unless the incident is still ended with its retrospective pending.

**The reminder** is a direct message to the commander with the buttons *Write retrospective* and
*No retrospective*. It carries the job id in its props (:data:`RETRO_REMINDER_PROP`), so after a
crash mid-delivery :meth:`RetroService.delivered` finds it (the newest posts of the DM) and it is
never sent twice.

**Publishing** posts the retrospective in the incident channel (the change's announcement) and
copies it to the incident's broadcast channels, each checked when it is sent by the status updates'
own check (``UpdateService.broadcast_check``: the publisher must be able to post there); what was
refused is told to the publisher privately.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from domain import Actor, Incident, NotFound, TimelineEvent, permissions
from domain import retro as ops
from domain._ops import Result
from domain.limits import POST_MESSAGE_MAX, RETRO_TEXT_MAX
from domain.models import EventKind, RetroStatus
from gateway import payloads as p
from gateway.errors import MattermostError
from gateway.messages import limited_markdown, neutralize
from gateway.ui import Attachment, Button
from services.context import BotContext
from services.incidents import IncidentService
from services.scheduler import Firing, Scheduler
from services.updates import UpdateService
from storage.jobs import Job

log = logging.getLogger(__name__)

#: The scheduler's job kind for the retrospective reminder (key: the incident id).
RETRO_REMINDER_KIND = "retro_reminder"
#: The prop of a reminder post that names its job (the delivery check looks for it).
RETRO_REMINDER_PROP = "command_center_retro_reminder"
#: Marks the bot's retrospective posts (props).
RETRO_MARK = "command_center_retro"
DELIVERY_CHECK_POSTS = 100


def retro_message(incident: Incident, text: str, author: str, *, channel_name: str) -> str:
    """A retrospective post: a header (incident, author, channel) and the text in limited markdown
    (no mention is live), within one post."""
    where = f" in ~{channel_name}" if channel_name else ""
    header = f"#### 📝 Retrospective · {neutralize(' '.join(incident.name.split()))}\nby @{author}{where}"
    limit = RETRO_TEXT_MAX
    while True:
        message = f"{header}\n\n{limited_markdown(text, limit=limit)}"
        if len(message) <= POST_MESSAGE_MAX or limit < 100:
            return message[:POST_MESSAGE_MAX]
        limit = limit * 9 // 10


def reminder_buttons(incident: Incident) -> Attachment:
    return Attachment(fallback="Retrospective due", actions=(
        Button("writeretro", "Write retrospective", p.WriteRetro(incident_id=incident.id), "primary"),
        Button("skipretro", "No retrospective", p.SkipRetro(incident_id=incident.id)),
    ))


class RetroService:
    """Prefills, publishes and declines retrospectives; reminds the commander."""

    def __init__(self, ctx: BotContext, incidents: IncidentService, updates: UpdateService,
                 scheduler: Scheduler) -> None:
        self.ctx = ctx
        self.incidents = incidents
        self.updates = updates
        self.directory = incidents.directory
        self.scheduler = scheduler
        self._found: set[str] = set()  # job ids whose reminder the delivery check found posted
        incidents.listeners.append(self.on_change)
        scheduler.register(RETRO_REMINDER_KIND, self.fire, delivered=self.delivered, while_ongoing=False)

    # -- who may -----------------------------------------------------------------------------------
    async def require_manager(self, incident: Incident, user_id: str, *, fresh: bool = False) -> Actor:
        actor = await self.directory.actor(user_id)
        is_member = await self.directory.is_channel_member(incident.channel_id, user_id, fresh=fresh)
        is_team_member = is_member or await self.directory.is_team_member(incident.team_id, user_id)
        permissions.require_manage_retro(actor, incident, is_team_member=is_team_member, is_channel_member=is_member)
        return actor

    async def incident(self, incident_id: str) -> Incident:
        incident = await self.ctx.store.get_incident(incident_id)
        if incident is None:
            raise NotFound("This incident no longer exists.")
        return incident

    # -- the dialog ------------------------------------------------------------------------------
    async def prefill(self, incident: Incident, user_id: str) -> str:
        """The dialog's text for the commander: the published text, or the key figures and template."""
        await self.require_manager(incident, user_id)
        ops.require_ended(incident)
        events = await self.ctx.store.timeline(incident.id)
        return ops.prefill(incident, ops.key_figures(incident, events, self.ctx.clock()))

    async def publish(self, incident: Incident, user_id: str, text: str) -> Incident:
        """Record and post the retrospective (the dialog: membership asked afresh)."""
        actor = await self.require_manager(incident, user_id, fresh=True)
        ops.retro_text(text)  # the text's error first, at its field
        channel_name = await self._channel_name(incident)

        def describe(inc: Incident, events: list[TimelineEvent], who: str) -> str:
            return retro_message(inc, inc.retro_text, who, channel_name=channel_name)

        updated, events = await self.incidents.change(
            incident, user_id, lambda current: self._checked(current, actor, lambda c: ops.publish_retro(
                c, text, user_id, self.ctx.clock())), describe, fresh=True)
        if events:
            await self._broadcast(updated, user_id, retro_message(updated, updated.retro_text,
                                                                  await self.directory.username(user_id),
                                                                  channel_name=channel_name))
        return updated

    async def skip(self, incident: Incident, user_id: str, *, fresh: bool = False) -> Incident:
        """Record "no retrospective"."""
        actor = await self.require_manager(incident, user_id, fresh=fresh)
        updated, _ = await self.incidents.change(
            incident, user_id, lambda current: self._checked(current, actor, lambda c: ops.skip_retro(
                c, user_id, self.ctx.clock())),
            lambda inc, events, who: f"@{who} recorded that this incident has no retrospective.", fresh=fresh)
        return updated

    @staticmethod
    def _checked(current: Incident, actor: Actor, operation: Callable[[Incident], Result]) -> Result:
        # The commander may have changed since the request was checked: the rule holds on the stored state.
        if not permissions.can_manage_retro(actor, current, is_channel_member=True):
            permissions.require_manage_retro(actor, current, is_team_member=True, is_channel_member=True)
        return operation(current)

    async def _channel_name(self, incident: Incident) -> str:
        try:
            return (await self.ctx.client.get_channel(incident.channel_id)).name
        except MattermostError:
            return ""

    async def _broadcast(self, incident: Incident, author_id: str, message: str) -> None:
        """Copy the published retrospective to the broadcast channels the publisher may post in."""
        refused: list[str] = []
        sent: list[str] = []
        for channel_id in incident.updates.broadcast_channel_ids:
            try:
                channel, refusal = await self.updates.broadcast_check(incident, channel_id, author_id)
                if refusal or channel is None:
                    refused.append(refusal or "a broadcast channel")
                    continue
                await self.ctx.client.create_post(channel.id, message, props={RETRO_MARK: incident.id})
                sent.append(channel.name)
            except MattermostError as error:
                log.info("the retrospective of incident %s was not copied to %s: %s", incident.id, channel_id, error)
                refused.append(f"a broadcast channel: Mattermost refused it ({error.status})")
        if refused:
            lines = ["Your retrospective was posted in the incident channel"
                     + (" and copied to " + ", ".join(f"~{n}" for n in sent) if sent else "")
                     + ", but not copied to:"]
            lines.extend(f"- {item}" for item in dict.fromkeys(refused))
            try:
                await self.ctx.tell(author_id, incident.channel_id, "\n".join(lines))
            except MattermostError as error:
                log.warning("could not tell %s where a retrospective went: %s", author_id, error)

    # -- the reminder ------------------------------------------------------------------------------
    async def on_change(self, incident: Incident, events: list[TimelineEvent], user_id: str) -> None:
        """A change listener: schedule the reminder at the end, cancel it on publish, skip, restart."""
        kinds = {event.kind for event in events}
        try:
            if EventKind.ENDED in kinds:
                interval = incident.retro.reminder_interval_ms
                if incident.retro_status is RetroStatus.PENDING and interval is not None:
                    ended = incident.ended_at if incident.ended_at is not None else self.ctx.clock()
                    await self.scheduler.schedule(RETRO_REMINDER_KIND, incident.id, due_at=ended + interval,
                                                  payload={"ended_at": ended})
            elif kinds & {EventKind.RESTARTED, EventKind.RETRO_PUBLISHED, EventKind.RETRO_SKIPPED}:
                await self.scheduler.cancel_key(RETRO_REMINDER_KIND, incident.id)
        except Exception:  # the change stands; only the reminder is affected
            log.exception("the retrospective reminder of incident %s could not be scheduled", incident.id)
        return None

    async def delivered(self, job: Job) -> bool:
        incident = await self.ctx.store.get_incident(job.key)
        if incident is None:
            return True
        dm = await self.ctx.client.direct_channel_with(incident.commander_id)
        posts = await self.ctx.client.channel_posts(dm.id, per_page=DELIVERY_CHECK_POSTS)
        found = any(post.user_id == self.ctx.client.user_id and post.props.get(RETRO_REMINDER_PROP) == job.id
                    for post in posts.posts.values())
        if found:
            self._found.add(job.id)
        return found

    async def fire(self, firing: Firing) -> None:
        """Remind the commander, if the incident is still ended (the same end) and its retrospective pending."""
        job = firing.job
        incident = await self.ctx.store.get_incident(job.key)
        if incident is None or incident.is_ongoing or incident.retro_status is not RetroStatus.PENDING:
            return
        if incident.ended_at != job.payload.get("ended_at", incident.ended_at):
            return  # restarted and ended again: that end's own job reminds
        if job.id in self._found:
            self._found.discard(job.id)
            return
        dm = await self.ctx.client.direct_channel_with(incident.commander_id)
        channel_name = await self._channel_name(incident)
        where = f" (~{channel_name})" if channel_name else ""
        text = (f"📝 **{neutralize(' '.join(incident.name.split()))}**{where} has ended: write its retrospective, "
                "or record that it has none.")
        if firing.late:
            text += "\n_This reminder is late: it was due while Command Center was not running._"
        attachment = reminder_buttons(incident).to_json(self.ctx.signer, self.ctx.action_url, dm.id)
        await self.ctx.client.create_post(dm.id, text, props={RETRO_REMINDER_PROP: job.id,
                                                              "attachments": [attachment]})


__all__ = ["RETRO_MARK", "RETRO_REMINDER_KIND", "RETRO_REMINDER_PROP", "RetroService", "reminder_buttons",
           "retro_message"]
