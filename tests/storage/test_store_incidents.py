"""Incidents, timelines, transactions and optimistic concurrency, on every backend."""

from __future__ import annotations

import pytest

from domain import checklist, incidents
from domain.errors import Conflict, InvalidState, NotFound
from domain.models import EventKind, StepRef
from storage import Store

from .builders import T0, incident


async def test_create_get_by_id_and_channel(store):
    inc, events = incident()
    await store.create_incident(inc, events)
    assert await store.get_incident(inc.id) == inc
    assert await store.incident_by_channel(inc.channel_id) == inc
    assert await store.get_incident("missing") is None
    assert await store.incident_by_channel("missing") is None
    assert [e.id for e in await store.timeline(inc.id)] == [events[0].id]


async def test_one_incident_per_channel(store):
    first, events = incident(channel_id="same")
    await store.create_incident(first, events)
    second, events2 = incident(channel_id="same")
    with pytest.raises(Conflict, match="already has an incident"):
        await store.create_incident(second, events2)
    assert await store.get_incident(second.id) is None
    assert await store.timeline(second.id) == []  # the events were not half-written


async def test_update_appends_events_and_bumps_version(store):
    inc, events = incident()
    await store.create_incident(inc, events)
    checked, more = checklist.check_step(inc, StepRef(0, 1), "bob", T0 + 1)
    saved = await store.update_incident(checked, more)
    assert saved.version == inc.version + 1
    loaded = await store.get_incident(inc.id)
    assert loaded == saved and loaded.step(StepRef(0, 1)).done
    assert [e.kind for e in await store.timeline(inc.id)] == [EventKind.CREATED, EventKind.STEP_CHECKED]


async def test_stale_update_is_a_conflict_and_writes_nothing(store):
    inc, events = incident()
    await store.create_incident(inc, events)
    first, e1 = checklist.check_step(inc, StepRef(0, 0), "bob", T0 + 1)
    second, e2 = checklist.check_step(inc, StepRef(0, 2), "carol", T0 + 2)  # based on the same version
    await store.update_incident(first, e1)
    with pytest.raises(Conflict):
        await store.update_incident(second, e2)
    loaded = await store.get_incident(inc.id)
    assert loaded.step(StepRef(0, 0)).done and not loaded.step(StepRef(0, 2)).done
    assert len(await store.timeline(inc.id)) == 2
    with pytest.raises(NotFound):
        await store.update_incident(first.model_copy(update={"id": "ghost"}), [], expected_version=1)


async def test_mutate_incident_applies_and_returns_events(store):
    inc, events = incident()
    await store.create_incident(inc, events)
    saved, new_events = await store.mutate_incident(inc.id, lambda i: incidents.end_incident(i, "bob", T0 + 9))
    assert not saved.is_ongoing and [e.kind for e in new_events] == [EventKind.ENDED]
    assert await store.get_incident(inc.id) == saved
    with pytest.raises(InvalidState, match="has already ended"):
        await store.mutate_incident(inc.id, lambda i: incidents.end_incident(i, "bob", T0 + 10))
    with pytest.raises(NotFound):
        await store.mutate_incident("missing", lambda i: incidents.end_incident(i, "bob", T0))


async def test_mutate_noop_writes_nothing(store):
    inc, events = incident()
    await store.create_incident(inc, events)
    same, none = await store.mutate_incident(inc.id, lambda i: incidents.set_stage(i, 0, "bob", T0))
    assert none == [] and same.version == inc.version
    assert len(await store.timeline(inc.id)) == 1


