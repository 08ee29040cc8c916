"""Incident flows: the domain operations, the store and Mattermost, put together.

Every change follows one path (:meth:`IncidentService.change`): check that the user may change
the incident, apply the pure operation with a version check (so concurrent edits never overwrite
each other), then announce it in the channel and rebuild the card from the stored state.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import secrets
import time
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from domain import (
    Actor,
    DomainError,
    Incident,
    NotFound,
    Playbook,
    StepTarget,
    TimelineEvent,
    ValidationError,
    checklist,
    new_id,
    permissions,
    step_commands,
    validation,
)
from domain import incidents as ops
from domain import playbooks as playbook_ops
from domain.errors import COMMAND
from domain.freshness import StaleCard, require_fresh
from domain.models import EventKind
from domain.timeline import joined_at_start
from gateway.cards import (
    CardContext,
    card_user_ids,
    incident_card,
    stage_view,
    stage_view_text,
    visible_digest,
)
from gateway.directory import Directory
from gateway.errors import MattermostError, user_message
from gateway.messages import code_block, format_duration, inline_code, neutralize, quote
from gateway.models import Channel, CommandReply, Post, SlashCommand
from gateway.routing import Registry
from gateway.signing import spend_pending_key
from gateway.step_commands import BOT_MAY_RUN, refusal_in
from services import livecard
from services.context import BotContext
from services.replica import Replica

log = logging.getLogger(__name__)

NOT_AN_INCIDENT_CHANNEL = ("This channel is not an incident channel. Run this command in the channel of the "
                           f"incident, or type {COMMAND}list to find it.")
_CHANNEL_NAME_MAX = 64
_SUFFIX_LEN = 4
_SUFFIX_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
_JOURNAL_PREFIX = "start:"
# A channel name is claimed in the store by the one start that may create (and adopt) a channel of
# that name: key = prefix + team id + ":" + name, value = the start's incident id.
_CLAIM_PREFIX = "start-channel:"
#: Single-use keys of steps whose Run button is being acted on (in the store, so every replica sees
#: them): a copy of the click arriving meanwhile (a double click, a replay) is refused, since the run
#: is recorded only once the command was accepted. A replica that dies mid-run frees it after this long.
_RUN_KIND = "step-run"
_RUN_CLAIM_MS = 2 * 60 * 1000
#: Redraws of one card in a row after a newer version was found (each edit is followed by one read).
MAX_REDRAWS = 5
#: A start journal this old is recovered even if its replica still runs (no start takes near this long).
START_STALE_MS = 10 * 60 * 1000
_OPENING_MARK = "command_center_opening"
_CLOCK_SKEW_MS = 5 * 60 * 1000
# Set while a step's command runs in-process: a step run started from inside one is refused.
_RUNNING_STEP: contextvars.ContextVar[bool] = contextvars.ContextVar("running_step", default=False)
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


class StartJournal(BaseModel):
    """The plan of one start, kept in the store until the start is complete or undone."""

    incident_id: str
    team_id: str
    actor_id: str
    playbook_id: str
    name: str
    description: str
    private: bool
    source_post_id: str | None
    channel_name: str
    created_at: int
    abandoned: bool = False
    #: The replica that runs this start (services/replica.py); "" in journals from before replicas.
    replica: str = ""


@dataclass(frozen=True)
class Drawn:
    """What a card button was drawn for: the mark of its target's state (domain/freshness.py)."""

    mark: str
    step: StepTarget | None = None
    what: str = "status"


@dataclass
class StartRequest:
    actor_id: str
    team_id: str
    playbook_id: str
    name: str
    description: str = ""
    source_post_id: str | None = None


@dataclass
class Started:
    """A started incident and the name of its channel (for telling the creator where it is)."""

    incident: Incident
    channel_name: str
    #: Users the playbook invites who could not be added to the channel (no longer in the team).
    not_invited: tuple[str, ...] = ()


@dataclass
class CardState:
    """What the bot knows of an incident's card post since it last posted or edited it (in memory)."""

    post_id: str
    created_at: int | None  # the post's create_at (server time), when known: its edit window starts then
    digest: str = ""        # cards.visible_digest of what it shows
    as_of: bool = False     # it shows its last duration "as of" a time (no edit possible before the next)
    frozen: bool = False    # a tick was refused past PostEditTimeLimit: leave it until the next change


