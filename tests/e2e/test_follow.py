"""Followers, end to end (issue 17, docs/status-updates.md): a team member outside a public
incident's channel follows it (command from another channel; the card button answers whoever clicked),
cannot act on it, and a private incident stays hidden from them; ``/incident todo`` lists steps."""

from __future__ import annotations

from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import card, start_incident, step_button
from tests.e2e.test_membership import forge, last_click_body

ONLY_MEMBERS = "Only members of the incident channel"


def header_button(post, label: str) -> str:
    for attachment in post["props"].get("attachments", []):
        for action in attachment.get("actions", []):
            if action["name"] == label:
                return action["id"]
    raise AssertionError(f"no {label!r} button")


async def test_a_follower_outside_the_channel_follows_but_cannot_act(sandbox, bot):
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    dave = sandbox.user("dave")

    # From another channel, by the incident channel's name.
    followed = await dave.command("town-square", f"/incident follow ~{channel['name']}")
    assert followed.status == 200 and followed.response is not None
    assert "You follow **Checkout errors**" in followed.response["text"]
    stored = await bot.store.get_incident(incident.id)
    assert stored.follower_ids == (sandbox.user_id("dave"),)
    assert not sandbox.world.is_member(channel["id"], sandbox.user_id("dave"))  # following is not joining

    # The card's Follow button answers only whoever clicked (here alice, a member: Mattermost lets
    # only those who may read the channel click its posts' buttons).
    post = card(sandbox, incident)
    alice = sandbox.user("alice")
    clicked = await alice.click(incident.card_post_id, header_button(post, "Follow"))
    assert clicked.status == 200 and any("You follow **Checkout errors**" in t for t in clicked.ephemeral), clicked
    again = await alice.click(incident.card_post_id, header_button(post, "Follow"))
    assert any("You already follow" in t for t in again.ephemeral), again
    assert (await bot.store.get_incident(incident.id)).follower_ids == tuple(
        sandbox.user_id(u) for u in ("dave", "alice"))

    # Following gives no right to act. In Mattermost dave cannot click the card nor type in the
    # channel; a click on Check or Next stage sent to the bot in his name is refused like any non-member's.
    assert (await dave.click(incident.card_post_id, header_button(post, "Follow"))).status == 403
    typed = await dave.command(channel["id"], "/incident check 1.1")
    assert typed.status != 200 or ONLY_MEMBERS in (typed.response or {}).get("text", "")
    captured = last_click_body(sandbox, sandbox.user_id("alice"))
    # What an earlier member's client would have held: the bot's signed contexts (kept by the server).
    integrations = sandbox.world.action_integrations[incident.card_post_id]
    for action_id in (step_button(post, "Check", "Acknowledge"), header_button(post, "Next stage ▶")):
        body = dict(captured, user_id=sandbox.user_id("dave"), user_name="dave",
                    context=integrations[action_id]["context"])
        answer = await forge(bot, body)
        assert answer["status"] == 200 and ONLY_MEMBERS in answer["body"].get("ephemeral_text", ""), answer
    after = await bot.store.get_incident(incident.id)
    assert after.active_stage == 0 and not after.stages[0].steps[0].done

    unfollowed = await dave.command("town-square", f"/incident unfollow ~{channel['name']}")
    assert "You no longer follow" in unfollowed.response["text"]
    assert (await bot.store.get_incident(incident.id)).follower_ids == (sandbox.user_id("alice"),)


async def test_a_private_incident_cannot_be_followed_by_a_non_member(sandbox, bot):
    await make_playbook(bot, sandbox, public=False)
    incident, _channel = await start_incident(sandbox, bot)
    reply = await sandbox.user("dave").command("town-square", "/incident follow Checkout errors")
    assert reply.status == 200 and "You follow" not in reply.response["text"]
    assert "Checkout errors" not in reply.response["text"].replace('"Checkout errors"', "")
    assert (await bot.store.get_incident(incident.id)).follower_ids == ()


async def test_todo_lists_my_assigned_steps_with_the_incident_channel(sandbox, bot):
    await make_playbook(bot, sandbox)
    _incident, channel = await start_incident(sandbox, bot)
    alice = sandbox.user("alice")
    assigned = await alice.command(channel["id"], "/incident assign 1.2 @alice")
    assert assigned.status == 200
    todo = await alice.command("town-square", "/incident todo")
    text = todo.response["text"]
    assert f"**Checkout errors** · ~{channel['name']}" in text and "1.2 Assess customer impact" in text
    nothing = await sandbox.user("bob").command("town-square", "/incident todo")
    assert nothing.response["text"].startswith("Nothing to do")
