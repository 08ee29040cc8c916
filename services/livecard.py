"""The live card: the duration of every ongoing incident refreshes on its own.

Cadence. The card shows the duration coarsely (``gateway.messages.format_live_duration``): whole
minutes in the first hour, five minutes up to a day, hours after that. Each card is refreshed only
when that text changes — once a minute for the first hour, every 5 minutes up to a day, hourly after
— so 200 incidents in their first hour cost at most 200 edits a minute (3.3 a second), and far fewer
later. A refresh whose rendered card would look the same (someone changed the card meanwhile) is
skipped without a call. Ended incidents are not refreshed. A card is also redrawn at the moment
its status update falls due, so that it shows the overdue mark (``gateway.cards.overdue_fields``).

Spreading. Each incident's refreshes are offset by up to :data:`SPREAD_MS` (a fixed share of its id),
so incidents started together, or resumed together after a restart, do not refresh in the same
instant; at most :data:`CONCURRENCY` refreshes are in flight at once.

PostEditTimeLimit. On Mattermost 11.7 and later no REST call may change a post older than the limit
(learned from ``GET /config/client?format=old``). A change someone makes re-posts the card then
(``CardUpdater``), but a duration tick never does: that would move the card to the bottom of the
channel and notify its members every minute. So the last refresh a card gets before its window
closes says when its duration was true ("12m as of 10:42 UTC"), and ticks stop for that card until
the next change re-posts it. If the server refuses a tick anyway (the limit changed), the card is
left alone the same way.

The schedule lives in memory and is rebuilt from the store at start-up, so after a restart the
bot simply resumes. The clock (``CardUpdater.clock``) is injectable: tests and benchmarks move
simulated time and call :meth:`LiveCardScheduler.wake` or :meth:`LiveCardScheduler.run_due`.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from domain import Incident
from domain.models import IncidentStatus
from gateway.errors import MattermostError
from gateway.messages import next_live_duration_change

if TYPE_CHECKING:
    from services.incidents import CardState, CardUpdater

log = logging.getLogger(__name__)

#: Refreshes of one incident happen up to this long after its duration text changes (spread by id):
#: 200 incidents started together refresh at about 7 a second rather than all at once.
SPREAD_MS = 30_000
#: A card is not edited in the last seconds of its edit window (clocks of bot and server may differ).
EDIT_MARGIN_MS = 20_000
#: Refreshes in flight at once.
CONCURRENCY = 4


def spread_offset_ms(incident_id: str) -> int:
    """A fixed delay in [0, SPREAD_MS) for this incident, the same after every restart."""
    return int(hashlib.sha256(incident_id.encode()).hexdigest()[:8], 16) % SPREAD_MS


def next_change_at(incident: Incident, now: int) -> int:
    """When (epoch ms) this ongoing incident's card should next be refreshed for its duration."""
    return incident.created_at + next_live_duration_change(incident.duration_ms(now)) + spread_offset_ms(incident.id)


def overdue_at(incident: Incident, now: int) -> int | None:
    """When the card must be redrawn to show the overdue mark: the update's due time, if still ahead."""
    due = incident.next_update_due_at
    return due if incident.is_ongoing and due is not None and due > now else None


def edit_deadline(state: CardState | None, limit_s: int | None) -> int | None:
    """The last moment (epoch ms, less a margin) the card may be edited; None when there is no limit
    or the card's age is not known."""
    if limit_s is None or limit_s < 0 or state is None or state.created_at is None:
        return None
    return state.created_at + limit_s * 1000 - EDIT_MARGIN_MS


def last_refresh_before_lock(incident: Incident, state: CardState | None, limit_s: int | None, now: int) -> bool:
    """Whether a card rendered now will not be editable when its duration next changes."""
    deadline = edit_deadline(state, limit_s)
    return incident.is_ongoing and deadline is not None and next_change_at(incident, now) > deadline


def next_due(incident: Incident, state: CardState | None, limit_s: int | None, now: int) -> int | None:
    """When the scheduler should refresh this card next, or None for never (until the next change)."""
    if not incident.is_ongoing or not incident.card_post_id:
        return None
    if state is not None and state.post_id == incident.card_post_id and state.frozen:
        return None
    due = next_change_at(incident, now)
    update_due = overdue_at(incident, now)
    if update_due is not None:
        due = min(due, update_due)
    deadline = edit_deadline(state, limit_s)
    if deadline is not None and due > deadline:
        if state is not None and not state.as_of and now < deadline:
            return now  # one more edit while it can: say when the duration shown was true
        return None
    return due


@dataclass
class TickStats:
    """What the scheduler did, for logs, tests and the benchmark."""

    ticks: int = 0        # refreshes attempted by the scheduler
    edited: int = 0       # ... that changed the card
    unchanged: int = 0    # ... skipped: the card would have looked the same
    locked: int = 0       # ... skipped: past the edit time limit (never re-posted)
    failed: int = 0


