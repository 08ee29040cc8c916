"""Issue 14, wrong input: every command checks its words and answers with its own usage line; bots are
never assignees; near-miss commands get "did you mean"; info/export find incidents by name, ~channel and
channel name, and an ambiguous name lists only the matches the person may see."""

from __future__ import annotations

import re

import pytest

from gateway.messages import USAGES
from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import add_member, fresh, start_incident
from tests.e2e.test_playbooks import dm_bot
from tests.e2e.test_security_quoting import live_words

#: (what is typed in the incident channel, the command whose usage line must answer, "missing" or "extra").
WRONG_WORDS = [
    ("end now", "end", "extra"),
    ("restart please", "restart", "extra"),
    ("commander carol bob", "commander", "extra"),
    ("stage next now", "stage", "extra"),
    ("stage show", "stage show", "missing"),
    ("stage show 2 3", "stage show", "extra"),
    ("check", "check", "missing"),
    ("check 1.1 1.2", "check", "extra"),
    ("uncheck", "uncheck", "missing"),
    ("uncheck 1.1 yes", "uncheck", "extra"),
    ("assign 1.1", "assign", "missing"),
    ("assign 1.1 @bob @carol", "assign", "extra"),
    ("run", "run", "missing"),
    ("run 1.1 now", "run", "extra"),
    ("step", "step", "missing"),
    ("step add", "step add", "missing"),
    ("step remove", "step remove", "missing"),
    ("step remove 1.1 1.2", "step remove", "extra"),
    ("step delete", "step remove", "missing"),
    ("step rename 1.1", "step rename", "missing"),
    ("step move 1.1", "step move", "missing"),
    ("step move 1.1 2 3", "step move", "extra"),
    ("step show", "step show", "missing"),
    ("step show 1.1 1.2", "step show", "extra"),
    ("announce", "announce", "missing"),
    ("start --post", "start --post", "missing"),
    ("help check assign", "help", "extra"),
    ("todo everything", "todo", "extra"),
    ("playbook list everything", "playbook list", "extra"),
    ("playbook templates all", "playbook templates", "extra"),
    ("playbook import now", "playbook import", "extra"),
    ("playbook show", "playbook show", "missing"),
    ("playbook edit", "playbook edit", "missing"),
    ("playbook delete", "playbook delete", "missing"),
    ("playbook members", "playbook members", "missing"),
    ("playbook export", "playbook export", "missing"),
    ("playbook settings", "playbook settings", "missing"),
    # The outline edits typed after a playbook's title.
    ('playbook edit "Incident Response" step add 2', "playbook edit step add", "missing"),
    ('playbook edit "Incident Response" step remove 1.1 1.2', "playbook edit step remove", "extra"),
    ('playbook edit "Incident Response" step rename 1.1', "playbook edit step rename", "missing"),
    ('playbook edit "Incident Response" step move 1.1 2 3', "playbook edit step move", "extra"),
    ('playbook edit "Incident Response" step describe 1.1', "playbook edit step describe", "missing"),
    ('playbook edit "Incident Response" step command 1.1', "playbook edit step command", "missing"),
    ('playbook edit "Incident Response" step assign 1.1', "playbook edit step assign", "missing"),
    ('playbook edit "Incident Response" stage add', "playbook edit stage add", "missing"),
    ('playbook edit "Incident Response" stage rename 2', "playbook edit stage rename", "missing"),
    ('playbook edit "Incident Response" stage move 3 1 2', "playbook edit stage move", "extra"),
    ('playbook edit "Incident Response" stage remove 3 2', "playbook edit stage remove", "extra"),
    ("request-update now", "request-update", "extra"),
    ("timeline add", "timeline add", "missing"),
    ("timeline hide", "timeline hide", "missing"),
    ("timeline hide 1 2", "timeline hide", "extra"),
    ("backstage now", "backstage", "extra"),
]


def test_every_command_with_a_word_limit_is_in_the_table():
    limited = {key for key, usage in USAGES.items() if usage.min_words or usage.max_words is not None}
    assert limited <= {key for _, key, _ in WRONG_WORDS}, limited - {key for _, key, _ in WRONG_WORDS}


