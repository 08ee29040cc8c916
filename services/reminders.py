"""Update reminders, snooze and "request update" (docs/status-updates.md, issue 17).

**One pending reminder per incident.** A reminder is a scheduler job of kind
:data:`REMINDER_KIND` keyed by the incident id, due at the incident's ``next_update_due_at``.
:meth:`ReminderService.incident_changed` listens to the card (as ``Scheduler.incident_changed``
does): whenever an incident's due time changes — a start with a default interval, an update, a
snooze, a restart — the job is scheduled again (``schedule_job`` replaces the pending one of the
key); when the due time is cleared or the incident ends, it is cancelled. The due times last
applied are kept in memory, so a card edit that changes nothing costs no store call; the first
change of an incident after a restart reads its reminder jobs once (a due time whose reminder has
already been sent is not scheduled again).

**Firing.** The job carries the due time it was scheduled for; a reminder whose incident has moved
on (another due time) does nothing. Otherwise the commander is reminded where the incident's
settings say (``reminders``: the channel with a mention, a DM, or both), with the buttons *Post
update* and *Snooze 15 min*. A reminder fired well after its time (the bot was down) says so.

**Exactly once across a crash.** Each reminder post carries the job id in its props
(:data:`REMINDER_PROP`). After a crash mid-delivery the scheduler asks :meth:`delivered`, which
reads the newest posts of each target channel (one ``GET /channels/{id}/posts?per_page=100`` per
target — the incident channel and/or the commander's DM — asked only after a crash or a failed
attempt) and finds the posts already made; only the missing ones are made.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import TYPE_CHECKING

from domain import Actor, Incident, NotFound, permissions
from domain import updates as ops
from domain.errors import COMMAND
from domain.models import ReminderDelivery, TimelineEvent
from gateway import payloads as p
from gateway.errors import MattermostError
from gateway.messages import neutralize, with_trigger
from gateway.ui import Attachment, Button
from services.context import BotContext
from services.scheduler import Firing, Scheduler
from storage.jobs import Job, JobState

if TYPE_CHECKING:
    from services.incidents import IncidentService

log = logging.getLogger(__name__)

#: The scheduler's job kind for update reminders (key: the incident id).
REMINDER_KIND = "update_reminder"
#: The prop of a reminder post that names its job (the delivery check looks for it).
REMINDER_PROP = "command_center_reminder"
#: Where a reminder post went, in the prop ``command_center_reminder_to``.
TARGET_PROP = "command_center_reminder_to"
CHANNEL, DM = "channel", "dm"
#: Posts read per target by the delivery check (the reminder is among the newest after a crash).
DELIVERY_CHECK_POSTS = 100
_UNSET = object()


def targets_for(delivery: ReminderDelivery) -> tuple[str, ...]:
    """Where a reminder goes for the incident's ``reminders`` setting."""
    if delivery is ReminderDelivery.CHANNEL:
        return (CHANNEL,)
    if delivery is ReminderDelivery.DM:
        return (DM,)
    return (CHANNEL, DM)


