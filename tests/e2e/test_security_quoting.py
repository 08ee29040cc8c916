"""Issue 13, F4 / F5 / L2 / L3 end to end: user text the bot repeats mentions nobody and breaks nothing,
exports are spreadsheet-safe unless asked for raw, and a hidden playbook's title is never revealed.

Mentions are what Mattermost computes: the sandbox's ``posted`` event carries them, and
:func:`sandbox.mention_text.mention_text` (the same rules: text outside code, escapes resolved)
shows which words in a message would notify.
"""

from __future__ import annotations

import json
import re

from sandbox.mention_text import mention_text
from sandbox.state import MENTION_RE
from tests.e2e.conftest import make_playbook
from tests.e2e.test_history import exported_rows
from tests.e2e.test_incidents import add_member, all_incidents, channel_posts, start_incident
from tests.e2e.test_playbooks import acme, create, dm_bot


def live_words(message: str) -> list[str]:
    found = re.finditer(MENTION_RE.pattern, mention_text(message), re.IGNORECASE)
    return [m.group(1).lower().rstrip(".-_") for m in found]


def record_posted(sandbox, username: str) -> list[dict]:
    """Every ``posted`` event ``username`` receives from now on: {"message", "mentions"}."""
    seen: list[dict] = []

    def sink(event) -> None:
        if event.event == "posted":
            seen.append({"message": json.loads(event.data["post"])["message"],
                         "mentions": json.loads(event.data.get("mentions", "[]"))})
    sandbox.world.subscribe(sandbox.user_id(username), sink)
    return seen


# F4: a step command with backticks -------------------------------------------------------------

async def test_backticks_in_a_step_command_do_not_break_out_of_the_ran_post(sandbox, bot):
    command = "/echo ok` @all ping `"
    await make_playbook(bot, sandbox, stages=(("Triage", ("Open the bridge",)),),
                        commands={"Open the bridge": command})
    _incident, channel = await start_incident(sandbox, bot)
    await add_member(sandbox, channel["id"], "bob")
    bob_sees = record_posted(sandbox, "bob")
    assert (await sandbox.user("alice").command(channel["id"], "/incident run 1.1")).ephemeral == []
    ran = await sandbox.wait_for(lambda: [e for e in bob_sees if e["message"].startswith("@alice ran 1.1")])
    assert ran[0]["message"] == "@alice ran 1.1 **Open the bridge**: `` /echo ok` @all ping ` ``"
    assert ran[0]["mentions"] == [sandbox.user_id("alice")]            # not bob: no @all
    assert live_words(ran[0]["message"]) == ["alice"]


async def test_backticks_in_a_step_command_keep_the_card_and_the_playbook_view_intact(sandbox, bot):
    command = "/echo `` @here ``"
    await make_playbook(bot, sandbox, stages=(("Triage", ("Open the bridge",)),),
                        commands={"Open the bridge": command})
    incident, channel = await start_incident(sandbox, bot)
    posts = {p["id"]: p for p in sandbox.posts(channel["id"])}
    card_text = "\n".join(a.get("text", "") for a in posts[incident.card_post_id]["props"]["attachments"])
    assert "``` /echo `` @here `` ```" in card_text                    # the exact command, as code
    assert "here" not in live_words(card_text)
    shown = await sandbox.user("alice").command("town-square", '/incident playbook show "Incident Response"')
    assert "``` /echo `` @here `` ```" in shown.ephemeral[0] and "here" not in live_words(shown.ephemeral[0])


# L2: a quoted post -----------------------------------------------------------------------------

async def test_a_quoted_post_mentions_nobody_and_reads_the_same(sandbox, bot):
    await make_playbook(bot, sandbox)
    text = "@channel please look, @here @all @bob\n\\@all &#64;all `@here stays code`"
    post = await sandbox.user("carol").post("town-square", text)
    alice_sees = record_posted(sandbox, "alice")
    incident, channel = await start_incident(sandbox, bot, name="Quoted", extra=f"--post {post['id']} ")
    assert incident.source_post_id == post["id"]
    opening = channel_posts(sandbox, channel["id"])[0]["message"]
    assert live_words(opening) == ["alice"]                            # "started by @alice" only
    event = next(e for e in alice_sees if e["message"] == opening)
    assert event["mentions"] == [sandbox.user_id("alice")]
    shown = opening.replace("\u2060", "")
    assert "> @channel please look, @here @all @bob\n> \\@all &#64;all `@here stays code`" in shown


async def test_a_post_quoted_from_the_reaction_button_mentions_nobody(sandbox, bot):
    await make_playbook(bot, sandbox, members=("bob",))
    bob = sandbox.user("bob")
    post = await sandbox.user("carol").post("town-square", "@all payments are down, @carol is on it")
    await bob.react(post["id"], "rotating_light")
    dm = await bob.dm_channel("incident")
    offer = await sandbox.wait_for(lambda: [p for p in sandbox.posts(dm) if "reacted" in p["message"]])
    action = await bob.click(offer[0]["id"], "Start incident from this post")
    options = action.dialog["dialog"]["elements"][0]["options"]
    outcome = await bob.submit_dialog({"playbook": options[0]["value"], "name": "Payments", "description": None})
    assert outcome.closed
    incident = next(i for i in await all_incidents(bot) if i.name == "Payments")
    opening = channel_posts(sandbox, incident.channel_id)[0]["message"]
    assert live_words(opening) == ["bob"]
    assert "> @all payments are down, @carol is on it" in opening.replace("\u2060", "")


