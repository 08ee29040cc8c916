"""The retrospective as people see it, over the sandbox (issue 18, slice "fields"): the reminder after
the end (once, at its time; cancelled by publishing, "no retrospective" and a restart; kept across
a restart of the bot), the dialog prefilled with the template and key figures, publishing in the
channel and the broadcast channels, and who may do it.

Time is simulated as in test_reminders.py: the scheduler reads the sandbox clock and sleeps until woken.
"""

from __future__ import annotations

from domain.models import RetroSettings, RetroStatus, UpdateSettings
from services.retro import RETRO_MARK, RETRO_REMINDER_KIND, RETRO_REMINDER_PROP
from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import add_member, button_names, card, card_text, channel_posts, fresh, start_incident
from tests.e2e.test_live_card import synchronise
from tests.e2e.test_reminders import SandboxClock

HOUR_MS = 3_600_000
TEMPLATE = "## What happened\n\n## What we change"


async def retro_playbook(bot, sandbox, *, reminder_ms: int | None = HOUR_MS, broadcast: tuple[str, ...] = ()):
    playbook = await make_playbook(bot, sandbox, members=("alice", "bob"))
    updates = UpdateSettings(broadcast_channel_ids=tuple(sandbox.channel("acme", name)["id"] for name in broadcast))
    return await bot.store.update_playbook(playbook.model_copy(update={
        "retro": RetroSettings(template=TEMPLATE, reminder_interval_ms=reminder_ms), "updates": updates}))


def simulate_time(sandbox, bot) -> None:
    synchronise(sandbox, bot)
    bot.scheduler.clock = SandboxClock(sandbox)


async def advance(sandbox, bot, ms: int) -> None:
    sandbox.advance_clock(ms / 1000)
    bot.scheduler.wake()
    await bot.scheduler.settle()


async def card_shows(sandbox, bot, incident, text: str) -> bool:
    """Whether the incident's current card shows ``text`` (past the edit time limit it is posted anew)."""
    current = await fresh(bot, incident)
    return text in card_text(card(sandbox, current))


async def reminders(sandbox, user="alice"):
    dm = await sandbox.user(user).dm_channel("incident")
    return [p for p in sandbox.posts(dm) if RETRO_REMINDER_PROP in (p.get("props") or {})]


async def ended_incident(sandbox, bot, **playbook):
    await retro_playbook(bot, sandbox, **playbook)
    simulate_time(sandbox, bot)
    incident, channel = await start_incident(sandbox, bot)
    await sandbox.user("alice").command(channel["id"], "/incident check 1.1")
    sandbox.advance_clock(90)
    await sandbox.user("alice").command(channel["id"], "/incident update")
    assert (await sandbox.user("alice").submit_dialog({"text": "Mitigated", "next_in": "none"})).closed
    sandbox.advance_clock(30 * 60)
    ended, _ = await bot.incidents.end(await fresh(bot, incident), sandbox.user_id("alice"))
    return ended, channel


async def test_the_reminder_comes_once_at_its_time_and_opens_the_prefilled_dialog(sandbox, bot):
    incident, channel = await ended_incident(sandbox, bot)
    assert incident.retro_status is RetroStatus.PENDING
    await sandbox.wait_for(lambda: card_shows(sandbox, bot, incident, "Retrospective: pending"))
    assert "Write retrospective" not in button_names(card(sandbox, await fresh(bot, incident)))  # the card as before
    jobs = await bot.store.list_jobs(kind=RETRO_REMINDER_KIND, key=incident.id)
    assert [job.due_at for job in jobs] == [incident.ended_at + HOUR_MS]

    await advance(sandbox, bot, HOUR_MS - 60_000)
    assert await reminders(sandbox) == []
    await advance(sandbox, bot, 61_000)
    sent = await reminders(sandbox)
    assert len(sent) == 1 and "has ended: write its retrospective" in sent[0]["message"]
    assert [a["name"] for a in sent[0]["props"]["attachments"][0]["actions"]] == ["Write retrospective",
                                                                                   "No retrospective"]
    await advance(sandbox, bot, 5 * HOUR_MS)
    assert len(await reminders(sandbox)) == 1

    alice = sandbox.user("alice")
    opened = await alice.click(sent[0]["id"], "Write retrospective")
    assert opened.dialog is not None, (opened.ephemeral, opened.error)
    text = opened.dialog["dialog"]["elements"][0]["default"]
    assert "**Duration:** 31 min" in text and "**Steps done:** 1 of 7" in text
    assert "**Time to first update:** 1 min" in text and text.endswith(TEMPLATE)
    outcome = await alice.submit_dialog({"text": text + "\nWe rolled back the deploy."})
    assert outcome.closed, outcome
    published = await fresh(bot, incident)
    assert published.retro_status is RetroStatus.PUBLISHED and published.retro_by == sandbox.user_id("alice")
    assert published.retro_text.endswith("We rolled back the deploy.")
    posts = [p for p in channel_posts(sandbox, channel["id"]) if p["message"].startswith("#### 📝 Retrospective")]
    assert len(posts) == 1 and "We rolled back the deploy." in posts[0]["message"]
    await sandbox.wait_for(lambda: card_shows(sandbox, bot, incident, "Retrospective: published"))
    kinds = [e.kind.value for e in await bot.store.timeline(incident.id)]
    assert kinds[-1] == "retro_published"
    # Publishing again corrects it (the dialog is prefilled with the published text).
    again = await alice.command(channel["id"], "/incident retro")
    assert again.dialog["dialog"]["elements"][0]["default"] == published.retro_text


