"""Any stage at a glance (issue 14): look at another stage's steps without changing the active stage.

The card has a View button per other stage; ``/incident stage show S`` answers with a private view
whose buttons act on the incident. Buttons on an ephemeral post cannot be answered with ``update``
(404 on released servers), so they answer with ``ephemeral_text`` and the card updates itself.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import aiohttp
import pytest

from domain import NotFound
from gateway.ids import Route
from sandbox import SandboxHTTPError
from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import card, card_text, channel_posts, fresh, start_incident


def buttons(attachments, step_text: str) -> dict[str, str]:
    for attachment in attachments:
        if step_text in attachment.get("text", ""):
            return {action["name"]: action["id"] for action in attachment.get("actions", [])}
    raise AssertionError(f"no row {step_text!r}")


def view_button(post, stage_number: int) -> str:
    return buttons(post["props"]["attachments"], f"Stage {stage_number}:")["View"]


async def stage_show(person, channel_id: str, text: str):
    result = await person.command(channel_id, f"/incident stage show {text}".rstrip())
    assert result.status == 200, result.error
    return result


def ephemeral_view(person, channel_id: str) -> dict:
    """The newest private post with attachments that reached the person in this channel."""
    views = [p for p in person.ephemeral(channel_id) if (p.get("props") or {}).get("attachments")]
    assert views, person.ephemeral(channel_id)
    return views[-1]


async def test_view_button_shows_another_stage_and_changes_nothing(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice",))
    incident, channel = await start_incident(sandbox, bot)
    cid, alice = channel["id"], sandbox.user("alice")
    before = card(sandbox, incident)
    posts_before = len(sandbox.posts(cid))
    clicked = await alice.click(before["id"], view_button(before, 2))
    assert clicked.status == 200 and clicked.post is None, clicked.error
    (text,) = clicked.ephemeral
    assert "Stage 2/3: Investigation (0/2 done)" in text and "the active stage is 1: Triage" in text
    assert "⬜ **2.1** Check recent deploys" in text and "⬜ **2.2** Look at dashboards" in text
    assert "/incident stage show 2" in text
    # Nothing moved: the same card, the same active stage, nothing posted, nothing on the timeline.
    assert (await fresh(bot, incident)).active_stage == 0
    assert card(sandbox, incident)["props"] == before["props"] and len(sandbox.posts(cid)) == posts_before
    assert [e.kind.value for e in await bot.store.timeline(incident.id)] == ["created", "member_joined"]
    # The bot learnt it may not post ephemerally (not a system admin): the next click does not ask again.
    sandbox.clear_recording()
    again = await alice.click(before["id"], view_button(before, 3))
    assert "Stage 3/3: Resolution" in again.ephemeral[0]
    token = sandbox.token_of("incident")
    assert not [ex for ex in sandbox.recording if ex.path == "/api/v4/posts/ephemeral"
                and ex.headers.get("Authorization") == f"Bearer {token}"]


async def test_a_system_admin_bot_answers_the_view_button_with_buttons(sandbox, start_bot):
    bot_user = sandbox.world.users[sandbox.user_id("incident")]
    bot_user["roles"] = "system_user system_admin"     # allowed create_post_ephemeral, learnt at login
    bot = await start_bot()
    await make_playbook(bot, sandbox, members=("alice",))
    incident, channel = await start_incident(sandbox, bot)
    alice = sandbox.user("alice")
    clicked = await alice.click(incident.card_post_id, view_button(card(sandbox, incident), 2))
    # The view is an ephemeral post with buttons (the click's own answer has no text and no update).
    assert clicked.status == 200 and clicked.post is None and len(clicked.ephemeral) == 1
    assert clicked.ephemeral[0].startswith("**Checkout errors** · Only you can see this.")
    view = await sandbox.wait_for(lambda: [p for p in alice.ephemeral(channel["id"])
                                           if (p.get("props") or {}).get("attachments")])
    row = buttons(view[-1]["props"]["attachments"], "2.1")
    assert {"Check", "Assign"} <= set(row)
    checked = await alice.click(view[-1]["id"], row["Check"])
    assert checked.status == 200 and checked.ephemeral == ["Checked 2.1 **Check recent deploys**; the card shows it."]


async def test_stage_show_gives_a_private_view_whose_buttons_work(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice",), commands={"Look at dashboards": "/echo dashboards"})
    incident, channel = await start_incident(sandbox, bot)
    cid, alice = channel["id"], sandbox.user("alice")
    result = await stage_show(alice, cid, "2")
    view = ephemeral_view(alice, cid)
    assert "Only you can see this" in view["message"]
    header = view["props"]["attachments"][0]["text"]
    assert header.startswith("#### Stage 2/3: Investigation (0/2 done)")
    row = buttons(view["props"]["attachments"], "2.1")
    assert set(row) == {"Check", "Assign"}
    assert set(buttons(view["props"]["attachments"], "2.2")) == {"Check", "Run", "Assign"}
    assert result.ephemeral and (await fresh(bot, incident)).active_stage == 0

    # A step button: acts, answers privately (never `update`: a 404 on an ephemeral post), the card follows.
    checked = await alice.click(view["id"], row["Check"])
    assert checked.status == 200, checked.error
    assert checked.ephemeral == ["Checked 2.1 **Check recent deploys**; the card shows it."]
    await sandbox.wait_for(lambda: "Stage 2: Investigation — 1/2 done" in card_text(card(sandbox, incident)))
    stored = await fresh(bot, incident)
    assert stored.stages[1].steps[0].done and stored.active_stage == 0
    assert any("@alice checked 2.1 **Check recent deploys**" in p["message"] for p in channel_posts(sandbox, cid))
    # Clicking the same (now stale) Check again changes nothing and says so.
    again = await alice.click(view["id"], row["Check"])
    assert again.status == 200 and "nothing changed: step 2.1 is done now" in again.ephemeral[0]

    # Make it the active stage from the view.
    make_active = buttons(view["props"]["attachments"], "Stage 2/3")["Make this the active stage"]
    moved = await alice.click(view["id"], make_active)
    assert moved.status == 200 and moved.ephemeral == ["Stage 2 is now the active stage; the card shows it."]
    await sandbox.wait_for(lambda: "(2/3) Investigation" in card_text(card(sandbox, incident)))
    assert (await fresh(bot, incident)).active_stage == 1


async def test_stage_show_bad_input_is_explained(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice",))
    _, channel = await start_incident(sandbox, bot)
    alice = sandbox.user("alice")
    for text, expected in (("", "Usage: `/incident stage show S`"), ("2 3", "Usage: `/incident stage show S`"),
                           ("9", "Stage 9 does not exist: type a number from 1 to 3."),
                           ("x" * 5000, "is not a stage number"), ("0", "Stage 0 does not exist")):
        result = await stage_show(alice, channel["id"], text)
        assert any(expected in reply for reply in result.ephemeral), (text, result.ephemeral)
    assert [e.kind.value for e in await bot.store.timeline((await bot.store.incident_by_channel(channel["id"])).id)] \
        == ["created", "member_joined"]


async def test_an_ended_incidents_stages_can_still_be_viewed_without_buttons(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice",))
    _incident, channel = await start_incident(sandbox, bot)
    alice = sandbox.user("alice")
    await alice.command(channel["id"], "/incident end")
    assert (await alice.submit_dialog({})).closed
    await stage_show(alice, channel["id"], "3")
    view = ephemeral_view(alice, channel["id"])
    assert "has ended" in view["message"]
    assert not [a for a in view["props"]["attachments"] if a.get("actions")]


async def test_non_members_never_see_a_private_incidents_stages(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice",), public=False)
    incident, channel = await start_incident(sandbox, bot)
    dave = sandbox.user("dave")
    # Mattermost itself refuses a non-member's command in a private channel and click on its card.
    result = await dave.command(channel["id"], "/incident stage show 2")
    assert result.status == 403 and not result.ephemeral
    with pytest.raises(SandboxHTTPError) as refused:   # he cannot even read the card
        await dave.click(incident.card_post_id, view_button(card(sandbox, incident), 2))
    assert refused.value.status == 403
    # The bot checks too: the same view asked for dave (e.g. a forged request) is refused as "not found".
    with pytest.raises(NotFound):
        await bot.incidents.stage_view(incident, dave.id, 1)

    # A forged slash command with a valid token, dave's id and the private channel shows nothing of it.
    alice = sandbox.user("alice")
    await alice.command("town-square", "/incident help")
    genuine = [c for c in sandbox.callbacks if c.url.endswith(Route.COMMAND.value)][-1]
    fields = dict(parse_qsl(genuine.body.decode()))
    forged = {**fields, "user_id": dave.id, "user_name": "dave", "channel_id": channel["id"],
              "channel_name": channel["name"], "text": "stage show 2", "trigger_id": ""}
    async with aiohttp.ClientSession() as http:
        async with http.post(bot.callback_base_url + Route.COMMAND.value, data=forged) as response:
            body = await response.text()
    assert "Check recent deploys" not in body and "Investigation" not in body


async def test_a_member_who_left_a_public_incident_cannot_use_an_old_view(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    incident, channel = await start_incident(sandbox, bot, "alice")
    cid, alice, bob = channel["id"], sandbox.user("alice"), sandbox.user("bob")
    await alice.add_member(cid, "bob")
    await stage_show(bob, cid, "2")
    view = ephemeral_view(bob, cid)
    row = buttons(view["props"]["attachments"], "2.1")
    await _remove(sandbox, alice, cid, bob.id)
    bot.incidents.directory.forget_channel(cid)  # membership events are another change (issue 13 F1)
    clicked = await bob.click(view["id"], row["Check"])
    assert not (await fresh(bot, incident)).stages[1].steps[0].done
    assert clicked.status == 200 and clicked.ephemeral == [
        'Only members of the incident channel can change "Checkout errors". Join the channel first.'], clicked


async def _remove(sandbox, by, channel_id: str, user_id: str) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {by.token}"}) as http:
        async with http.delete(f"{sandbox.url}/api/v4/channels/{channel_id}/members/{user_id}") as response:
            assert response.status == 200
