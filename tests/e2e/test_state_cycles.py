"""Button marks follow history, not only state (issue 13, the state-cycle gap left by F7).

After Next then Previous, or End then Restart, the incident is back in a state an old card was drawn
for; a click (or an End/Restart dialog) drawn before the cycle must still change nothing. A step's
Run button is bound to the step's last run: a captured Run click runs nothing once the run it made
is recorded, copies of it sent at once run once, and the card's Run button works again at once.
"""

from __future__ import annotations

import asyncio

import pytest

from domain.models import IncidentStatus
from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import card, start_incident, step_button
from tests.e2e.test_state_bound_buttons import last_click, replay, stored
from tests.e2e.test_step_commands import bot_calls, one_step_incident, ran_posts, step_runs


@pytest.fixture
async def incident(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice",))
    incident, channel = await start_incident(sandbox, bot, "alice", "Checkout errors")
    await sandbox.user("alice").add_member(channel["id"], "bob")
    return incident


async def test_an_old_next_click_after_next_then_previous_changes_nothing(sandbox, bot, incident, http):
    alice = sandbox.user("alice")
    await alice.click(incident.card_post_id, "Next stage ▶")
    captured = last_click(sandbox)  # drawn for stage 1
    await sandbox.user("bob").command(incident.channel_id, "/incident stage prev")
    assert (await stored(bot, incident)).active_stage == 0  # stage 1 again, as when the click was drawn
    before = await stored(bot, incident)
    status, answer = await replay(http, bot, captured)
    assert status == 200
    assert answer["ephemeral_text"].startswith("The card was out of date, so nothing changed: the active stage is now 1/3")
    assert await stored(bot, incident) == before
    # The card as it is now still moves the stage.
    assert (await alice.click(incident.card_post_id, "Next stage ▶")).ephemeral == []
    assert (await stored(bot, incident)).active_stage == 1


async def test_an_old_next_click_stays_refused_after_the_bot_restarts(sandbox, start_bot, http):
    """The mark is stored with the incident, not kept in memory."""
    bot = await start_bot()
    await make_playbook(bot, sandbox, members=("alice",))
    incident, _ = await start_incident(sandbox, bot, "alice", "Checkout errors")
    alice = sandbox.user("alice")
    await alice.click(incident.card_post_id, "Next stage ▶")
    captured = last_click(sandbox)
    await alice.command(incident.channel_id, "/incident stage prev")
    await bot.stop()
    again = await start_bot()
    status, answer = await replay(http, again, captured)
    assert status == 200 and "out of date" in answer["ephemeral_text"]
    assert (await again.store.get_incident(incident.id)).active_stage == 0


async def test_an_end_dialog_opened_before_end_then_restart_ends_nothing(sandbox, bot, incident):
    alice, bob = sandbox.user("alice"), sandbox.user("bob")
    opened = await alice.click(incident.card_post_id, "End incident")
    assert opened.dialog is not None  # alice hesitates with her dialog open ...
    assert (await bob.command(incident.channel_id, "/incident end")).dialog is not None
    assert (await bob.submit_dialog({})).closed
    assert (await bob.command(incident.channel_id, "/incident restart")).dialog is not None
    assert (await bob.submit_dialog({})).closed
    assert (await stored(bot, incident)).status is IncidentStatus.ONGOING  # ... as it was when she opened it
    outcome = await alice.submit_dialog({})
    assert not outcome.closed
    assert outcome.error == ("The card was out of date, so nothing changed: the incident is ongoing now. "
                             "The card shows the current state.")
    assert (await stored(bot, incident)).status is IncidentStatus.ONGOING
    kinds = [e.kind.value for e in await bot.store.timeline(incident.id)]
    assert kinds.count("ended") == 1


async def test_an_old_end_click_after_end_then_restart_opens_no_dialog(sandbox, bot, incident, http):
    alice = sandbox.user("alice")
    await alice.click(incident.card_post_id, "End incident")
    captured = last_click(sandbox)
    assert (await alice.submit_dialog({})).closed
    await alice.click(incident.card_post_id, "Restart incident")
    assert (await alice.submit_dialog({})).closed
    status, answer = await replay(http, bot, captured)
    assert status == 200 and "out of date" in answer["ephemeral_text"]
    assert (await stored(bot, incident)).status is IncidentStatus.ONGOING


async def test_an_old_restart_dialog_after_restart_then_end_restarts_nothing(sandbox, bot, incident):
    alice, bob = sandbox.user("alice"), sandbox.user("bob")
    for person in (bob,):
        assert (await person.command(incident.channel_id, "/incident end")).dialog is not None
        assert (await person.submit_dialog({})).closed
    assert (await alice.command(incident.channel_id, "/incident restart")).dialog is not None  # left open
    assert (await bob.command(incident.channel_id, "/incident restart")).dialog is not None
    assert (await bob.submit_dialog({})).closed
    assert (await bob.command(incident.channel_id, "/incident end")).dialog is not None
    assert (await bob.submit_dialog({})).closed
    outcome = await alice.submit_dialog({})
    assert not outcome.closed and "out of date" in (outcome.error or "")
    assert (await stored(bot, incident)).status is IncidentStatus.ENDED


# -- Run --------------------------------------------------------------------------------------------

async def run_incident(sandbox, bot):
    incident, channel = await one_step_incident(sandbox, bot, "/echo deploy frozen")
    return incident, channel


async def test_a_captured_run_click_runs_nothing_again(sandbox, bot, http):
    incident, channel = await run_incident(sandbox, bot)
    alice = sandbox.user("alice")
    clicked = await alice.click(incident.card_post_id, step_button(card(sandbox, incident), "Run", "Do the thing"))
    assert clicked.status == 200 and clicked.ephemeral == []
    captured = last_click(sandbox)
    assert len(await step_runs(bot, incident)) == 1
    status, answer = await replay(http, bot, captured)
    assert status == 200
    assert answer["ephemeral_text"] == ("The card was out of date, so nothing changed: step 1.1's command has run since "
                                        "the card was drawn. Click Run on the current card, or type "
                                        "/incident run 1.1, to run it again.")
    assert len(await step_runs(bot, incident)) == 1
    assert ran_posts(sandbox, channel["id"]) == ["@alice ran 1.1 **Do the thing**: `/echo deploy frozen`"]
    # The card was redrawn for the run: its Run button runs the step again, as does the command.
    again = await alice.click(incident.card_post_id, step_button(card(sandbox, incident), "Run", "Do the thing"))
    assert again.ephemeral == []
    assert (await alice.command(channel["id"], "/incident run 1.1")).ephemeral == []
    assert len(await step_runs(bot, incident)) == 3


async def test_copies_of_one_run_click_sent_at_once_run_once(sandbox, bot, http):
    incident, channel = await run_incident(sandbox, bot)
    alice = sandbox.user("alice")
    # Hold the run inside Mattermost so that every copy arrives while the first is running.
    gate = sandbox.gates.hold("POST", r"^/api/v4/commands/execute$", token=sandbox.token_of("incident"))
    first = asyncio.create_task(alice.click(incident.card_post_id,
                                            step_button(card(sandbox, incident), "Run", "Do the thing")))
    await asyncio.wait_for(gate.reached.wait(), 10)
    captured = last_click(sandbox)
    answers = await asyncio.gather(*(replay(http, bot, captured) for _ in range(5)))
    gate.release()
    assert (await first).ephemeral == []
    assert all(status == 200 for status, _ in answers)
    assert all("nothing" in answer["ephemeral_text"] for _, answer in answers), answers
    assert len(await step_runs(bot, incident)) == 1
    assert len(ran_posts(sandbox, channel["id"])) == 1
    assert len(bot_calls(sandbox, "/api/v4/commands/execute")) == 1


async def test_a_run_costs_one_card_edit_more(sandbox, bot):
    """REST calls of a Run click: the command, the announcement and the card redrawn for the run."""
    incident, _channel = await run_incident(sandbox, bot)
    start = len(bot_calls(sandbox))
    await sandbox.user("alice").click(incident.card_post_id,
                                      step_button(card(sandbox, incident), "Run", "Do the thing"))
    calls = [f"{e.method} {e.path}" for e in bot_calls(sandbox)[start:]]
    print("REST calls of a Run click:", calls)
    assert calls.count("POST /api/v4/commands/execute") == 1
    assert calls.count("POST /api/v4/posts") == 1
    assert sum(1 for c in calls if c.startswith("PUT /api/v4/posts/")) == 1
