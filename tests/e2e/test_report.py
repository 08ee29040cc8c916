"""``/incident report`` end to end (issue 18): a Markdown file in the user's direct messages with
the bot, from the incident channel or by reference from anywhere (a DM too), with the export's
privacy rules — refused to a non-member of a private incident (and to a member who left), another
team's incident is never found — and what people wrote never mentions anyone from it.
"""

from __future__ import annotations

import asyncio

import pytest

from sandbox import Sandbox, SandboxConfig
from tests.contract.openapi_contract import assert_exchanges_valid
from tests.e2e.conftest import EDIT_TIME_LIMIT
from tests.e2e.test_history import join, leave, quick_incident, store_playbook, two_team_seed
from tests.e2e.test_playbooks import dm_bot

MINUTE = 60_000


@pytest.fixture
async def sandbox():
    """Two teams (test_history's world); every REST exchange is checked against Mattermost's OpenAPI."""
    async with Sandbox(two_team_seed(), config=SandboxConfig(record=True, post_edit_time_limit=EDIT_TIME_LIMIT)) as sb:
        yield sb
        exchanges = list(sb.recording)
    assert_exchanges_valid(exchanges)


async def reports_to(sandbox, username: str) -> list[tuple[dict, str, str]]:
    """The (post, file name, Markdown) of every report the bot sent ``username``, oldest first."""
    dm = await sandbox.user(username).dm_channel("incident")
    found = []
    for post in sandbox.posts(dm):
        for file_id in post.get("file_ids") or []:
            info, data = sandbox.world.files[file_id]
            if info["name"].endswith(".md"):
                found.append((post, info["name"], data.decode()))
    return found


async def world(sandbox, bot):
    now = bot.ctx.clock()
    outage = await store_playbook(bot, sandbox, title="Outage")
    security = await store_playbook(bot, sandbox, title="Security", public=False)
    globex = await store_playbook(bot, sandbox, title="Globex plan", team="globex", members=("alice", "bob"))
    return {
        "public": await quick_incident(bot, sandbox, outage, "Checkout @channel *down*", "bob", at=now - 30 * MINUTE,
                                       members=("carol",)),
        "secret": await quick_incident(bot, sandbox, security, "Carol secret", "carol", at=now - 20 * MINUTE),
        "globex": await quick_incident(bot, sandbox, globex, "Globex thing", "bob", at=now - 10 * MINUTE),
    }


async def test_the_report_arrives_by_dm_with_every_section(sandbox, bot):
    made = await world(sandbox, bot)
    incident = made["public"]
    channel = sandbox.world.channels[incident.channel_id]["name"]
    bob = sandbox.user("bob")
    for text in ("/incident check 1.1", "/incident assign 1.2 @carol", "/incident stage next"):
        assert (await bob.command(channel, text)).status == 200
    result = await bob.command(channel, "/incident report")
    assert result.status == 200, result.error
    assert "I sent you the report of" in result.ephemeral[0]
    ((post, name, text),) = await reports_to(sandbox, "bob")
    assert name.startswith(f"{channel}-report-") and name.endswith(".md")
    assert post["user_id"] == sandbox.user_id("incident") and "Report of" in post["message"]
    assert text.startswith("# Incident report: Checkout @\u2060channel \\*down\\*")
    for heading in ("## Summary", "## Fields", "## Commander history", "## Participants", "## Metrics",
                    "## Checklist", "## Status updates", "## Retrospective", "## Timeline"):
        assert f"\n{heading}\n" in text, heading
    assert "- [x] 1.1 Acknowledge — done by @bob" in text
    assert "@bob checked step 1.1 “Acknowledge”" in text
    assert "@bob assigned step 1.2 “Assess impact” to @carol" in text
    assert "@bob moved to stage 2 “Resolution”" in text
    assert "| 1. Triage |" in text and "- **Time to resolve** (start to last end): not resolved (ongoing)" in text
    assert "@carol" in text.split("## Participants")[1].split("##")[0]
    assert "@channel" not in text  # the incident's name mentions nobody, in the file either


async def test_a_report_by_reference_from_a_direct_message(sandbox, bot):
    await world(sandbox, bot)
    replies = await dm_bot(sandbox, "dave", 'report "Checkout @channel *down*"')
    dm = await sandbox.user("dave").dm_channel("incident")
    # The file's post comes first, then the answer to the message.
    answer = await sandbox.wait_for(lambda: [p for p in sandbox.posts(dm) if "I sent you the report of" in p["message"]])
    assert replies[0]["file_ids"] and answer
    ((_, _, text),) = await reports_to(sandbox, "dave")
    assert "## Timeline" in text and "started the incident" in text


async def test_a_private_incident_is_reported_only_to_its_members_and_admins(sandbox, bot):
    made = await world(sandbox, bot)
    secret = made["secret"]
    refused = await sandbox.user("dave").command("town-square", '/incident report "Carol secret"')
    assert 'No incident called "Carol secret" that you can see' in refused.ephemeral[0]
    assert await reports_to(sandbox, "dave") == []
    # A member may; one who left may no longer.
    join(sandbox, "dave", secret.channel_id)
    allowed = await sandbox.user("dave").command("town-square", '/incident report "Carol secret"')
    assert "I sent you the report" in allowed.ephemeral[0]
    assert len(await reports_to(sandbox, "dave")) == 1
    leave(sandbox, "dave", secret.channel_id)
    again = await sandbox.user("dave").command("town-square", '/incident report "Carol secret"')
    assert "No incident called" in again.ephemeral[0]
    assert len(await reports_to(sandbox, "dave")) == 1
    # A system admin, not in the channel, may.
    admin = await sandbox.user("alice").command("town-square", '/incident report "Carol secret"')
    assert "I sent you the report" in admin.ephemeral[0]
    ((_, _, text),) = await reports_to(sandbox, "alice")
    assert "(private)" in text


async def test_another_teams_incident_is_never_found(sandbox, bot):
    await world(sandbox, bot)
    result = await sandbox.user("bob").command("town-square", '/incident report "Globex thing"')
    assert "No incident called" in result.ephemeral[0]
    nowhere = await sandbox.user("bob").command("town-square", "/incident report")
    assert "This channel is not an incident channel" in nowhere.ephemeral[0]
    huge = await sandbox.user("bob").command("town-square", "/incident report " + "x" * 5000)
    assert "No incident called" in huge.ephemeral[0] and len(huge.ephemeral[0]) < 7000
    assert await reports_to(sandbox, "bob") == []


async def test_two_reports_at_once_both_arrive(sandbox, bot):
    made = await world(sandbox, bot)
    channel = sandbox.world.channels[made["public"].channel_id]["name"]
    bob, carol = sandbox.user("bob"), sandbox.user("carol")
    first, second = await asyncio.gather(bob.command(channel, "/incident report"),
                                         carol.command(channel, "/incident report"))
    assert "I sent you the report" in first.ephemeral[0] and "I sent you the report" in second.ephemeral[0]
    ((_, _, for_bob),) = await reports_to(sandbox, "bob")
    ((_, _, for_carol),) = await reports_to(sandbox, "carol")
    assert for_bob.split("\n", 3)[0] == for_carol.split("\n", 3)[0]
