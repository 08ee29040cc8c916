"""Telemetry counts a step's command as run only when it was accepted (issue 14)."""

from __future__ import annotations

import asyncio

from tests.e2e.conftest import make_playbook
from tests.telemetry.test_e2e import command, keys, start_incident


async def test_only_accepted_step_runs_are_counted(sandbox, sink, start_bot):
    app = await start_bot(**keys(sink.url))
    steps = {"Refused by Mattermost": "/echo", "Handed back": "/invite @dave ~leadership",
             "Runs a step": "/incident run 1.1", "Accepted built-in": "/echo paging the on-call",
             "Accepted own": "/incident commander"}
    await make_playbook(app, sandbox, stages=(("Triage", tuple(steps)),), commands=steps)
    incident = await start_incident(sandbox, app)
    alice = sandbox.user("alice")
    for n in range(1, 6):
        await command(alice, incident.channel_id, f"/incident run 1.{n}")
    await asyncio.to_thread(app.ctx.telemetry.flush)
    runs = sink.events("checklist_item_command_run")
    assert len(runs) == 2  # 1.4 and 1.5; Mattermost refused 1.1, 1.2 was handed back, 1.3 runs a step
    assert all(e["properties"]["UserID"] == alice.id for e in runs)
    recorded = [e.details["index"] for e in await app.store.timeline(incident.id) if e.kind.value == "step_run"]
    assert recorded == [3, 4]
