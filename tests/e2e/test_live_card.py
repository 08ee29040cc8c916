"""The live card: the duration of an ongoing incident moves on its own (issue 14).

Simulated time: the sandbox clock is advanced and the bot's card clock reads it (a host synchronised
with the server); the scheduler is woken, or asked to run what is due, instead of sleeping.
PostEditTimeLimit is 300 s in every e2e test (conftest.EDIT_TIME_LIMIT).
"""

from __future__ import annotations

import json

from services import livecard
from tests.e2e.conftest import EDIT_TIME_LIMIT, make_playbook
from tests.e2e.test_incidents import card, card_text, fresh, start_incident, step_button


def synchronise(sandbox, bot) -> None:
    """The bot's clocks follow the sandbox's simulated time."""
    bot.ctx.clock = sandbox.now_ms  # what the services stamp and the cards show
    bot.inbound.triggers.replays.clock = lambda: sandbox.now_ms() / 1000


def card_edits(sandbox, post_id: str) -> list[dict]:
    return [json.loads(ex.body) for ex in sandbox.recording
            if ex.method == "PUT" and ex.path == f"/api/v4/posts/{post_id}/patch"]


def bot_calls(sandbox) -> list:
    token = sandbox.token_of("incident")
    return [ex for ex in sandbox.recording if ex.headers.get("Authorization") == f"Bearer {token}"]


def duration_shown(post) -> str:
    return next(f["value"] for f in post["props"]["attachments"][0]["fields"] if f["title"] == "Duration")


def seconds_to_next_tick(incident, sandbox, minutes: int) -> float:
    """How far to move the clock so that the incident is ``minutes`` old and its tick is due."""
    target = incident.created_at + minutes * 60_000 + livecard.spread_offset_ms(incident.id)
    return max(0.0, (target - sandbox.now_ms()) / 1000) + 0.01


async def test_the_duration_moves_on_its_own(sandbox, bot):
    """Three minutes in, the card says 3m — not 0s — with nobody touching the incident."""
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    synchronise(sandbox, bot)
    first = card(sandbox, incident)
    assert duration_shown(first) == "<1m"
    assert bot.incidents.cards.edit_time_limit_s == EDIT_TIME_LIMIT  # learned from GET /config/client
    posts_before = len(sandbox.posts(channel["id"]))

    sandbox.clear_recording()
    sandbox.advance_clock(seconds_to_next_tick(incident, sandbox, 3))
    bot.livecard.wake()
    now = await sandbox.wait_for(lambda: duration_shown(card(sandbox, incident)) == "3m" and card(sandbox, incident))
    assert "Duration: 3m" in card_text(now)
    assert now["id"] == first["id"] and now["is_pinned"]                 # edited in place, not re-posted
    assert len(sandbox.posts(channel["id"])) == posts_before              # nothing new in the channel
    # One tick, one call: the card's props (never its message), no user lookups.
    calls = bot_calls(sandbox)
    assert [(ex.method, ex.path) for ex in calls] == [("PUT", f"/api/v4/posts/{first['id']}/patch")]
    assert "message" not in card_edits(sandbox, first["id"])[0]


async def test_unchanged_cards_are_not_edited_and_the_schedule_is_coarse(sandbox, bot):
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    synchronise(sandbox, bot)
    alice = sandbox.user("alice")
    sandbox.advance_clock(seconds_to_next_tick(incident, sandbox, 1))
    # Someone changes the card at the very minute its duration would have ticked anyway ...
    await alice.command(channel["id"], "/incident check 1.1")
    await sandbox.wait_for(lambda: "Duration: 1m" in card_text(card(sandbox, incident))
                           and "✅ **1.1**" in card_text(card(sandbox, incident)))
    sandbox.clear_recording()
    await bot.livecard.run_due()
    # ... so the tick sees the same card and makes no call.
    assert bot_calls(sandbox) == []
    # Nothing is due again before the duration shows 2m.
    assert bot.livecard.scheduled[incident.id] == (incident.created_at + 2 * 60_000
                                                   + livecard.spread_offset_ms(incident.id))
    assert await bot.livecard.run_due() == 0 and bot_calls(sandbox) == []


async def test_past_the_edit_limit_a_tick_never_reposts_the_card(sandbox, bot):
    """PostEditTimeLimit 300 s: the last tick inside the window says when the duration was true;
    after that the card is left as it is (no re-post, no notification) until someone changes it."""
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    synchronise(sandbox, bot)
    first = card(sandbox, incident)
    posts_before = len(sandbox.posts(channel["id"], include_deleted=True))

    sandbox.advance_clock(seconds_to_next_tick(incident, sandbox, 4))
    bot.livecard.wake()
    last = await sandbox.wait_for(lambda: "as of" in duration_shown(card(sandbox, incident))
                                  and card(sandbox, incident))
    assert duration_shown(last).startswith("4m as of ") and duration_shown(last).endswith(" UTC")
    assert incident.id not in bot.livecard.scheduled          # no more ticks for this card

    sandbox.clear_recording()
    for minutes in (6, 10, 30):
        sandbox.advance_clock(seconds_to_next_tick(incident, sandbox, minutes))
        await bot.livecard.run_due()
    assert bot_calls(sandbox) == []
    assert len(sandbox.posts(channel["id"], include_deleted=True)) == posts_before
    assert [p["id"] for p in sandbox.pinned(channel["id"])] == [first["id"]]

    # A change someone makes re-posts the card (as before); its duration is live again and ticks resume.
    alice = sandbox.user("alice")
    clicked = await alice.click(first["id"], step_button(first, "Check", "Acknowledge the alert"))
    assert clicked.status == 200
    renewed = await sandbox.wait_for(lambda: (fresh_card := sandbox.pinned(channel["id"])) and
                                     fresh_card[0]["id"] != first["id"] and fresh_card[0])
    assert duration_shown(renewed) == "30m"
    updated = await fresh(bot, incident)
    assert updated.card_post_id == renewed["id"] and incident.id in bot.livecard.scheduled
    sandbox.advance_clock(seconds_to_next_tick(incident, sandbox, 31))
    await bot.livecard.run_due()
    assert duration_shown(card(sandbox, updated)) == "31m"