@pytest.fixture
async def incident_channel(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    incident, channel = await start_incident(sandbox, bot, name="Checkout 502s")
    await add_member(sandbox, channel["id"], "bob")
    await add_member(sandbox, channel["id"], "carol")
    return incident, channel


async def test_extra_or_missing_words_get_that_commands_usage_and_change_nothing(sandbox, bot, incident_channel):
    incident, channel = incident_channel
    alice = sandbox.user("alice")
    before = await fresh(bot, incident)
    for text, key, problem in WRONG_WORDS:
        result = await alice.command(channel["id"], f"/incident {text}")
        assert result.status == 200 and result.dialog is None, text
        reply = result.ephemeral[0]
        usage = USAGES[key]
        assert f"Usage: `/incident {usage.syntax}`" in reply, (text, reply)
        assert f"Example: `/incident {usage.example}`" in reply, (text, reply)
        assert reply.startswith("Something is missing" if problem == "missing" else "Too many words"), (text, reply)
        assert "| Command |" not in reply and live_words(reply) == [], (text, reply)
    after = await fresh(bot, incident)
    assert after.version == before.version and after.commander_id == before.commander_id
    playbook = (await bot.store.playbooks_for_user(sandbox.team("acme")["id"], sandbox.user_id("alice"),
                                                   is_admin=True))[0]
    assert playbook.version == 1, "a wrong outline edit changed the playbook"


async def test_commander_with_two_names_changes_nothing(sandbox, bot, incident_channel):
    incident, channel = incident_channel
    result = await sandbox.user("alice").command(channel["id"], "/incident commander carol bob")
    assert result.ephemeral[0].startswith("Too many words for `/incident commander`: `bob` is more than it takes.")
    assert (await fresh(bot, incident)).commander_id == sandbox.user_id("alice")
    posts = [p["message"] for p in sandbox.posts(channel["id"])]
    assert not any("changed the commander" in message for message in posts)


async def test_hostile_extra_words_stay_inert_and_short(sandbox, bot, incident_channel):
    _, channel = incident_channel
    words = " ".join(["@all", "`x`", "<a|b>", "[x](javascript:alert(1))"] * 400)
    result = await sandbox.user("alice").command(channel["id"], f"/incident check 1.1 {words}")
    reply = result.ephemeral[0]
    assert reply.startswith("Too many words for `/incident check`") and len(reply) < 600
    assert live_words(reply) == []
    outside_code = re.sub(r"(`+).*?\1", "", reply)
    assert "](" not in outside_code and "<a|b>" not in outside_code


async def test_a_bot_cannot_be_assigned_a_step(sandbox, bot, incident_channel):
    incident, channel = incident_channel
    alice = sandbox.user("alice")
    typed = await alice.command(channel["id"], "/incident assign 1.1 @incident")
    assert typed.ephemeral == ["A bot cannot be assigned a step; choose a person (or none)."]
    # A forged dialog submission with the bot's id (the dialog lists people only) is refused the same way.
    card = next(p for p in sandbox.posts(channel["id"]) if p["id"] == incident.card_post_id)
    assign = next(a["id"] for at in card["props"]["attachments"] for a in at.get("actions", [])
                  if a["name"] == "Assign")
    opened = await alice.click(card["id"], assign)
    assert sandbox.user_id("incident") not in {o["value"] for o in opened.dialog["dialog"]["elements"][0]["options"]}
    submitted = await alice.submit_dialog({"assignee": sandbox.user_id("incident")})
    assert not submitted.closed and "bot" in submitted.errors["assignee"]
    assert all(step.assignee_id is None for stage in (await fresh(bot, incident)).stages for step in stage.steps)
    # A person still can be.
    assert (await alice.command(channel["id"], "/incident assign 1.1 @bob")).ephemeral == []
    assert (await fresh(bot, incident)).stages[0].steps[0].assignee_id == sandbox.user_id("bob")


# Did you mean ------------------------------------------------------------------------------------

async def test_a_near_miss_says_did_you_mean_and_does_nothing(sandbox, bot, incident_channel):
    incident, channel = incident_channel
    result = await sandbox.user("alice").command(channel["id"], "/incident chek 1.1")
    reply = result.ephemeral[0]
    assert reply.startswith("`/incident chek` is not a Command Center command. Did you mean `/incident check 1.1`?")
    assert "Usage: `/incident check S.N`" in reply and "| Command |" not in reply
    assert not (await fresh(bot, incident)).stages[0].steps[0].done
    step = await sandbox.user("alice").command(channel["id"], "/incident step ad 2 Page the DBA")
    assert "Did you mean `/incident step add 2 Page the DBA`?" in step.ephemeral[0]
    playbook = await sandbox.user("alice").command(channel["id"], '/incident playbook shwo "Incident Response"')
    assert 'Did you mean `/incident playbook show "Incident Response"`?' in playbook.ephemeral[0] \
        or "Did you mean `/incident playbook show Incident Response`?" in playbook.ephemeral[0]
    # Far from every command: the whole list, as before.
    far = await sandbox.user("alice").command(channel["id"], "/incident frobnicate")
    assert far.ephemeral[0].startswith("`frobnicate` is not a Command Center command")
    assert "| Command |" in far.ephemeral[0]


async def test_help_for_one_command(sandbox, bot):
    reply = (await sandbox.user("bob").command("town-square", "/incident help assign")).ephemeral[0]
    assert reply == ("Usage: `/incident assign S.N @user|none` — Set or clear a step's assignee (a person in the "
                     "incident channel). Example: `/incident assign 2.1 @carol`")
    step = (await sandbox.user("bob").command("town-square", "/incident help step")).ephemeral[0]
    assert "`/incident step move S.N <position>`" in step and "`/incident step add [S] <title>`" in step


async def test_a_near_miss_by_direct_message(sandbox, bot):
    replies = await dm_bot(sandbox, "bob", "lisst ongoing")
    assert replies[0]["message"].startswith("`lisst` is not a Command Center command. Did you mean `list ongoing`?")


async def test_help_tables_have_no_slack_style_links_and_no_live_mentions(sandbox, bot):
    for text in ("/incident help", "/incident playbook", "/incident playbook help"):
        reply = (await sandbox.user("bob").command("town-square", text)).ephemeral[0]
        unescaped = reply.replace("\\|", "|")
        assert not re.search(r"<[^<>\n]*\|[^<>\n]*>", unescaped), (text, re.findall(r"<[^<>\n]*\|[^<>\n]*>", unescaped))
        assert live_words(reply) == []
    playbook_help = (await sandbox.user("bob").command("town-square", "/incident playbook")).ephemeral[0]
    assert "`step describe S.N <text>` (or `none`)" in playbook_help


# Finding an incident by name ---------------------------------------------------------------------

async def test_info_and_export_take_a_channel_name_without_tilde(sandbox, bot, incident_channel):
    _incident, channel = incident_channel
    bob = sandbox.user("bob")
    info = await bob.command("town-square", f"/incident info {channel['name']}")
    assert info.ephemeral[0].startswith("#### 🚨 Checkout 502s"), info.ephemeral
    tilde = await bob.command("town-square", f"/incident info ~{channel['name']}")
    assert tilde.ephemeral[0].startswith("#### 🚨 Checkout 502s")
    by_name = await bob.command("town-square", "/incident info checkout 502s")
    assert by_name.ephemeral[0].startswith("#### 🚨 Checkout 502s")
    export = await bob.command("town-square", f"/incident export {channel['name']}")
    assert export.ephemeral[0].startswith("I sent you the CSV of **Checkout 502s**"), export.ephemeral


async def test_an_ambiguous_name_lists_the_matches_the_person_may_see(sandbox, bot):
    await make_playbook(bot, sandbox, title="Public", members=("alice", "bob", "dave"))
    await make_playbook(bot, sandbox, title="Private", members=("alice",), public=False)
    _first, first_channel = await start_incident(sandbox, bot, name="DB down", playbook="Public")
    # Names match ignoring case (and the helper needs a distinct spelling to find each one).
    _second, second_channel = await start_incident(sandbox, bot, name="db down", playbook="Public")
    _hidden, hidden_channel = await start_incident(sandbox, bot, name="DB Down", playbook="Private")
    alice = await sandbox.user("alice").command("town-square", '/incident info "DB down"')
    reply = alice.ephemeral[0]
    assert reply.startswith('3 incidents you can see are called "DB down":'), reply
    for channel in (first_channel, second_channel, hidden_channel):
        assert f"~{channel['name']}" in reply
    assert f"`/incident info ~{hidden_channel['name']}`" in reply  # the newest first
    assert live_words(reply) == []
    # dave sees the two public ones: the private one is not listed, not even counted.
    dave = (await sandbox.user("dave").command("town-square", "/incident info DB down")).ephemeral[0]
    assert dave.startswith('2 incidents you can see are called "DB down":')
    assert hidden_channel["name"] not in dave and first_channel["name"] in dave and second_channel["name"] in dave
    chosen = (await sandbox.user("dave").command("town-square", f"/incident info ~{first_channel['name']}")).ephemeral
    assert chosen[0].startswith("#### 🚨 DB down") and f"~{first_channel['name']}" in chosen[0]
    # Ambiguity does not stop export silently either.
    export = (await sandbox.user("dave").command("town-square", "/incident export DB down")).ephemeral[0]
    assert export.startswith('2 incidents you can see are called "DB down":')
    assert "`/incident export ~" in export


async def test_a_hidden_incident_is_answered_like_a_missing_one(sandbox, bot):
    await make_playbook(bot, sandbox, title="Private", members=("alice",), public=False)
    _, channel = await start_incident(sandbox, bot, name="Secret breach", playbook="Private")
    dave = sandbox.user("dave")
    def strip(text: str, name: str) -> str:
        return text.replace(name.lstrip("~").lower(), "X").replace(name.lstrip("~"), "X")

    for hidden, missing in ((channel["name"], "no-such-channel"), ("Secret breach", "Other thing"),
                            (f"~{channel['name']}", "~no-such-channel")):
        seen = (await dave.command("town-square", f"/incident info {hidden}")).ephemeral[0]
        absent = (await dave.command("town-square", f"/incident info {missing}")).ephemeral[0]
        assert strip(seen, hidden) == strip(absent, missing), (seen, absent)
        assert "Secret" not in seen.replace("Secret breach", "") and "#### " not in seen
