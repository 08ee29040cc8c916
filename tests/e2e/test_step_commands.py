"""Step commands never give anyone more than they have (issue 13 F2, F3): people run steps as they would.

Command Center's own subcommands in a step run as the person who clicked Run or typed
``/incident run``, in-process; a step never runs a step; only the built-ins that act on the
incident channel alone go through Mattermost with the bot's rights, and what Mattermost answers
is read. Only an accepted run is recorded.
"""

from __future__ import annotations

import aiohttp
import pytest

from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import card, channel_posts, fresh, start_incident, step_button
from tests.telemetry.test_e2e import add_member


def bot_calls(sandbox, path: str = "") -> list:
    """The REST requests the bot made (recorded by the sandbox), optionally only to ``path``."""
    token = sandbox.token_of("incident")
    return [e for e in sandbox.recording
            if e.headers.get("Authorization", e.headers.get("authorization", "")).endswith(token)
            and (not path or e.path == path)]


def ran_posts(sandbox, channel_id: str) -> list[str]:
    return [p["message"] for p in channel_posts(sandbox, channel_id) if " ran " in p["message"]]


async def step_runs(bot, incident) -> list:
    return [e for e in await bot.store.timeline(incident.id) if e.kind.value == "step_run"]


async def one_step_incident(sandbox, bot, command: str, *, user="alice", title="Runbook", name="Checkout errors"):
    await make_playbook(bot, sandbox, title=title, members=(user,),
                        stages=(("Triage", ("Do the thing", "Second")), ("Fix", ("Patch",))),
                        commands={"Do the thing": command})
    return await start_incident(sandbox, bot, user=user, name=name, playbook=title)


# -- F2: a step's command runs with the rights of the person who runs it -----------------------------

async def test_f2_announce_in_a_step_cannot_reach_someone_elses_private_incident(sandbox, bot):
    # carol's private incident: the bot is a member of its channel, dave is not.
    await make_playbook(bot, sandbox, title="Secret", members=("carol",), public=False)
    _secret, secret_channel = await start_incident(sandbox, bot, user="carol", name="Secret breach", playbook="Secret")
    assert secret_channel["name"] == "secret-breach" and secret_channel["type"] == "P"
    before = [p["id"] for p in sandbox.posts(secret_channel["id"])]
    # dave, in none of the target channels, makes a step that announces there and runs it.
    incident, channel = await one_step_incident(sandbox, bot, "/incident announce ~secret-breach",
                                                user="dave", title="Dave's", name="Dave test")
    dave = sandbox.user("dave")
    typed = await dave.command(channel["id"], "/incident announce ~secret-breach")
    ran = await dave.command(channel["id"], "/incident run 1.1")
    assert ran.status == 200 and ran.ephemeral == typed.ephemeral  # the refusal he gets typing it himself
    assert "Not announced" in ran.ephemeral[0] and "secret-breach" in ran.ephemeral[0]
    clicked = await dave.click(incident.card_post_id, step_button(card(sandbox, incident), "Run", "Do the thing"))
    assert clicked.status == 200 and clicked.ephemeral == typed.ephemeral
    assert [p["id"] for p in sandbox.posts(secret_channel["id"])] == before  # nothing posted there
    assert bot_calls(sandbox, "/api/v4/commands/execute") == []  # never through /commands/execute