class LiveCardScheduler:
    """Refreshes the duration on the cards of ongoing incidents (see the module docstring)."""

    def __init__(self, cards: CardUpdater, store: Any, teams: Callable[[], Iterable[str]]) -> None:
        self.cards = cards
        self.store = store
        self.teams = teams
        self.stats = TickStats()
        self._due: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []
        self._wake = asyncio.Event()
        self._running = asyncio.Lock()
        self._task: asyncio.Task | None = None
        #: While the loop sleeps: the clock time it wakes at by itself (None while it is refreshing).
        self._sleeping_until: int | None = None
        cards.listeners.append(self.track)

    @property
    def scheduled(self) -> dict[str, int]:
        """incident id → when its card is refreshed next (epoch ms)."""
        return dict(self._due)

    async def start(self) -> None:
        """Learn the edit time limit, schedule every ongoing incident from the store, start ticking."""
        await self.learn_edit_limit()
        await self.resume()
        self._task = asyncio.create_task(self._run(), name="live-card")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

    async def learn_edit_limit(self) -> None:
        """``ServiceSettings.PostEditTimeLimit`` from the client configuration (-1: no limit). When it
        cannot be read, ticks find out from a refusal instead (and still never re-post)."""
        try:
            config = await self.cards.ctx.client.client_config()
            self.cards.edit_time_limit_s = int(config.post_edit_time_limit)
        except (MattermostError, ValueError) as error:
            log.warning("cannot read PostEditTimeLimit (%s); live card ticks stop at the first refused edit", error)
            self.cards.edit_time_limit_s = None

    async def resume(self) -> int:
        """Schedule every ongoing incident (after a restart: carry on from the store)."""
        count = 0
        for team_id in list(self.teams()):
            page_number = 0
            while True:
                page = await self.store.list_incidents(team_id, is_admin=True, status=IncidentStatus.ONGOING,
                                                       page=page_number, per_page=100)
                for incident in page.items:
                    self.track(incident)
                    count += 1
                if (page_number + 1) * 100 >= page.total or not page.items:
                    break
                page_number += 1
        log.info("live card: %d ongoing incidents scheduled", count)
        return count

    def track(self, incident: Incident) -> None:
        """(Re)schedule an incident after its card changed, or drop it (ended, frozen)."""
        due = next_due(incident, self.cards.state_of(incident.id), self.cards.edit_time_limit_s, self.cards.clock())
        if due is None:
            self._due.pop(incident.id, None)
            return
        if self._due.get(incident.id) == due:
            return
        self._due[incident.id] = due
        heapq.heappush(self._heap, (due, incident.id))
        sleeping_until = self._sleeping_until
        if sleeping_until is None or due < sleeping_until or self.cards.clock() >= sleeping_until:
            # Sooner than the loop would look again by itself, or the clock is past that already (a
            # card that will wait its turn — every new incident's, mostly — costs the loop no wake-up).
            self._wake.set()

    def wake(self) -> None:
        """Look at the clock again now (tests and the demo call this after moving simulated time)."""
        self._wake.set()

    async def run_due(self) -> int:
        """Refresh every card that is due by the clock; returns how many were looked at."""
        async with self._running:
            now = self.cards.clock()
            due_ids = []
            while self._heap and self._heap[0][0] <= now:
                when, incident_id = heapq.heappop(self._heap)
                if self._due.get(incident_id) == when:
                    del self._due[incident_id]
                    due_ids.append(incident_id)
            if not due_ids:
                return 0
            gate = asyncio.Semaphore(CONCURRENCY)

            async def one(incident_id: str) -> None:
                async with gate:
                    await self._tick(incident_id)

            await asyncio.gather(*(one(incident_id) for incident_id in due_ids))
            return len(due_ids)

    async def _tick(self, incident_id: str) -> None:
        self.stats.ticks += 1
        try:
            outcome, incident = await self.cards.refresh(incident_id, tick=True)
        except MattermostError as error:  # try again at its next change; a change refreshes it anyway
            self.stats.failed += 1
            log.warning("live card: refreshing incident %s failed: %s", incident_id, error)
            incident = await self.store.get_incident(incident_id)
            if incident is not None and incident.is_ongoing:
                due = next_change_at(incident, self.cards.clock())
                self._due[incident_id] = due
                heapq.heappush(self._heap, (due, incident_id))
            return
        except Exception:
            self.stats.failed += 1
            log.exception("live card: refreshing incident %s failed", incident_id)
            return
        if outcome == "edited":
            self.stats.edited += 1
        elif outcome == "unchanged":
            self.stats.unchanged += 1
        elif outcome == "locked":
            self.stats.locked += 1
        if incident is not None:
            self.track(incident)

    async def _run(self) -> None:
        while True:
            failed = False
            try:
                await self.run_due()
            except Exception:  # keep ticking (after a pause, never in a tight loop)
                log.exception("live card: a round of refreshes failed")
                failed = True
            delay = 3600.0
            if self._heap:
                delay = min(delay, max(0.0, (self._heap[0][0] - self.cards.clock()) / 1000))
            if failed:
                delay = max(delay, 5.0)
            self._wake.clear()
            if delay > 0:
                self._sleeping_until = self.cards.clock() + int(delay * 1000)
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
                except TimeoutError:
                    pass
                finally:
                    self._sleeping_until = None
