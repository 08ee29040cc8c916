"""Red team: what the commander hid from the timeline does not come back in the report (issue 18).

A hidden event is hidden from everyone but the commander and system admins (``timeline --all``);
the report is the same record as a file, so a hidden status update's text, or a hidden step
change, must not be in the report anyone else is sent.
"""

from __future__ import annotations

from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import add_member, start_incident
from tests.e2e.test_report import reports_to
from tests.e2e.test_status_updates import post_update

SECRET = "db password is hunter2"


async def test_a_hidden_status_update_is_not_in_the_report(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    incident, channel = await start_incident(sandbox, bot)
    await add_member(sandbox, channel["id"], "bob")
    alice, bob = sandbox.user("alice"), sandbox.user("bob")
    assert (await post_update(sandbox, "alice", channel["id"], f"Oops: {SECRET}")).closed
    assert (await post_update(sandbox, "alice", channel["id"], "Mitigated; watching")).closed
    events = await bot.store.timeline(incident.id)
    number = next(n for n, e in enumerate(events, start=1)
                  if e.kind.value == "status_update" and SECRET in str(e.details.get("message")))
    hidden = await alice.command(channel["id"], f"/incident timeline hide {number}")
    assert "is hidden" in hidden.ephemeral[0], hidden.ephemeral

    assert (await bob.command(channel["id"], "/incident report")).status == 200
    ((_post, _name, text),) = await reports_to(sandbox, "bob")
    assert SECRET not in text and "hunter2" not in text
    assert "Mitigated; watching" in text  # the other update is still reported
    assert "**1. " in text.split("## Status updates")[1] and "**2. " not in text.split("## Status updates")[1]


async def test_a_hidden_step_completion_is_not_in_info_either(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    incident, channel = await start_incident(sandbox, bot)
    await add_member(sandbox, channel["id"], "bob")
    alice, bob = sandbox.user("alice"), sandbox.user("bob")
    assert (await alice.command(channel["id"], "/incident check 1.1")).status == 200
    assert (await alice.command(channel["id"], "/incident check 1.2")).status == 200
    events = await bot.store.timeline(incident.id)
    number = next(n for n, e in enumerate(events, start=1)
                  if e.kind.value == "step_checked" and e.details.get("index") == 0)
    hidden = await alice.command(channel["id"], f"/incident timeline hide {number}")
    assert "is hidden" in hidden.ephemeral[0], hidden.ephemeral
    info = (await bob.command(channel["id"], "/incident info")).ephemeral[0]
    completions = info.split("**Timeline of step completions**")[1]
    assert "completed 1.1" not in completions and "completed 1.2" in completions, completions