async def test_own_subcommand_in_a_step_runs_as_the_clicking_user_and_is_attributed_to_them(sandbox, bot):
    incident, channel = await one_step_incident(sandbox, bot, "/incident stage next")
    bob = sandbox.user("bob")
    await sandbox.user("alice").command(channel["id"], "/incident commander")  # a member's ordinary command
    await add_member(sandbox, channel["id"], "bob")
    sandbox.clear_recording()
    clicked = await bob.click(incident.card_post_id, step_button(card(sandbox, incident), "Run", "Do the thing"))
    assert clicked.status == 200 and clicked.ephemeral == []
    after = await fresh(bot, incident)
    assert after.active_stage == 1
    timeline = await bot.store.timeline(incident.id)
    changed = [e for e in timeline if e.kind.value == "stage_changed"]
    assert [e.actor_id for e in changed] == [sandbox.user_id("bob")]  # bob moved it, not the bot
    assert [e.actor_id for e in await step_runs(bot, incident)] == [sandbox.user_id("bob")]
    messages = [p["message"] for p in channel_posts(sandbox, channel["id"])]
    assert any(m.startswith("@bob moved the incident to stage 2/2") for m in messages)
    assert ran_posts(sandbox, channel["id"]) == ["@bob ran 1.1 **Do the thing**: `/incident stage next`"]
    assert bot_calls(sandbox, "/api/v4/commands/execute") == []
    print(f"rest_calls_run_own_subcommand={len(bot_calls(sandbox))}", [(e.method, e.path) for e in bot_calls(sandbox)])


async def test_a_non_member_or_someone_who_left_cannot_run_a_step(sandbox, bot):
    incident, channel = await one_step_incident(sandbox, bot, "/incident stage next")
    await add_member(sandbox, channel["id"], "bob")
    run_button = step_button(card(sandbox, incident), "Run", "Do the thing")
    bob = sandbox.user("bob")
    headers = {"Authorization": f"Bearer {sandbox.user('alice').token}"}
    async with aiohttp.ClientSession(headers=headers) as http, http.delete(
            f"{sandbox.url}/api/v4/channels/{channel['id']}/members/{bob.id}") as response:
        assert response.status == 200, await response.text()
    for person in (bob, sandbox.user("dave")):
        clicked = await person.click(incident.card_post_id, run_button)
        typed = await person.command(channel["id"], "/incident run 1.1")
        assert clicked.status == 403 and typed.status == 403  # Mattermost refuses both before the bot is asked
    assert (await fresh(bot, incident)).active_stage == 0 and await step_runs(bot, incident) == []


async def test_a_step_that_ends_the_incident_opens_the_end_dialog_for_the_clicker(sandbox, bot):
    incident, _channel = await one_step_incident(sandbox, bot, "/incident end")
    alice = sandbox.user("alice")
    clicked = await alice.click(incident.card_post_id, step_button(card(sandbox, incident), "Run", "Do the thing"))
    assert clicked.status == 200 and clicked.dialog is not None  # the click's trigger id opened it, for alice
    assert (await alice.submit_dialog({})).closed
    assert not (await fresh(bot, incident)).is_ongoing
    assert [e.actor_id for e in await bot.store.timeline(incident.id) if e.kind.value == "ended"] == [alice.id]


# -- F3: no step runs a step -------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["/incident run 1.1", "/INCIDENT Run 1", "/incident run 1.2"])
async def test_f3_a_stored_step_that_runs_a_step_is_refused_once_and_never_loops(sandbox, bot, command):
    # Stored directly, as a playbook saved before the rule would be.
    await make_playbook(bot, sandbox, title="Loop", stages=(("Triage", ("Do the thing", "Second")),),
                        commands={"Do the thing": command, "Second": "/incident run 1.1"})
    incident, channel = await start_incident(sandbox, bot, playbook="Loop")
    alice = sandbox.user("alice")
    sandbox.clear_recording()
    calls_before = len([c for c in sandbox.callbacks if c.kind == "command"])
    result = await alice.command(channel["id"], "/incident run 1.1")
    assert result.status == 200 and len(result.ephemeral) == 1
    assert "Step 1.1 was not run: a step's command cannot run a step" in result.ephemeral[0]
    assert "/incident run S.N" in result.ephemeral[0]
    clicked = await alice.click(incident.card_post_id, step_button(card(sandbox, incident), "Run", "Do the thing"))
    assert "was not run" in clicked.ephemeral[0]
    # exactly the one slash command alice typed reached the bot; no run was recorded or announced
    assert len([c for c in sandbox.callbacks if c.kind == "command"]) - calls_before == 1
    assert await step_runs(bot, incident) == [] and ran_posts(sandbox, channel["id"]) == []
    assert bot_calls(sandbox, "/api/v4/commands/execute") == []


