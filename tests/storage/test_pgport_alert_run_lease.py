"""One alert run per channel at a time across processes (services/alerts.py ``notify``, README "Alerts"):
two bots, each with its own store on one shared database (SQLite file, PostgreSQL, a named memory
store), over one fake Mattermost. While one bot's run is posting, the other's run for the same
channel posts nothing and comes back later; the news ends up posted once, by whichever run comes after."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from bot import CommandCenter
from domain.alerts import AlertIn, AlertStatus
from gateway.alerts import parse_rules
from gateway.signing import Signer
from services.alerts import BUSY_RETRY_MS, GROUP_MARK, NOTIFY_KIND, RUN_LEASE_PREFIX, AlertService
from services.context import BotContext
from services.scheduler import Firing
from settings import Settings
from storage import JobState
from tests.fast.conftest import SECRET, fake_world

RULES = """\
flood: {window: 10m, max_posts: 3, incident_posts_every: 5m, batch_delay: 0s}
rules:
  - name: triage
    match: {labels: {severity: {regex: "critical"}}}
    team: acme
    channel: town-square
    playbook: Outage
    mode: suggest
"""


def alert(fingerprint: str) -> AlertIn:
    return AlertIn(fingerprint=fingerprint, status=AlertStatus.FIRING, title=f"Alert {fingerprint}", group_key="g",
                   labels={"alertname": "Alert", "severity": "critical"}, annotations={})


async def _bot(mm, store, tmp_path) -> AlertService:
    settings = Settings(_env_file=None, mattermost_url=mm.base_url, bot_token="x" * 26, data_dir=tmp_path,
                        signing_secret=SECRET, database_url="memory://", telemetry_enabled=False)
    ctx = BotContext(settings=settings, client=mm, signer=Signer(SECRET), store=store,
                     callback_base_url="http://bot.test")
    ctx.clock = lambda: mm.now_ms
    app = CommandCenter(settings)
    app.alert_rules = parse_rules(RULES)
    app.registry.identify(mm.user_id, mm.username)
    for plugin in app.build_plugins(ctx):
        app.registry.include(plugin)
    assert app.alerts is not None
    await app.alerts.resolve()
    return app.alerts


async def _claimed(service: AlertService, owner: str):
    """The channel's pending run, claimed as a replica's scheduler would."""
    [job] = await service.store.list_jobs(kind=NOTIFY_KIND, states=(JobState.PENDING,))
    now = service.scheduler.clock.now_ms()
    [claimed] = await service.store.claim_due_jobs(max(now, job.due_at), owner, lease_ms=60_000, limit=1)
    return Firing(replace(claimed), now)


async def test_two_processes_never_run_one_channel_at_once(store_factory, tmp_path):
    mm, _people, _acme, _other, town = fake_world()
    first_store, second_store = store_factory(), store_factory()
    await first_store.open()
    await second_store.open()
    try:
        first = await _bot(mm, first_store, tmp_path / "a")
        second = await _bot(mm, second_store, tmp_path / "b")
        await first.ingest("alertmanager", [alert("a1")])

        # The first bot's run stops inside its post until released.
        inside, release = asyncio.Event(), asyncio.Event()
        suggest = first._suggest

        async def held_suggest(*args, **kwargs):
            inside.set()
            await release.wait()
            await suggest(*args, **kwargs)

        first._suggest = held_suggest  # type: ignore[method-assign]
        running = asyncio.create_task(first.notify(await _claimed(first, "replica-a")))
        await asyncio.wait_for(inside.wait(), 10)
        lease = await second_store.get_lease(RUN_LEASE_PREFIX + town.id)
        assert lease is not None and lease.valid_at(second.scheduler.clock.now_ms())

        # Meanwhile a new notification schedules a run that the second bot claims: it posts nothing,
        # and a run comes back later.
        await second.ingest("alertmanager", [alert("a2")])
        before = second.scheduler.clock.now_ms()
        await second.notify(await _claimed(second, "replica-b"))
        assert [p for p in mm.posts_in(town.id) if GROUP_MARK in p.props] == []
        assert second.stats["runs_deferred"] == 1
        [again] = await second_store.list_jobs(kind=NOTIFY_KIND, states=(JobState.PENDING,))
        assert before + BUSY_RETRY_MS <= again.due_at <= second.scheduler.clock.now_ms() + BUSY_RETRY_MS

        release.set()
        await asyncio.wait_for(running, 10)
        [post] = [p for p in mm.posts_in(town.id) if GROUP_MARK in p.props]
        assert "1 firing" in post.message  # it read the group before the second alert arrived

        # The lease was released: the deferred run goes ahead and posts the news once, in the same post.
        await second.notify(await _claimed(second, "replica-b"))
        [edited] = [p for p in mm.posts_in(town.id) if GROUP_MARK in p.props]
        assert edited.id == post.id and "2 firing" in edited.message
        assert mm.count("create_post") == 1
        group = await second_store.get_alert_group(post.props[GROUP_MARK])
        assert group is not None and group.posted_seq == group.seq == 2
        assert await second_store.list_jobs(kind=NOTIFY_KIND, states=(JobState.PENDING,)) == []
    finally:
        await first_store.close()
        await second_store.close()
