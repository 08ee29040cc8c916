"""Alert intake and posting on the fake server (services/alerts.py): the store writes and the
Mattermost calls of each step, the flood limit per window, the edit time limit, a crash mid-run."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot import CommandCenter
from domain.alerts import AlertIn, AlertStatus, GroupPosted, GroupState
from gateway.alerts import RulesFormatError, parse_rules
from gateway.signing import Signer
from services.alerts import GROUP_MARK, NOTIFY_KIND, SUMMARY_MARK, AlertService, group_id_for
from services.context import BotContext
from services.scheduler import Firing, Scheduler
from settings import Settings
from storage import JobState, open_store
from tests.fast.conftest import SECRET, Harness, fake_world

WINDOW = 10 * 60_000
RULES = """\
flood: {window: 10m, max_posts: 3, incident_posts_every: 5m, batch_delay: 0s}
rules:
  - name: triage
    match: {labels: {severity: {regex: "critical|warning"}}}
    team: acme
    channel: town-square
    playbook: Outage
    mode: suggest
"""


@pytest.fixture
async def alerting(tmp_path):
    mm, people, acme, other, town = fake_world()
    settings = Settings(_env_file=None, mattermost_url=mm.base_url, bot_token="x" * 26, data_dir=tmp_path,
                        signing_secret=SECRET, database_url="memory://", telemetry_enabled=False)
    store = await open_store("memory://")
    ctx = BotContext(settings=settings, client=mm, signer=Signer(SECRET), store=store,
                     callback_base_url="http://bot.test")
    now = [(mm.now_ms // WINDOW) * WINDOW + 1000]
    ctx.clock = lambda: now[0]
    app = CommandCenter(settings)
    app.alert_rules = parse_rules(RULES)
    app.registry.identify(mm.user_id, mm.username)
    for plugin in app.build_plugins(ctx):
        app.registry.include(plugin)
    assert app.alerts is not None
    await app.alerts.resolve()
    harness = Harness(mm, ctx, app, people, acme, other, town)
    harness.now = now  # type: ignore[attr-defined]
    yield harness
    await store.close()


def alert(fingerprint: str, group: str = "g", status: AlertStatus = AlertStatus.FIRING,
          severity: str = "critical") -> AlertIn:
    return AlertIn(fingerprint=fingerprint, status=status, title=f"Alert {fingerprint}", group_key=group,
                   labels={"alertname": "Alert", "severity": severity}, annotations={"summary": "@all look"})


async def run_pending(h: Harness, *, crashed: bool = False) -> int:
    """Fire the channel's pending notify jobs as the scheduler would; returns how many ran."""
    service: AlertService = h.app.alerts
    jobs = await h.store.list_jobs(kind=NOTIFY_KIND, states=(JobState.PENDING,))
    for job in jobs:
        await h.store.cancel_jobs(now=0, job_id=job.id)
        fired = replace(job, delivery_started_at=1 if crashed else None)
        await service.notify(Firing(fired, h.ctx.clock()))
    return len(jobs)


def alert_posts(h: Harness, mark: str = GROUP_MARK):
    return [post for post in h.mm.posts_in(h.town.id) if mark in post.props]


async def test_notifications_are_recorded_with_one_pending_run_per_channel(alerting):
    h = alerting
    service: AlertService = h.app.alerts
    calls = len(h.mm.calls)
    for n in range(5):
        answer = await service.ingest("alertmanager", [alert("a"), alert(f"b{n}")])
        assert answer == {"alerts": 2, "routed": 2, "repeats": 1 if n else 0}
    assert len(h.mm.calls) == calls  # the answer waits for the store only
    pending = await h.store.list_jobs(kind=NOTIFY_KIND, states=(JobState.PENDING,))
    assert [job.key for job in pending] == [h.town.id]
    assert await h.store.count_alerts() == 6
    assert await run_pending(h) == 1
    [post] = alert_posts(h)
    assert "6 firing, 0 resolved · 5 notifications" in post.message
    assert "@all" not in post.message
    assert h.mm.count("create_post") == 1


async def test_an_alert_no_rule_matches_is_recorded_and_posts_nothing(alerting):
    h = alerting
    answer = await h.app.alerts.ingest("generic", [alert("x", severity="info")])
    assert answer["routed"] == 0
    assert await h.store.get_alert("generic", "x") is not None
    assert await h.store.list_jobs(kind=NOTIFY_KIND) == []


async def test_the_flood_limit_is_per_window_and_the_summary_is_edited(alerting):
    h = alerting
    service: AlertService = h.app.alerts
    for n in range(20):
        await service.ingest("alertmanager", [alert(f"f{n}", group=f"g{n}")])
    await run_pending(h)
    assert len(alert_posts(h)) == 3
    [summary] = alert_posts(h, SUMMARY_MARK)
    assert "17 more alert groups** (17 alerts)" in summary.message
    for n in range(20, 25):
        await service.ingest("alertmanager", [alert(f"f{n}", group=f"g{n}")])
    await run_pending(h)
    assert len(alert_posts(h)) == 3 and len(alert_posts(h, SUMMARY_MARK)) == 1
    assert "22 more alert groups" in h.mm.posts[summary.id].message  # edited in place
    # A repeat of a summarised group in the same window is not counted again.
    await service.ingest("alertmanager", [alert("f10", group="g10")])
    await run_pending(h)
    assert "22 more alert groups" in h.mm.posts[summary.id].message
    # The next window: the limit starts again.
    h.now[0] += WINDOW
    await service.ingest("alertmanager", [alert("late", group="late")])
    await run_pending(h)
    assert len(alert_posts(h)) == 4 and len(alert_posts(h, SUMMARY_MARK)) == 1
    assert await h.store.count_alerts() == 26


