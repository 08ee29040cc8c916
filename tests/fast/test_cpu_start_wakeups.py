"""A start wakes nothing that is certain to do nothing (issue 15, CPU per start).

The live card loop is woken by a new card only when that card is due before the loop would look
again by itself; a card that is due sooner still wakes it and is refreshed on time. The start's
actor check asks Mattermost once and makes no tasks when the user is known already."""

from __future__ import annotations

import asyncio

from domain import incidents, playbooks
from domain.models import Incident
from gateway.directory import Directory
from gateway.models import TeamMember, User
from services.livecard import LiveCardScheduler, next_change_at

T0 = 1_700_000_000_000


def ongoing(name: str, created_at: int) -> Incident:
    stages = [playbooks.StageDraft(title="Triage", steps=(playbooks.StepDraft(title="Look"),))]
    playbook = playbooks.new_playbook(team_id="t" * 26, title="Response", created_by="u" * 26, now=T0, stages=stages)
    incident, _ = incidents.start_incident(playbook, name=name, channel_id=name[:1] * 26, creator_id="u" * 26,
                                           now=created_at)
    return incidents.set_card_post(incident, "p" * 26)


class Cards:
    """What the scheduler reads of the card updater; refreshes are counted, never made."""

    def __init__(self, now: int) -> None:
        self.now = now
        self.listeners: list = []
        self.edit_time_limit_s = -1
        self.refreshed: list[str] = []

    def clock(self) -> int:
        return self.now

    def state_of(self, incident_id: str):
        return None

    async def refresh(self, incident_id: str, *, tick: bool = False):
        self.refreshed.append(incident_id)
        return "unchanged", None


async def sleeping(scheduler: LiveCardScheduler) -> int:
    """Let the loop run until it sleeps; the clock time it will wake at by itself."""
    for _ in range(100):  # scheduling points only: the loop has no I/O to wait for
        if scheduler._sleeping_until is not None:
            return scheduler._sleeping_until
        await asyncio.sleep(0)
    raise AssertionError("the live card loop did not go to sleep")


async def test_a_card_due_later_than_the_loops_wake_up_does_not_wake_it_and_a_sooner_one_does():
    cards = Cards(T0)
    scheduler = LiveCardScheduler(cards, store=None, teams=lambda: ())  # type: ignore[arg-type]
    first = ongoing("first", T0)
    scheduler.track(first)
    task = asyncio.create_task(scheduler._run())
    try:
        wakes_at = await sleeping(scheduler)
        assert wakes_at == next_change_at(first, T0)  # asleep until the first card's tick
        later = ongoing("later", T0 + 30_000)
        assert next_change_at(later, T0) > wakes_at
        scheduler.track(later)
        assert not scheduler._wake.is_set()  # nothing to do before the first card's tick
        assert set(scheduler.scheduled) == {first.id, later.id}

        # A card due before that wake-up (an overdue mark, say) wakes the loop, which sleeps again
        # until the new, sooner time, and refreshes it once the clock gets there.
        sooner = incidents.set_card_post(ongoing("sooner", T0).model_copy(
            update={"next_update_due_at": T0 + 5_000}), "q" * 26)
        scheduler.track(sooner)
        assert scheduler._wake.is_set()
        for _ in range(100):
            if scheduler._sleeping_until == T0 + 5_000:
                break
            await asyncio.sleep(0)
        assert scheduler._sleeping_until == T0 + 5_000
        cards.now = T0 + 5_000
        scheduler.wake()
        for _ in range(100):
            if cards.refreshed:
                break
            await asyncio.sleep(0)
        assert cards.refreshed == [sooner.id]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_clock_moved_past_the_loops_wake_up_wakes_it_with_the_next_card():
    cards = Cards(T0)
    scheduler = LiveCardScheduler(cards, store=None, teams=lambda: ())  # type: ignore[arg-type]
    first = ongoing("first", T0)
    scheduler.track(first)
    task = asyncio.create_task(scheduler._run())
    try:
        wakes_at = await sleeping(scheduler)
        cards.now = wakes_at + 1  # moved on (a simulated clock, or a step of the system clock)
        later = ongoing("later", cards.now)
        assert next_change_at(later, cards.now) > wakes_at
        scheduler.track(later)
        assert scheduler._wake.is_set()  # the first card is due: look now, not at the timer
        for _ in range(100):
            if cards.refreshed:
                break
            await asyncio.sleep(0)
        assert cards.refreshed == [first.id]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_while_the_loop_refreshes_every_new_card_is_seen_when_it_sleeps_again():
    cards = Cards(T0)
    scheduler = LiveCardScheduler(cards, store=None, teams=lambda: ())  # type: ignore[arg-type]
    assert scheduler._sleeping_until is None  # not started: tracking always sets the wake-up
    scheduler.track(ongoing("first", T0))
    assert scheduler._wake.is_set()


class Client:
    """The two reads of the actor check, counted."""

    user_id = "b" * 26

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def get_user(self, user_id: str) -> User:
        self.calls.append("user")
        return User(id=user_id, username="alice", roles="system_user")

    async def get_team_member(self, team_id: str, user_id: str) -> TeamMember:
        self.calls.append("team member")
        return TeamMember(team_id=team_id, user_id=user_id)


async def test_the_actor_check_asks_the_team_membership_every_time_and_the_user_once(monkeypatch):
    client = Client()
    directory = Directory(client)  # type: ignore[arg-type]
    tasks: list[object] = []
    original = asyncio.gather

    def counting_gather(*aws, **kwargs):
        tasks.append(aws)
        return original(*aws, **kwargs)

    monkeypatch.setattr(asyncio, "gather", counting_gather)
    actor, member = await directory.actor_in_team("t" * 26, "u" * 26)
    assert (actor.user_id, actor.is_system_admin, member) == ("u" * 26, False, True)
    assert sorted(client.calls) == ["team member", "user"] and len(tasks) == 1  # both asked at once
    client.calls.clear()
    actor, member = await directory.actor_in_team("t" * 26, "u" * 26)
    assert (actor.user_id, actor.is_system_admin, member) == ("u" * 26, False, True)
    assert client.calls == ["team member"] and len(tasks) == 1  # the user was known: no tasks made
