"""Card buttons are bound to the state they were drawn for (issue 13 F7).

A click drawn for a state that has moved on — an out-of-date card, or a captured click replayed
with a self-minted trigger id — changes nothing and tells the user the card was out of date, while
people clicking *different* buttons of one card at once all succeed.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from gateway.ids import Route
from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import card, start_incident, step_button
from tests.gateway.test_hostile import fresh_trigger, url

CARD_PATCH = r"^/api/v4/posts/[a-z0-9]{26}/patch$"


@pytest.fixture
async def incident(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice",))
    incident, channel = await start_incident(sandbox, bot, "alice", "Checkout errors")
    for name in ("bob", "carol"):
        await sandbox.user("alice").add_member(channel["id"], name)
    return incident


def last_click(sandbox) -> dict:
    return [c for c in sandbox.callbacks if c.kind == "action"][-1].json()


async def replay(http, bot, click: dict) -> tuple[int, dict]:
    """Send a captured click again, as an attacker would: with a trigger id minted for the same user."""
    body = {**click, "trigger_id": fresh_trigger(click["user_id"])}
    async with http.post(url(bot, Route.ACTION), data=json.dumps(body).encode(),
                         headers={"Content-Type": "application/json"}) as response:
        return response.status, await response.json()


async def stored(bot, incident):
    return await bot.store.get_incident(incident.id)


async def test_a_replayed_check_after_the_step_was_reopened_changes_nothing(sandbox, bot, incident, http):
    alice = sandbox.user("alice")
    await alice.click(incident.card_post_id, step_button(card(sandbox, incident), "Check", "Acknowledge"))
    captured = last_click(sandbox)
    assert (await stored(bot, incident)).stages[0].steps[0].done
    await sandbox.user("bob").command(incident.channel_id, "/incident uncheck 1.1")
    assert not (await stored(bot, incident)).stages[0].steps[0].done
    before = await stored(bot, incident)
    status, answer = await replay(http, bot, captured)
    assert status == 200
    assert "out of date" in answer["ephemeral_text"] and "nothing changed" in answer["ephemeral_text"]
    assert await stored(bot, incident) == before
    assert [e.kind.value for e in await bot.store.timeline(incident.id)].count("step_checked") == 1


async def test_a_replayed_next_stage_after_the_stage_moved_on_changes_nothing(sandbox, bot, incident, http):
    alice = sandbox.user("alice")
    await alice.click(incident.card_post_id, "Next stage ▶")
    captured = last_click(sandbox)
    assert (await stored(bot, incident)).active_stage == 1
    status, answer = await replay(http, bot, captured)
    assert status == 200 and "active stage is now 2/3" in answer["ephemeral_text"]
    assert (await stored(bot, incident)).active_stage == 1


async def test_an_out_of_date_card_tells_the_clicker_and_changes_nothing(sandbox, bot, incident):
    """bob clicks Check on the card as it was before alice's click reached it: he is told, the step
    keeps alice's check, and nothing is announced twice."""
    gate = sandbox.gates.hold("PUT", CARD_PATCH, token=sandbox.token_of("incident"))
    check = step_button(card(sandbox, incident), "Check", "Acknowledge")
    alice_click = asyncio.create_task(sandbox.user("alice").click(incident.card_post_id, check))
    await asyncio.wait_for(gate.reached.wait(), 10)  # alice's check is stored; the card is not redrawn yet
    bob_result = await sandbox.user("bob").click(incident.card_post_id, check)
    gate.release()
    alice_result = await alice_click
    assert alice_result.status == 200 and not alice_result.ephemeral
    assert bob_result.status == 200
    assert len(bob_result.ephemeral) == 1 and "The card was out of date, so nothing changed" in bob_result.ephemeral[0]
    assert "step 1.1 is done now" in bob_result.ephemeral[0]
    current = await stored(bot, incident)
    assert current.stages[0].steps[0].state_changed_by == sandbox.user_id("alice")
    announced = [p["message"] for p in sandbox.posts(incident.channel_id) if "checked 1.1" in p["message"]]
    assert announced == ["@alice checked 1.1 **Acknowledge the alert**."]
    # The card shows the current state: 1.1 offers Uncheck now.
    step_button(card(sandbox, incident), "Uncheck", "Acknowledge")


async def test_different_buttons_of_one_card_clicked_at_once_all_succeed(sandbox, bot, incident):
    """Three people click three different buttons of the same drawn card while it is being redrawn."""
    gate = sandbox.gates.hold("PUT", CARD_PATCH, token=sandbox.token_of("incident"))
    drawn = card(sandbox, incident)
    first = asyncio.create_task(sandbox.user("alice").click(incident.card_post_id,
                                                            step_button(drawn, "Check", "Acknowledge")))
    await asyncio.wait_for(gate.reached.wait(), 10)
    others = [asyncio.create_task(sandbox.user("bob").click(incident.card_post_id,
                                                            step_button(drawn, "Check", "Assess customer impact"))),
              asyncio.create_task(sandbox.user("carol").click(incident.card_post_id, "Next stage ▶"))]
    await sandbox.wait_for(lambda: len([p for p in sandbox.posts(incident.channel_id)
                                        if "checked 1.2" in p["message"] or "moved the incident" in p["message"]]) == 2)
    gate.release()
    results = await asyncio.gather(first, *others)
    assert all(r.status == 200 and not r.ephemeral for r in results), [(r.status, r.ephemeral) for r in results]
    current = await stored(bot, incident)
    assert current.stages[0].steps[0].done and current.stages[0].steps[1].done
    assert current.active_stage == 1


async def test_a_card_drawn_before_buttons_carried_their_state_is_redrawn_not_acted_on(sandbox, bot, incident,
                                                                                         http):
    """Cards posted by an older version have unmarked buttons (and one-letter contexts): a click on one
    is refused and the card is redrawn, so the next click works."""
    alice = sandbox.user("alice")
    await alice.click(incident.card_post_id, step_button(card(sandbox, incident), "Check", "Acknowledge"))
    captured = last_click(sandbox)
    context = captured["context"]
    payload = context["payload"]
    body = {"a": context["action"], "c": context["channel_id"], "v": {"i": payload["incident_id"],
                                                                     "s": payload["step_id"]}}
    old = {**body, "s": bot.ctx.signer.sign("action", body)}  # as the previous version signed it
    await sandbox.user("bob").command(incident.channel_id, "/incident uncheck 1.1")
    status, answer = await replay(http, bot, {**captured, "context": old})
    assert status == 200 and "out of date" in answer["ephemeral_text"]
    assert not (await stored(bot, incident)).stages[0].steps[0].done