async def test_a_suggestion_past_the_edit_time_limit_continues_in_a_new_post(alerting):
    h = alerting
    h.mm.edit_time_limit_s = 300
    service: AlertService = h.app.alerts
    await service.ingest("grafana", [alert("a")])
    await run_pending(h)
    [first] = alert_posts(h)
    h.mm.tick(301_000)
    await service.ingest("grafana", [alert("a", status=AlertStatus.RESOLVED)])
    await run_pending(h)
    posts = alert_posts(h)
    assert len(posts) == 2 and "Resolved: Alert a" in posts[-1].message
    group = await h.store.get_alert_group(group_id_for("grafana", "triage", "g"))
    assert group.post_id == posts[-1].id and group.state is GroupState.SUGGESTED
    assert first.id != group.post_id


async def test_a_run_interrupted_after_posting_adopts_its_post_instead_of_posting_again(alerting):
    h = alerting
    service: AlertService = h.app.alerts
    await service.ingest("alertmanager", [alert("a")])
    group_id = group_id_for("alertmanager", "triage", "g")
    # The post is made, then the process dies before the group's row records it.
    before = await h.store.get_alert_group(group_id)
    await run_pending(h)
    [post] = alert_posts(h)
    await h.store.save_alert_group_posted(GroupPosted(id=before.id, posted_seq=0, state=GroupState.NEW))
    await service.ingest("alertmanager", [alert("a")])
    await run_pending(h, crashed=True)
    assert alert_posts(h) == [h.mm.posts[post.id]]
    assert (await h.store.get_alert_group(group_id)).post_id == post.id


async def test_a_rule_naming_a_channel_the_bot_is_not_in_is_refused_at_its_line(alerting):
    h = alerting
    h.mm.add_channel(h.acme, "private-ops", [h.people.alice], private=True, bot_in=False)
    rules = parse_rules(RULES.replace("channel: town-square", "channel: private-ops"))
    service = AlertService(h.ctx, h.app.incidents, Scheduler(h.store), rules)
    with pytest.raises(RulesFormatError) as caught:
        await service.resolve()
    assert "Line 3, rule 'triage', channel: the bot is not a member of a channel ~private-ops" in str(caught.value)
    rules = parse_rules(RULES.replace("team: acme", "team: nowhere"))
    with pytest.raises(RulesFormatError) as caught:
        await AlertService(h.ctx, h.app.incidents, Scheduler(h.store), rules).resolve()
    assert "the bot is not in a team named 'nowhere'" in str(caught.value)


async def test_hostile_alert_text_is_shown_inert(alerting):
    h = alerting
    hostile = AlertIn(fingerprint="h", status=AlertStatus.FIRING, title="@channel **boom** [x](javascript:alert(1))",
                      group_key="g", labels={"severity": "critical"},
                      annotations={"summary": "@here\n> nested\n```\ncode"}, url="javascript:alert(1)")
    await h.app.alerts.ingest("generic", [hostile])
    await run_pending(h)
    [post] = alert_posts(h)
    assert "@channel" not in post.message and "@here" not in post.message  # defused, never live
    assert "[Source]" not in post.message  # only http(s) links are shown
    assert "\\*\\*boom\\*\\*" in post.message


async def test_someone_outside_the_team_gets_no_dialog_from_the_start_button(alerting):
    h = alerting
    await h.app.alerts.ingest("alertmanager", [alert("a")])
    await run_pending(h)
    [post] = alert_posts(h)
    await h.playbook()
    opened = len(h.mm.dialogs)
    reply = await h.click(h.people.dave, post, "Start incident")
    assert "not a member of any playbook" in reply.ephemeral_text
    assert len(h.mm.dialogs) == opened
    reply = await h.click(h.people.bob, post, "Start incident")
    assert reply.ephemeral_text == "" and len(h.mm.dialogs) == opened + 1
    dialog = h.mm.dialogs[-1].dialog
    elements = {element["name"]: element for element in dialog["elements"]}
    assert elements["name"]["default"] == "Alert a"
    assert elements["playbook"]["default"] == (await h.store.playbooks_for_user(h.acme.id, h.people.bob.id))[0].id


async def test_a_declared_incident_is_commanded_by_the_rules_commander(tmp_path):
    mm, people, acme, other, town = fake_world()
    settings = Settings(_env_file=None, mattermost_url=mm.base_url, bot_token="x" * 26, data_dir=tmp_path,
                        signing_secret=SECRET, database_url="memory://", telemetry_enabled=False)
    store = await open_store("memory://")
    ctx = BotContext(settings=settings, client=mm, signer=Signer(SECRET), store=store,
                     callback_base_url="http://bot.test")
    app = CommandCenter(settings)
    app.alert_rules = parse_rules(RULES.replace("mode: suggest", "mode: declare\n    commander: alice"))
    app.registry.identify(mm.user_id, mm.username)
    for plugin in app.build_plugins(ctx):
        app.registry.include(plugin)
    await app.alerts.resolve()
    h = Harness(mm, ctx, app, people, acme, other, town)
    try:
        playbook = await h.playbook()
        await store.update_playbook(playbook.model_copy(update={"default_commander_id": people.bob.id}))
        await app.alerts.ingest("alertmanager", [alert("a")])
        await run_pending(h)
        [incident] = (await store.list_incidents(acme.id, is_admin=True)).items
        assert incident.commander_id == people.alice.id and incident.creator_id == people.alice.id
        assert people.bob.id in mm.channel_members_of[incident.channel_id]
        group = await store.get_alert_group(group_id_for("alertmanager", "triage", "g"))
        assert group.state is GroupState.DECLARED and group.incident_id == incident.id
    finally:
        await store.close()
