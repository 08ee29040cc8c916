"""Issue 14 end to end: step descriptions reach the incident — under their step on the card, in full in
a step's Details and ``/incident step show``, in ``/incident info`` — and titles and descriptions render
the guide's limited markdown (styling and http/https/mailto links) with no live mention, in the
playbook view too. Checked as people see it: the card's attachments, the private replies, and the
mentions the sandbox computes as Mattermost does."""

from __future__ import annotations

import base64
import time

import aiohttp
import pytest

from domain.playbooks import StageDraft, StepDraft, new_playbook
from sandbox.simulate import SandboxHTTPError
from tests.e2e.test_incidents import add_member, card, card_text, channel_posts, start_incident, step_button
from tests.e2e.test_security_quoting import live_words, record_posted

DESCRIPTION = ("Use the **escalation** policy; see the [runbook](https://wiki.example.com/runbook).\n"
               "Tell @all and ~town-square only if [it](javascript:alert(1)) spreads.\n"
               "# Then\n- ~~wait~~ call `pager`")
TITLE = "Page the *on-call* via [PagerDuty](https://pd.example.com)"


async def description_playbook(bot, sandbox, *, public: bool = True, title: str = "Described"):
    alice = sandbox.user_id("alice")
    playbook = new_playbook(
        team_id=sandbox.team("acme")["id"], title=title, created_by=alice, now=int(time.time() * 1000),
        create_public_channel=public, member_ids=[alice],
        stages=[StageDraft(title="Triage", steps=(
            StepDraft(title=TITLE, description=DESCRIPTION, command="/echo paging"),
            StepDraft(title="Plain step"))),
            StageDraft(title="Fix", steps=(StepDraft(title="Apply the **fix**", description="Short."),))])
    return await bot.store.create_playbook(playbook)


def details_of(text: str) -> dict:
    return {"escaped": "\\*\\*" in text or "\\[" in text, "live": live_words(text)}


async def test_the_card_shows_styled_titles_and_each_description_under_its_step(sandbox, bot):
    await description_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot, name="Described one")
    await add_member(sandbox, channel["id"], "bob")
    bob_sees = record_posted(sandbox, "bob")
    post = card(sandbox, incident)
    row = next(a for a in post["props"]["attachments"] if "**1.1**" in a.get("text", ""))
    title_line, description_line = row["text"].split("\n")
    assert title_line.startswith("⬜ **1.1** Page the *on-call* via [PagerDuty](https://pd.example.com)")
    assert description_line.startswith("Use the **escalation** policy; see the [runbook](https://wiki.example.com/"
                                       "runbook). Tell @\u2060all and \\~\u2060town-square only if it")
    assert description_line.endswith("spreads. **Then** • ~~wait~~ call `pager`")   # its lines on one
    assert "](javascript" not in row["text"]
    assert live_words(card_text(post)) == ["alice"]                          # "Commander: @alice" only
    assert [a["name"] for a in row["actions"]] == ["Check", "Run", "Assign", "Details"]
    # Changing the card (a check) notifies nobody: the description's @all is inert.
    await sandbox.user("alice").command(channel["id"], "/incident check 1.2")
    await sandbox.wait_for(lambda: "✅ **1.2**" in card_text(card(sandbox, incident)))
    assert all(event["mentions"] == [] or event["mentions"] == [sandbox.user_id("alice")] for event in bob_sees)


async def test_details_and_step_show_give_the_whole_description_privately(sandbox, bot):
    await description_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot, name="Described two")
    await add_member(sandbox, channel["id"], "bob")
    before = len(channel_posts(sandbox, channel["id"], by_bot=False))
    sandbox.clear_recording()
    clicked = await sandbox.user("bob").click(incident.card_post_id,
                                              step_button(card(sandbox, incident), "Details", "**1.1**"))
    assert clicked.status == 200 and clicked.post is None                     # the card is left as it is
    token = f"Bearer {sandbox.token_of('incident')}"
    calls = [f"{e.method} {e.path}" for e in sandbox.recording if e.headers.get("Authorization") == token]
    print(f"details_click_rest_calls={len(calls)} {calls}")
    assert len(calls) <= 4
    text = clicked.ephemeral[0]
    assert text.split("\n")[0] == "⬜ **1.1** Page the *on-call* via [PagerDuty](https://pd.example.com)"
    assert "Command: `/echo paging`" in text
    assert text.split("\n")[-4:] == [
        "Use the **escalation** policy; see the [runbook](https://wiki.example.com/runbook).",
        "Tell @\u2060all and \\~\u2060town-square only if it (javascript\\:alert(1)) spreads.",
        "**Then**", "• ~~wait~~ call `pager`"]
    assert "Use the **escalation** policy; see the [runbook](https://wiki.example.com/runbook)." in text
    assert "• ~~wait~~ call `pager`" in text and "**Then**" in text
    assert details_of(text) == {"escaped": False, "live": []}
    shown = await sandbox.user("bob").command(channel["id"], "/incident step show 1.1")
    assert shown.ephemeral == [text]
    # Another stage's step, by its S.N; a step without a description says so.
    other = await sandbox.user("bob").command(channel["id"], "/incident step show 2.1")
    assert other.ephemeral[0].split("\n")[0] == "⬜ **2.1** Apply the **fix**" and other.ephemeral[0].endswith("Short.")
    plain = await sandbox.user("bob").command(channel["id"], "/incident step show 1.2")
    assert plain.ephemeral[0].endswith("This step has no description.")
    # Nothing was posted in the channel for anyone else.
    assert len(channel_posts(sandbox, channel["id"], by_bot=False)) == before