class CardUpdater:
    """Rebuilds an incident's card from the stored state; one rebuild at a time per incident, so a
    slower, older rebuild can never overwrite a newer one."""

    def __init__(self, ctx: BotContext, directory: Directory) -> None:
        self.ctx = ctx
        self.directory = directory
        self._locks: dict[str, asyncio.Lock] = {}
        self._retrying: dict[str, asyncio.Task] = {}
        self._states: dict[str, CardState] = {}
        self._names: dict[str, dict[str, str]] = {}
        # The newest version of each incident a rebuild has drawn (or been handed): a change hands its
        # saved incident to refresh(), which draws it without reading it back unless a newer one was drawn.
        self._versions: dict[str, int] = {}
        #: The time cards are rendered at (epoch ms); tests and benchmarks inject a simulated clock.
        self.clock: Callable[[], int] = lambda: ctx.clock()
        #: ServiceSettings.PostEditTimeLimit in seconds (-1: none), learned by services.livecard; None: unknown.
        self.edit_time_limit_s: int | None = None
        #: Called with the incident whenever its card was posted or edited (the live card scheduler).
        self.listeners: list[Callable[[Incident], None]] = []
        #: CPU seconds spent rendering and comparing cards for duration ticks (the benchmark reads it).
        self.tick_cpu_s = 0.0
        #: Cards drawn again because the incident moved on while they were drawn (another replica).
        self.redraws = 0

    def state_of(self, incident_id: str) -> CardState | None:
        return self._states.get(incident_id)

    async def context(self, incident: Incident) -> CardContext:
        """What rendering any view of ``incident`` needs (names, signer, the time)."""
        usernames = {user_id: await self.directory.username(user_id) for user_id in card_user_ids(incident)}
        return CardContext(usernames=usernames, signer=self.ctx.signer, action_url=self.ctx.action_url,
                           now_ms=self.clock(), base_url=self.ctx.callback_base_url)

    async def render(self, incident: Incident, *, now: int | None = None, as_of: bool = False,
                     reuse_names: bool = False) -> dict:
        """The card for ``incident``. ``reuse_names``: take usernames from this card's last rendering
        where there is one (a duration tick costs no user lookups)."""
        known = self._names.get(incident.id, {}) if reuse_names else {}
        usernames = {user_id: known[user_id] if user_id in known else await self.directory.username(user_id)
                     for user_id in card_user_ids(incident)}
        self._names[incident.id] = usernames
        context = CardContext(usernames=usernames, signer=self.ctx.signer, action_url=self.ctx.action_url,
                              now_ms=self.clock() if now is None else now, duration_as_of=as_of,
                              base_url=self.ctx.callback_base_url)
        return incident_card(incident, context)

    def busy(self, incident_id: str) -> bool:
        """Whether the card is being rebuilt right now (from the newest state once the rebuild reads it)."""
        lock = self._locks.get(incident_id)
        return lock is not None and lock.locked()

    def _remember(self, incident: Incident, post: Post | None, card: dict, as_of: bool) -> None:
        self._states[incident.id] = CardState(post_id=(post.id if post else "") or incident.card_post_id or "",
                                              created_at=(post.create_at or None) if post else None,
                                              digest=visible_digest(card), as_of=as_of)

    def _notify(self, incident: Incident) -> None:
        for listener in self.listeners:
            try:
                listener(incident)
            except Exception:  # a listener must never break a user's change
                log.exception("a card listener failed for incident %s", incident.id)

    def _drawn_from(self, incident: Incident) -> None:
        self._versions[incident.id] = max(incident.version, self._versions.get(incident.id, incident.version))

    def posted(self, incident: Incident, post: Post, card: dict) -> None:
        """A card was just posted for ``incident`` (start, or re-posted past the edit limit)."""
        self._drawn_from(incident)
        self._remember(incident, post, card, False)
        self._notify(incident)

    async def refresh(self, incident_id: str, *, tick: bool = False,
                      saved: Incident | None = None) -> tuple[str, Incident | None]:
        """Bring the card up to date; returns (what happened, the incident).

        ``saved``: the incident as a change has just stored it. It is drawn as it is (no read) unless
        a newer version was drawn meanwhile; then the store is read, as it is without ``saved``, so
        an older rebuild never draws over a newer one.

        ``tick``: a duration refresh by the live card scheduler. It is skipped when the card would look
        the same, or when the card can no longer be edited (PostEditTimeLimit) — a tick never re-posts.
        A change someone made (``tick=False``) always edits, and re-posts a card past the limit.
        """
        lock = self._locks.setdefault(incident_id, asyncio.Lock())
        async with lock:
            outcome, incident = await self._refresh_locked(incident_id, tick=tick, saved=saved)
            # Another replica may have saved and drawn a newer version while this one was being drawn,
            # and its edit may have landed first: after every edit, the stored version is read again
            # and, if it moved past what was drawn, the card is drawn again. Whichever edit lands last
            # is followed by such a read, so the card always ends on the newest version (docs/replicas.md).
            for _ in range(MAX_REDRAWS):
                if outcome not in ("edited", "replaced") or incident is None:
                    break
                latest = await self.ctx.store.incident_version(incident_id)
                if latest is None or latest <= incident.version:
                    break
                self.redraws += 1
                outcome, incident = await self._refresh_locked(incident_id, tick=False, saved=None)
            return outcome, incident

    async def _refresh_locked(self, incident_id: str, *, tick: bool,
                              saved: Incident | None) -> tuple[str, Incident | None]:
        """One rebuild of the card (the caller holds the incident's lock)."""
        if saved is not None and saved.id == incident_id and saved.version >= self._versions.get(incident_id, 0):
            incident: Incident | None = saved
        else:
            incident = await self.ctx.store.get_incident(incident_id)
        if incident is not None:
            self._drawn_from(incident)
        if incident is None or not incident.card_post_id:
            return "gone", incident
        card_post_id = incident.card_post_id
        state = self._states.get(incident.id)
        if state is not None and state.post_id != incident.card_post_id:
            state = None
        now = self.clock()
        if tick:
            if not incident.is_ongoing:
                return "ended", incident
            if state is None and self.edit_time_limit_s is not None and self.edit_time_limit_s >= 0:
                state = await self._learn_card_age(incident)
            if state is not None and (state.frozen or self._past_window(state, now)):
                state.frozen = True
                return "locked", incident
        started = time.process_time()
        as_of = livecard.last_refresh_before_lock(incident, state, self.edit_time_limit_s, now)
        card = await self.render(incident, now=now, as_of=as_of, reuse_names=tick)
        if tick:
            unchanged = state is not None and state.digest == visible_digest(card)
            self.tick_cpu_s += time.process_time() - started
            if unchanged:
                return "unchanged", incident
        try:
            # Only the props: the message never changes once posted (cards.card_message).
            post = await self.ctx.client.patch_post(card_post_id, {"props": card["props"]})
        except MattermostError as error:
            if not error.is_edit_time_limit:
                raise
            if tick:  # never move the card to the bottom of the channel for a duration tick
                frozen = state or CardState(post_id=incident.card_post_id, created_at=None)
                frozen.frozen = True
                self._states[incident.id] = frozen
                log.info("incident %s: card %s is past the edit time limit; the duration shown stays "
                         "until the next change", incident.id, incident.card_post_id)
                return "locked", incident
            incident = await self._replace(incident, card)
            return "replaced", incident
        if not post.is_pinned:
            # A replacement card whose pin was lost part-way (see _replace): pin it now. The patch
            # answer carries is_pinned, so a card that is pinned costs nothing extra.
            await self.ctx.client.pin_post(card_post_id)
        self._remember(incident, post, card, as_of)
        if not tick:
            self._notify(incident)
        return "edited", incident

    def _past_window(self, state: CardState, now: int) -> bool:
        deadline = livecard.edit_deadline(state, self.edit_time_limit_s)
        return deadline is not None and now > deadline

    async def _learn_card_age(self, incident: Incident) -> CardState | None:
        """After a restart: when the card was posted (one GET), so a tick knows its edit window."""
        post_id = incident.card_post_id
        if not post_id:
            return None
        try:
            post = await self.ctx.client.get_post(post_id)
        except MattermostError as error:
            if error.status in (403, 404):
                return None
            raise
        state = CardState(post_id=post_id, created_at=post.create_at or None)
        self._states[incident.id] = state
        return state

    async def _replace(self, incident: Incident, card: dict) -> Incident:
        """Post the card afresh when Mattermost no longer lets it be edited.

        From Mattermost v11.7, a post older than ``ServiceSettings.PostEditTimeLimit`` cannot be
        changed at all over REST (message, props, pin), only deleted. The new card is recorded, then
        the old one removed, then the new one pinned, so a failure part-way leaves one recorded card
        that the next refresh keeps up to date (and pins, if its pin was lost).
        """
        old_id = incident.card_post_id
        # A fresh post has a fresh edit window: render again so the duration is live, not "as of".
        card = await self.render(incident, reuse_names=True)
        fresh = await self.ctx.client.create_post(incident.channel_id, card["message"], props=card["props"])
        incident, _ = await self.ctx.store.mutate_incident(
            incident.id, lambda current: (ops.set_card_post(current, fresh.id), []))
        try:
            if old_id:
                await self.ctx.client.delete_post(old_id)  # its pin goes with it
        except MattermostError as error:
            if error.status != 404:  # already gone is what we wanted
                log.warning("the outdated card %s of incident %s was not removed: %s", old_id, incident.id, error)
        await self.ctx.client.pin_post(fresh.id)
        log.info("incident %s: card %s was past the edit time limit; replaced by %s", incident.id, old_id, fresh.id)
        self.posted(incident, fresh, card)
        return incident

    def refresh_later(self, incident_id: str, delays: tuple[float, ...] = (1, 2, 5, 10, 30)) -> None:
        """Keep trying to refresh a card Mattermost would not update just now (in the background)."""
        if incident_id in self._retrying:
            return

        async def retry() -> None:
            for delay in delays:
                await asyncio.sleep(delay)
                try:
                    await self.refresh(incident_id)
                    return
                except MattermostError:
                    continue
                except Exception:  # e.g. the store closed while shutting down
                    log.exception("refreshing the card of incident %s failed", incident_id)
                    return
            log.error("the card of incident %s could not be refreshed; the next change will", incident_id)

        task = asyncio.create_task(retry(), name=f"card-refresh-{incident_id}")
        self._retrying[incident_id] = task
        task.add_done_callback(lambda _: self._retrying.pop(incident_id, None))

    async def close(self) -> None:
        """Stop background refreshes (the next change to each incident refreshes its card anyway)."""
        tasks = list(self._retrying.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


#: How long the recovery sweep leaves an incident whose card Mattermost refused to restore (ms).
CARD_RETRY_MS = 10 * 60_000


class StartJoins:
    """The (channel, user) pairs that starts in this process add to their new channels and record the
    joins of themselves, with the incident (:func:`domain.timeline.joined_at_start`): the ``user_added``
    event each such add causes is not news, and the timeline drops it without reading the store.

    A pair is taken once (by the live event or the catch-up's copy of it) and forgotten after
    :attr:`KEEP_S`, or once more than :attr:`LIMIT` are waiting (events that never came), so a pair
    never stands for a later add. An event it does not know goes the usual way (the store decides),
    as does every event when the start ran in another replica or before a restart."""

    KEEP_S = 120.0
    LIMIT = 4096

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._noted: dict[tuple[str, str], float] = {}  # oldest first

    def __len__(self) -> int:
        return len(self._noted)

    def note(self, channel_id: str, user_id: str) -> None:
        now = self._clock()
        noted = self._noted
        noted.pop((channel_id, user_id), None)
        noted[(channel_id, user_id)] = now
        while noted:
            (oldest, at) = next(iter(noted.items()))
            if len(noted) <= self.LIMIT and now - at <= self.KEEP_S:
                break
            del noted[oldest]

    def forget(self, channel_id: str, user_id: str) -> None:
        """The add did not happen (Mattermost refused it): no event will come for it."""
        self._noted.pop((channel_id, user_id), None)

    def take(self, channel_id: str, user_id: str) -> bool:
        """Whether this join is one a start here records itself (then forgotten)."""
        at = self._noted.pop((channel_id, user_id), None)
        return at is not None and self._clock() - at <= self.KEEP_S


class IncidentService:
    """Starting incidents and every change to them."""

    def __init__(self, ctx: BotContext, directory: Directory, *, commands: Registry | None = None) -> None:
        self.ctx = ctx
        self.directory = directory
        self.cards = CardUpdater(ctx, directory)
        # The slash command handlers, for steps whose command is one of Command Center's own.
        self.commands = commands
        #: Called with every stored change (incident, events, acting user) before it is announced; each
        #: may hand back a coroutine function run once the change is announced and the card redrawn
        #: (services/updates.py: the status update post first, then broadcast and followers).
        self.listeners: list[ChangeListener] = []
        #: Called with every stored change (incident, events) *inside* its store transaction, so what
        #: they write (services/webhooks.py: the outbox) is committed with the change or not at all.
        #: They must only write to the store: no Mattermost call, nothing slow.
        self.in_transaction: list[TransactionListener] = []
        #: This replica's leases (bot.py sets it): a start journal names its replica, and recovery
        #: leaves the starts of replicas that are alive to them. None: a lone process, no check.
        self.replica: Replica | None = None
        #: Incidents whose card could not be restored because Mattermost refused (the bot was removed from
        #: the channel, the channel was archived): incident id -> when to try again (epoch ms).
        self._card_retry_at: dict[str, int] = {}
        #: Members a start here adds and records itself (services/timeline.py drops their user_added).
        self.start_joins = StartJoins()

    @property
    def store(self):
        return self.ctx.store

    # Looking things up ---------------------------------------------------------------------

    async def in_channel(self, channel_id: str) -> Incident:
        incident = await self.store.incident_by_channel(channel_id)
        if incident is None:
            raise NotFound(NOT_AN_INCIDENT_CHANNEL)
        return incident

    async def incident(self, incident_id: str, *, channel_id: str | None = None) -> Incident | None:
        """The incident with this id (a signed button or dialog carries it); None if it is gone, or
        if ``channel_id`` is given and is not the incident's channel (a button is bound to its channel)."""
        incident = await self.store.get_incident(incident_id) if incident_id else None
        if incident is None or (channel_id is not None and incident.channel_id != channel_id):
            return None
        return incident

    async def playbooks_for(self, team_id: str, user_id: str, *, vouched: bool = False) -> list[Playbook]:
        """The playbooks the user may start with in this team (``vouched``: see Directory.actor_in_team)."""
        actor, is_team_member = await self.directory.actor_in_team(team_id, user_id, vouched=vouched)
        if not permissions.can_see_team(actor, is_team_member=is_team_member):
            return []
        return await self.store.playbooks_for_user(team_id, user_id, is_admin=actor.is_system_admin)

    async def require_member(self, incident: Incident, user_id: str, *, fresh: bool = False) -> Actor:
        """The acting user, if they may change the incident (members of its channel only).

        ``fresh``: ask Mattermost even if the user is known to be a member — for requests that
        Mattermost forwards without checking the membership itself (dialog submissions).
        """
        actor = await self.directory.actor(user_id)
        is_member = await self.directory.is_channel_member(incident.channel_id, user_id, fresh=fresh)
        is_team_member = is_member or await self.directory.is_team_member(incident.team_id, user_id)
        permissions.require_modify_incident(actor, incident, is_team_member=is_team_member, is_channel_member=is_member)
        return actor

    async def require_viewer(self, incident: Incident, user_id: str) -> Actor:
        """The user, if they may look at the incident: members of its channel, anyone in its team when
        it is public, system admins; NotFound (the same answer as for a missing one) otherwise."""
        actor = await self.directory.actor(user_id)
        is_member = await self.directory.is_channel_member(incident.channel_id, user_id)
        is_team_member = is_member or await self.directory.is_team_member(incident.team_id, user_id)
        permissions.require_view_incident(actor, incident, is_team_member=is_team_member, is_channel_member=is_member)
        return actor

    async def stage_view(self, incident: Incident, user_id: str, stage_index: int) -> tuple[dict, str]:
        """A private look at one stage, for someone who may see the incident: (ephemeral post body with
        buttons, the same as Markdown text). Nothing changes; the active stage stays what it is."""
        await self.require_viewer(incident, user_id)
        if not 0 <= stage_index < len(incident.stages):
            raise ValidationError(f"Stage {stage_index + 1} does not exist: type a number from 1 to "
                                  f"{len(incident.stages)}.")
        context = await self.cards.context(incident)
        return stage_view(incident, stage_index, context), stage_view_text(incident, stage_index, context)

    # Announcing ----------------------------------------------------------------------------

    async def announce(self, incident: Incident, user_id: str, channel_names: Sequence[str]) -> dict[str, str]:
        """Announce the incident in the team's channels named (without ``~``), for a member of the
        incident's channel; returns, per name, "" where it was announced and why not elsewhere.

        Only in channels the user is a member of (domain.permissions.announce_refusal says what
        is answered where); a Mattermost refusal for one channel is that channel's answer.
        """
        await self.require_member(incident, user_id)
        names = list(dict.fromkeys(name.lower() for name in channel_names))
        if not names:
            return {}
        incident_channel = await self.ctx.client.get_channel(incident.channel_id)
        commander = await self.directory.username(incident.commander_id)
        message = (f"@{commander} started an incident in ~{incident_channel.name}: "
                   f"**{neutralize(incident.name)}**")
        outcomes: dict[str, str] = {}
        for name in names:
            try:
                outcomes[name] = await self._announce_in(incident.team_id, name, user_id, message)
            except MattermostError as error:
                outcomes[name] = user_message(error, self.ctx.settings.command_trigger)
        return outcomes

    def _refusal_text(self, refusal: permissions.AnnounceRefusal) -> str:
        if refusal is permissions.AnnounceRefusal.NOT_A_MEMBER:
            return "you can only announce in channels you are a member of"
        return (f"no such channel in this team that I am in; for a private channel, add @{self.ctx.client.username} "
                "to it first")

    async def _announce_in(self, team_id: str, name: str, user_id: str, message: str) -> str:
        """Post ``message`` in the team's channel ``name`` for ``user_id``; "" when done, else why not.

        Real Mattermost lets the bot read a channel's members only from inside it (getChannelMember
        needs read_channel at channel scope), so it checks the user's membership as a member: it
        joins a public channel first (join_public_channels) and leaves again if the user is not in it.
        """
        client = self.ctx.client
        try:
            channel = await client.channel_by_name(team_id, name)
        except MattermostError as error:
            if error.status not in (403, 404):
                raise
            return self._refusal_text(permissions.AnnounceRefusal.UNSEEN)
        public = channel.is_public
        # Fresh answers: someone may just have added the bot (or the user) to the channel.
        self.directory.forget_channel(channel.id)
        bot_is_member = await self.directory.is_channel_member(channel.id, client.user_id)
        refusal = permissions.announce_refusal(found=True, public=public, bot_is_member=bot_is_member,
                                               user_is_member=None)
        if refusal is not None:
            return self._refusal_text(refusal)
        joined = not bot_is_member
        if joined:
            await client.add_channel_member(channel.id, client.user_id)
            self.directory.forget_channel(channel.id)
        user_is_member = await self.directory.is_channel_member(channel.id, user_id)
        refusal = permissions.announce_refusal(found=True, public=public, bot_is_member=True,
                                               user_is_member=user_is_member)
        if refusal is not None:
            if joined:  # nothing to announce there: leave the channel as it was
                await client.remove_channel_member(channel.id, client.user_id)
                self.directory.forget_channel(channel.id)
            return self._refusal_text(refusal)
        await client.create_post(channel.id, message)
        return ""

    # Starting ------------------------------------------------------------------------------

    async def readable_source_post(self, post_id: str, user_id: str) -> Post | None:
        """The post, if it exists and ``user_id`` may read it; None otherwise."""
        try:
            post = await self.ctx.client.get_post(post_id)
            channel = await self.ctx.client.get_channel(post.channel_id)
        except MattermostError as error:
            if error.status in (403, 404):
                return None
            raise
        if await self.directory.is_channel_member(channel.id, user_id):
            return post
        if channel.is_public and await self.directory.is_team_member(channel.team_id, user_id):
            return post
        return None

    async def start(self, request: StartRequest) -> Incident:
        """Start an incident (see :meth:`start_named`)."""
        return (await self.start_named(request)).incident

    async def start_named(self, request: StartRequest) -> Started:
        """Create the channel, the incident, the opening posts and the pinned card; returns the
        incident with its channel's name (from the creation answer: no need to ask for it).

        The plan is journaled in the store before anything is created in Mattermost, and every
        step can be repeated safely, so a start interrupted at any point (crash, Mattermost error)
        is completed or cleaned up by :meth:`recover` — never a duplicate channel, never an
        incident without a channel, never a channel the store does not know.
        """
        name = validation.incident_name(request.name)
        description = validation.incident_description(request.description)
        # Asked, not taken from the submission: a dialog state stays valid for a while, and whoever
        # left the team since opening the dialog could post it to the bot without Mattermost.
        actor, is_team_member = await self.directory.actor_in_team(request.team_id, request.actor_id)
        playbook = await self.store.get_playbook(request.playbook_id)
        if playbook is None or playbook.team_id != request.team_id:
            raise NotFound(permissions.PLAYBOOK_NOT_FOUND)
        permissions.require_use_playbook(actor, playbook, is_team_member=is_team_member)
        source = None
        if request.source_post_id:
            source = await self.readable_source_post(request.source_post_id, request.actor_id)
        journal = StartJournal(
            incident_id=new_id(), team_id=request.team_id, actor_id=request.actor_id, playbook_id=playbook.id,
            name=name, description=description, private=not playbook.create_public_channel,
            source_post_id=source.id if source else None, channel_name=channel_name_for(name),
            created_at=self.ctx.clock(), replica=self.replica.id if self.replica is not None else "")
        # One commit, in one trip to the store: the submission's single-use key (a replayed copy stops
        # at the claim below, which its refusal rolls back, before any effect), the journal and the
        # claim of the channel name.
        async with self.store.transaction():
            await spend_pending_key()
            await self._save_journal(journal)
            self.store.commit_with_next()  # the claim is the last write: the COMMIT goes with it
            claimed = await self._claim_name(journal)
        try:
            not_invited: list[str] = []
            incident = await self._complete_start(journal, recovering=False, claimed=claimed, not_invited=not_invited,
                                                  playbook=playbook)
            return Started(incident, journal.channel_name, tuple(not_invited))
        except Exception:
            # The user is told it failed, so undo what was made; whatever cannot be undone now is
            # undone by recover() at the next start-up.
            journal.abandoned = True
            await self._save_journal(journal)
            await self._abandon_start(journal)
            raise

    async def _save_journal(self, journal: StartJournal) -> None:
        await self.store.set_setting(_JOURNAL_PREFIX + journal.incident_id, journal.model_dump_json())

    async def _complete_start(self, journal: StartJournal, *, recovering: bool,
                              claimed: bool | None = None, not_invited: list[str] | None = None,
                              playbook: Playbook | None = None) -> Incident:
        """Do whatever of the start is not done yet; each step checks before it acts.

        ``recovering``: an earlier attempt may have made part of it (a restart). A start that is not
        recovering has just saved its journal, so it knows it made nothing yet and asks nothing.
        ``claimed``: whether the journal's channel name was claimed already, with the journal.
        ``playbook``: the journal's playbook as the submission was checked against (read just now);
        without it (recovering) it is read again."""
        # A fresh start's incident id was made with its journal just now: nothing is stored under it.
        incident = await self.store.get_incident(journal.incident_id) if recovering else None
        # The opening post and card are made only once the incident is stored, so a fresh start has
        # posted nothing. A recovering one may have posted both even without a stored incident: its
        # commit does not wait for the disk (commit_without_sync), and a power loss can take it while
        # the posts stay; so a recovery always looks in the channel.
        posted_nothing = not recovering
        if incident is None:
            channel = await self._channel_for(journal, recovering=recovering, claimed=claimed)
            journal.channel_name = channel.name or journal.channel_name
            # user_added tells the directory; the join is recorded with the incident (joined_at_start)
            self.start_joins.note(channel.id, journal.actor_id)
            try:
                await self.ctx.client.add_channel_member(channel.id, journal.actor_id)
            except BaseException:
                self.start_joins.forget(channel.id, journal.actor_id)
                raise
            if playbook is None or playbook.id != journal.playbook_id:
                playbook = await self.store.get_playbook(journal.playbook_id)
            if playbook is None:
                raise NotFound("The playbook was deleted while the incident was being started.")
            commander_id, refused = await self._start_people(playbook, journal, channel.id)
            if not_invited is not None:
                not_invited.extend(refused)
            incident, events = ops.start_incident(
                playbook, name=journal.name, description=journal.description, channel_id=channel.id,
                creator_id=journal.actor_id, now=journal.created_at, source_post_id=journal.source_post_id,
                incident_id=journal.incident_id, public=not journal.private, commander_id=commander_id)
            joined = [journal.actor_id, commander_id, *(u for u in playbook.invited_user_ids if u not in refused)]
            events = [*events, *joined_at_start(incident, joined, journal.actor_id, journal.created_at)]
            async with self.store.transaction():
                # Need not wait for the disk: until a later synchronous commit makes it durable, the
                # journal committed before it redoes all of it after a power loss (recover()).
                self.store.commit_without_sync()
                incident = await self.store.create_incident(incident, events, conflict_at_commit=True)
                await self._in_transaction(incident, events)
            self.ctx.telemetry.incident_changed(incident, events)

        async def done() -> None:
            # The journal, and the name's claim (the incident now marks the channel as taken) if this
            # start still holds it: one write, which goes with the card post id's commit.
            await self.store.delete_settings({_JOURNAL_PREFIX + journal.incident_id: None,
                                              self._claim_key(journal): journal.incident_id})

        # The journal goes in the card post id's commit: a crash before it leaves both to recover.
        incident = await self._ensure_opening_and_card(incident, posted_nothing=posted_nothing, then=done,
                                                       journaled=True)
        log.info("incident %s started by %s in channel %s", incident.id, journal.actor_id, incident.channel_id)
        return incident

    async def _start_people(self, playbook: Playbook, journal: StartJournal,
                            channel_id: str) -> tuple[str, list[str]]:
        """The playbook's start settings (docs/status-updates.md): its default commander, if still an
        active member of the team (else whoever starts it), and its invited users are added to the
        new channel — one add per person, nothing for a playbook without them. Returns the commander
        and the invited users Mattermost would not add (not in the team: addChannelMember refuses)."""
        default = playbook.default_commander_id
        available = False
        if default and default != journal.actor_id:
            try:
                user = await self.directory.user(default)
            except MattermostError as error:
                if error.status not in (400, 403, 404):
                    raise
            else:
                available = (user.active and not user.is_bot
                             and await self.directory.is_team_member(journal.team_id, default))
        commander_id = playbook_ops.start_commander(playbook, journal.actor_id, default_commander_available=available)
        if commander_id != journal.actor_id and not await self._add_to(channel_id, commander_id):
            commander_id = journal.actor_id  # they left the team just now: whoever starts it commands
        refused: list[str] = []
        added = {journal.actor_id, commander_id}
        for user_id in playbook.invited_user_ids:
            if user_id not in added:
                added.add(user_id)
                if not await self._add_to(channel_id, user_id):
                    refused.append(user_id)
        return commander_id, refused

    async def _add_to(self, channel_id: str, user_id: str) -> bool:
        """Add someone to a new incident channel; False if Mattermost refuses (not in the team). The
        start records the join of everyone added (joined_at_start), so their user_added is not news."""
        self.start_joins.note(channel_id, user_id)
        try:
            await self.ctx.client.add_channel_member(channel_id, user_id)
        except BaseException as error:
            self.start_joins.forget(channel_id, user_id)
            if not isinstance(error, MattermostError) or error.status not in (400, 403, 404):
                raise
            return False
        return True

    def _claim_key(self, journal: StartJournal) -> str:
        return f"{_CLAIM_PREFIX}{journal.team_id}:{journal.channel_name}"

    async def _claim_name(self, journal: StartJournal) -> bool:
        """Claim the journal's channel name for this start; False if another start holds it.

        Atomic in the store, and kept until the start is complete or undone, so of two starts
        choosing one name at once (or one interrupted and recovered later) only the holder ever
        creates — or adopts — a channel of that name."""
        holder = await self.store.setting_or_default(self._claim_key(journal), journal.incident_id)
        return holder == journal.incident_id

    async def _release_name(self, journal: StartJournal) -> None:
        await self.store.delete_setting(self._claim_key(journal), if_value=journal.incident_id)

    async def _own_channel(self, journal: StartJournal) -> Channel | None:
        """The channel named in the journal, if this start created it (an earlier attempt did).

        Only the start holding the name's claim can have created it: a channel of that name made by
        another start (the same name chosen at the same moment) is never taken for this one's."""
        if await self.store.get_setting(self._claim_key(journal)) != journal.incident_id:
            return None
        try:
            channel = await self.ctx.client.channel_by_name(journal.team_id, journal.channel_name)
        except MattermostError as error:
            if error.status in (403, 404):
                return None
            raise
        if (channel.creator_id == self.ctx.client.user_id and not channel.archived
                and channel.create_at >= journal.created_at - _CLOCK_SKEW_MS
                and await self.store.incident_by_channel(channel.id) is None):
            return channel
        return None

    async def _channel_for(self, journal: StartJournal, *, recovering: bool, claimed: bool | None = None) -> Channel:
        base = channel_name_for(journal.name)
        # Only the name an interrupted attempt saved can have a channel of ours already: a name this
        # call claims afresh (a new start, or a new suffix) has none, so it is not asked about.
        maybe_made = recovering
        for _ in range(6):
            if claimed is None:
                claimed = await self._claim_name(journal)
            holds, claimed = claimed, None
            if not holds:
                # Another start is using this name right now: take another, as for any taken name.
                journal.channel_name = with_suffix(base)
                await self._save_journal(journal)
                maybe_made = False
                continue
            if maybe_made:
                existing = await self._own_channel(journal)
                if existing is not None:
                    return existing
                maybe_made = False
            try:
                channel = await self.ctx.client.create_channel(journal.team_id, journal.channel_name, journal.name,
                                                               private=journal.private,
                                                               purpose=journal.description[:250])
                self.directory.channel_created(channel.id)
                return channel
            except MattermostError as error:
                if not error.is_name_taken:
                    raise
            # Someone else's channel has this name: pick another and remember it before creating.
            await self._release_name(journal)
            journal.channel_name = with_suffix(base)
            await self._save_journal(journal)
            maybe_made = False
        raise ValidationError("Could not find a free channel name for this incident; try a different name.",
                              field="name")

    async def _ensure_opening_and_card(self, incident: Incident, *, posted_nothing: bool = False,
                                       then: Callable[[], Awaitable[None]] | None = None,
                                       journaled: bool = False) -> Incident:
        """Post the opening message and the card, pin it and remember it — skipping what exists.

        ``posted_nothing``: a fresh start, which has posted nothing yet (both posts are made only after
        the incident is stored, and carry its id): the channel is not read for them. A card found there
        (a recovery) is drawn again from the stored incident.
        ``then``: more writes, committed with the card's post id (or on their own when it was known).
        ``journaled``: a start's journal (removed by ``then``) redoes all of it after a power loss, so
        that commit does not wait for the disk."""
        if incident.card_post_id:  # recorded only after it was pinned
            if then is not None:
                async with self.store.transaction():
                    await then()
            return incident
        opening: Post | None = None
        card: Post | None = None
        if not posted_nothing:
            existing = await self.ctx.client.channel_posts(incident.channel_id, per_page=200)
            mine = [post for post in existing.posts.values() if post.user_id == self.ctx.client.user_id]
            opening = next((p for p in mine if p.props.get(_OPENING_MARK) == incident.id), None)
            card = next((p for p in mine if p.props.get("command_center_card") == incident.id), None)
        if opening is None:
            await self.ctx.client.create_post(incident.channel_id, await self._opening_text(incident),
                                              props={_OPENING_MARK: incident.id})
        rendered = await self.cards.render(incident)
        found: Post | None = None
        if card is None:
            card = await self.ctx.client.create_post(incident.channel_id, rendered["message"], props=rendered["props"])
        else:
            found = card
        if not card.is_pinned:
            await self.ctx.client.pin_post(card.id)
        card_id = card.id
        async with self.store.transaction():  # joined by mutate_incident: one commit when there is more
            if journaled:
                # Need not wait for the disk either: a power loss before the next synchronous commit
                # brings the journal back, and recover() redoes the start, finding these posts.
                self.store.commit_without_sync()
            if then is not None:
                await then()
            self.store.commit_with_next()  # the card's post id is the last write: one trip with the COMMIT
            incident, _ = await self.store.mutate_incident(incident.id, lambda current: (
                ops.set_card_post(current, card_id), []))
        if found is not None:
            # Posted by an earlier attempt (a recovery), perhaps for an incident lost with its unsynced
            # commit and made again since, with other stage and step ids: drawn again from what is stored.
            _, drawn = await self.cards.refresh(incident.id, saved=incident)
            return drawn or incident
        self.cards.posted(incident, card, rendered)
        return incident

    async def _opening_text(self, incident: Incident) -> str:
        creator = await self.directory.username(incident.creator_id)
        text = f"This incident has been started by @{creator}."
        if incident.source_post_id:
            try:
                source = await self.ctx.client.get_post(incident.source_post_id)
            except MattermostError as error:
                if error.status not in (403, 404):
                    raise
                source = None
            if source is not None:
                quoted = quote(source.message or "(no text)")
                text += (f"\nStarted from [this post]({self.ctx.client.base_url}/_redirect/pl/{source.id}):"
                         f"\n{quoted}")
        return text

    async def _abandon_start(self, journal: StartJournal) -> bool:
        """Undo a start: archive its channel, forget its incident, drop the journal. True when done."""
        try:
            incident = await self.store.get_incident(journal.incident_id)
            channel_id = incident.channel_id if incident else None
            if channel_id is None:
                own = await self._own_channel(journal)
                channel_id = own.id if own else None
            if channel_id:
                await self.ctx.client.archive_channel(channel_id)
            if incident is not None:
                await self.store.delete_incident(incident.id)
            await self.store.delete_setting(_JOURNAL_PREFIX + journal.incident_id)
            await self._release_name(journal)
            return True
        except Exception:
            log.exception("could not clean up the interrupted start of incident %s yet; will retry at start-up",
                          journal.incident_id)
            return False

    async def recover(self, *, sweep: bool = False) -> list[str]:
        """Finish or undo starts that were interrupted; returns what was done, per incident.

        Run at start-up and, by the leader, every lease round (``sweep``, services/replica.py): a start
        whose journal names a replica that is still alive is its own and left alone (it may be in the
        middle of it), unless it is older than :data:`START_STALE_MS`; the starts of a replica that died
        (its presence lease expired) are completed here, by whichever replica runs this first."""
        outcomes = []
        busy: set[str] = set()  # incidents whose start another live replica is running
        for key, value in (await self.store.settings_with_prefix(_JOURNAL_PREFIX)).items():
            try:
                journal = StartJournal.model_validate_json(value)
            except ValueError:
                log.error("dropping an unreadable start journal %s", key)
                await self.store.delete_setting(key)
                continue
            if await self._started_elsewhere(journal, sweep=sweep):
                busy.add(journal.incident_id)
                continue
            if not journal.abandoned:
                try:
                    incident = await self._complete_start(journal, recovering=True)
                except MattermostError as error:
                    if error.retryable:
                        log.warning("Mattermost unavailable; the start of %s will be completed later",
                                    journal.incident_id)
                        outcomes.append(f"{journal.incident_id}: pending")
                        continue
                except DomainError as error:
                    log.warning("cannot complete the start of %s: %s", journal.incident_id, error)
                else:
                    outcomes.append(f"{incident.id}: completed")
                    await self._tell_recovered(incident)
                    continue
            done = await self._abandon_start(journal)
            outcomes.append(f"{journal.incident_id}: {'cleaned up' if done else 'clean-up pending'}")
        # Claims whose start is gone (the bot stopped between the two deletions) block nothing real
        # (their channel exists), but are dropped. The journal is written before its claim, so one
        # read of the holder's journal after the claim was seen tells a finished start from a live one.
        for key, holder in (await self.store.settings_with_prefix(_CLAIM_PREFIX)).items():
            if await self.store.get_setting(_JOURNAL_PREFIX + holder) is None:
                await self.store.delete_setting(key, if_value=holder)
        for incident in await self.store.incidents_without_card():
            if incident.id in busy:
                continue
            if await self.store.get_setting(_JOURNAL_PREFIX + incident.id) is not None:
                continue  # journaled since the journals were read: a start in progress
            if self._card_retry_at.get(incident.id, 0) > self.ctx.clock():
                continue
            try:
                await self._ensure_opening_and_card(incident)
            except MattermostError as error:
                # One channel the bot can no longer post in must not keep the others' cards from being
                # restored, nor be asked again every round: try it again after a while.
                delay = CARD_RETRY_MS if not error.retryable else CARD_RETRY_MS // 10
                self._card_retry_at[incident.id] = self.ctx.clock() + delay
                log.warning("cannot restore the card of incident %s (%s); trying again in %d min", incident.id,
                            error, delay // 60_000)
                outcomes.append(f"{incident.id}: card pending")
                continue
            self._card_retry_at.pop(incident.id, None)
            outcomes.append(f"{incident.id}: card restored")
        return outcomes

    async def _started_elsewhere(self, journal: StartJournal, *, sweep: bool) -> bool:
        """Whether another replica that is alive runs this start (so it must not be touched here)."""
        if self.replica is None:
            return False
        if journal.replica == self.replica.id:
            return sweep  # this process's own start, still running; at start-up: an earlier run's
        if self.ctx.clock() - journal.created_at > START_STALE_MS:
            return False  # far longer than any start takes: its replica lost track of it
        return await self.replica.is_alive(journal.replica)

    async def _tell_recovered(self, incident: Incident) -> None:
        try:
            channel = await self.ctx.client.get_channel(incident.channel_id)
            dm = await self.ctx.client.direct_channel_with(incident.creator_id)
            await self.ctx.client.create_post(
                dm.id, f"Command Center restarted while starting your incident **{neutralize(incident.name)}**; "
                       f"it is ready now: ~{channel.name}.")
        except MattermostError:
            log.exception("could not tell the creator of incident %s that it was completed", incident.id)

    # Changing ------------------------------------------------------------------------------

    async def change(self, incident: Incident, user_id: str,
                     operation: Callable[[Incident], tuple[Incident, list[TimelineEvent]]],
                     describe: Callable[[Incident, list[TimelineEvent], str], str | None], *,
                     fresh: bool = False, drawn: Drawn | None = None) -> tuple[Incident, list[TimelineEvent]]:
        """The one path for every change: permission, versioned write, announcement, card.

        ``fresh``: see :meth:`require_member`. ``drawn``: the change comes from a card button (or a
        dialog it opened), drawn for the state in the mark; it is refused, inside the versioned write,
        if that state has moved on.
        """
        await self.require_member(incident, user_id, fresh=fresh)
        updated, events = await self._mutate(incident, operation, drawn)
        if events:
            self.ctx.telemetry.incident_changed(updated, events)
            later = [await listener(updated, events, user_id) for listener in self.listeners]
            await self._publish(updated, events, user_id, describe)
            for then in later:
                if then is not None:
                    await then()
        return updated, events

    async def _in_transaction(self, incident: Incident, events: list[TimelineEvent]) -> None:
        if events:
            for listener in self.in_transaction:
                await listener(incident, events)

    async def _mutate(self, incident: Incident, operation: Callable[[Incident], tuple[Incident, list[TimelineEvent]]],
                      drawn: Drawn | None) -> tuple[Incident, list[TimelineEvent]]:
        if drawn is None:
            return await self._mutate_with_listeners(incident.id, operation)

        def checked(current: Incident) -> tuple[Incident, list[TimelineEvent]]:
            require_fresh(current, drawn.mark, step=drawn.step, what=drawn.what)
            return operation(current)

        try:
            return await self._mutate_with_listeners(incident.id, checked)
        except StaleCard:
            await self.show_current_card(incident)
            raise

    async def _mutate_with_listeners(self, incident_id: str, operation: Callable[[Incident], tuple[
            Incident, list[TimelineEvent]]]) -> tuple[Incident, list[TimelineEvent]]:
        """The versioned write, with what :attr:`in_transaction` writes in the same commit."""
        if not self.in_transaction:
            return await self.store.mutate_incident(incident_id, operation)
        async with self.store.transaction():
            updated, events = await self.store.mutate_incident(incident_id, operation)
            await self._in_transaction(updated, events)
        return updated, events

    async def _require_fresh_step(self, incident: Incident, mark: str, target: StepTarget) -> None:
        """For a step's Run button, which writes only once the command was accepted: refuse it first
        if the step moved on since the card was drawn (read afresh, like the versioned write would)."""
        current = await self.store.get_incident(incident.id) or incident
        try:
            require_fresh(current, mark, step=target, what="run")
        except StaleCard:
            await self.show_current_card(incident)
            raise

    async def require_drawn(self, incident: Incident, mark: str) -> None:
        """For a button that only opens a dialog: refuse it if the state it was drawn for moved on."""
        try:
            require_fresh(incident, mark)
        except StaleCard:
            await self.show_current_card(incident)
            raise

    async def show_current_card(self, incident: Incident) -> None:
        """Whoever clicked sees an old card: show them the current one. Normally it is already, or
        is being redrawn right now after the change that made the click stale (then nothing to do)."""
        if self.cards.busy(incident.id):
            return
        try:
            await self.cards.refresh(incident.id)
        except MattermostError as error:
            log.warning("the card of incident %s was not refreshed after a stale click: %s", incident.id, error)

    async def _publish(self, incident: Incident, events: list[TimelineEvent], user_id: str,
                       describe: Callable[[Incident, list[TimelineEvent], str], str | None]) -> None:
        """Announce a stored change and refresh the card. The change is committed, so a Mattermost
        failure here must not tell the user it failed: the announcement is given up (logged) and
        the card is refreshed again in the background."""
        try:
            text = describe(incident, events, await self.directory.username(user_id))
            if text:
                await self.ctx.client.create_post(incident.channel_id, text)
        except MattermostError as error:
            log.warning("the announcement of a change to incident %s was lost: %s", incident.id, error)
        try:
            await self.cards.refresh(incident.id, saved=incident)
        except MattermostError as error:
            log.warning("the card of incident %s was not refreshed (%s); retrying in the background",
                        incident.id, error)
            self.cards.refresh_later(incident.id)

    async def check(self, incident: Incident, user_id: str, target: StepTarget, done: bool, *,
                    drawn: str | None = None, fresh: bool = False):
        """``fresh``: see :meth:`require_member` (the backstage's forms: Mattermost vouched for nothing)."""
        return await self.change(
            incident, user_id, lambda current: checklist.set_step_state(current, target, done, user_id, self.ctx.clock()),
            lambda inc, events, who: f"@{who} {'checked' if done else 'unchecked'} {_step_label(events[0])}.",
            fresh=fresh, drawn=None if drawn is None else Drawn(drawn, step=target))

    async def assign(self, incident: Incident, user_id: str, target: StepTarget, assignee_id: str | None, *,
                     fresh: bool = False):
        if assignee_id and await self.directory.is_bot(assignee_id):
            # Bots do no steps, as they lead no incidents (the same rule as change_commander).
            raise ValidationError("A bot cannot be assigned a step; choose a person (or none).")
        # Whoever a change is about is always asked: Mattermost vouched only for the one acting.
        in_channel = assignee_id is None or await self.directory.is_channel_member(
            incident.channel_id, assignee_id, fresh=True)
        assignee_name = await self.directory.username(assignee_id) if assignee_id else ""

        def describe(inc: Incident, events: list[TimelineEvent], who: str) -> str:
            if assignee_id:
                return f"@{who} assigned {_step_label(events[0])} to @{assignee_name}."
            return f"@{who} removed the assignee of {_step_label(events[0])}."

        return await self.change(incident, user_id, lambda current: checklist.assign_step(
            current, target, assignee_id, user_id, self.ctx.clock(), assignee_in_channel=in_channel), describe, fresh=fresh)

    async def change_commander(self, incident: Incident, user_id: str, new_commander_id: str, *, fresh: bool = False):
        # The new commander is always asked: Mattermost vouched only for the one acting.
        in_channel = await self.directory.is_channel_member(incident.channel_id, new_commander_id, fresh=True)
        if await self.directory.is_bot(new_commander_id):
            raise ValidationError("A bot cannot be the commander; choose a person.")
        name = await self.directory.username(new_commander_id)
        if not in_channel:
            await self.require_member(incident, user_id, fresh=fresh)
            raise ValidationError(f"@{name} is not a member of this incident's channel: add @{name} to the "
                                  "channel first, then make them commander.")
        return await self.change(incident, user_id, lambda current: ops.change_commander(
            current, new_commander_id, user_id, self.ctx.clock(), new_commander_in_channel=in_channel),
            lambda inc, events, who: f"@{who} changed the commander to @{name}.", fresh=fresh)

    async def set_stage(self, incident: Incident, user_id: str, how: str | int, *, drawn: str | None = None,
                        fresh: bool = False):
        def operation(current: Incident):
            if how == "next":
                return ops.next_stage(current, user_id, self.ctx.clock())
            if how == "prev":
                return ops.previous_stage(current, user_id, self.ctx.clock())
            return ops.set_stage(current, int(how), user_id, self.ctx.clock())

        def describe(inc: Incident, events: list[TimelineEvent], who: str) -> str:
            stage = inc.active_stage
            return (f"@{who} moved the incident to stage {stage + 1}/{len(inc.stages)}: "
                    f"**{neutralize(inc.stages[stage].title)}**.")

        return await self.change(incident, user_id, operation, describe, fresh=fresh,
                                 drawn=None if drawn is None else Drawn(drawn, what="stage"))

    async def end(self, incident: Incident, user_id: str, *, fresh: bool = False, drawn: str | None = None,
                  final_update: str = ""):
        """End the incident; a non-blank ``final_update`` is recorded (and posted) as its last status update."""
        def describe(inc: Incident, events: list[TimelineEvent], who: str) -> str:
            details = next(e for e in events if e.kind is EventKind.ENDED).details
            return (f"This incident has been ended by @{who}.\n"
                    f"Duration: **{format_duration(details.get('duration_ms', 0))}** · "
                    f"steps done: **{details.get('steps_done', 0)}/{details.get('steps_total', 0)}**")
        return await self.change(incident, user_id, lambda current: ops.end_incident(
            current, user_id, self.ctx.clock(), final_update=final_update),
            describe, fresh=fresh, drawn=None if drawn is None else Drawn(drawn))

    async def restart(self, incident: Incident, user_id: str, *, fresh: bool = False, drawn: str | None = None):
        return await self.change(incident, user_id, lambda current: ops.restart_incident(current, user_id, self.ctx.clock()),
                                 lambda inc, events, who: f"This incident has been restarted by @{who}.",
                                 fresh=fresh, drawn=None if drawn is None else Drawn(drawn))

    async def add_step(self, incident: Incident, user_id: str, stage: int, title: str):
        return await self.change(incident, user_id, lambda current: checklist.add_step(
            current, stage, title, user_id, self.ctx.clock()),
            lambda inc, events, who: f"@{who} added step {_step_label(events[0])}.")

    async def remove_step(self, incident: Incident, user_id: str, target: StepTarget):
        return await self.change(incident, user_id, lambda current: checklist.remove_step(
            current, target, user_id, self.ctx.clock()),
            lambda inc, events, who: f"@{who} removed step {_step_label(events[0])}.")

    async def rename_step(self, incident: Incident, user_id: str, target: StepTarget, title: str):
        def describe(inc: Incident, events: list[TimelineEvent], who: str) -> str:
            previous = neutralize(str(events[0].details.get("previous_title", "")))
            return f"@{who} renamed step {_step_label(events[0])} (was “{previous}”)."
        return await self.change(incident, user_id, lambda current: checklist.rename_step(
            current, target, title, user_id, self.ctx.clock()), describe)

    async def move_step(self, incident: Incident, user_id: str, target: StepTarget, position: int):
        return await self.change(incident, user_id, lambda current: checklist.move_step(
            current, target, position, user_id, self.ctx.clock()),
            lambda inc, events, who: f"@{who} moved step **{neutralize(str(events[0].details.get('title', '')))}** "
                                     f"to position {position + 1}.")

    async def run_step(self, incident: Incident, user_id: str, target: StepTarget, *,
                       trigger_id: str = "", drawn: str | None = None) -> CommandReply:
        """Run the step's slash command in the incident channel for ``user_id``; returns what to tell them.

        Never more than the user could do themselves (gateway/step_commands.py says why and
        which): Command Center's own subcommands run in-process as the user, through the same
        handlers and checks as if they had typed them in the incident channel; the few built-ins
        that only touch the incident channel run through Mattermost with the bot's rights, and
        their answer is read; anything else is handed back for the user to type. A step's
        command never runs a step. Only a run that was accepted is recorded (timeline, telemetry)
        and announced.
        """
        await self.require_member(incident, user_id)
        checklist.run_step(incident, target, user_id, self.ctx.clock())  # ongoing, and the step has a command
        if drawn is None:
            return await self._run_step(incident, user_id, target, trigger_id)
        # A Run button: drawn for the step's state and its last run, so a copy of the click (a
        # double click, a captured click replayed) runs nothing once the run is recorded; the key is
        # held until then, so a copy arriving meanwhile runs nothing either.
        # Claimed in the store, not only in this process: the copy may reach another replica.
        key = f"{incident.id}:{incident.step(target).id}"
        now = self.ctx.clock()
        if not await self.store.claim_single_use(_RUN_KIND, key, expires_at=now + _RUN_CLAIM_MS, now=now):
            raise StaleCard(f"Step {incident.locate(target).label}'s command is being run right now; "
                            "nothing else was run.")
        try:
            await self._require_fresh_step(incident, drawn, target)
            return await self._run_step(incident, user_id, target, trigger_id)
        finally:
            await self.store.release_single_use(_RUN_KIND, key)

    async def _run_step(self, incident: Incident, user_id: str, target: StepTarget,
                        trigger_id: str) -> CommandReply:
        ref = incident.locate(target)
        command = incident.step(target).command
        trigger = self.ctx.settings.command_trigger
        shown = code_block(command)
        if step_commands.runs_a_step(command, trigger) or _RUNNING_STEP.get():
            return CommandReply(text=f"Step {ref.label} was not run: {step_commands.step_run_refusal(trigger)}")
        if step_commands.is_own(command, trigger):
            outcome = await self._run_own(incident, user_id, command, trigger_id)
            if outcome.refusal is not None:
                return CommandReply(text=f"Step {ref.label} was not run: {outcome.refusal}")
            reply = outcome.reply or CommandReply()
        else:
            parsed = step_commands.parse(command)
            if parsed.trigger not in BOT_MAY_RUN:
                return CommandReply(text=(
                    f"Command Center runs only its own commands and /echo, /header and /purpose for you; it would "
                    f"run anything else with its own rights, not yours. Run step {ref.label} yourself in this "
                    f"channel by typing:\n{shown}"))
            try:
                response = await self.ctx.client.execute_command(incident.channel_id, command, team_id=incident.team_id)
            except MattermostError as error:
                log.info("running %r for incident %s was refused: %s", command, incident.id, error)
                return CommandReply(text=f"Mattermost did not let Command Center run this step's command. Run it "
                                         f"yourself in this channel by typing:\n{shown}")
            refusal = refusal_in(response)
            if refusal:
                return CommandReply(text=f"Mattermost refused step {ref.label}'s command: {neutralize(refusal)}\n"
                                         f"Nothing was run. The command was:\n{shown}")
            reply = CommandReply()
        await self._record_run(incident, user_id, target, command)
        return reply

    async def _run_own(self, incident: Incident, user_id: str, command: str, trigger_id: str) -> _OwnRun:
        """One of Command Center's subcommands, dispatched in-process as ``user_id`` typing it in the
        incident channel; a refusal is reported, never raised."""
        if self.commands is None:
            return _OwnRun(refusal="Command Center cannot run its own commands here.")
        parsed = step_commands.parse(command)
        typed = SlashCommand(token="", team_id=incident.team_id, channel_id=incident.channel_id, user_id=user_id,
                             user_name=await self.directory.username(user_id), command=f"/{parsed.trigger}",
                             text=parsed.text, trigger_id=trigger_id)
        running = _RUNNING_STEP.set(True)  # whatever the command does, it cannot run a step in turn
        try:
            reply = await self.commands.command(typed)
        except Exception as error:  # the same words the user would get typing it
            return _OwnRun(refusal=user_message(error, self.ctx.settings.command_trigger))
        finally:
            _RUNNING_STEP.reset(running)
        return _OwnRun(reply=reply)

    async def _record_run(self, incident: Incident, user_id: str, target: StepTarget, command: str) -> None:
        """The run was accepted: record it on the timeline, count it, announce it."""
        try:
            updated, events = await self.store.mutate_incident(
                incident.id, lambda current: checklist.run_step(current, target, user_id, self.ctx.clock()))
        except DomainError as error:  # changed meanwhile (ended, step removed): the command ran anyway
            log.warning("a step run in incident %s could not be recorded: %s", incident.id, error)
            return
        self.ctx.telemetry.incident_changed(updated, events)
        who = await self.directory.username(user_id)
        try:
            await self.ctx.client.create_post(incident.channel_id,
                                              f"@{who} ran {_step_label(events[0])}: {inline_code(command)}")
        except MattermostError as error:  # the command ran and is recorded; only the announcement is lost
            log.warning("the announcement of a step run in incident %s was lost: %s", incident.id, error)
        try:  # the step's Run button is drawn for its last run: draw it for this one
            await self.cards.refresh(incident.id, saved=updated)
        except MattermostError as error:
            log.warning("the card of incident %s was not refreshed after a run (%s); retrying in the background",
                        incident.id, error)
            self.cards.refresh_later(incident.id)


#: See IncidentService.in_transaction.
TransactionListener = Callable[[Incident, list[TimelineEvent]], Awaitable[None]]
#: See IncidentService.listeners.
ChangeListener = Callable[[Incident, list[TimelineEvent], str], Awaitable[Callable[[], Awaitable[None]] | None]]


@dataclass
class _OwnRun:
    reply: CommandReply | None = None
    refusal: str | None = None


def _step_label(event: TimelineEvent) -> str:
    details = event.details
    stage, index = details.get("stage"), details.get("index")
    title = neutralize(str(details.get("title", "")))
    if isinstance(stage, int) and isinstance(index, int):
        return f"{stage + 1}.{index + 1} **{title}**"
    return f"**{title}**"


__all__ = [
    "NOT_AN_INCIDENT_CHANNEL",
    "CardUpdater",
    "EventKind",
    "IncidentService",
    "StartRequest",
    "channel_name_for",
    "post_id_from",
]
