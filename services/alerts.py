"""Incidents from alerts (issue 21, README "Alerts"): record, route, dedupe, flood control, post.

The HTTP answer waits only for the store: :meth:`AlertService.ingest` routes each alert of a
notification (gateway/alerts.py rules, first match wins), records it — (source, fingerprint)
counted up, its group touched — and schedules the triage channel's ``alert_notify`` job, all in one
transaction. Everything Mattermost sees is done by that job (services/scheduler.py: durable, fired
again after a restart), so a notification answered 200 is never lost, and a storm costs one job
run per channel per batch, not one post per alert:

- a new group (one rule, one group key) gets one post, while the channel has had fewer than
  ``flood.max_posts`` new groups in the current window: a *suggestion* (summary, counts, a
  **Start incident** button) or, for a *declare* rule, an incident started through
  :meth:`IncidentService.start_named` by the rule's commander, with every check a person gets;
- past the limit, groups are counted in the window's one summary post ("N more alert groups…"),
  edited as more arrive; every alert is still recorded;
- a repeat edits the suggestion (count, last seen) or, for an incident, posts a short note with an
  ALERT_RECEIVED timeline event at most once per ``flood.incident_posts_every``; a resolution is
  posted in the incident at once (ALERT_RESOLVED) and marks the suggestion resolved.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from domain import DomainError
from domain.alerts import AlertGroup, AlertIn, AlertMode, AlertRecord, AlertStatus, GroupPosted, GroupState, GroupTouch
from domain.ids import new_id
from domain.models import EventKind, Incident, Playbook, TimelineEvent
from gateway import payloads as p
from gateway import ui
from gateway.alerts import RoutingRules, Rule, RulesFormatError, RulesProblem
from gateway.errors import MattermostError, user_message
from gateway.messages import neutralize
from services.context import BotContext
from services.incidents import IncidentService, StartRequest
from services.scheduler import Firing, Scheduler
from storage.jobs import JobState

log = logging.getLogger(__name__)

#: The scheduler's job kind that posts about a triage channel's alert groups (key: the channel id).
NOTIFY_KIND = "alert_notify"
#: Groups handled per job run; more are left for the next run, scheduled at once.
GROUPS_PER_RUN = 200
#: The lease (storage/leases.py) a channel's run holds, so one run per channel at a time holds across
#: every bot process on the database (replicas), not only within one.
RUN_LEASE_PREFIX = "alerts.run."
#: A run that finds the channel's lease held elsewhere runs again this much later (the holder may have
#: read the groups before the latest news arrived).
BUSY_RETRY_MS = 1_000
_SUMMARY_KEY = "alerts.summary."
_DECLARING_KEY = "alerts.declaring."
#: What a post about a group carries in its props (found again after a crash).
GROUP_MARK = "command_center_alert_group"
SUMMARY_MARK = "command_center_alert_summary"


def group_id_for(source: str, rule: str, group_key: str) -> str:
    """The stored id of one rule's group of one source's group key (26 characters, like Mattermost's)."""
    return hashlib.sha256("\x00".join((source, rule, group_key)).encode()).hexdigest()[:26]


@dataclass(frozen=True)
class Target:
    team_id: str
    channel_id: str


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _inert(text: str) -> str:
    """Alert text on one line, inert: :func:`neutralize`, and a word joiner after each '~' — an escaped
    '~' still links a channel once Mattermost has parsed the escape (the mention judge in
    sandbox/mention_text.py reads it the same way)."""
    return _TILDE.sub("~" + _WORD_JOINER, neutralize(text))


_TILDE = re.compile(r"~(?=\S)")
_WORD_JOINER = "\u2060"


def _plain_quote(text: str, *, limit: int) -> str:
    """Alert text (whatever a monitored system put in it) as a block quote of plain text: unlike
    :func:`quote` (for a Mattermost post, whose formatting is kept), no link, image, channel or
    markup in it is live, so ``[https://good](https://evil)`` shows as typed and leads nowhere."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return "\n".join(f"> {_inert(line)}" if line.strip() else ">" for line in _LINES.split(text))


_LINES = re.compile(r"\r\n|[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")


def _link_target(url: str) -> str:
    """A URL as a Markdown link target: nothing in it can end the link or mention anyone."""
    for char, code in (("(", "%28"), (")", "%29"), (" ", "%20"), ("<", "%3C"), (">", "%3E"), ("@", "%40"),
                       ("\n", ""), ("\r", "")):
        url = url.replace(char, code)
    return url[:URL_SHOWN]


#: Longest source link shown in a suggestion.
URL_SHOWN = 1000


#: Settings key (+ the suggestion post's id) naming the group a Start button's dialog came from.
START_LINK_PREFIX = "alerts.start."

class AlertService:
    """Takes notifications in (:meth:`ingest`) and posts about them from the scheduler (:meth:`notify`)."""

    def __init__(self, ctx: BotContext, incidents: IncidentService, scheduler: Scheduler, rules: RoutingRules) -> None:
        self.ctx = ctx
        self.incidents = incidents
        self.scheduler = scheduler
        self.rules = rules
        self._by_name = {rule.name: rule for rule in rules.rules}
        #: Each rule's team and triage channel, resolved at start (:meth:`resolve`).
        self.targets: dict[str, Target] = {}
        #: What ingest has seen since start: alerts, routed, repeats (logs, tests).
        self.stats: Counter[str] = Counter()
        #: One run per channel at a time in this process (a run scheduled while one runs waits for it), so
        #: two runs never both count the window's posts as still below the limit; across processes the
        #: channel's run lease does the same (:meth:`notify`).
        self._running: dict[str, asyncio.Lock] = {}
        scheduler.register(NOTIFY_KIND, self.notify, while_ongoing=False, delivered=self._not_delivered)
        incidents.in_transaction.append(self._link_started)

    @property
    def store(self):
        return self.ctx.store

    # -- start-up ----------------------------------------------------------------------------------

    async def resolve(self) -> None:
        """Find each rule's team and triage channel (RulesFormatError naming the rule's line when one is
        missing, or the bot is not in it). Playbooks and commanders are looked up when used: they may
        be created or change later."""
        problems: list[RulesProblem] = []
        teams = {team.name: team for team in await self.ctx.client.my_teams()}
        for rule in self.rules.rules:
            team = teams.get(rule.team)
            if team is None:
                problems.append(RulesProblem(rule.line, f"rule {rule.name!r}, team",
                                             f"the bot is not in a team named {rule.team!r}."))
                continue
            try:
                channel = await self.ctx.client.channel_by_name(team.id, rule.channel)
                await self.ctx.client.get_channel_member(channel.id, self.ctx.client.user_id)
            except MattermostError as error:
                if error.status not in (403, 404):
                    raise
                problems.append(RulesProblem(rule.line, f"rule {rule.name!r}, channel",
                                             f"the bot is not a member of a channel ~{rule.channel} in team "
                                             f"{rule.team}; add it there (or name another channel)."))
                continue
            self.targets[rule.name] = Target(team.id, channel.id)
        if problems:
            raise RulesFormatError(problems, str(self.ctx.settings.alerts_rules_file or "the alert routing rules"))

    # -- intake (the HTTP answer waits for this only) -------------------------------------------

    async def ingest(self, source: str, alerts: list[AlertIn]) -> dict[str, int]:
        """Record one notification and schedule its posts; returns counts for the answer."""
        now = self.ctx.clock()
        pairs: list[tuple[AlertIn, GroupTouch | None]] = []
        channels: set[str] = set()
        for alert in alerts:
            rule = self.rules.route(alert)
            target = self.targets.get(rule.name) if rule is not None else None
            touch = None
            if rule is not None and target is not None:
                touch = GroupTouch(id=group_id_for(source, rule.name, alert.group_key), source=source,
                                   group_key=alert.group_key, rule=rule.name, channel_id=target.channel_id,
                                   mode=rule.mode)
                channels.add(target.channel_id)
            pairs.append((alert, touch))
        async with self.store.transaction():
            records = await self.store.record_alerts(source, pairs, now=now)
            due = self.scheduler.clock.now_ms() + self.rules.flood.batch_delay_ms
            for channel_id in sorted(channels):
                # One pending run per channel takes every notification until it starts (a storm costs one
                # run per batch); one due later (held back by the incident rate limit) is brought forward.
                pending = await self.store.list_jobs(kind=NOTIFY_KIND, key=channel_id, states=(JobState.PENDING,))
                if not pending or pending[0].due_at > due:
                    await self.scheduler.schedule(NOTIFY_KIND, channel_id, payload={"channel_id": channel_id},
                                                  due_at=due)
        routed = sum(1 for _, touch in pairs if touch is not None)
        repeats = sum(1 for record in records if record.count > 1)
        self.stats.update(alerts=len(alerts), routed=routed, repeats=repeats)
        return {"alerts": len(alerts), "routed": routed, "repeats": repeats}

    # -- posting (the scheduler's job) ----------------------------------------------------------------

    async def _not_delivered(self, job) -> bool:
        """Always run again after a crash: every step checks the store (and, for posts made just before
        a crash, the channel) before it acts."""
        return False

    async def notify(self, firing: Firing) -> None:
        channel_id = firing.job.key
        lock = self._running.setdefault(channel_id, asyncio.Lock())
        async with lock:
            # One holder per run (the job's claim token is one per claim; a fresh id otherwise). The
            # lease lasts as long as the job's claim: a run still going after that is taken over anyway.
            holder = f"{firing.job.token or new_id()}"
            now = self.scheduler.clock.now_ms()
            lease = await self.store.acquire_lease(RUN_LEASE_PREFIX + channel_id, holder, now=now,
                                                   ttl_ms=self.scheduler.lease_ms)
            if lease is None:
                # Another process is running this channel: come back once it is likely done, so news it
                # did not read yet is posted (unless a pending run is due sooner already).
                self.stats.update(runs_deferred=1)
                due = now + BUSY_RETRY_MS
                pending = await self.store.list_jobs(kind=NOTIFY_KIND, key=channel_id, states=(JobState.PENDING,))
                if not pending or pending[0].due_at > due:
                    await self.scheduler.schedule(NOTIFY_KIND, channel_id, payload={"channel_id": channel_id},
                                                  due_at=due)
                return
            try:
                await self._notify(firing)
            finally:
                await self.store.release_lease(lease.name, holder, lease.epoch)

    async def _notify(self, firing: Firing) -> None:
        channel_id = firing.job.key
        now = self.ctx.clock()
        flood = self.rules.flood
        window_start = now - now % flood.window_ms
        groups = await self.store.alert_groups_with_news(channel_id, limit=GROUPS_PER_RUN)
        created = await self.store.alert_groups_posted_since(channel_id, window_start)
        # A run after a crash mid-delivery, or a retry after an error part-way: what it made may not be
        # recorded yet, so posts and incidents are looked for before any is made again.
        recovering = firing.job.maybe_delivered or firing.job.attempts > 1
        summarised: list[tuple[AlertGroup, list[AlertRecord]]] = []
        next_at: int | None = None
        for group in groups:
            rule = self._by_name.get(group.rule)
            alerts = await self.store.alerts_of_group(group.id)
            if rule is None or not alerts:  # the rule was removed from the file since
                await self._save(group, state=group.state, last_error="no rule of that name any more")
                continue
            fresh = group.state in (GroupState.NEW, GroupState.SUMMARISED, GroupState.FAILED)
            if fresh:
                if group.state is GroupState.SUMMARISED and (group.posted_at or 0) >= window_start:
                    summarised.append((group, alerts))  # already counted in this window's summary
                    continue
                if created >= flood.max_posts:
                    summarised.append((group, alerts))
                    continue
                created += 1
                if rule.mode is AlertMode.SUGGEST:
                    await self._suggest(group, rule, alerts, now, recovering)
                else:
                    await self._declare(group, rule, alerts, now, recovering)
            elif group.state is GroupState.SUGGESTED:
                await self._suggest(group, rule, alerts, now, recovering)
            elif group.state is GroupState.DECLARED:
                due = await self._incident_news(group, alerts, now)
                if due is not None:
                    next_at = due if next_at is None else min(next_at, due)
        if summarised:
            await self._summarise(channel_id, window_start, summarised, now)
        if len(groups) >= GROUPS_PER_RUN:
            next_at = now
        if next_at is not None:
            delay = max(0, next_at - now)
            await self.scheduler.schedule(NOTIFY_KIND, channel_id, payload={"channel_id": channel_id},
                                          due_at=self.scheduler.clock.now_ms() + delay)

    async def _save(self, group: AlertGroup, **changes: object) -> None:
        values = dict(posted_seq=group.seq, state=group.state, post_id=group.post_id, incident_id=group.incident_id,
                      created_post_at=group.created_post_at, posted_at=group.posted_at, last_error=group.last_error)
        values.update(changes)
        await self.store.save_alert_group_posted(GroupPosted(id=group.id, **values))  # type: ignore[arg-type]

    # Suggestions ---------------------------------------------------------------------------------

    def _suggestion(self, group: AlertGroup, rule: Rule, alerts: list[AlertRecord], team_id: str,
                    channel_id: str) -> tuple[str, dict]:
        firing = [alert for alert in alerts if alert.status is AlertStatus.FIRING]
        first = alerts[0]
        resolved = not firing
        head = (f":white_check_mark: **Resolved: {_inert(first.title)}**" if resolved
                else f":rotating_light: **Alert: {_inert(first.title)}**")
        lines = [head + f" ({_inert(group.source)}, rule `{rule.name}`)"]
        about = first.annotations.get("summary") or first.annotations.get("description") or ""
        if about:
            lines.append(_plain_quote(about, limit=500))
        titles = Counter(alert.title for alert in alerts)
        if len(titles) > 1:
            lines.append("Alerts: " + ", ".join(f"{_inert(title)} ×{n}" for title, n in titles.most_common(5)))
        lines.append(f"{len(firing)} firing, {len(alerts) - len(firing)} resolved · {group.notifications} "
                     f"notification{'s' if group.notifications != 1 else ''} · first seen {_when(group.first_seen)} · "
                     f"last seen {_when(group.last_seen)}")
        url = next((alert.url for alert in alerts if alert.url), "")
        if url.startswith(("http://", "https://")):
            lines.append(f"[Source]({_link_target(url)})")
        text = "\n".join(lines)
        attachment = ui.Attachment(fallback="Start an incident from this alert", actions=(
            ui.Button("startfromalert", "Start incident", p.StartFromAlert(team_id=team_id, group_id=group.id),
                      "danger" if not resolved else "default"),))
        props = {GROUP_MARK: group.id,
                 "attachments": [attachment.to_json(self.ctx.signer, self.ctx.action_url, channel_id)]}
        return text, props

    async def _suggest(self, group: AlertGroup, rule: Rule, alerts: list[AlertRecord], now: int,
                       recovering: bool) -> None:
        target = self.targets[rule.name]
        text, props = self._suggestion(group, rule, alerts, target.team_id, group.channel_id)
        post_id = group.post_id if group.state is GroupState.SUGGESTED else None
        if post_id is None and recovering:
            post_id = await self._find_post(group.channel_id, GROUP_MARK, group.id)
        if post_id is not None:
            try:
                await self.ctx.client.patch_post(post_id, {"message": text, "props": props})
                await self._save(group, state=GroupState.SUGGESTED, post_id=post_id,
                                 created_post_at=group.created_post_at or now, posted_at=now, last_error=None)
                return
            except MattermostError as error:
                if not (error.is_edit_time_limit or error.is_not_found or error.is_forbidden):
                    raise
                # Too old to edit (PostEditTimeLimit) or deleted: the news goes in a new post.
        post = await self.ctx.client.create_post(group.channel_id, text, props=props)
        await self._save(group, state=GroupState.SUGGESTED, post_id=post.id,
                         created_post_at=group.created_post_at or now, posted_at=now, last_error=None)

    async def _find_post(self, channel_id: str, mark: str, value: str) -> str | None:
        """A post of ours carrying ``mark: value`` among the channel's latest (after a crash)."""
        posts = await self.ctx.client.channel_posts(channel_id, per_page=200)
        for post in posts.posts.values():
            if post.user_id == self.ctx.client.user_id and post.props.get(mark) == value:
                return post.id
        return None

    async def started_from(self, group_id: str) -> str | None:
        """The name of the incident already started from this group (its suggestion's Start button, or
        declared), or None: a second click is told where the incident is instead of starting another."""
        group = await self.store.get_alert_group(group_id)
        if group is None or group.incident_id is None:
            return None
        incident = await self.store.get_incident(group.incident_id)
        return incident.name if incident is not None else None

    async def remember_start(self, post_id: str, group_id: str) -> None:
        """The Start button opened the start dialog on the suggestion ``post_id``: an incident started
        from that post is linked to the group (:meth:`_link_started`)."""
        await self.store.set_setting(START_LINK_PREFIX + post_id, group_id)

    async def _link_started(self, incident: Incident, events: list[TimelineEvent]) -> None:
        """In the new incident's own transaction: if it was started from a suggestion, the group now
        belongs to it (first one wins), so later alerts of the group and its resolution go to the
        incident and the Start button says where it is."""
        if incident.source_post_id is None or not any(e.kind is EventKind.CREATED for e in events):
            return
        key = START_LINK_PREFIX + incident.source_post_id
        group_id = await self.store.get_setting(key)
        if group_id is None:
            return
        group = await self.store.get_alert_group(group_id)
        if group is not None and group.incident_id is None:
            await self._save(group, state=GroupState.DECLARED, incident_id=incident.id)
        await self.store.delete_setting(key)

    async def start_dialog_defaults(self, group_id: str) -> tuple[str, str, str] | None:
        """(name, description, playbook name) for a suggestion's Start button; None if the group is gone."""
        group = await self.store.get_alert_group(group_id)
        rule = self._by_name.get(group.rule) if group is not None else None
        if group is None or rule is None:
            return None
        alerts = await self.store.alerts_of_group(group.id, limit=50)
        if not alerts:
            return None
        return self._name(rule, group, alerts), self._description(group, rule, alerts), rule.playbook

    def _name(self, rule: Rule, group: AlertGroup, alerts: list[AlertRecord]) -> str:
        first = alerts[0]
        alert = AlertIn(fingerprint=first.fingerprint, status=first.status, title=first.title,
                        group_key=group.group_key, labels=first.labels, annotations=first.annotations)
        return rule.name_for(alert, group.source)

    def _description(self, group: AlertGroup, rule: Rule, alerts: list[AlertRecord]) -> str:
        firing = sum(1 for alert in alerts if alert.status is AlertStatus.FIRING)
        titles = Counter(alert.title for alert in alerts)
        lines = [f"From {group.source} alerts (rule {rule.name}, group {group.group_key[:200]}):"]
        lines += [f"- {title} ×{count}" for title, count in titles.most_common(10)]
        first = alerts[0]
        about = first.annotations.get("summary") or first.annotations.get("description") or ""
        if about:
            lines.append(about[:1000])
        if first.labels:
            lines.append("Labels: " + ", ".join(f"{k}={v}" for k, v in sorted(first.labels.items()))[:1000])
        lines.append(f"{firing} firing, {len(alerts) - firing} resolved; first seen {_when(group.first_seen)}.")
        url = next((alert.url for alert in alerts if alert.url), "")
        if url:
            lines.append(f"Source: {url[:500]}")
        return "\n".join(lines)[:3900]

    # Declared incidents ----------------------------------------------------------------------------

    async def _playbook(self, team_id: str, name: str) -> Playbook | None:
        playbooks = await self.store.playbooks_for_user(team_id, self.ctx.client.user_id, is_admin=True)
        return next((pb for pb in playbooks if pb.id == name), None) or next(
            (pb for pb in playbooks if pb.title.strip().lower() == name.strip().lower()), None)

    async def _declare(self, group: AlertGroup, rule: Rule, alerts: list[AlertRecord], now: int,
                       recovering: bool) -> None:
        target = self.targets[rule.name]
        name = self._name(rule, group, alerts)
        declaring_key = _DECLARING_KEY + group.id
        if recovering:
            adopted = await self._adopt(target.team_id, name, await self.store.get_setting(declaring_key))
            if adopted is not None:
                await self._declared(group, adopted, alerts, now, rule)
                return
        commander = await self.incidents.directory.team_user_by_username(target.team_id, rule.commander)
        playbook = await self._playbook(target.team_id, rule.playbook)
        problem = ""
        if commander is None:
            problem = f"the commander @{rule.commander} is not an active member of the team"
        elif playbook is None:
            problem = f"there is no playbook {rule.playbook!r} in the team"
        incident = None
        if not problem and commander is not None and playbook is not None:
            await self.store.set_setting(declaring_key, str(now))
            request = StartRequest(actor_id=commander.id, team_id=target.team_id, playbook_id=playbook.id,
                                   name=name, description=self._description(group, rule, alerts))
            try:
                incident = (await self.incidents.start_named(request)).incident
            except DomainError as error:  # the same refusals a person gets (not a playbook member, …)
                problem = user_message(error, self.ctx.settings.command_trigger)
            if incident is not None and commander is not None and incident.commander_id != commander.id:
                # The playbook names a default commander; the rule's commander is the one it asks for.
                try:
                    await self.incidents.change_commander(incident, commander.id, commander.id)
                except DomainError as error:
                    log.warning("incident %s: the rule's commander could not take over: %s", incident.id, error)
        if incident is None:
            await self.store.delete_setting(declaring_key)
            await self.ctx.client.create_post(
                group.channel_id,
                f":warning: Rule `{rule.name}` could not start an incident for the alert "
                f"**{_inert(alerts[0].title)}**: {_inert(problem)}. Fix the rule or the playbook; the alert "
                "is recorded and a repeat tries again.", props={GROUP_MARK: group.id})
            await self._save(group, state=GroupState.FAILED, created_post_at=now, posted_at=now,
                             last_error=problem[:500])
            return
        await self._declared(group, incident.id, alerts, now, rule)
        await self.store.delete_setting(declaring_key)

    async def _adopt(self, team_id: str, name: str, since: str | None) -> str | None:
        """The incident an interrupted run started for this group (same name, started since), if any."""
        if since is None or not since.isdigit():
            return None
        page = await self.store.list_incidents(team_id, is_admin=True, search=name, per_page=50)
        for incident in page.items:
            if incident.name == name and incident.created_at >= int(since):
                return incident.id
        return None

    async def _declared(self, group: AlertGroup, incident_id: str, alerts: list[AlertRecord], now: int,
                        rule: Rule) -> None:
        incident = await self.store.get_incident(incident_id)
        if incident is None:
            return
        first = alerts[0]
        await self.store.append_events([TimelineEvent(
            id=new_id(), incident_id=incident.id, at=now, kind=EventKind.ALERT_RECEIVED,
            actor_id=self.ctx.client.user_id,
            details={"source": group.source, "rule": rule.name, "fingerprint": first.fingerprint[:128],
                     "alerts": len(alerts), "declared": True})])
        quoted = "\n".join(f"> {_inert(alert.title[:500])} ({alert.status.value})" for alert in alerts[:10])
        await self.ctx.client.create_post(incident.channel_id, f":rotating_light: Declared from {_inert(group.source)} "
                                          f"alerts by rule `{rule.name}`:\n{quoted}", props={GROUP_MARK: group.id})
        link = f"{self.ctx.client.base_url}/_redirect/pl/{incident.card_post_id}" if incident.card_post_id else ""
        await self.ctx.client.create_post(
            group.channel_id, f":rotating_light: Incident **{_inert(incident.name)}** was declared from the alert "
            f"**{_inert(first.title)}** (rule `{rule.name}`)" + (f": [its card]({link})" if link else "."),
            props={GROUP_MARK: group.id})
        await self._save(group, state=GroupState.DECLARED, incident_id=incident.id, created_post_at=now,
                         posted_at=now, last_error=None)

    async def _incident_news(self, group: AlertGroup, alerts: list[AlertRecord], now: int) -> int | None:
        """Post what changed in a declared group's incident since its last post; returns when to look
        again if a note about repeats only is held back by the rate limit (resolutions never are)."""
        incident = await self.store.get_incident(group.incident_id) if group.incident_id else None
        if incident is None:
            await self._save(group, last_error="the incident is gone")
            return None
        shown = group.posted_seq
        resolved = [alert for alert in alerts if alert.status is AlertStatus.RESOLVED
                    and alert.resolved_seq is not None and alert.resolved_seq > shown]
        repeats = [alert for alert in alerts if alert.status is AlertStatus.FIRING and alert.seq > shown]
        every = self.rules.flood.incident_posts_every_ms
        last = group.posted_at or 0
        if not resolved and repeats and now - last < every:
            return last + every  # only repeats, and one was posted lately: they wait (still news)
        events: list[TimelineEvent] = []
        lines: list[str] = []
        if resolved:
            still = sum(1 for alert in alerts if alert.status is AlertStatus.FIRING)
            lines.append(":white_check_mark: Resolved: " + ", ".join(
                f"**{_inert(alert.title)}**" for alert in resolved[:10])
                + (f" and {len(resolved) - 10} more" if len(resolved) > 10 else "")
                + (f". {still} still firing." if still else ". Every alert of this incident is resolved."))
            events.append(TimelineEvent(id=new_id(), incident_id=incident.id, at=now, kind=EventKind.ALERT_RESOLVED,
                                        actor_id=self.ctx.client.user_id,
                                        details={"source": group.source, "resolved": len(resolved), "firing": still}))
        if repeats:
            lines.append(f":repeat: {len(repeats)} alert{'s' if len(repeats) != 1 else ''} still or again firing: "
                         + ", ".join(f"**{_inert(alert.title)}** ×{alert.count}" for alert in repeats[:10])
                         + f" (last seen {_when(max(alert.last_seen for alert in repeats))}).")
            events.append(TimelineEvent(id=new_id(), incident_id=incident.id, at=now, kind=EventKind.ALERT_RECEIVED,
                                        actor_id=self.ctx.client.user_id,
                                        details={"source": group.source, "alerts": len(repeats)}))
        if lines:
            await self.ctx.client.create_post(incident.channel_id, "\n".join(lines), props={GROUP_MARK: group.id})
            await self.store.append_events(events)
        await self._save(group, posted_at=now if lines else group.posted_at)
        return None

    # The flood summary -----------------------------------------------------------------------------

    async def _summarise(self, channel_id: str, window_start: int,
                         groups: list[tuple[AlertGroup, list[AlertRecord]]], now: int) -> None:
        key = _SUMMARY_KEY + channel_id
        raw = await self.store.get_setting(key)
        state = json.loads(raw) if raw else {}
        if state.get("window") != window_start:
            state = {"window": window_start, "summary_post": "", "groups": 0, "alerts": 0, "titles": {}}
        titles = Counter(state.get("titles", {}))
        for group, alerts in groups:
            counted_here = group.state is GroupState.SUMMARISED and (group.posted_at or 0) >= window_start
            if not counted_here:
                state["groups"] += 1
                state["alerts"] += len(alerts)
                titles.update(alert.title[:100] for alert in alerts)
        state["titles"] = dict(titles.most_common(20))
        window_end = window_start + self.rules.flood.window_ms
        text = (f":rotating_light: **{state['groups']} more alert group{'s' if state['groups'] != 1 else ''}** "
                f"({state['alerts']} alerts) arrived between {_when(window_start)} and {_when(window_end)} and were "
                "not posted one by one, to keep this channel readable. Every alert is recorded.\nMost frequent: "
                + ", ".join(f"{_inert(title)} ×{n}" for title, n in titles.most_common(5)))
        post_id = state.get("summary_post") or ""
        edited = False
        if post_id:
            try:
                await self.ctx.client.patch_post(post_id, {"message": text})
                edited = True
            except MattermostError as error:
                if not (error.is_edit_time_limit or error.is_not_found or error.is_forbidden):
                    raise
        if not edited:
            post = await self.ctx.client.create_post(channel_id, text, props={SUMMARY_MARK: str(window_start)})
            state["summary_post"] = post.id
        async with self.store.transaction():
            await self.store.set_setting(key, json.dumps(state))
            for group, _ in groups:
                counted_here = group.state is GroupState.SUMMARISED and (group.posted_at or 0) >= window_start
                await self._save(group, state=GroupState.SUMMARISED, post_id=state["summary_post"],
                                 posted_at=group.posted_at if counted_here else now)


__all__ = ["GROUP_MARK", "NOTIFY_KIND", "AlertService", "Target", "group_id_for"]
