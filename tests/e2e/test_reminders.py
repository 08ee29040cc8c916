"""Update reminders as people see them, over the sandbox (issue 17, docs/status-updates.md).

Time is simulated: the sandbox clock is advanced, and the bot's scheduler and card clocks read it
(a host synchronised with the server); the scheduler sleeps until woken, never by the wall clock.
"""

from __future__ import annotations

import asyncio

from domain.models import UpdateSettings
from domain.playbooks import StageDraft, StepDraft, new_playbook
from services.reminders import REMINDER_PROP
from tests.e2e.test_incidents import card, card_text, fresh, start_incident
from tests.e2e.test_live_card import synchronise

INTERVAL_MS = 30 * 60_000


class SandboxClock:
    """The scheduler's clock on the sandbox's simulated time: it sleeps until woken."""

    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox

    def now_ms(self) -> int:
        return self.sandbox.now_ms()

    async def sleep_until(self, when_ms: int, wake: asyncio.Event) -> None:
        if when_ms <= self.now_ms() or wake.is_set():
            await asyncio.sleep(0)
            return
        await wake.wait()


async def reminding_playbook(bot, sandbox, interval_ms: int = INTERVAL_MS):
    member_ids = [sandbox.user_id("alice"), sandbox.user_id("bob")]
    playbook = new_playbook(team_id=sandbox.team("acme")["id"], title="Incident Response", created_by=member_ids[0],
                            now=sandbox.now_ms(), create_public_channel=True, member_ids=member_ids,
                            stages=[StageDraft(title="Triage", steps=(StepDraft(title="Acknowledge"),))])
    playbook = playbook.model_copy(update={"updates": UpdateSettings(interval_ms=interval_ms)})
    return await bot.store.create_playbook(playbook)


async def reminded(sandbox, bot, interval_ms: int = INTERVAL_MS):
    await reminding_playbook(bot, sandbox, interval_ms)
    synchronise(sandbox, bot)
    bot.scheduler.clock = SandboxClock(sandbox)
    incident, channel = await start_incident(sandbox, bot)
    await bot.reminders.settle()
    return incident, channel


async def pass_due_time(sandbox, bot, incident) -> None:
    current = await fresh(bot, incident)
    sandbox.advance_clock((current.next_update_due_at - sandbox.now_ms()) / 1000 + 1)
    bot.scheduler.wake()
    await bot.scheduler.settle()


def reminders_in(sandbox, channel_id):
    return [p for p in sandbox.posts(channel_id) if REMINDER_PROP in (p.get("props") or {})]


async def test_a_due_reminder_reaches_the_commander_once_in_the_channel_and_by_dm(sandbox, bot):
    # 2 minutes: the card is still editable then (PostEditTimeLimit is 300 s in the e2e tests).
    incident, channel = await reminded(sandbox, bot, 2 * 60_000)
    dm = await sandbox.user("alice").dm_channel("incident")
    assert reminders_in(sandbox, channel["id"]) == []
    await pass_due_time(sandbox, bot, incident)
    posted = reminders_in(sandbox, channel["id"])
    assert len(posted) == 1 and "@alice" in posted[0]["message"]
    assert len(reminders_in(sandbox, dm)) == 1
    # The live card redraws at the due time: the card says the update is overdue.
    bot.livecard.wake()
    await sandbox.wait_for(lambda: "Overdue" in card_text(card(sandbox, incident)))
    sandbox.advance_clock(3600)
    bot.scheduler.wake()
    await bot.scheduler.settle()
    assert len(reminders_in(sandbox, channel["id"])) == 1


