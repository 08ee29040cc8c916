"""Incident flows: the domain operations, the store and Mattermost, put together.

Every change follows one path (:meth:`IncidentService.change`): check that the user may change
the incident, apply the pure operation with a version check (so concurrent edits never overwrite
each other), then announce it in the channel and rebuild the card from the stored state.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from domain import Actor, Incident, NotFound, Playbook, StepTarget, TimelineEvent, ValidationError
from domain import checklist, incidents as ops, permissions, validation
from domain.models import EventKind
from gateway.cards import CardContext, card_user_ids, incident_card
from gateway.directory import Directory
from gateway.errors import MattermostError
from gateway.messages import format_duration, neutralize
from plugins.base import BotContext
from telemetry import telemetry_of

log = logging.getLogger(__name__)

NOT_AN_INCIDENT_CHANNEL = ("This channel is not an incident channel. Run this command in the channel of the "
                           "incident, or type /incident list to find it.")
_CHANNEL_NAME_MAX = 64
_SUFFIX_LEN = 4
_SUFFIX_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
_POST_ID = re.compile(r"(?:^|/)([a-z0-9]{26})(?:[/?#].*)?$")


def now_ms() -> int:
    return int(time.time() * 1000)


def channel_name_for(name: str) -> str:
    """Incident name → channel name: lower-cased, accents and punctuation dropped, spaces to dashes."""
    ascii_text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9\s-]", "", ascii_text.lower()).split()
    slug = re.sub(r"-{2,}", "-", "-".join(words)).strip("-")
    slug = slug[: _CHANNEL_NAME_MAX - _SUFFIX_LEN - 1].strip("-")
    return slug if len(slug) >= 2 else f"incident-{slug}".strip("-")


def with_suffix(base: str) -> str:
    suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(_SUFFIX_LEN))
    return f"{base}-{suffix}"


def post_id_from(reference: str) -> str:
    """A post id from a permalink (``.../pl/<id>``) or a bare id."""
    match = _POST_ID.search(reference.strip())
    if not match:
        raise ValidationError(f'"{neutralize(reference[:80])}" is not a post link or post id. Copy the post\'s link '
                              "(… menu → Copy Link) and try again.")
    return match.group(1)


@dataclass
class StartRequest:
    actor_id: str
    team_id: str
    playbook_id: str
    name: str
    description: str = ""
    source_post_id: str | None = None


class CardUpdater:
    """Rebuilds an incident's card from the stored state; one rebuild at a time per incident, so a
    slower, older rebuild can never overwrite a newer one."""

    def __init__(self, ctx: BotContext, directory: Directory) -> None:
        self.ctx = ctx
        self.directory = directory
        self._locks: dict[str, asyncio.Lock] = {}

    async def render(self, incident: Incident) -> dict:
        usernames = {user_id: await self.directory.username(user_id) for user_id in card_user_ids(incident)}
        context = CardContext(usernames=usernames, signer=self.ctx.signer, action_url=self.ctx.action_url,
                              now_ms=now_ms())
        return incident_card(incident, context)

    async def refresh(self, incident_id: str) -> None:
        lock = self._locks.setdefault(incident_id, asyncio.Lock())
        async with lock:
            incident = await self.ctx.store.get_incident(incident_id)
            if incident is None or not incident.card_post_id:
                return
            card = await self.render(incident)
            await self.ctx.client.patch_post(incident.card_post_id, card)


class IncidentService:
    """Starting incidents and every change to them."""

    def __init__(self, ctx: BotContext, directory: Directory) -> None:
        self.ctx = ctx
        self.directory = directory
        self.cards = CardUpdater(ctx, directory)

    @property
    def store(self):
        return self.ctx.store

    # Looking things up ---------------------------------------------------------------------

    async def in_channel(self, channel_id: str) -> Incident:
        incident = await self.store.incident_by_channel(channel_id)
        if incident is None:
            raise NotFound(NOT_AN_INCIDENT_CHANNEL)
        return incident

    async def playbooks_for(self, team_id: str, user_id: str) -> list[Playbook]:
        actor = await self.directory.actor(user_id)
        if not actor.is_system_admin and not await self.directory.is_team_member(team_id, user_id):
            return []
        return await self.store.playbooks_for_user(team_id, user_id, is_admin=actor.is_system_admin)

    async def require_member(self, incident: Incident, user_id: str) -> Actor:
        """The acting user, if they may change the incident (members of its channel only)."""
        actor = await self.directory.actor(user_id)
        is_member = await self.directory.is_channel_member(incident.channel_id, user_id)
        is_team_member = is_member or await self.directory.is_team_member(incident.team_id, user_id)
        permissions.require_modify_incident(actor, incident, is_team_member=is_team_member, is_channel_member=is_member)
        return actor

    # Starting ------------------------------------------------------------------------------

    async def readable_source_post(self, post_id: str, user_id: str) -> dict | None:
        """The post, if it exists and ``user_id`` may read it; None otherwise."""
        try:
            post = await self.ctx.client.get_post(post_id)
            channel = await self.ctx.client.get_channel(post["channel_id"])
        except MattermostError as error:
            if error.status in (403, 404):
                return None
            raise
        if await self.directory.is_channel_member(channel["id"], user_id):
            return post
        if channel.get("type") == "O" and await self.directory.is_team_member(channel.get("team_id", ""), user_id):
            return post
        return None

    async def start(self, request: StartRequest) -> Incident:
        """Create the channel, the incident, the opening posts and the pinned card."""
        name = validation.incident_name(request.name)
        description = validation.incident_description(request.description)
        actor = await self.directory.actor(request.actor_id)
        playbook = await self.store.get_playbook(request.playbook_id)
        is_team_member = await self.directory.is_team_member(request.team_id, request.actor_id)
        if playbook is None or playbook.team_id != request.team_id:
            raise NotFound(permissions.PLAYBOOK_NOT_FOUND)
        permissions.require_use_playbook(actor, playbook, is_team_member=is_team_member)
        source = None
        if request.source_post_id:
            source = await self.readable_source_post(request.source_post_id, request.actor_id)

        channel = await self._create_channel(request.team_id, name, description, private=not playbook.create_public_channel)
        await self.ctx.client.add_channel_member(channel["id"], request.actor_id)
        self.directory.forget_channel(channel["id"])
        incident, events = ops.start_incident(
            playbook, name=name, description=description, channel_id=channel["id"], creator_id=request.actor_id,
            now=now_ms(), source_post_id=source["id"] if source else None)
        incident = await self.store.create_incident(incident, events)
        telemetry_of(self.ctx).incident_changed(incident, events)

        creator = await self.directory.username(request.actor_id)
        opening = f"This incident has been started by @{creator}."
        if source is not None:
            quoted = "\n".join("> " + line for line in (source.get("message") or "(no text)").splitlines())
            opening += f"\nStarted from [this post]({self.ctx.client.base_url}/_redirect/pl/{source['id']}):\n{quoted}"
        await self.ctx.client.create_post(channel["id"], opening)
        card = await self.cards.render(incident)
        posted = await self.ctx.client.create_post(channel["id"], card["message"], props=card["props"])
        await self.ctx.client.pin_post(posted["id"])
        incident, _ = await self.store.mutate_incident(incident.id, lambda current: (
            ops.set_card_post(current, posted["id"]), []))
        log.info("incident %s started by %s in channel %s", incident.id, request.actor_id, channel["id"])
        return incident

    async def _create_channel(self, team_id: str, name: str, purpose: str, *, private: bool) -> dict:
        base = channel_name_for(name)
        candidate = base
        for _ in range(6):
            try:
                return await self.ctx.client.create_channel(team_id, candidate, name, private=private,
                                                            purpose=purpose[:250])
            except MattermostError as error:
                if error.status == 400 and ("exists" in error.error_id or "previously" in error.error_id):
                    candidate = with_suffix(base)
                    continue
                raise
        raise ValidationError("Could not find a free channel name for this incident; try a different name.")

    # Changing ------------------------------------------------------------------------------

    async def change(self, incident: Incident, user_id: str,
                     operation: Callable[[Incident], tuple[Incident, list[TimelineEvent]]],
                     describe: Callable[[Incident, list[TimelineEvent], str], str | None]) -> tuple[Incident, list[TimelineEvent]]:
        """The one path for every change: permission, versioned write, announcement, card."""
        await self.require_member(incident, user_id)
        updated, events = await self.store.mutate_incident(incident.id, operation)
        if events:
            telemetry_of(self.ctx).incident_changed(updated, events)
            actor_name = await self.directory.username(user_id)
            text = describe(updated, events, actor_name)
            if text:
                await self.ctx.client.create_post(updated.channel_id, text)
            await self.cards.refresh(updated.id)
        return updated, events

    async def check(self, incident: Incident, user_id: str, target: StepTarget, done: bool):
        return await self.change(
            incident, user_id, lambda current: checklist.set_step_state(current, target, done, user_id, now_ms()),
            lambda inc, events, who: f"@{who} {'checked' if done else 'unchecked'} {_step_label(events[0])}.")

    async def assign(self, incident: Incident, user_id: str, target: StepTarget, assignee_id: str | None):
        in_channel = assignee_id is None or await self.directory.is_channel_member(incident.channel_id, assignee_id)
        assignee_name = await self.directory.username(assignee_id) if assignee_id else ""

        def describe(inc: Incident, events: list[TimelineEvent], who: str) -> str:
            if assignee_id:
                return f"@{who} assigned {_step_label(events[0])} to @{assignee_name}."
            return f"@{who} removed the assignee of {_step_label(events[0])}."

        return await self.change(incident, user_id, lambda current: checklist.assign_step(
            current, target, assignee_id, user_id, now_ms(), assignee_in_channel=in_channel), describe)

    async def change_commander(self, incident: Incident, user_id: str, new_commander_id: str):
        in_channel = await self.directory.is_channel_member(incident.channel_id, new_commander_id)
        if await self.directory.is_bot(new_commander_id):
            raise ValidationError("A bot cannot be the commander; choose a person.")
        name = await self.directory.username(new_commander_id)
        if not in_channel:
            await self.require_member(incident, user_id)
            raise ValidationError(f"@{name} is not a member of this incident's channel: add @{name} to the "
                                  "channel first, then make them commander.")
        return await self.change(incident, user_id, lambda current: ops.change_commander(
            current, new_commander_id, user_id, now_ms(), new_commander_in_channel=in_channel),
            lambda inc, events, who: f"@{who} changed the commander to @{name}.")

    async def set_stage(self, incident: Incident, user_id: str, how: str | int):
        def operation(current: Incident):
            if how == "next":
                return ops.next_stage(current, user_id, now_ms())
            if how == "prev":
                return ops.previous_stage(current, user_id, now_ms())
            return ops.set_stage(current, int(how), user_id, now_ms())

        def describe(inc: Incident, events: list[TimelineEvent], who: str) -> str:
            stage = inc.active_stage
            return (f"@{who} moved the incident to stage {stage + 1}/{len(inc.stages)}: "
                    f"**{neutralize(inc.stages[stage].title)}**.")

        return await self.change(incident, user_id, operation, describe)

    async def end(self, incident: Incident, user_id: str):
        def describe(inc: Incident, events: list[TimelineEvent], who: str) -> str:
            details = events[0].details
            return (f"This incident has been ended by @{who}.\n"
                    f"Duration: **{format_duration(details.get('duration_ms', 0))}** · "
                    f"steps done: **{details.get('steps_done', 0)}/{details.get('steps_total', 0)}**")
        return await self.change(incident, user_id, lambda current: ops.end_incident(current, user_id, now_ms()),
                                 describe)

    async def restart(self, incident: Incident, user_id: str):
        return await self.change(incident, user_id, lambda current: ops.restart_incident(current, user_id, now_ms()),
                                 lambda inc, events, who: f"This incident has been restarted by @{who}.")

    async def add_step(self, incident: Incident, user_id: str, stage: int, title: str):
        return await self.change(incident, user_id, lambda current: checklist.add_step(
            current, stage, title, user_id, now_ms()),
            lambda inc, events, who: f"@{who} added step {_step_label(events[0])}.")

    async def remove_step(self, incident: Incident, user_id: str, target: StepTarget):
        return await self.change(incident, user_id, lambda current: checklist.remove_step(
            current, target, user_id, now_ms()),
            lambda inc, events, who: f"@{who} removed step {_step_label(events[0])}.")

    async def rename_step(self, incident: Incident, user_id: str, target: StepTarget, title: str):
        def describe(inc: Incident, events: list[TimelineEvent], who: str) -> str:
            previous = neutralize(str(events[0].details.get("previous_title", "")))
            return f"@{who} renamed step {_step_label(events[0])} (was “{previous}”)."
        return await self.change(incident, user_id, lambda current: checklist.rename_step(
            current, target, title, user_id, now_ms()), describe)

    async def move_step(self, incident: Incident, user_id: str, target: StepTarget, position: int):
        return await self.change(incident, user_id, lambda current: checklist.move_step(
            current, target, position, user_id, now_ms()),
            lambda inc, events, who: f"@{who} moved step **{neutralize(str(events[0].details.get('title', '')))}** "
                                     f"to position {position + 1}.")

    async def run_step(self, incident: Incident, user_id: str, target: StepTarget) -> str:
        """Run the step's slash command in the incident channel; returns what to tell the user."""
        await self.require_member(incident, user_id)
        step = incident.step(target)
        updated, events = await self.store.mutate_incident(
            incident.id, lambda current: checklist.run_step(current, target, user_id, now_ms()))
        telemetry_of(self.ctx).incident_changed(updated, events)
        command = step.command
        who = await self.directory.username(user_id)
        try:
            await self.ctx.client.execute_command(incident.channel_id, command, team_id=incident.team_id)
        except MattermostError as error:
            log.info("running %r for incident %s was refused: %s", command, incident.id, error)
            return (f"Mattermost did not let Command Center run this step's command. Run it yourself in this "
                    f"channel by typing:\n```\n{command}\n```")
        await self.ctx.client.create_post(incident.channel_id, f"@{who} ran {_step_label(events[0])}: `{command}`")
        return ""


def _step_label(event: TimelineEvent) -> str:
    details = event.details
    stage, index = details.get("stage"), details.get("index")
    title = neutralize(str(details.get("title", "")))
    if isinstance(stage, int) and isinstance(index, int):
        return f"{stage + 1}.{index + 1} **{title}**"
    return f"**{title}**"


__all__ = ["IncidentService", "CardUpdater", "StartRequest", "channel_name_for", "post_id_from",
           "NOT_AN_INCIDENT_CHANNEL", "EventKind"]
