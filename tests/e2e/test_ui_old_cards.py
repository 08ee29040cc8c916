"""A card posted by the previous version (button contexts with one-letter keys): a click on it is
answered "out of date", changes nothing, and the card is redrawn with current buttons, so the next
click works (issue 16, ui slice)."""

from __future__ import annotations

from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import card, start_incident, step_button


def make_previous_version(sandbox, bot, post_id: str) -> None:
    """Every button context of the post in the old format, signed as the old version did (the server
    keeps integrations apart from what clients are sent)."""
    for integration in sandbox.world.action_integrations[post_id].values():
        context = integration["context"]
        payload = context["payload"]
        old_args = {"i": payload.get("incident_id"), "s": payload.get("step_id"), "m": payload.get("mark")}
        body = {"a": context["action"], "c": context["channel_id"],
                "v": {key: value for key, value in old_args.items() if value is not None}}
        integration["context"] = {**body, "s": bot.ctx.signer.sign("action", body)}


def contexts(sandbox, post_id: str) -> list[dict]:
    return [integration["context"] for integration in sandbox.world.action_integrations[post_id].values()]


async def test_a_click_on_an_old_card_refreshes_it_and_the_next_click_works(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice",))
    incident, _ = await start_incident(sandbox, bot, "alice", "Checkout errors")
    make_previous_version(sandbox, bot, incident.card_post_id)
    assert all(set(c) == {"a", "c", "v", "s"} for c in contexts(sandbox, incident.card_post_id))

    alice = sandbox.user("alice")
    clicked = await alice.click(incident.card_post_id, step_button(card(sandbox, incident), "Check", "Acknowledge"))
    assert clicked.status == 200
    assert clicked.ephemeral == ["This card is out of date — it has been refreshed; try again."]
    assert not (await bot.store.get_incident(incident.id)).stages[0].steps[0].done
    await sandbox.wait_for(lambda: all("signature" in c for c in contexts(sandbox, incident.card_post_id)))

    again = await alice.click(incident.card_post_id, step_button(card(sandbox, incident), "Check", "Acknowledge"))
    assert again.status == 200 and again.ephemeral == []
    assert (await bot.store.get_incident(incident.id)).stages[0].steps[0].done


async def test_an_old_button_outside_a_card_says_what_to_do(sandbox, bot):
    """A Start button from a direct message of the previous version: no card to redraw, a plain answer."""
    alice = sandbox.user("alice")
    dm = await alice.dm_channel("incident")
    body = {"a": "start", "c": dm, "v": {"t": sandbox.team("acme")["id"], "p": ""}}
    sandbox.world.send_ephemeral(target_user_id=sandbox.user_id("alice"), channel_id=dm, message="Start",
                                 author_id=sandbox.user_id("incident"), props={"attachments": [{"actions": [{
                                     "id": "start", "name": "Start", "type": "button",
                                     "integration": {"url": bot.callback_base_url + "/mattermost/action",
                                                     "context": {**body, "s": bot.ctx.signer.sign("action", body)}}}]}]})
    post_id = alice.ephemeral(dm)[-1]["id"]
    clicked = await alice.click(post_id, "Start")
    assert clicked.status == 200 and clicked.dialog is None
    assert clicked.ephemeral == ["This message is out of date. Type /incident help to see what you can do."]