def clock_time(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%H:%M UTC")


def reminder_text(incident: Incident, commander: str, target: str, *, due_at: int, late: bool,
                  channel_name: str = "") -> str:
    """The reminder's words (markdown; the incident name is neutralised)."""
    name = neutralize(" ".join(incident.name.split()))
    where = f" (~{channel_name})" if channel_name and target == DM else ""
    head = f"@{commander}, a" if target == CHANNEL else "A"
    text = (f"⏰ {head} status update of **{name}**{where} is due (since {clock_time(due_at)}). "
            f"Post one with `{COMMAND}update`, or snooze this reminder for 15 min.")
    if late:
        text += "\n_This reminder is late: it was due while Command Center was not running._"
    return text


def reminder_buttons(incident: Incident, due_at: int) -> Attachment:
    return Attachment(fallback="Status update due", actions=(
        Button("postupdate", "Post update", p.PostUpdate(incident_id=incident.id), "primary"),
        Button("snoozereminder", "Snooze 15 min", p.SnoozeReminder(incident_id=incident.id, due_at=due_at)),
    ))


class ReminderService:
    """Schedules, sends and snoozes update reminders; asks commanders for updates."""

    def __init__(self, ctx: BotContext, incidents: IncidentService, scheduler: Scheduler) -> None:
        self.ctx = ctx
        self.incidents = incidents
        self.scheduler = scheduler
        self._applied: dict[str, int | None] = {}   # incident id → due time whose job is in the store
        self._wanted: dict[str, int | None] = {}
        self._syncing: dict[str, asyncio.Task[None]] = {}
        self._found: dict[str, set[str]] = {}        # job id → targets the delivery check found posted
        scheduler.register(REMINDER_KIND, self.fire, delivered=self.delivered)

    def now(self) -> int:
        return self.scheduler.clock.now_ms()

    # -- scheduling ------------------------------------------------------------------------------
    def incident_changed(self, incident: Incident) -> None:
        """A card listener: keep the incident's one reminder job at its due time."""
        wanted = incident.next_update_due_at if incident.is_ongoing else None
        if self._applied.get(incident.id, _UNSET) == wanted and incident.id not in self._syncing:
            return
        if wanted is None and incident.id not in self._syncing and _never_due(incident):
            # No update was ever due (no default interval, no update posted): no reminder job can exist,
            # so a start from such a playbook costs no store read here.
            self._applied[incident.id] = None
            return
        self._wanted[incident.id] = wanted
        if incident.id not in self._syncing:
            task = asyncio.ensure_future(self._sync(incident.id))
            self._syncing[incident.id] = task

    async def settle(self) -> None:
        """Wait until every due-time change seen has reached the store (tests)."""
        while self._syncing:
            await asyncio.gather(*list(self._syncing.values()), return_exceptions=True)

    async def _sync(self, incident_id: str) -> None:
        try:
            while True:
                wanted = self._wanted[incident_id]
                try:
                    await self._apply(incident_id, wanted)
                    self._applied[incident_id] = wanted
                except Exception:  # the next change of the incident tries again
                    log.exception("reminders: the reminder of incident %s could not be moved", incident_id)
                    self._applied.pop(incident_id, None)
                    return
                if self._wanted.get(incident_id) == wanted:
                    return
        finally:
            self._syncing.pop(incident_id, None)
            self._wanted.pop(incident_id, None)

    async def _apply(self, incident_id: str, due_at: int | None) -> None:
        if due_at is None:
            # A read first: most incidents without a due time (no interval) never had a reminder.
            if incident_id not in self._applied and not await self.ctx.store.list_jobs(
                    kind=REMINDER_KIND, key=incident_id, states=(JobState.PENDING, JobState.CLAIMED)):
                return
            if await self.scheduler.cancel_key(REMINDER_KIND, incident_id):
                log.info("reminders: the reminder of incident %s is cancelled", incident_id)
            return
        if incident_id not in self._applied:
            # First sight since the bot started: the job may be in the store already, or sent.
            jobs = await self.ctx.store.list_jobs(kind=REMINDER_KIND, key=incident_id)
            if any(job.due_at == due_at and job.state in (JobState.PENDING, JobState.CLAIMED, JobState.DONE)
                   for job in jobs):
                return
        await self.scheduler.schedule(REMINDER_KIND, incident_id, due_at=due_at, payload={"due_at": due_at},
                                      incident_id=incident_id)

    # -- firing ----------------------------------------------------------------------------------
    async def _target_channel(self, incident: Incident, target: str) -> str:
        if target == CHANNEL:
            return incident.channel_id
        return (await self.ctx.client.direct_channel_with(incident.commander_id)).id

    async def delivered(self, job: Job) -> bool:
        """Whether every post of this reminder was made (after a crash mid-delivery): reads the newest
        :data:`DELIVERY_CHECK_POSTS` posts of each target channel and looks for the job id."""
        incident = await self.ctx.store.get_incident(job.incident_id or job.key)
        if incident is None:
            return True
        targets = targets_for(incident.updates.reminder_delivery)
        found: set[str] = set()
        for target in targets:
            channel_id = await self._target_channel(incident, target)
            posts = await self.ctx.client.channel_posts(channel_id, per_page=DELIVERY_CHECK_POSTS)
            if any(post.user_id == self.ctx.client.user_id and post.props.get(REMINDER_PROP) == job.id
                   for post in posts.posts.values()):
                found.add(target)
        self._found[job.id] = found
        return found >= set(targets)

    async def fire(self, firing: Firing) -> None:
        """Send the reminder of ``firing.job`` (each target once; see the module docstring)."""
        job = firing.job
        due_at = int(job.payload.get("due_at", job.due_at))
        incident = await self.ctx.store.get_incident(job.incident_id or job.key)
        if incident is None or not incident.is_ongoing or incident.next_update_due_at != due_at:
            return  # ended, or the update was posted or snoozed since: a newer job (if any) reminds
        done = self._found.pop(job.id, set())
        commander = await self.incidents.directory.username(incident.commander_id)
        channel_name = ""
        sent = 0
        for target in targets_for(incident.updates.reminder_delivery):
            if target in done:
                continue
            channel_id = await self._target_channel(incident, target)
            if target == DM and not channel_name:
                try:
                    channel_name = (await self.ctx.client.get_channel(incident.channel_id)).name
                except MattermostError:
                    channel_name = ""
            text = with_trigger(reminder_text(incident, commander, target, due_at=due_at, late=firing.late,
                                              channel_name=channel_name), self.ctx.settings.command_trigger)
            attachment = reminder_buttons(incident, due_at).to_json(self.ctx.signer, self.ctx.action_url, channel_id)
            await self.ctx.client.create_post(channel_id, text, props={
                REMINDER_PROP: job.id, TARGET_PROP: target, "attachments": [attachment]})
            sent += 1
        if sent:
            self.ctx.telemetry.reminder_sent(incident, late=firing.late, posts=sent)

    # -- snooze and request ------------------------------------------------------------------------
    async def _actor_rights(self, incident: Incident, user_id: str) -> tuple[Actor, bool, bool]:
        directory = self.incidents.directory
        actor = await directory.actor(user_id)
        is_member = await directory.is_channel_member(incident.channel_id, user_id)
        is_team_member = is_member or await directory.is_team_member(incident.team_id, user_id)
        return actor, is_team_member, is_member

    async def snooze(self, incident: Incident, user_id: str, *, drawn_for: int | None) -> Incident:
        """The commander moves the due update 15 minutes from now (an old reminder's button: out of date)."""
        actor, is_team_member, is_member = await self._actor_rights(incident, user_id)
        permissions.require_snooze_reminder(actor, incident, is_team_member=is_team_member,
                                            is_channel_member=is_member)
        now = self.now()

        def operation(current: Incident) -> tuple[Incident, list[TimelineEvent]]:
            # The commander may have changed since the click was checked: the rule holds on the stored state.
            permissions.require_snooze_reminder(actor, current, is_team_member=is_team_member,
                                                is_channel_member=is_member)
            return ops.snooze_reminder(current, user_id, now, drawn_for=drawn_for)

        def describe(inc: Incident, events: list[TimelineEvent], who: str) -> str:
            due = inc.next_update_due_at or now
            return f"@{who} snoozed the update reminder: the next status update is due at {clock_time(due)}."

        updated, _events = await self.incidents.change(incident, user_id, operation, describe)
        return updated

    async def request_update(self, incident: Incident, user_id: str) -> Incident:
        """A channel member (not the commander) asks the commander for an update, at most once per 5 min."""
        actor, is_team_member, is_member = await self._actor_rights(incident, user_id)
        permissions.require_request_update(actor, incident, is_team_member=is_team_member,
                                           is_channel_member=is_member)
        commander = await self.incidents.directory.username(incident.commander_id)
        now = self.now()
        trigger = self.ctx.settings.command_trigger

        def describe(inc: Incident, events: list[TimelineEvent], who: str) -> str:
            return with_trigger(f"@{commander}, @{who} asks for a status update of "
                                f"**{neutralize(' '.join(inc.name.split()))}**. Post one with `{COMMAND}update`.",
                                trigger)

        updated, _events = await self.incidents.change(
            incident, user_id, lambda current: ops.request_update(current, user_id, now), describe)
        return updated

    async def incident_for_button(self, incident_id: str) -> Incident:
        """The incident of a reminder's button (posted in its channel or in the commander's DM; the
        signature binds the button to where it was posted)."""
        incident = await self.ctx.store.get_incident(incident_id)
        if incident is None:
            raise NotFound("This incident no longer exists.")
        return incident


__all__ = ["CHANNEL", "DELIVERY_CHECK_POSTS", "DM", "REMINDER_KIND", "REMINDER_PROP", "ReminderService",
           "reminder_text", "targets_for"]


def _never_due(incident: Incident) -> bool:
    """True when no status update of the incident has ever been due: without a default interval a due
    time is set only by a posted update (which sets ``last_update_at``), and a snooze needs a due time."""
    return incident.updates.interval_ms is None and incident.last_update_at is None
