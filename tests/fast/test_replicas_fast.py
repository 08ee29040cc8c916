"""Two replicas on one store and one Mattermost (the fast layer): a card edited by both at once ends
on the newest version, and a start journaled by a live replica is left to it (docs/replicas.md)."""

from __future__ import annotations

import asyncio

from bench.soak import _card_digest
from bot import CommandCenter
from services.context import BotContext
from services.replica import Replica
from services.scheduler import ManualClock
from tests.fast.conftest import Harness


def second_replica(fast: Harness) -> Harness:
    """Replica B: its own services and registry, the same store, signer and Mattermost as ``fast``."""
    ctx = BotContext(settings=fast.ctx.settings, client=fast.mm, signer=fast.ctx.signer, store=fast.store,
                     callback_base_url=fast.ctx.callback_base_url)
    app = CommandCenter(fast.ctx.settings)
    app.registry.identify(fast.mm.user_id, fast.mm.username)
    for plugin in app.build_plugins(ctx):
        app.registry.include(plugin)
    return Harness(fast.mm, ctx, app, fast.people, fast.acme, fast.other, fast.town)


def shown(post) -> tuple:
    return _card_digest({"message": post.message, "props": post.props})


async def test_an_older_render_landing_last_is_drawn_again(fast):
    b = second_replica(fast)
    incident = await fast.start()
    channel = fast.channel_of(incident)
    original = fast.mm.patch_post
    first_held, first_may_land = asyncio.Event(), asyncio.Event()
    calls = 0

    async def patch_post(post_id: str, patch: dict):
        nonlocal calls
        calls += 1
        if calls == 1:  # replica A's edit for "1.1 checked" is slow: it lands after B's
            first_held.set()
            await first_may_land.wait()
        return await original(post_id, patch)

    fast.mm.patch_post = patch_post  # type: ignore[method-assign]
    a_check = asyncio.create_task(fast.slash(fast.people.alice, channel, "check 1.1"))
    await first_held.wait()
    assert (await b.slash(fast.people.alice, channel, "check 1.2")).text == ""  # B drew both checks; landed
    first_may_land.set()
    assert (await a_check).text == ""
    latest = await fast.fresh(incident)
    assert [s.done for s in latest.stages[0].steps] == [True, True]
    expected = await b.app.incidents.cards.render(latest)
    assert shown(fast.card_of(latest)) == _card_digest(expected)
    assert fast.app.incidents.cards.redraws == 1 and b.app.incidents.cards.redraws == 0


async def test_edits_without_a_newer_version_cost_no_redraw(fast):
    incident = await fast.start()
    channel = fast.channel_of(incident)
    for step in ("1.1", "1.2"):
        assert (await fast.slash(fast.people.alice, channel, f"check {step}")).text == ""
    assert fast.app.incidents.cards.redraws == 0
    assert fast.mm.count("patch_post") == 2


async def test_a_start_journaled_by_a_live_replica_is_left_to_it(fast):
    from services.incidents import _JOURNAL_PREFIX, StartJournal

    clock = ManualClock(fast.mm.now_ms)
    a_replica, b_replica = Replica(fast.store, "a", clock=clock), Replica(fast.store, "b", clock=clock)
    await a_replica.start()
    await b_replica.start()
    b = second_replica(fast)
    b.app.incidents.replica = b_replica
    playbook = await fast.playbook()
    journal = StartJournal(incident_id="i" * 26, team_id=fast.acme.id, actor_id=fast.people.alice.id,
                           playbook_id=playbook.id, name="Half made", description="", private=False,
                           source_post_id=None, channel_name="half-made", created_at=fast.ctx.clock(), replica="a")
    await fast.store.set_setting(_JOURNAL_PREFIX + journal.incident_id, journal.model_dump_json())
    assert await b.app.incidents.recover(sweep=True) == []  # a is alive: its start is its own
    await a_replica.halt()  # a dies (no release): its presence runs out after one lease
    clock.advance(a_replica.lease_ms)
    outcomes = await b.app.incidents.recover(sweep=True)
    assert outcomes == [f"{journal.incident_id}: completed"]
    completed = await fast.store.get_incident(journal.incident_id)
    assert completed is not None and completed.card_post_id
    await b_replica.stop()


async def test_a_second_run_click_on_another_replica_runs_nothing_while_the_first_runs(fast):
    from domain.playbooks import StageDraft, StepDraft, new_playbook

    b = second_replica(fast)
    p = fast.people
    playbook = await fast.store.create_playbook(new_playbook(
        team_id=fast.acme.id, title="Runs", created_by=p.alice.id, now=fast.mm.now_ms, member_ids=[p.alice.id],
        stages=[StageDraft(title="Triage", steps=(StepDraft(title="Page", command="/echo paging the on-call"),))]))
    incident = await fast.start(playbook=playbook, name="Pager")
    card = fast.card_of(incident)
    original = fast.mm.execute_command
    running, may_finish = asyncio.Event(), asyncio.Event()

    async def execute_command(channel_id: str, command: str, team_id: str = ""):
        running.set()
        await may_finish.wait()
        return await original(channel_id, command, team_id)

    fast.mm.execute_command = execute_command  # type: ignore[method-assign]
    first = asyncio.create_task(fast.click(p.alice, card, "Run"))
    await asyncio.wait({first, asyncio.ensure_future(running.wait())}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    assert running.is_set(), first.result() if first.done() else 'neither'
    second = await b.click(p.alice, card, "Run")  # a double click the load balancer sent to B
    assert "being run right now" in (second.ephemeral_text or "")
    may_finish.set()
    await first
    assert fast.mm.executed == [(incident.channel_id, "/echo paging the on-call")]


async def test_a_card_mattermost_refuses_to_restore_blocks_no_other_and_waits_before_it_is_tried_again(fast):
    from services.incidents import CARD_RETRY_MS

    lost = await fast.start(name="Lost channel", playbook=await fast.playbook("Private", public=False))
    other = await fast.start(name="Other")
    for incident in (lost, other):  # as if the bot had died between storing the incident and its card
        await fast.store.mutate_incident(
            incident.id, lambda i: (i.model_copy(update={"card_post_id": None}), []))
    fast.mm.leave(lost.channel_id, fast.mm.user_id)  # the bot was removed from the private channel
    outcomes = await fast.app.incidents.recover(sweep=True)
    assert sorted(outcomes) == sorted([f"{lost.id}: card pending", f"{other.id}: card restored"])
    restored = await fast.fresh(other)
    assert restored.card_post_id
    fast.mm.calls.clear()
    assert await fast.app.incidents.recover(sweep=True) == []  # not asked again round after round
    assert fast.mm.count("channel_posts") == 0
    now = fast.ctx.clock()
    fast.ctx.clock = lambda: now + CARD_RETRY_MS
    assert await fast.app.incidents.recover(sweep=True) == [f"{lost.id}: card pending"]
    assert fast.mm.count("channel_posts") == 1