async def test_publishing_cancels_the_reminder_and_copies_to_broadcast_channels(sandbox, bot):
    incident, channel = await ended_incident(sandbox, bot, broadcast=("town-square", "leadership"))
    alice = sandbox.user("alice")
    opened = await alice.command(channel["id"], "/incident retro")
    assert opened.dialog is not None, opened.ephemeral
    assert (await alice.submit_dialog({"text": "Root cause: a bad index. @channel"})).closed
    await advance(sandbox, bot, 2 * HOUR_MS)
    assert await reminders(sandbox) == []
    jobs = await bot.store.list_jobs(kind=RETRO_REMINDER_KIND, key=incident.id)
    assert [job.state.value for job in jobs] == ["cancelled"]
    town = [p for p in sandbox.posts(sandbox.channel("acme", "town-square")["id"])
            if (p.get("props") or {}).get(RETRO_MARK) == incident.id]
    assert len(town) == 1 and "Root cause: a bad index." in town[0]["message"]
    assert "@channel" not in town[0]["message"]  # no mention is live in a copy
    # The bot is not in ~leadership (private): no copy there, and the publisher is told why.
    leadership = sandbox.posts(sandbox.channel("acme", "leadership")["id"])
    assert not any((p.get("props") or {}).get(RETRO_MARK) for p in leadership)
    told = [t for t in alice.ephemeral(channel["id"]) if "not copied to" in t["message"]]
    dm = await alice.dm_channel("incident")
    told += [p for p in sandbox.posts(dm) if "not copied to" in p["message"]]
    assert told, "the publisher is told what was refused"


async def test_no_retrospective_from_the_reminder_and_who_may(sandbox, bot):
    incident, channel = await ended_incident(sandbox, bot)
    await advance(sandbox, bot, HOUR_MS + 1000)
    reminder = (await reminders(sandbox))[0]
    await add_member(sandbox, channel["id"], "bob")
    bob, alice = sandbox.user("bob"), sandbox.user("alice")
    refused = await bob.command(channel["id"], "/incident retro none")
    assert "Only the commander (or a system admin)" in refused.ephemeral[0]
    refused = await bob.command(channel["id"], "/incident retro")
    assert refused.dialog is None and "Only the commander" in refused.ephemeral[0]
    outsider = await sandbox.user("carol").command("town-square", f"/incident retro ~{channel['name']}")
    assert "Only members of the incident channel" in outsider.ephemeral[0]
    skipped = await alice.click(reminder["id"], "No retrospective")
    assert any("has no retrospective" in t for t in skipped.ephemeral), skipped
    stored = await fresh(bot, incident)
    assert stored.retro_status is RetroStatus.SKIPPED
    assert [e.kind.value for e in await bot.store.timeline(incident.id)][-1] == "retro_skipped"
    await sandbox.wait_for(lambda: card_shows(sandbox, bot, incident, "Retrospective: none"))
    twice = await alice.click(reminder["id"], "No retrospective")
    assert any("has no retrospective" in t for t in twice.ephemeral)
    assert [e.kind.value for e in await bot.store.timeline(incident.id)].count("retro_skipped") == 1


async def test_an_ongoing_incident_has_no_retrospective_yet_and_a_restart_cancels_the_reminder(sandbox, bot):
    await retro_playbook(bot, sandbox)
    simulate_time(sandbox, bot)
    incident, channel = await start_incident(sandbox, bot)
    alice = sandbox.user("alice")
    early = await alice.command(channel["id"], "/incident retro")
    assert early.dialog is None and "after the incident ends" in early.ephemeral[0]
    ended, _ = await bot.incidents.end(incident, sandbox.user_id("alice"))
    await bot.incidents.restart(ended, sandbox.user_id("alice"))
    await advance(sandbox, bot, 2 * HOUR_MS)
    assert await reminders(sandbox) == []
    # Ended again: a new reminder, due an hour after the new end.
    _again, _ = await bot.incidents.end(await fresh(bot, incident), sandbox.user_id("alice"))
    await advance(sandbox, bot, HOUR_MS + 1000)
    assert len(await reminders(sandbox)) == 1


async def test_the_reminder_survives_a_restart_of_the_bot(sandbox, start_bot):
    bot = await start_bot()
    _incident, _ = await ended_incident(sandbox, bot)
    await bot.stop()
    sandbox.advance_clock(HOUR_MS / 1000 + 60)  # due while no bot runs
    restarted = await start_bot()
    simulate_time(sandbox, restarted)
    restarted.scheduler.wake()
    await restarted.scheduler.settle()
    sent = await reminders(sandbox)
    assert len(sent) == 1 and "This reminder is late" in sent[0]["message"]
    await advance(sandbox, restarted, HOUR_MS)
    assert len(await reminders(sandbox)) == 1


async def test_a_huge_or_empty_retrospective_is_refused_at_its_field(sandbox, bot):
    incident, channel = await ended_incident(sandbox, bot, reminder_ms=None)
    assert await bot.store.list_jobs(kind=RETRO_REMINDER_KIND) == []
    alice = sandbox.user("alice")
    await alice.command(channel["id"], "/incident retro")
    outcome = await alice.submit_dialog({"text": "   "})
    assert not outcome.closed and "Write the retrospective" in outcome.errors["text"]
    outcome = await alice.submit_dialog({"text": "x" * 15_001})
    assert not outcome.closed and "at most 15000 characters" in outcome.errors["text"]
    assert (await fresh(bot, incident)).retro_status is RetroStatus.PENDING