# F5: spreadsheet-safe export, and --raw ---------------------------------------------------------------

async def test_export_is_spreadsheet_safe_unless_raw(sandbox, bot):
    await make_playbook(bot, sandbox)
    _incident, channel = await start_incident(sandbox, bot, name="Export safety")
    alice = sandbox.user("alice")
    payloads = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(1)", "\t=1", "plain"]
    for message in payloads:
        await alice.post(channel["id"], message)

    result = await alice.command(channel["id"], "/incident export")
    assert "I sent you the CSV" in result.ephemeral[0]
    messages = [row["message"] for row in await exported_rows(sandbox, "alice")]
    assert [m for m in messages if m.lstrip("'") in payloads] == [*("'" + p for p in payloads[:-1]), "plain"]
    dm = await alice.dm_channel("incident")
    assert "`/incident export --raw`" in sandbox.posts(dm)[-1]["message"]

    result = await alice.command(channel["id"], "/incident export --raw")
    assert "I sent you the CSV" in result.ephemeral[0]
    messages = [row["message"] for row in await exported_rows(sandbox, "alice")]
    assert [m for m in messages if m in payloads] == payloads
    assert "Raw: every cell is exactly as posted" in sandbox.posts(dm)[-1]["message"]

    refused = await alice.command(channel["id"], "/incident export --rwa")
    assert refused.ephemeral[0].startswith("`--rwa` is not an export option. Usage: /incident export [incident] [--raw]")


async def test_export_raw_works_with_a_named_incident(sandbox, bot):
    await make_playbook(bot, sandbox)
    _incident, channel = await start_incident(sandbox, bot, name="Named one")
    await sandbox.user("alice").post(channel["id"], "=1+1")
    result = await sandbox.user("alice").command("town-square", f"/incident export --raw ~{channel['name']}")
    assert "I sent you the CSV of **Named one**" in result.ephemeral[0]
    assert "=1+1" in [row["message"] for row in await exported_rows(sandbox, "alice")]


# L3: a hidden playbook's title -------------------------------------------------------------------

async def test_a_hidden_playbook_does_not_block_or_reveal_a_title(sandbox, bot):
    await make_playbook(bot, sandbox, title="Payments Breach", members=("carol",))
    # Bob cannot see carol's playbook: for him it does not exist, so its title is free.
    result = await create(sandbox, "bob", "  PAYMENTS breach ")
    assert result.closed, result.errors
    everything = await bot.store.playbooks_for_user(acme(sandbox), "", is_admin=True)
    assert sorted(p.title for p in everything) == ["PAYMENTS breach", "Payments Breach"]
    mine = next(p for p in everything if p.title == "PAYMENTS breach")
    assert mine.member_ids == (sandbox.user_id("bob"),)
    # Import by title replaces only a playbook the importer can use; carol's stays as it was.
    replies = await dm_bot(sandbox, "dave", "playbook import --team acme",
                           files=[("breach.yaml", b"title: payments BREACH\nstages:\n  - title: A\n")])
    assert replies[0]["message"].startswith("Imported a new playbook **payments BREACH**")
    assert "Payments Breach" not in "\n".join(r["message"] for r in replies)
    carol_s = next(p for p in everything if p.title == "Payments Breach")
    assert (await bot.store.get_playbook(carol_s.id)) == carol_s
    # Where bob can see one, the usual conflict (his own title, nothing else).
    again = await create(sandbox, "bob", "payments breach")
    assert not again.closed
    assert again.errors["title"] == ('A playbook you can use in this team is already titled "PAYMENTS breach". '
                                     "Choose another title.")


async def test_two_shared_playbooks_with_one_title_are_told_apart_by_id(sandbox, bot):
    ours = await make_playbook(bot, sandbox, title="Runbook", members=("carol",))
    theirs = await make_playbook(bot, sandbox, title="RUNBOOK", members=("dave",))
    # Sharing never tells the sharer what the new member already has; the member picks by id.
    carol = sandbox.user("carol")
    shared = await carol.command("town-square", '/incident playbook members "Runbook" add @dave')
    assert "@dave" in shared.ephemeral[0] and "RUNBOOK" not in shared.ephemeral[0]
    dave = sandbox.user("dave")
    shown = await dave.command("town-square", "/incident playbook show runbook")
    assert shown.ephemeral[0].startswith('Several playbooks you can use are titled "')
    assert ours.id in shown.ephemeral[0] and theirs.id in shown.ephemeral[0]
    by_id = await dave.command("town-square", f"/incident playbook show {theirs.id}")
    assert by_id.ephemeral[0].startswith("#### RUNBOOK")