async def test_the_commander_snoozes_and_others_cannot(sandbox, bot):
    incident, channel = await reminded(sandbox, bot)
    await pass_due_time(sandbox, bot, incident)
    reminder = reminders_in(sandbox, channel["id"])[0]
    await sandbox.user("bob").add_member(channel["name"], "bob")
    refused = await sandbox.user("bob").click(reminder["id"], "Snooze 15 min")  # a member, not the commander
    assert any("Only the commander" in text for text in refused.ephemeral), refused
    result = await sandbox.user("alice").click(reminder["id"], "Snooze 15 min")
    assert any("Snoozed" in text for text in result.ephemeral), result
    snoozed = await fresh(bot, incident)
    assert snoozed.next_update_due_at > sandbox.now_ms()
    again = await sandbox.user("alice").click(reminder["id"], "Snooze 15 min")
    assert any("out of date" in text for text in again.ephemeral)
    await bot.reminders.settle()
    await pass_due_time(sandbox, bot, incident)
    assert len(reminders_in(sandbox, channel["id"])) == 2  # the snoozed reminder, once, at its new time


async def test_request_update_in_the_channel_and_its_refusals(sandbox, bot):
    _incident, channel = await reminded(sandbox, bot)
    alice, bob = sandbox.user("alice"), sandbox.user("bob")
    own = await alice.command(channel["name"], "/incident request-update")
    assert any("You are the commander" in text for text in own.ephemeral)
    outside = await bob.command("town-square", "/incident request-update")
    assert any("not an incident channel" in text for text in outside.ephemeral)
    await bob.add_member(channel["name"], "bob")
    asked = await bob.command(channel["name"], "/incident request-update")
    assert any("asked" in text for text in asked.ephemeral), asked
    posts = [p for p in sandbox.posts(channel["id"]) if "asks for a status update" in p["message"]]
    assert len(posts) == 1 and "@alice" in posts[0]["message"] and "@bob" in posts[0]["message"]
    twice = await bob.command(channel["name"], "/incident request-update")
    assert any("already requested" in text for text in twice.ephemeral)


async def test_ending_the_incident_cancels_the_reminder(sandbox, bot):
    incident, channel = await reminded(sandbox, bot)
    await bot.incidents.end(incident, sandbox.user_id("alice"))
    await bot.reminders.settle()
    sandbox.advance_clock(INTERVAL_MS / 1000 + 60)
    bot.scheduler.wake()
    await bot.scheduler.settle()
    assert reminders_in(sandbox, channel["id"]) == []


async def test_post_update_from_a_dm_reminder_posts_it_and_moves_the_reminder(sandbox, bot):
    """The whole loop across the slices: a reminder by DM → its Post update button → the update dialog →
    the update in the incident channel, the card's line, and the next reminder at the time it chose."""
    incident, channel = await reminded(sandbox, bot)
    alice = sandbox.user("alice")
    dm = await alice.dm_channel("incident")
    await pass_due_time(sandbox, bot, incident)
    reminder = reminders_in(sandbox, dm)[0]
    opened = await alice.click(reminder["id"], "Post update")
    assert opened.dialog is not None, (opened.ephemeral, opened.error)
    outcome = await alice.submit_dialog({"text": "Failover done; watching error rates", "next_in": "15m"})
    assert outcome.closed, outcome
    await bot.reminders.settle()
    posted = [p for p in sandbox.posts(channel["id"]) if "Failover done; watching error rates" in p["message"]]
    assert len(posted) == 1
    updated = await fresh(bot, incident)
    assert updated.last_update_by == sandbox.user_id("alice")
    assert abs(updated.next_update_due_at - (sandbox.now_ms() + 15 * 60_000)) < 5_000
    updated = await fresh(bot, incident)  # past the edit time limit the card was posted again
    assert "Last update" in card_text(card(sandbox, updated)) and "Overdue" not in card_text(card(sandbox, updated))
    pending = [job for job in await bot.store.list_jobs(incident_id=incident.id) if job.state == "pending"]
    assert [job.due_at for job in pending] == [updated.next_update_due_at]
    await pass_due_time(sandbox, bot, updated)
    assert len(reminders_in(sandbox, dm)) == 2  # the next reminder, once, at the time the update chose
