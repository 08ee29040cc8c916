"""The start flow's store cost (issue 15, bot CPU per start): each of a start's small writes is one trip to
the store's writer thread, and a fresh start does not read back the incident it has just journaled."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import all_incidents, card
from tests.e2e.test_start_flow_calls import start


@pytest.mark.parametrize("e2e_database", ["sqlite"], indirect=True)  # counts SQLite writer statements
async def test_a_start_costs_few_store_trips_and_reads_no_incident_back(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice",))
    await start(sandbox, "alice", "Warm up")
    store = bot.store
    trips, reads = [], []
    original_trip, original_get = store._writer_trip, store.get_incident

    async def counting(work, **options):  # a trip to the writer, on the event loop's thread or the writer's own
        trips.append(work)
        return await original_trip(work, **options)

    async def get_incident(incident_id):
        reads.append(incident_id)
        return await original_get(incident_id)

    store._writer_trip, store.get_incident = counting, get_incident
    try:
        await start(sandbox, "alice", "Payments down")
    finally:
        del store._writer_trip
        store.get_incident = original_get
    # The command's trigger key; the dialog key, journal and name claim; the incident (with what its
    # listeners write); the card's post id with the journal's removal: one trip each. At most one
    # WebSocket checkpoint besides.
    assert 4 <= len(trips) <= 5, len(trips)
    assert reads == []
    # What alice sees and the store holds is unchanged: the card pinned, nothing half-written.
    (incident,) = [i for i in await all_incidents(bot) if i.name == "Payments down"]
    shown = card(sandbox, incident)
    assert shown["id"] == incident.card_post_id and sandbox.pinned(incident.channel_id)
    assert "Payments down" in shown["message"]
    assert await store.settings_with_prefix("start:") == {}
    assert await store.settings_with_prefix("start-channel:") == {}
