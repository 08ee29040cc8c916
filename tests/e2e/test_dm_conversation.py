"""Issue 14, the DM conversation: plain words to the bot get a short, helpful answer — a Start incident
button when they sound like trouble, links to the ongoing incidents the person may see, and `help`."""

from __future__ import annotations

import pytest

from domain.conversation import Intent, intent_of
from plugins.direct import HELP_HINT, OTHER_TEXT, THANKS_TEXT, TROUBLE_TEXT
from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import all_incidents, start_incident
from tests.e2e.test_playbooks import dm_bot
from tests.e2e.test_security_quoting import live_words


def buttons(post) -> list[str]:
    return [a["name"] for at in post["props"].get("attachments", []) for a in at.get("actions", [])]


@pytest.mark.parametrize("text, intent", [
    ("hi, the website is down, what do I do?", Intent.TROUBLE),
    ("checkout returns 502s", Intent.TROUBLE),
    ("HELP!!! payments broken", Intent.TROUBLE),
    ("login is not working", Intent.TROUBLE),
    ("we have an outage", Intent.TROUBLE),
    ("thanks, but it is still down", Intent.TROUBLE),
    ("thanks!", Intent.THANKS),
    ("Thank you 🙏", Intent.THANKS),
    ("hi", Intent.OTHER),
    ("what's the weather like", Intent.OTHER),
])
def test_what_plain_words_are_about(text, intent):
    assert intent_of(text) is intent


async def test_a_hurried_person_gets_a_start_button_that_opens_the_dialog(sandbox, bot):
    await make_playbook(bot, sandbox, members=("bob",))
    replies = await dm_bot(sandbox, "bob", "hi, the website is down, what do I do?")
    assert len(replies) == 1
    reply = replies[0]
    message = reply["message"]
    assert message.startswith(TROUBLE_TEXT) and message.endswith(HELP_HINT)
    assert "is not a Command Center command" not in message and "| Command |" not in message
    assert buttons(reply) == ["Start incident in ACME"]
    assert live_words(message) == []
    # The same button as `start`: it opens the start dialog (within the trigger id's 3 s, on a slow server too).
    sandbox.faults.add("slow", delay=1.6, path="/api/v4/users*", methods="GET", users=["incident"])
    opened = await sandbox.user("bob").click(reply["id"], "Start incident in ACME")
    assert opened.dialog is not None, (opened.ephemeral, opened.error)
    sandbox.faults.clear()
    playbook = opened.dialog["dialog"]["elements"][0]["options"][0]["value"]
    submitted = await sandbox.user("bob").submit_dialog({"playbook": playbook, "name": "Website down",
                                                         "description": None})
    assert submitted.closed, (submitted.errors, submitted.error)
    assert [i.name for i in await all_incidents(bot)] == ["Website down"]


async def test_the_answer_links_the_ongoing_incidents_the_person_may_see(sandbox, bot):
    await make_playbook(bot, sandbox, title="Public", members=("alice", "bob"))
    await make_playbook(bot, sandbox, title="Private", members=("alice",), public=False)
    _, public_channel = await start_incident(sandbox, bot, name="API @channel errors", playbook="Public")
    _, private_channel = await start_incident(sandbox, bot, name="Secret breach", playbook="Private")
    ended, _ = await start_incident(sandbox, bot, name="Old thing", playbook="Public")
    await bot.incidents.end(await bot.store.get_incident(ended.id), sandbox.user_id("alice"))

    bob = (await dm_bot(sandbox, "bob", "checkout is broken"))[0]["message"]
    link = f"{sandbox.url}/acme/channels/{public_channel['name']}"
    assert "Ongoing incidents you can see:" in bob and f"]({link})" in bob
    assert "Secret breach" not in bob and private_channel["name"] not in bob  # not his to see
    assert "Old thing" not in bob                                              # ended
    assert live_words(bob) == []                                               # "@channel" in a name is inert
    assert "API @\u2060channel errors" in bob

    alice = (await dm_bot(sandbox, "alice", "what now?"))[0]
    assert alice["message"].startswith(OTHER_TEXT) and alice["message"].endswith(HELP_HINT)
    assert buttons(alice) == []                                                # no trouble words: no button
    assert f"/acme/channels/{private_channel['name']})" in alice["message"]    # hers to see
    assert f"/acme/channels/{public_channel['name']})" in alice["message"]


async def test_thanks_gets_a_short_friendly_reply(sandbox, bot):
    replies = await dm_bot(sandbox, "carol", "thanks!")
    assert [r["message"] for r in replies] == [THANKS_TEXT]
    assert buttons(replies[0]) == []


async def test_help_with_trouble_words_is_a_request_for_help_not_for_the_table(sandbox, bot):
    reply = (await dm_bot(sandbox, "carol", "help, the site is down"))[0]
    assert reply["message"].startswith(TROUBLE_TEXT) and buttons(reply) == ["Start incident in ACME"]
    table = (await dm_bot(sandbox, "carol", "help"))[-1]["message"]
    assert "| Command |" in table
    one = (await dm_bot(sandbox, "carol", "help list"))[-1]["message"]
    assert one.startswith("Usage: `list [ongoing|ended|all|overdue]")


async def test_commands_typed_with_the_trigger_word_still_run(sandbox, bot):
    await make_playbook(bot, sandbox, members=("bob",))
    for text in ("/incident playbook list", "incident playbook list"):
        reply = (await dm_bot(sandbox, "bob", text))[-1]["message"]
        assert reply.startswith("#### Playbooks you can use in this team"), (text, reply)
    # Strict there too, with the usage line as typed in a direct message (no /incident).
    wrong = (await dm_bot(sandbox, "bob", "playbook list everything"))[-1]["message"]
    assert wrong.startswith("Too many words for `playbook list`") and "Usage: `playbook list`" in wrong


async def test_rest_calls_for_an_answer(sandbox, bot):
    """What a trouble answer costs: the bot's REST calls for one DM (recorded by the sandbox)."""
    await make_playbook(bot, sandbox, title="Public", members=("alice", "bob"))
    await start_incident(sandbox, bot, name="Payments down", playbook="Public")
    await dm_bot(sandbox, "bob", "warm up the caches: thanks")
    sandbox.clear_recording()
    reply = (await dm_bot(sandbox, "bob", "payments are failing"))[0]
    assert buttons(reply) == ["Start incident in ACME"] and "/acme/channels/payments-down)" in reply["message"]
    token = f"Bearer {sandbox.token_of('incident')}"
    calls = [f"{e.method} {e.path}" for e in sandbox.recording if e.headers.get("Authorization") == token]
    # the bot's teams and bob's membership (for the buttons and the incidents), whether bob is an admin and
    # may see the team's incidents (the list's own check), the incident channel's name, the answer.
    assert len(calls) <= 6, calls
    assert calls[-1].startswith("POST /api/v4/posts")
