"""Outgoing webhooks: lifecycle events of incidents, sent to other tools (issue 21; docs/webhooks.md).

**Targets.** A playbook's targets (its YAML ``webhooks:`` list, or the settings dialog) are copied
to each incident at start, like its update settings; a team's targets come from
``CC_TEAM_WEBHOOKS``. A URL that is both gets one delivery, as the playbook's target.

**The outbox.** Each delivery is a scheduler job of kind :data:`WEBHOOK_KIND`, written by
:meth:`WebhookService.enqueue` *inside the store transaction of the change that causes it*
(``IncidentService.in_transaction``): the change and its deliveries are committed together or not
at all. The job carries ids and the few values of the moment (status, commander, severity), never
content; the body is built when it is sent (names, the status update's text from the timeline).
Its key is ``<timeline event id>:<target id>``; its id is the ``Idempotency-Key`` and the payload's
``id``, the same on every attempt.

**Delivery.** Off the request path: the scheduler fires the job after the commit. A failure (no
answer, a 5xx, 408/425/429) is retried with the kind's own backoff (exponential, capped, jittered:
services/scheduler.py ``Backoff``) until it succeeds, its attempts are used up or it is too old; a
refusal that will not change (another 4xx, a redirect, an address that is not allowed) gives up
at once. Given up is recorded: the job is ``failed`` with the reason. **At least once:** a job
reclaimed after a crash mid-delivery is sent again (:meth:`WebhookService.delivered` cannot know
whether the receiver got it), so a receiver sees at most one duplicate per crash, with the same
idempotency key.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain import DomainError, Incident, TimelineEvent
from domain import webhooks as rules
from domain.models import EventKind, WebhookTarget
from gateway.errors import MattermostError
from gateway.webhooks_out import (
    AddressPolicy,
    WebhookSender,
    parse_target_url,
    signed_headers,
    target_secret,
)
from services.context import BotContext
from services.incidents import IncidentService
from services.scheduler import Backoff, Firing, Scheduler
from settings import TeamWebhook
from storage.jobs import Job

log = logging.getLogger(__name__)

#: The scheduler's job kind of one delivery (key: ``<event id>:<target id>``).
WEBHOOK_KIND = "webhook"
#: The payload's format version (``"version"``).
PAYLOAD_VERSION = 1
#: Where a target comes from: the incident's copy of its playbook's targets, or the team's settings.
FROM_PLAYBOOK = "playbook"
FROM_TEAM = "team"
#: Characters of a severity value carried by a job (values are short option names; a job stays small).
SEVERITY_MAX = 64


@dataclass(frozen=True, slots=True)
class TeamTarget:
    """A team-wide target (``CC_TEAM_WEBHOOKS``) with the operator's secret."""

    team_id: str
    target: WebhookTarget
    secret: str


def team_targets(entries: Sequence[TeamWebhook], policy: AddressPolicy) -> list[TeamTarget]:
    """The team targets of the settings, checked (ValueError naming ``CC_TEAM_WEBHOOKS``)."""
    targets = []
    for number, entry in enumerate(entries, 1):
        try:
            url = parse_target_url(entry.url)
            policy.check_literal(url)
            events = rules.event_kinds(entry.events)
        except (ValueError, DomainError) as error:
            raise ValueError(f"CC_TEAM_WEBHOOKS entry {number}: {error}") from None
        target_id = hashlib.sha256(f"{entry.team_id} {url.url}".encode()).hexdigest()[:26]
        targets.append(TeamTarget(entry.team_id, WebhookTarget(id=target_id, url=url.url, events=events),
                                  entry.secret))
    return targets


