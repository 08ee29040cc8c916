"""What does not exist and what one may not see get the same answer, everywhere (issue 13 L1).

The world is the demo seed plus a second team, globex, with gina in globex only. dave (acme only)
asks about a private incident he is not in, a private channel the bot is not in, gina, and names
that exist nowhere: every pair of answers is identical once the name asked for is blanked out.
"""

from __future__ import annotations

import pytest

from sandbox import Sandbox, SandboxConfig
from tests.e2e.conftest import EDIT_TIME_LIMIT, make_playbook
from tests.e2e.test_history import two_team_seed
from tests.e2e.test_incidents import start_incident


def seed() -> dict:
    world = two_team_seed()
    world["users"].append({"username": "gina", "email": "gina@example.com", "teams": ["globex"]})
    return world


@pytest.fixture
async def sandbox():
    async with Sandbox(seed(), config=SandboxConfig(post_edit_time_limit=EDIT_TIME_LIMIT)) as sb:
        yield sb


@pytest.fixture
async def incidents(sandbox, bot):
    """A public incident dave is in, and a private one (carol's) he is not in."""
    await make_playbook(bot, sandbox, title="Outage", members=("alice", "dave"))
    await make_playbook(bot, sandbox, title="Security", members=("carol",), public=False)
    public, channel = await start_incident(sandbox, bot, "dave", "Checkout errors", playbook="Outage")
    secret, secret_channel = await start_incident(sandbox, bot, "carol", "Secret breach", playbook="Security")
    assert secret_channel["type"] == "P" and sandbox.user_id("dave") not in sandbox.channel_members(secret.channel_id)
    return {"public": public, "channel": channel, "secret": secret, "secret_channel": secret_channel}


async def answer(sandbox, channel_id: str, text: str, blank: str) -> str:
    result = await sandbox.user("dave").command(channel_id, text)
    assert result.status == 200, result.error
    assert len(result.ephemeral) == 1, result.ephemeral
    return result.ephemeral[0].replace(blank, "NAME")


async def test_announce_answers_a_hidden_channel_like_a_missing_one(sandbox, bot, incidents):
    here = incidents["channel"]["id"]
    secret = incidents["secret_channel"]["name"]
    missing = await answer(sandbox, here, "/incident announce ~no-such-channel", "no-such-channel")
    assert "Not announced" in missing
    assert await answer(sandbox, here, f"/incident announce ~{secret}", secret) == missing  # bot in, dave not
    assert await answer(sandbox, here, "/incident announce ~leadership", "leadership") == missing  # bot not in


async def test_info_and_export_answer_a_hidden_incident_like_a_missing_one(sandbox, bot, incidents):
    here = incidents["channel"]["id"]
    secret = incidents["secret_channel"]["name"]
    for verb in ("info", "export"):
        missing = await answer(sandbox, here, f"/incident {verb} ~no-such-channel", "no-such-channel")
        assert "that you can see" in missing
        assert await answer(sandbox, here, f"/incident {verb} ~{secret}", secret) == missing
        assert await answer(sandbox, here, f"/incident {verb} ~leadership", "leadership") == missing
        by_name = await answer(sandbox, here, f'/incident {verb} "No such thing"', "No such thing")
        assert await answer(sandbox, here, f'/incident {verb} "Secret breach"', "Secret breach") == by_name


async def test_user_lookups_answer_another_teams_user_like_a_missing_one(sandbox, bot, incidents):
    """The bot sees globex's people; dave, asking in acme, must not learn that gina exists."""
    here = incidents["channel"]["id"]
    for command in ("/incident commander @{}", "/incident assign 1.1 @{}"):
        missing = await answer(sandbox, here, command.format("nobody-here"), "nobody-here")
        assert "There is no user" in missing
        assert await answer(sandbox, here, command.format("gina"), "gina") == missing
    missing = await answer(sandbox, "town-square", "/incident list @nobody-here", "nobody-here")
    assert await answer(sandbox, "town-square", "/incident list @gina", "gina") == missing
    missing = await answer(sandbox, "town-square", '/incident playbook members "Outage" add @nobody-here',
                           "nobody-here")
    assert "There is no user" in missing
    assert await answer(sandbox, "town-square", '/incident playbook members "Outage" add @gina', "gina") == missing
    current = await bot.store.get_incident(incidents["public"].id)
    assert current.commander_id == sandbox.user_id("dave") and current.stages[0].steps[0].assignee_id is None


async def test_start_from_a_hidden_post_is_answered_like_a_missing_post(sandbox, bot, incidents):
    """--post with a post in a private channel dave cannot read, and with an id no post has."""
    carol = sandbox.user("carol")
    hidden = await carol.post(incidents["secret_channel"]["id"], "the key is in the repo")
    texts = []
    for post_id, name in ((hidden["id"], "From hidden"), ("a" * 26, "From missing")):
        dave = sandbox.user("dave")
        result = await dave.command("town-square", f"/incident start --post {post_id} {name}")
        assert result.dialog is not None, result.ephemeral
        intro = result.dialog["dialog"].get("introduction_text", "")
        options = result.dialog["dialog"]["elements"][0]["options"]
        outcome = await dave.submit_dialog({"playbook": options[0]["value"], "name": name})
        assert outcome.closed, outcome
        dm = await dave.dm_channel("incident")
        told = await sandbox.wait_for(lambda: [p["message"] for p in sandbox.posts(dm) if name in p["message"]])
        slug = name.lower().replace(" ", "-")
        texts.append((intro, told[0].replace(name, "NAME").replace(slug, "SLUG")))
    assert texts[0] == texts[1]
    assert "not quoted because you cannot read it" in texts[0][1]
