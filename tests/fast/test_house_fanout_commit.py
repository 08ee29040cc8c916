"""An update's copies' job is written in the update's own store transaction (services/updates.py
``schedule_copies``): both are committed, or neither — a 'death' before the commit or a store
failure writing the job leaves no update, no post and no job."""

from __future__ import annotations

import time

import pytest

from domain.models import EventKind
from services.scheduler import ManualClock
from services.updates import FANOUT_KIND, KILL_BEFORE_UPDATE_COMMIT, UPDATE_MARK
from storage.jobs import JobState
from tests.fast.test_update_fanout import Killed, RaisingHooks, _all_copies, _settle, _setup


@pytest.fixture
def fan(fast):
    fast.clock = ManualClock(int(time.time() * 1000))
    fast.app.scheduler.clock = fast.clock
    return fast


async def _submit(fast, incident, text="Mitigated"):
    reply = await fast.slash(fast.people.alice, fast.channel_of(incident), "update")
    assert reply.text == "", reply.text
    return await fast.submit(fast.people.alice, fast.mm.dialogs[-1], {"text": text, "next_in": "none"},
                             channel=fast.channel_of(incident))


async def _nothing_recorded(fast, incident) -> None:
    assert [e for e in await fast.store.timeline(incident.id) if e.kind is EventKind.STATUS_UPDATE] == []
    assert await fast.store.list_jobs(kind=FANOUT_KIND) == []
    assert [p for p in fast.mm.posts_in(incident.channel_id) if UPDATE_MARK in p.props] == []


async def test_a_death_before_the_commit_leaves_neither_the_update_nor_its_job(fan):
    incident, ops, news = await _setup(fan)
    version = (await fan.store.get_incident(incident.id)).version
    fan.app.scheduler.hooks = RaisingHooks(KILL_BEFORE_UPDATE_COMMIT)
    try:
        with pytest.raises(Killed):
            await _submit(fan, incident)
    finally:
        fan.app.scheduler.hooks = None
    await _nothing_recorded(fan, incident)
    assert (await fan.store.get_incident(incident.id)).version == version
    # Posted again, by the same person: one update, one job, each copy once.
    outcome = await _submit(fan, incident)
    assert outcome.closes, (outcome.errors, outcome.error)
    await fan.app.scheduler.start()
    try:
        await _settle(fan)
    finally:
        await fan.app.scheduler.stop()
    [job] = await fan.store.list_jobs(kind=FANOUT_KIND)
    assert job.state is JobState.DONE
    assert _all_copies(fan, ops, news, job.id) == {"ops": 1, "news": 1, "bob": 1, "carol": 1}


async def test_a_store_failure_writing_the_job_refuses_the_update_as_a_whole(fan, monkeypatch):
    incident, _, _ = await _setup(fan)
    schedule_job = fan.store.schedule_job

    async def failing(kind, *args, **kwargs):
        if kind == FANOUT_KIND:
            raise OSError("disk full")
        return await schedule_job(kind, *args, **kwargs)

    monkeypatch.setattr(fan.store, "schedule_job", failing)
    outcome = await _submit(fan, incident)
    assert not outcome.closes
    await _nothing_recorded(fan, incident)


async def test_a_death_before_an_ends_commit_leaves_the_incident_ongoing_and_no_job(fan):
    incident, _, _ = await _setup(fan)
    channel = fan.channel_of(incident)
    await fan.slash(fan.people.alice, channel, "end")
    fan.app.scheduler.hooks = RaisingHooks(KILL_BEFORE_UPDATE_COMMIT)
    try:
        with pytest.raises(Killed):
            await fan.submit(fan.people.alice, fan.mm.dialogs[-1], {"final_update": "Rolled back"}, channel=channel)
    finally:
        fan.app.scheduler.hooks = None
    assert (await fan.store.get_incident(incident.id)).is_ongoing
    await _nothing_recorded(fan, incident)
