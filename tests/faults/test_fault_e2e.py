"""People use the bot while Mattermost misbehaves for it: each action works or says clearly that it
did not, and afterwards the store and Mattermost hold exactly what people were told."""

from __future__ import annotations

from bench.soak import Soak, add_faults
from gateway.errors import MattermostError, user_message
from tests.e2e.conftest import make_playbook


def bot_posts(sandbox, channel_id):
    bot_id = sandbox.user_id("incident")
    return [p for p in sandbox.posts(channel_id) if p["user_id"] == bot_id and not p["type"].startswith("system_")]


async def start(sandbox, user: str, name: str, playbook_id: str):
    person = sandbox.user(user)
    result = await person.command("town-square", f"/incident start {name}")
    assert result.dialog is not None, (result.ephemeral, result.error)
    return await person.submit_dialog({"playbook": playbook_id, "name": name, "description": "faults"})


async def stored(bot, name):
    page = await bot.store.list_incidents(next(iter(bot.tokens.teams())), is_admin=True, per_page=100)
    return [i for i in page.items if i.name == name]


async def test_every_answer_matches_the_final_state_under_random_faults(sandbox, bot):
    people = ["alice", "bob", "carol"]
    playbook = await make_playbook(bot, sandbox, members=tuple(people))
    add_faults(sandbox, scale=2.0)  # about one bot request in three misbehaves
    soak = Soak(sandbox, bot, people, playbook.id, seed=7, ops_per_incident=6)
    report = await soak.run(incidents=6, seconds=20, concurrency=3)
    assert report.mismatches == []
    assert report.incidents_started + report.incidents_refused == 6
    assert report.operations >= 6
    assert sum(report.faults.values()) > 20
    for text in report.errors_shown:
        assert text.strip() and "Traceback" not in text


async def test_lost_post_answers_during_a_start_make_no_duplicate_posts(sandbox, bot):
    playbook = await make_playbook(bot, sandbox, members=("bob",))
    sandbox.faults.add("drop_after", path="/api/v4/posts", methods="POST", users=["incident"], limit=2)
    outcome = await start(sandbox, "bob", "Lost answers", playbook.id)
    assert outcome.closed and not outcome.error
    [incident] = await stored(bot, "Lost answers")
    posts = bot_posts(sandbox, incident.channel_id)
    assert len(posts) == 2
    assert posts[0]["message"] == "This incident has been started by @bob."
    assert posts[1]["id"] == incident.card_post_id and posts[1]["is_pinned"]
    assert sandbox.faults.counts()["drop_after"] == 2


async def test_a_lost_channel_creation_answer_makes_one_channel(sandbox, bot):
    playbook = await make_playbook(bot, sandbox, members=("bob",))
    sandbox.faults.add("drop_after", path="/api/v4/channels", methods="POST", users=["incident"], limit=1)
    outcome = await start(sandbox, "bob", "Single channel", playbook.id)
    assert outcome.closed and not outcome.error
    [incident] = await stored(bot, "Single channel")
    channels = [c for c in sandbox.world.channels.values() if c["display_name"] == "Single channel"]
    assert [c["id"] for c in channels] == [incident.channel_id]
    assert channels[0]["name"] == "single-channel"


async def test_a_start_mattermost_refuses_throughout_is_reported_and_leaves_nothing(sandbox, bot):
    playbook = await make_playbook(bot, sandbox, members=("bob",))
    sandbox.faults.add("error", path="/api/v4/channels", methods="POST", users=["incident"])
    outcome = await start(sandbox, "bob", "Never started", playbook.id)
    assert not outcome.closed
    assert outcome.error == user_message(MattermostError(500, "api.context.unexpected.app_error", ""))
    assert await stored(bot, "Never started") == []
    assert not [c for c in sandbox.world.channels.values() if c["display_name"] == "Never started"]
    assert await bot.store.settings_with_prefix("start:") == {}


async def test_a_card_mattermost_will_not_update_now_catches_up_and_the_click_is_acknowledged(sandbox, bot):
    playbook = await make_playbook(bot, sandbox, members=("bob",))
    assert (await start(sandbox, "bob", "Stale card", playbook.id)).closed
    [incident] = await stored(bot, "Stale card")
    card = sandbox.world.posts[incident.card_post_id]
    check = next(a for row in card["props"]["attachments"] for a in row.get("actions", []) if a["name"] == "Check")
    # Every attempt of the refresh made by the click fails; the background retry then succeeds.
    sandbox.faults.add("error", path="/api/v4/posts/*/patch", users=["incident"], limit=4)
    result = await sandbox.user("bob").click(incident.card_post_id, check["id"])
    assert result.status == 200 and result.ephemeral == []
    step_id = check["id"].removeprefix("check")
    updated = await bot.store.get_incident(incident.id)
    assert next(s for stage in updated.stages for s in stage.steps if s.id == step_id).done

    def card_shows_it():
        rows = sandbox.world.posts[incident.card_post_id]["props"]["attachments"]
        return any(a["id"] == f"uncheck{step_id}" for row in rows for a in row.get("actions", []))

    await sandbox.wait_for(card_shows_it, timeout=5.0)
    assert sandbox.faults.counts()["error"] == 4
