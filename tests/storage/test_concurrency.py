"""Many concurrent edits of one incident: every one is reflected, none lost."""

from __future__ import annotations

import asyncio
import random

from domain import checklist, playbooks
from domain.models import EventKind, StepRef

from .builders import T0, incident


def wide_playbook():
    """One stage of 40 steps, so that concurrent toggles hit different and equal steps."""
    stage = playbooks.StageDraft(title="All", steps=tuple(playbooks.StepDraft(title=f"s{n}") for n in range(40)))
    return playbooks.new_playbook(team_id="team1", title="Wide", created_by="alice", now=T0, stages=[stage])


async def test_concurrent_toggles_are_all_applied(store):
    inc, events = incident(wide_playbook())
    await store.create_incident(inc, events)
    rng = random.Random(7)
    # Each of 40 steps is toggled a random number of times by concurrent tasks.
    toggles = [n for n in range(40) for _ in range(rng.randint(1, 8))]
    rng.shuffle(toggles)
    start = asyncio.Event()

    async def toggle(step: int, k: int) -> None:
        await start.wait()

        def flip(current):
            ref = StepRef(0, step)
            op = checklist.uncheck_step if current.step(ref).done else checklist.check_step
            return op(current, ref, f"user{k}", T0 + k)

        await store.mutate_incident(inc.id, flip)

    tasks = [asyncio.create_task(toggle(step, k)) for k, step in enumerate(toggles)]
    start.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)

    final = await store.get_incident(inc.id)
    for n in range(40):
        expected_done = toggles.count(n) % 2 == 1
        assert final.step(StepRef(0, n)).done is expected_done, n
    timeline = await store.timeline(inc.id)
    flips = [e for e in timeline if e.kind in (EventKind.STEP_CHECKED, EventKind.STEP_UNCHECKED)]
    assert len(flips) == len(toggles)
    assert final.version == inc.version + len(toggles)
    for n in range(40):  # per step, the recorded events alternate check/uncheck
        kinds = [e.kind for e in flips if e.details["index"] == n]
        assert kinds == [EventKind.STEP_CHECKED, EventKind.STEP_UNCHECKED] * (len(kinds) // 2) + (
            [EventKind.STEP_CHECKED] if len(kinds) % 2 else []
        )


async def test_concurrent_checks_of_the_same_step_give_one_event(store):
    inc, events = incident()
    await store.create_incident(inc, events)
    results = await asyncio.gather(
        *(store.mutate_incident(inc.id, lambda i, k=k: checklist.check_step(i, StepRef(0, 0), f"u{k}", T0)) for k in range(20))
    )
    assert sum(len(evs) for _, evs in results) == 1
    final = await store.get_incident(inc.id)
    assert final.step(StepRef(0, 0)).done and final.version == inc.version + 1


async def test_two_store_instances_on_one_database(store, store_factory):
    """Two processes' worth of writers (separate connections) still lose nothing."""
    inc, events = incident(wide_playbook())
    await store.create_incident(inc, events)
    second = store_factory()
    await second.open()
    try:
        async def check(which, step):
            await which.mutate_incident(inc.id, lambda i: checklist.check_step(i, StepRef(0, step), "u", T0))

        await asyncio.wait_for(
            asyncio.gather(*(check(store if n % 2 else second, n) for n in range(40))), timeout=60
        )
    finally:
        await second.close()
    final = await store.get_incident(inc.id)
    assert final.steps_done == 40 and final.version == inc.version + 40