async def test_a_refused_tick_leaves_the_card_alone(sandbox, bot):
    """When the limit could not be learned (or changed since), a refused tick neither re-posts nor retries."""
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    synchronise(sandbox, bot)
    bot.incidents.cards.edit_time_limit_s = None     # as if GET /config/client had failed
    first = card(sandbox, incident)
    posts_before = len(sandbox.posts(channel["id"], include_deleted=True))
    sandbox.advance_clock(seconds_to_next_tick(incident, sandbox, 6))
    sandbox.clear_recording()
    await bot.livecard.run_due()
    refused = [ex for ex in bot_calls(sandbox) if ex.method == "PUT"]
    assert len(refused) == 1 and refused[0].status == 400
    assert not [ex for ex in bot_calls(sandbox) if ex.method in ("POST", "DELETE")]
    assert incident.id not in bot.livecard.scheduled
    sandbox.advance_clock(seconds_to_next_tick(incident, sandbox, 7))
    sandbox.clear_recording()
    await bot.livecard.run_due()
    assert bot_calls(sandbox) == []
    assert len(sandbox.posts(channel["id"], include_deleted=True)) == posts_before
    assert [p["id"] for p in sandbox.pinned(channel["id"])] == [first["id"]]


async def test_ended_incidents_stop_ticking_and_restarted_ones_resume(sandbox, bot):
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    synchronise(sandbox, bot)
    alice = sandbox.user("alice")
    await alice.command(channel["id"], "/incident end")
    assert (await alice.submit_dialog({})).closed
    ended = await sandbox.wait_for(lambda: "Status: Ended" in card_text(card(sandbox, incident))
                                   and card(sandbox, incident))
    assert incident.id not in bot.livecard.scheduled
    shown = duration_shown(ended)
    sandbox.clear_recording()
    sandbox.advance_clock(seconds_to_next_tick(incident, sandbox, 2))
    assert await bot.livecard.run_due() == 0
    assert bot_calls(sandbox) == [] and duration_shown(card(sandbox, incident)) == shown

    await alice.command(channel["id"], "/incident restart")
    assert (await alice.submit_dialog({})).closed
    await sandbox.wait_for(lambda: "Status: Ongoing" in card_text(card(sandbox, incident)))
    assert incident.id in bot.livecard.scheduled
    sandbox.advance_clock(seconds_to_next_tick(incident, sandbox, 3))
    await bot.livecard.run_due()
    assert duration_shown(card(sandbox, incident)) == "3m"


async def test_after_a_restart_the_bot_resumes_from_the_store(sandbox, start_bot):
    first_bot = await start_bot()
    await make_playbook(first_bot, sandbox)
    incident, channel = await start_incident(sandbox, first_bot)
    await first_bot.stop()

    bot = await start_bot()
    synchronise(sandbox, bot)
    assert incident.id in bot.livecard.scheduled
    sandbox.clear_recording()
    sandbox.advance_clock(seconds_to_next_tick(incident, sandbox, 2))
    bot.livecard.wake()
    await sandbox.wait_for(lambda: duration_shown(card(sandbox, incident)) == "2m")
    # The new bot asks once when the card was posted (its edit window), then edits it in place.
    calls = [(ex.method, ex.path) for ex in bot_calls(sandbox) if "/posts/" in ex.path]
    assert calls == [("GET", f"/api/v4/posts/{incident.card_post_id}"),
                     ("PUT", f"/api/v4/posts/{incident.card_post_id}/patch")]
    assert [p["id"] for p in sandbox.pinned(channel["id"])] == [incident.card_post_id]


async def test_two_incidents_started_together_tick_apart(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    one, _ = await start_incident(sandbox, bot, "alice", "Checkout errors")
    two, _ = await start_incident(sandbox, bot, "bob", "Login errors")
    due = bot.livecard.scheduled
    # Each is offset by a fixed share of its id: not the same instant (and the same after a restart).
    assert due[one.id] - one.created_at != due[two.id] - two.created_at
    assert all(0 <= livecard.spread_offset_ms(i) < livecard.SPREAD_MS for i in (one.id, two.id))


async def test_a_tick_changes_nothing_but_the_duration(sandbox, bot):
    """Hostile names and markdown stay as harmless as on any other refresh: a tick re-renders the same card."""
    await make_playbook(bot, sandbox)
    incident, _ = await start_incident(sandbox, bot, name="@all **boom** [x](javascript:alert)")
    synchronise(sandbox, bot)
    before = card(sandbox, incident)
    sandbox.advance_clock(seconds_to_next_tick(incident, sandbox, 2))
    await bot.livecard.run_due()
    after = card(sandbox, incident)
    assert duration_shown(after) == "2m"
    assert card_text(after).replace("Duration: 2m", "Duration: <1m") == card_text(before)
    assert "\\*\\*boom\\*\\*" in card_text(after) and "@\u2060all" in card_text(after)