async def test_step_show_explains_bad_input(sandbox, bot):
    await description_playbook(bot, sandbox)
    _incident, channel = await start_incident(sandbox, bot, name="Described three")
    alice = sandbox.user("alice")
    usage = "Usage: `/incident step show S.N` — A step in full"
    assert usage in (await alice.command(channel["id"], "/incident step show")).ephemeral[0]
    assert usage in (await alice.command(channel["id"], "/incident step show 1.1 1.2")).ephemeral[0]
    missing = (await alice.command(channel["id"], "/incident step show 1.9")).ephemeral[0]
    assert "1.9" in missing or "step" in missing.lower()
    assert "step show S.N" in (await alice.command(channel["id"], "/incident step frobnicate")).ephemeral[0]


async def test_info_shows_descriptions_in_full(sandbox, bot):
    await description_playbook(bot, sandbox)
    _incident, channel = await start_incident(sandbox, bot, name="Described four")
    text = (await sandbox.user("alice").command(channel["id"], "/incident info")).ephemeral[0]
    assert "- ⬜ 1.1 Page the *on-call* via [PagerDuty](https://pd.example.com)" in text
    assert "  Use the **escalation** policy; see the [runbook](https://wiki.example.com/runbook)." in text
    assert "  • ~~wait~~ call `pager`" in text
    assert "- ⬜ 2.1 Apply the **fix**\n  Short." in text
    assert details_of(text)["escaped"] is False
    assert set(live_words(text)) == {"alice"}                                 # the commander, not @all


async def test_playbook_show_renders_the_markdown_instead_of_escaping_it(sandbox, bot):
    await description_playbook(bot, sandbox)
    shown = (await sandbox.user("alice").command("town-square", "/incident playbook show Described")).ephemeral[0]
    assert "- **1.1** Page the *on-call* via [PagerDuty](https://pd.example.com) · `/echo paging`" in shown
    assert "  Use the **escalation** policy; see the [runbook](https://wiki.example.com/runbook). Tell" in shown
    assert "\\*\\*escalation\\*\\*" not in shown and "\\[runbook\\]" not in shown
    assert "](javascript" not in shown and set(live_words(shown)) <= {"alice"}   # members: @alice


async def test_someone_who_left_a_private_incident_cannot_read_a_step(sandbox, bot):
    await description_playbook(bot, sandbox, public=False, title="Secret")
    incident, channel = await start_incident(sandbox, bot, name="Secret one")
    await add_member(sandbox, channel["id"], "bob")
    details = step_button(card(sandbox, incident), "Details", "**1.1**")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {sandbox.user('alice').token}"}) as http:
        async with http.delete(f"{sandbox.url}/api/v4/channels/{channel['id']}/members/"
                               f"{sandbox.user_id('bob')}") as response:
            assert response.status == 200
    bob = sandbox.user("bob")
    with pytest.raises(SandboxHTTPError) as refused:                           # he can no longer read the card
        await bob.click(incident.card_post_id, details)
    assert refused.value.status == 403
    assert (await bob.command(channel["id"], "/incident step show 1.1")).status == 403
    # dave, in the team but never in the channel, cannot either.
    with pytest.raises(SandboxHTTPError):
        await sandbox.user("dave").click(incident.card_post_id, details)


async def test_a_forged_details_click_for_an_outsider_is_refused_by_the_bot(sandbox, bot):
    """A captured Details context replayed with another user's id: the bot checks that user itself."""
    await description_playbook(bot, sandbox, public=False, title="Secret two")
    incident, channel = await start_incident(sandbox, bot, name="Secret two")
    action_id = step_button(card(sandbox, incident), "Details", "**1.1**")
    integration = sandbox.world.action_integrations[incident.card_post_id][action_id]   # as captured on the wire
    dave = sandbox.user_id("dave")
    minted = base64.b64encode(f"{'x' * 26}:{dave}:{int(time.time() * 1000)}:forged".encode()).decode()
    body = {"user_id": dave, "channel_id": channel["id"], "team_id": incident.team_id,
            "post_id": incident.card_post_id, "trigger_id": minted, "type": "", "data_source": "",
            "context": integration["context"]}
    async with aiohttp.ClientSession() as http:
        async with http.post(integration["url"], json=body) as response:
            assert response.status == 200
            answer = await response.json()
    assert "escalation" not in str(answer)
    assert answer["ephemeral_text"].startswith("Incident not found.")
