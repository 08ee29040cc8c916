"""Membership is right at once: whoever leaves an incident channel loses access to the incident, and
whoever joins gains it, the moment Mattermost says so (issue 13 F1, issue 14).

The bot keeps channel membership from Mattermost's ``user_added`` / ``user_removed`` events. A
removed member's click in Mattermost is refused by Mattermost itself (api4 doPostAction needs
read access to the post's channel), so the bot's own check is what stands against a click sent to
the bot directly — here the captured body of one of dave's earlier clicks, re-sent with a freshly
minted trigger id.
"""

from __future__ import annotations

import base64
import json
import secrets
import time

import aiohttp

from bot import CommandCenter
from tests.e2e.conftest import bot_settings, make_playbook
from tests.e2e.test_incidents import card, start_incident, step_button
from tests.e2e.test_reconnect import FAST, outage, recovered

ONLY_MEMBERS = "Only members of the incident channel"


async def incident_with_dave(sandbox, bot):
    """alice's public incident, with dave added to its channel and having clicked Check on 1.1 (so
    the bot has seen him act as a member)."""
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    alice, dave = sandbox.user("alice"), sandbox.user("dave")
    await alice.add_member(channel["id"], "dave")
    clicked = await dave.click(incident.card_post_id, step_button(card(sandbox, incident), "Check", "Acknowledge"))
    assert clicked.status == 200 and not clicked.ephemeral, (clicked.error, clicked.ephemeral)
    assert (await bot.store.get_incident(incident.id)).stages[0].steps[0].done
    return incident, channel


def remove(sandbox, channel_id: str, username: str, by: str) -> None:
    world = sandbox.world
    world.remove_member(world.channels[channel_id], sandbox.user_id(username), sandbox.user_id(by))


def last_click_body(sandbox, user_id: str) -> dict:
    for callback in reversed(sandbox.callbacks):
        if callback.kind == "action" and callback.json().get("user_id") == user_id:
            return callback.json()
    raise AssertionError("no click by that user")


async def forge(bot: CommandCenter, body: dict) -> dict:
    """Send a click body to the bot directly, with a trigger id minted for it (F7: the bot cannot
    verify trigger ids), as someone who captured one of the user's clicks could."""
    minted = f"{secrets.token_hex(13)}:{body['user_id']}:{int(time.time() * 1000)}:forged"
    forged = dict(body, trigger_id=base64.b64encode(minted.encode()).decode())
    async with aiohttp.ClientSession() as http, http.post(bot.ctx.action_url, json=forged) as response:
        text = await response.text()
        return {"status": response.status, "body": json.loads(text) if text.startswith("{") else text}


def checked_posts(sandbox, channel_id: str, who: str) -> list[str]:
    return [p["message"] for p in sandbox.posts(channel_id) if p["message"].startswith(f"@{who} checked")]


async def test_a_click_by_a_member_who_was_just_removed_changes_nothing(sandbox, bot):
    incident, channel = await incident_with_dave(sandbox, bot)
    alice, dave = sandbox.user("alice"), sandbox.user("dave")
    captured = last_click_body(sandbox, dave.id)
    await alice.command(channel["id"], "/incident uncheck 1.1")
    remove(sandbox, channel["id"], "dave", by="alice")

    # In Mattermost his click does not even reach the bot ...
    refused = await dave.click(incident.card_post_id, step_button(card(sandbox, incident), "Check", "Acknowledge"))
    assert refused.status == 403
    # ... and sent to the bot directly it changes nothing either.
    answer = await forge(bot, captured)
    assert answer["status"] in (200, 401), answer
    if answer["status"] == 200:
        assert ONLY_MEMBERS in answer["body"].get("ephemeral_text", ""), answer
    current = await bot.store.get_incident(incident.id)
    assert not current.stages[0].steps[0].done
    assert len(checked_posts(sandbox, channel["id"], "dave")) == 1  # only the click made as a member


async def test_an_end_dialog_opened_before_removal_cannot_end_the_incident(sandbox, bot):
    incident, channel = await incident_with_dave(sandbox, bot)
    dave = sandbox.user("dave")
    opened = await dave.click(incident.card_post_id, "End incident")
    assert opened.dialog is not None
    remove(sandbox, channel["id"], "dave", by="alice")
    outcome = await dave.submit_dialog({})
    assert not outcome.closed and ONLY_MEMBERS in (outcome.error or ""), (outcome.error, outcome.errors)
    current = await bot.store.get_incident(incident.id)
    assert current.is_ongoing
    assert not [p for p in sandbox.posts(channel["id"]) if "has been ended" in p["message"]]