async def test_mutate_retries_after_a_conflict(store):
    inc, events = incident()
    await store.create_incident(inc, events)
    # Another writer commits after our first load: that load is stale.
    racer, racer_events = checklist.check_step(inc, StepRef(1, 0), "carol", T0 + 1)
    await store.update_incident(racer, racer_events)
    loads = []
    real_get = store.get_incident

    async def get_incident(incident_id):
        loads.append(incident_id)
        return inc if len(loads) == 1 else await real_get(incident_id)

    store.get_incident = get_incident  # type: ignore[method-assign]
    try:
        # The shared algorithm (a backend may load inside its write lock and never conflict).
        saved, _ = await Store.mutate_incident(store,
            inc.id, lambda i: checklist.check_step(i, StepRef(0, 0), "bob", T0 + 2)
        )
    finally:
        del store.get_incident
    assert len(loads) == 2  # one conflict, one successful retry
    loaded = await store.get_incident(inc.id)
    assert loaded == saved and saved.version == inc.version + 2
    assert loaded.step(StepRef(0, 0)).done and loaded.step(StepRef(1, 0)).done
    assert [e.kind for e in await store.timeline(inc.id)].count(EventKind.STEP_CHECKED) == 2


async def test_mutate_gives_up_after_the_retries(store):
    inc, events = incident()
    await store.create_incident(inc, events)
    await store.update_incident(*checklist.check_step(inc, StepRef(1, 0), "carol", T0 + 1))

    async def always_stale(incident_id):
        return inc

    store.get_incident = always_stale  # type: ignore[method-assign]
    try:
        with pytest.raises(Conflict):
            await Store.mutate_incident(
                store, inc.id, lambda i: checklist.check_step(i, StepRef(0, 0), "b", T0), retries=2
            )
    finally:
        del store.get_incident
    assert not (await store.get_incident(inc.id)).step(StepRef(0, 0)).done


async def test_transaction_rolls_back_everything_on_error(store):
    inc, events = incident()
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.create_incident(inc, events)
            await store.set_setting("k", "v")
            assert await store.get_incident(inc.id) == inc  # visible inside the transaction
            raise RuntimeError("boom")
    assert await store.get_incident(inc.id) is None
    assert await store.get_setting("k") is None
    assert await store.timeline(inc.id) == []


async def test_append_events_and_delete(store):
    inc, events = incident()
    await store.create_incident(inc, events)
    _, run_events = checklist.run_step(
        checklist.add_step(inc, 0, "Run it", "bob", T0, command="/echo x")[0], StepRef(0, 3), "bob", T0 + 1
    )
    await store.append_events(run_events)
    assert [e.kind for e in await store.timeline(inc.id)] == [EventKind.CREATED, EventKind.STEP_RUN]
    assert (await store.timeline(inc.id))[1] == run_events[0]
    assert await store.delete_incident(inc.id) is True
    assert await store.delete_incident(inc.id) is False
    assert await store.timeline(inc.id) == []
    with pytest.raises(NotFound):
        await store.append_events(run_events)


async def test_cancelled_transactions_leave_nothing_behind(store):
    import asyncio

    inside = asyncio.Event()
    never = asyncio.Event()
    first, events = incident()

    async def interrupted():
        async with store.transaction():
            await store.create_incident(first, events)
            inside.set()
            await never.wait()

    task = asyncio.create_task(interrupted())
    await asyncio.wait_for(inside.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Cancel many transactions at random points, including while BEGIN is queued.
    others = [asyncio.create_task(store.create_incident(*incident())) for _ in range(30)]
    await asyncio.sleep(0)  # one loop turn: let them start and queue on the writer
    for n, other in enumerate(others):
        if n % 3 == 0:
            other.cancel()
    await asyncio.gather(*others, return_exceptions=True)
    second, events2 = incident()
    await store.create_incident(second, events2)
    assert await store.get_incident(first.id) is None
    assert await store.get_incident(second.id) == second


async def test_incidents_without_card(store):
    from domain.incidents import set_card_post

    first, e1 = incident(now=T0 + 2)
    second, e2 = incident(now=T0 + 1)
    await store.create_incident(first, e1)
    await store.create_incident(second, e2)
    assert [i.id for i in await store.incidents_without_card()] == [second.id, first.id]
    await store.mutate_incident(second.id, lambda i: (set_card_post(i, "post1"), []))
    assert [i.id for i in await store.incidents_without_card()] == [first.id]
    assert (await store.get_incident(second.id)).card_post_id == "post1"
    assert await store.incidents_without_card(limit=0) == []