class WebhookService:
    """Writes deliveries in the changes' transactions and sends them from the scheduler."""

    def __init__(self, ctx: BotContext, incidents: IncidentService, scheduler: Scheduler, sender: WebhookSender, *,
                 teams: Sequence[TeamTarget] = (), backoff: Backoff | None = None) -> None:
        self.ctx = ctx
        self.incidents = incidents
        self.directory = incidents.directory
        self.scheduler = scheduler
        self.sender = sender
        self.teams: dict[str, list[TeamTarget]] = {}
        for team in teams:
            self.teams.setdefault(team.team_id, []).append(team)
        self._team_names: dict[str, str] = {}
        #: The kind's retries (services/scheduler.py ``Backoff``); tests make it fast and seed its rng.
        self.backoff = backoff or Backoff()
        incidents.in_transaction.append(self.enqueue)
        scheduler.register(WEBHOOK_KIND, self.deliver, delivered=self.delivered, while_ongoing=False,
                           retry=self.backoff)

    # Which targets --------------------------------------------------------------------------

    def targets_of(self, incident: Incident) -> list[tuple[str, WebhookTarget]]:
        """(source, target) for every target of the incident; a URL once (the playbook's first)."""
        found: list[tuple[str, WebhookTarget]] = []
        urls: set[str] = set()
        for source, target in [*((FROM_PLAYBOOK, t) for t in incident.webhooks),
                               *((FROM_TEAM, t.target) for t in self.teams.get(incident.team_id, ()))]:
            if target.url not in urls:
                urls.add(target.url)
                found.append((source, target))
        return found

    def _target(self, incident: Incident, source: str, target_id: str) -> tuple[WebhookTarget, str] | None:
        """The target of a job and its secret; None when it is no longer configured."""
        if source == FROM_PLAYBOOK:
            for target in incident.webhooks:
                if target.id == target_id:
                    return target, target_secret(self.ctx.signer, target.id)
            return None
        for team in self.teams.get(incident.team_id, ()):
            if team.target.id == target_id:
                return team.target, team.secret
        return None

    def secret_of(self, target: WebhookTarget) -> str:
        """A playbook target's signing secret (shown to the playbook's editor when it is added)."""
        return target_secret(self.ctx.signer, target.id)

    # The outbox (inside the change's transaction) ---------------------------------------------

    async def enqueue(self, incident: Incident, events: list[TimelineEvent]) -> None:
        """One job per lifecycle event and target that wants it, in the caller's transaction."""
        targets = self.targets_of(incident)
        if not targets:
            return
        now = self.scheduler.clock.now_ms()
        scheduled = False
        for event in events:
            if event.kind not in rules.WEBHOOK_EVENTS:
                continue
            for source, target in targets:
                if not rules.wants(target, event.kind):
                    continue
                payload = {"incident_id": incident.id, "event_id": event.id, "kind": event.kind.value,
                           "at": event.at, "actor_id": event.actor_id, "source": source, "target_id": target.id,
                           "status": incident.status.value, "commander_id": incident.commander_id,
                           "severity": (incident.severity or None) and str(incident.severity)[:SEVERITY_MAX],
                           "public": incident.public}
                await self.ctx.store.schedule_job(WEBHOOK_KIND, f"{event.id}:{target.id}", due_at=now, now=now,
                                                  payload=payload)
                scheduled = True
        if scheduled:
            # Once this transaction has committed, so the claim sees the jobs (on PostgreSQL it runs on
            # another connection meanwhile; on SQLite it queues behind the single writer anyway).
            self.ctx.store.after_commit(self.scheduler.wake)

    # Sending (the scheduler's job) -------------------------------------------------------------

    async def delivered(self, job: Job) -> bool:
        """After a crash mid-delivery the receiver may or may not have it; nothing here can ask it,
        so it is sent again (at least once: the receiver deduplicates by the idempotency key)."""
        if job.maybe_delivered:
            log.info("webhook %s may have been delivered before a crash; sending it again (same key)", job.id)
        return False

    async def deliver(self, firing: Firing) -> None:
        """Build the body and POST it, signed; raises (DeliveryError) for the scheduler to retry."""
        job = firing.job
        payload = job.payload
        incident = await self.ctx.store.get_incident(str(payload.get("incident_id", "")))
        if incident is None:
            log.info("webhook %s: its incident is gone; nothing sent", job.id)
            return
        found = self._target(incident, str(payload.get("source", "")), str(payload.get("target_id", "")))
        if found is None:
            log.info("webhook %s: its target is no longer configured; nothing sent", job.id)
            return
        target, secret = found
        kind = EventKind(str(payload.get("kind")))
        event = None
        if kind in (EventKind.STATUS_UPDATE, EventKind.ENDED, EventKind.RETRO_PUBLISHED):
            event = next((e for e in await self.ctx.store.timeline(incident.id)
                          if e.id == payload.get("event_id")), None)
        body = await self.body(job, incident, event, full=payload.get("source") == FROM_PLAYBOOK
                               or bool(payload.get("public")))
        name = rules.WEBHOOK_EVENTS[kind]
        headers = signed_headers(secret, body, event=name, idempotency_key=job.id, attempt=job.attempts,
                                 timestamp=self.sender.now_s())
        sent = await self.sender.post(target.url, body, headers)
        log.info("webhook %s (%s) delivered to %s: %d", job.id, name, parse_target_url(target.url).host, sent.status)

    async def body(self, job: Job, incident: Incident, event: TimelineEvent | None, *, full: bool) -> bytes:
        """The documented JSON (docs/webhooks.md). ``full``: a playbook's target, or a public
        incident; a team target is sent a private incident redacted (ids, status, severity only)."""
        payload = job.payload
        kind = EventKind(str(payload.get("kind")))
        summary: dict[str, Any] = {"id": incident.id, "team_id": incident.team_id,
                                   "status": payload.get("status"), "severity": payload.get("severity"),
                                   "private": not bool(payload.get("public"))}
        document: dict[str, Any] = {"version": PAYLOAD_VERSION, "id": job.id,
                                    "event": rules.WEBHOOK_EVENTS[kind], "occurred_at": payload.get("at"),
                                    "incident": summary}
        if full:
            commander_id = str(payload.get("commander_id", ""))
            summary.update({"name": incident.name, "commander": await self._user(commander_id),
                            "url": await self._url(incident), "playbook_id": incident.playbook_id,
                            "playbook": incident.playbook_title, "channel_id": incident.channel_id,
                            "created_at": incident.created_at})
            document["actor"] = await self._user(str(payload.get("actor_id", "")))
            document["details"] = await self._details(kind, incident, event, job)
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()

    async def _details(self, kind: EventKind, incident: Incident, event: TimelineEvent | None,
                       job: Job) -> dict[str, Any]:
        details: Mapping[str, Any] = event.details if event is not None else {}
        if kind is EventKind.CREATED:
            return {"description": incident.description}
        if kind is EventKind.STATUS_UPDATE:
            due = details.get("next_update_due_at")
            return {"message": str(details.get("message", "")), "final": bool(details.get("final")),
                    "next_update_due_at": due if isinstance(due, int) else None}
        if kind is EventKind.COMMANDER_CHANGED:
            return {"commander": await self._user(str(job.payload.get("commander_id", "")))}
        if kind is EventKind.ENDED:
            return {key: details[key] for key in ("duration_ms", "steps_done", "steps_total")
                    if isinstance(details.get(key), int)}
        if kind is EventKind.RETRO_PUBLISHED:
            return {"text": incident.retro_text}
        return {}

    async def _user(self, user_id: str) -> dict[str, Any] | None:
        if not user_id:
            return None
        try:
            username: str | None = await self.directory.username(user_id)
        except MattermostError:
            username = None
        return {"id": user_id, "username": username or None}

    async def _url(self, incident: Incident) -> str | None:
        """The incident channel's address in Mattermost (``<site>/<team>/channels/<channel>``)."""
        try:
            if incident.team_id not in self._team_names:
                for joined in await self.ctx.client.my_teams():
                    self._team_names[joined.id] = joined.name
            channel = await self.ctx.client.get_channel(incident.channel_id)
        except MattermostError as error:
            log.info("webhook: no link for incident %s: %s", incident.id, error)
            return None
        team = self._team_names.get(incident.team_id)
        if not team or not channel.name:
            return None
        return f"{self.ctx.client.base_url}/{team}/channels/{channel.name}"


__all__ = ["FROM_PLAYBOOK", "FROM_TEAM", "PAYLOAD_VERSION", "WEBHOOK_KIND", "TeamTarget", "WebhookService",
           "team_targets"]