async def test_someone_who_just_left_cannot_be_made_commander(sandbox, bot):
    incident, channel = await incident_with_dave(sandbox, bot)
    alice = sandbox.user("alice")
    remove(sandbox, channel["id"], "dave", by="dave")  # dave leaves
    result = await alice.command(channel["id"], "/incident commander @dave")
    assert result.ephemeral == ["@dave is not a member of this incident's channel: add @dave to the channel "
                                "first, then make them commander."], result.ephemeral
    assert (await bot.store.get_incident(incident.id)).commander_id == alice.id
    assert not [p for p in sandbox.posts(channel["id"]) if "changed the commander" in p["message"]]


async def test_someone_just_added_can_be_made_commander_at_once(sandbox, bot):
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    alice, carol = sandbox.user("alice"), sandbox.user("carol")
    refused = await alice.command(channel["id"], "/incident commander @carol")
    assert refused.ephemeral and "add @carol to the channel first" in refused.ephemeral[0]
    await alice.add_member(channel["id"], "carol")
    result = await alice.command(channel["id"], "/incident commander @carol")
    assert result.status == 200 and not result.ephemeral, result.ephemeral
    assert (await bot.store.get_incident(incident.id)).commander_id == carol.id
    assert "@alice changed the commander to @carol." in [p["message"] for p in sandbox.posts(channel["id"])]


async def test_a_step_can_be_assigned_to_someone_just_added_at_once(sandbox, bot):
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    alice, carol = sandbox.user("alice"), sandbox.user("carol")
    refused = await alice.command(channel["id"], "/incident assign 1.1 @carol")
    assert refused.ephemeral and "only be assigned to members" in refused.ephemeral[0], refused.ephemeral
    assert (await bot.store.get_incident(incident.id)).stages[0].steps[0].assignee_id is None
    await alice.add_member(channel["id"], "carol")
    result = await alice.command(channel["id"], "/incident assign 1.1 @carol")
    assert result.status == 200 and not result.ephemeral, result.ephemeral
    assert (await bot.store.get_incident(incident.id)).stages[0].steps[0].assignee_id == carol.id
    # and the one just added may work the checklist at once
    clicked = await carol.click(incident.card_post_id, step_button(card(sandbox, incident), "Check", "Acknowledge"))
    assert clicked.status == 200 and not clicked.ephemeral, clicked.ephemeral
    assert (await bot.store.get_incident(incident.id)).stages[0].steps[0].done


async def test_a_member_removed_while_the_bot_was_disconnected_is_refused_after_it_reconnects(sandbox, tmp_path):
    app = CommandCenter(bot_settings(sandbox, tmp_path / "data"))
    app.websocket_policy = FAST
    await app.start()
    try:
        await app.wait_connected()
        incident, channel = await incident_with_dave(sandbox, app)
        alice = sandbox.user("alice")
        captured = last_click_body(sandbox, sandbox.user_id("dave"))
        await alice.command(channel["id"], "/incident uncheck 1.1")
        sandbox.block_websockets("incident")
        sandbox.drop_websockets("incident")
        await outage(app)
        remove(sandbox, channel["id"], "dave", by="alice")  # the user_removed event is lost
        sandbox.block_websockets("incident", blocked=False)
        await recovered(app)
        answer = await forge(app, captured)
        assert answer["status"] in (200, 401), answer
        if answer["status"] == 200:
            assert ONLY_MEMBERS in answer["body"].get("ephemeral_text", ""), answer
        assert not (await app.store.get_incident(incident.id)).stages[0].steps[0].done
    finally:
        await app.stop()


async def test_membership_news_costs_no_rest_call_and_the_commander_dialog_asks_nothing(sandbox, bot):
    """Once the bot knows who is in the channel, joins and leaves reach it as events: the card's
    Check buttons and the commander dialog make no call to ask about membership."""
    incident, channel = await incident_with_dave(sandbox, bot)
    alice, dave = sandbox.user("alice"), sandbox.user("dave")
    opened = await alice.click(incident.card_post_id, "Change commander")  # learns the channel's members
    await alice.cancel_dialog()
    await alice.add_member(channel["id"], "carol")
    token = f"Bearer {sandbox.token_of('incident')}"
    sandbox.clear_recording()
    opened = await alice.click(incident.card_post_id, "Change commander")
    assert opened.dialog is not None
    options = [o["text"] for o in opened.dialog["dialog"]["elements"][0]["options"]]
    assert options == ["@alice", "@carol", "@dave"]
    asked = [f"{e.method} {e.path}" for e in sandbox.recording
             if e.headers.get("Authorization") == token and e.path != "/api/v4/actions/dialogs/open"]
    assert not [call for call in asked if "/members" in call], asked
    await alice.cancel_dialog()
    sandbox.clear_recording()
    clicked = await dave.click(incident.card_post_id, step_button(card(sandbox, incident), "Check", "Assess"))
    assert clicked.status == 200 and not clicked.ephemeral
    asked = [f"{e.method} {e.path}" for e in sandbox.recording if e.headers.get("Authorization") == token]
    assert not [call for call in asked if "/members/" in call], asked
