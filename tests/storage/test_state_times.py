"""The times state marks carry are stored with the incident (schema 6), on every backend."""

from __future__ import annotations

from domain import checklist, incidents
from domain.models import StepRef

from .builders import T0, incident, playbook


async def test_stage_restart_and_run_times_survive_a_round_trip(store):
    pb = await store.create_playbook(playbook())
    inc, events = incident(pb)
    await store.create_incident(inc, events)
    assert (await store.get_incident(inc.id)).stage_set_at is None

    def cycle(current):
        moved, first = incidents.next_stage(current, "bob", T0)
        back, second = incidents.previous_stage(moved, "bob", T0)
        ended, third = incidents.end_incident(back, "bob", T0)
        again, fourth = incidents.restart_incident(ended, "bob", T0)
        added, fifth = checklist.add_step(again, 0, "Freeze deploys", "bob", T0, command="/echo frozen")
        ran, sixth = checklist.run_step(added, StepRef(0, 3), "bob", T0)
        return ran, first + second + third + fourth + fifth + sixth

    saved, _ = await store.mutate_incident(inc.id, cycle)
    loaded = await store.get_incident(inc.id)
    assert loaded == saved
    assert loaded.stage_set_at == T0 + 1 and loaded.restarted_at == T0
    assert loaded.step(StepRef(0, 3)).last_run_at == T0
    assert (await store.incident_by_channel(inc.channel_id)) == saved