async def test_f3_playbooks_with_a_step_that_runs_a_step_cannot_be_saved(sandbox, bot):
    bob = sandbox.user("bob")
    opened = await bob.command("town-square", "/incident playbook import")
    assert opened.dialog is not None
    text = ("title: Loop\nstages:\n  - title: One\n    steps:\n"
            "      - title: Again\n        command: /incident RUN 1.1\n")
    result = await bob.submit_dialog({"yaml": text})
    assert not result.closed
    assert "Stage 1, step 1: a step's command cannot run a step" in (result.errors or {}).get("yaml", result.error or "")
    await make_playbook(bot, sandbox, title="Ops", members=("bob",), stages=(("Triage", ("Ack", "Assess")),))
    edit = await bob.command("town-square", '/incident playbook edit "Ops" step command 1.1 /incident run 1.2')
    assert "Stage 1, step 1: a step's command cannot run a step" in edit.ephemeral[0]
    team_id = sandbox.team("acme")["id"]
    stored = await bot.store.playbooks_for_user(team_id, bob.id, is_admin=False)
    assert [p.title for p in stored] == ["Ops"] and stored[0].stages[0].steps[0].command == ""
    # other commands called "run" stay allowed, and so does the incident's own help
    ok = await bob.command("town-square", '/incident playbook edit "Ops" step command 1.1 /jenkins run deploy')
    assert "step 1.1 now runs" in ok.ephemeral[0]


# -- other commands: only what acts on the incident channel alone, with its answer read -------------

async def test_a_command_mattermost_refuses_is_reported_and_not_recorded(sandbox, bot):
    incident, channel = await one_step_incident(sandbox, bot, "/echo")
    result = await sandbox.user("alice").command(channel["id"], "/incident run 1.1")
    assert result.ephemeral == ["Mattermost refused step 1.1's command: A message must be provided with the "
                                "/echo command.\nNothing was run. The command was:\n```\n/echo\n```"]
    assert await step_runs(bot, incident) == [] and ran_posts(sandbox, channel["id"]) == []


@pytest.mark.parametrize("command", ["/invite @dave ~leadership", "/kick @alice", "/leave", "/msg @carol hi",
                                     "/jira create outage"])
async def test_commands_that_would_act_with_the_bots_rights_are_handed_back(sandbox, bot, command):
    incident, channel = await one_step_incident(sandbox, bot, command)
    sandbox.clear_recording()
    result = await sandbox.user("alice").command(channel["id"], "/incident run 1.1")
    assert "it would run anything else with its own rights, not yours" in result.ephemeral[0]
    assert f"```\n{command}\n```" in result.ephemeral[0]
    assert bot_calls(sandbox, "/api/v4/commands/execute") == []
    assert sandbox.user_id("dave") not in sandbox.world.channel_members[sandbox.channel("acme", "leadership")["id"]]
    assert sandbox.user_id("incident") in sandbox.world.channel_members[channel["id"]]
    assert await step_runs(bot, incident) == []


async def test_header_and_echo_steps_still_run_in_the_incident_channel(sandbox, bot):
    incident, channel = await one_step_incident(sandbox, bot, "/purpose 🔴 Investigating checkout")
    alice = sandbox.user("alice")
    sandbox.clear_recording()
    assert (await alice.command(channel["id"], "/incident run 1.1")).ephemeral == []
    assert sandbox.channel_by_id(channel["id"])["purpose"] == "🔴 Investigating checkout"
    assert len(bot_calls(sandbox, "/api/v4/commands/execute")) == 1
    print(f"rest_calls_run_builtin={len(bot_calls(sandbox))}", [(e.method, e.path) for e in bot_calls(sandbox)])
    assert [e.actor_id for e in await step_runs(bot, incident)] == [alice.id]
