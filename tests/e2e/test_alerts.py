"""Alerts from Alertmanager and Grafana as people see them, over the sandbox (issue 21, README "Alerts").

The payloads are the documented shapes (Alertmanager's webhook_config version 4, Grafana's webhook
contact point); they are sent over real HTTP to the bot's own server, which records them and
answers, then posts from its scheduler. The flood window is read from an injectable clock.
"""

from __future__ import annotations

import asyncio
import copy
import json

import aiohttp
import pytest

from domain.alerts import GroupState
from domain.models import EventKind
from gateway.alerts import body_signature
from plugins.incidents import NO_PLAYBOOKS
from services.alerts import GROUP_MARK, SUMMARY_MARK, group_id_for
from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import all_incidents

AM_SECRET = "alertmanager-secret-0123456789"
GRAFANA_SECRET = "grafana-secret-0123456789abcdef"
WINDOW_MS = 10 * 60_000

RULES = """\
flood:
  window: 10m
  max_posts: 3
  incident_posts_every: 5m
  batch_delay: 0s
rules:
  - name: blue-team
    match:
      labels:
        team: blue
    team: acme
    channel: town-square
    playbook: Incident Response
    mode: declare
    commander: alice
    incident_name: "{alertname} in {zone}"
  - name: storm
    match:
      labels:
        storm: {exists: true}
    team: acme
    channel: town-square
    playbook: Incident Response
    mode: suggest
  - name: critical
    match:
      labels:
        severity: critical
        job: {regex: "http_.*"}
    team: acme
    channel: town-square
    playbook: Incident Response
    mode: suggest
    incident_name: "{alertname}: {labels.instance}"
"""

# Alertmanager's documented webhook body (version 4).
ALERTMANAGER = {
    "receiver": "command-center", "status": "firing",
    "alerts": [{
        "status": "firing",
        "labels": {"alertname": "ProbeFailure", "instance": "https://server.example.org", "job": "http_checks",
                   "monitor": "master", "severity": "critical"},
        "annotations": {"description": "Instance https://server.example.org has been down for over 5m.",
                        "summary": "BlackBox Probe Failure: https://server.example.org @channel"},
        "startsAt": "2023-02-06T13:08:45.828Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=probe_success+%3D%3D+0",
        "fingerprint": "1a30ba71cca2921f"}],
    "groupLabels": {"alertname": "ProbeFailure"},
    "commonLabels": {"alertname": "ProbeFailure", "severity": "critical"},
    "commonAnnotations": {}, "externalURL": "http://prometheus.example.org:9093", "version": "4",
    "groupKey": "{}/{severity=\"critical\"}:{alertname=\"ProbeFailure\"}", "truncatedAlerts": 0,
}

# Grafana's documented webhook contact point body.
GRAFANA = {
    "receiver": "My Super Webhook", "status": "firing", "orgId": 1,
    "alerts": [{
        "status": "firing",
        "labels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1"},
        "annotations": {"description": "The system has high memory usage",
                        "runbook_url": "https://myrunbook.com/runbook/1234",
                        "summary": "This alert was triggered for zone us-1"},
        "startsAt": "2021-10-12T09:51:03.157076+02:00", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "https://play.grafana.org/alerting/1afz29v7z/edit", "fingerprint": "c6eadffa33fcdf37",
        "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana",
        "dashboardURL": "", "panelURL": "", "values": {"B": 44.23943737541908, "C": 1},
        "valueString": "[ var='B' labels={} value=44.2 ]"}],
    "groupLabels": {}, "commonLabels": {"team": "blue"}, "commonAnnotations": {},
    "externalURL": "https://play.grafana.org/", "version": "1",
    "groupKey": "{}:{alertname=\"High memory usage\"}", "truncatedAlerts": 0,
    "title": "[FIRING:1] High memory usage", "state": "alerting",
    "message": "**Firing**\n\nLabels:\n - alertname = High memory usage",
}


class StepClock:
    """The bot's clock (``ctx.clock``): fixed inside one flood window unless a test moves it."""

    def __init__(self, start_ms: int) -> None:
        self.now = start_ms

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def rules_file(tmp_path):
    path = tmp_path / "alert-rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    return path


@pytest.fixture
async def alert_bot(start_bot, rules_file, sandbox):
    bot = await start_bot(alerts_rules_file=rules_file, alerts_alertmanager_secret=AM_SECRET,
                          alerts_grafana_secret=GRAFANA_SECRET)
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    # A fixed time well inside a flood window: nothing here depends on where the wall clock is.
    bot.ctx.clock = StepClock((sandbox.now_ms() // WINDOW_MS) * WINDOW_MS + 1000)
    return bot


async def send(bot, source: str, body, *, secret: str | None = AM_SECRET, headers: dict | None = None,
               raw: bytes | None = None, session: aiohttp.ClientSession | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **(headers or {})}
    if secret is not None:
        sent["Authorization"] = f"Bearer {secret}"
    url = f"http://127.0.0.1:{bot.inbound.port}/alerts/{source}"
    own = session is None
    session = session or aiohttp.ClientSession()
    try:
        async with session.post(url, data=data, headers=sent) as response:
            answer = await response.json(content_type=None)
            return response.status, answer
    finally:
        if own:
            await session.close()


async def settled(bot) -> None:
    await asyncio.wait_for(bot.scheduler.settle(), 30)


def alert_posts(sandbox, channel_id, mark=GROUP_MARK):
    return [post for post in sandbox.posts(channel_id) if mark in (post.get("props") or {})]


def town_square(sandbox):
    return sandbox.channel("acme", "town-square")["id"]


def resolved(body):
    body = copy.deepcopy(body)
    body["status"] = "resolved"
    for alert in body["alerts"]:
        alert["status"] = "resolved"
    return body


# Suggest mode ------------------------------------------------------------------------------------

async def test_suggest_mode_posts_one_suggestion_that_repeats_and_resolution_update(alert_bot, sandbox):
    bot = alert_bot
    status, answer = await send(bot, "alertmanager", ALERTMANAGER)
    assert (status, answer) == (200, {"status": "ok", "alerts": 1, "routed": 1, "repeats": 0})
    await settled(bot)
    posts = alert_posts(sandbox, town_square(sandbox))
    assert len(posts) == 1
    post = posts[0]
    assert "Alert: ProbeFailure" in post["message"] and "rule `critical`" in post["message"]
    assert "1 firing, 0 resolved" in post["message"] and "1 notification " in post["message"]
    assert "[Source](http://prometheus.example.org:9090/graph?g0.expr=probe_success+%3D%3D+0)" in post["message"]
    assert "@channel" not in post["message"].replace("@\u200dchannel", "")  # quoted, never a live mention
    buttons = [a["name"] for att in post["props"]["attachments"] for a in att["actions"]]
    assert buttons == ["Start incident"]

    # The same alert again (Alertmanager repeats a group every repeat_interval): the post is edited.
    status, answer = await send(bot, "alertmanager", ALERTMANAGER)
    assert status == 200 and answer["repeats"] == 1
    await settled(bot)
    posts = alert_posts(sandbox, town_square(sandbox))
    assert len(posts) == 1 and "2 notifications" in posts[0]["message"]
    record = await bot.store.get_alert("alertmanager", "1a30ba71cca2921f")
    assert record is not None and record.count == 2

    status, _ = await send(bot, "alertmanager", resolved(ALERTMANAGER))
    assert status == 200
    await settled(bot)
    posts = alert_posts(sandbox, town_square(sandbox))
    assert len(posts) == 1 and "Resolved: ProbeFailure" in posts[0]["message"]
    assert "0 firing, 1 resolved" in posts[0]["message"]
    record = await bot.store.get_alert("alertmanager", "1a30ba71cca2921f")
    assert record.status == "resolved" and record.resolved_at is not None and record.count == 3


async def test_start_button_opens_the_start_dialog_prefilled_and_starts_for_a_playbook_member(alert_bot, sandbox):
    bot = alert_bot
    await send(bot, "alertmanager", ALERTMANAGER)
    await settled(bot)
    post = alert_posts(sandbox, town_square(sandbox))[0]
    bob = sandbox.user("bob")
    result = await bob.click(post["id"], "Start incident")
    assert result.status == 200 and result.dialog is not None, result
    elements = {element["name"]: element for element in result.dialog["dialog"]["elements"]}
    assert elements["name"]["default"] == "ProbeFailure: https://server.example.org"
    assert "ProbeFailure" in elements["description"]["default"]
    assert "BlackBox Probe Failure" in elements["description"]["default"]
    playbook_id = elements["playbook"]["default"]
    assert playbook_id and playbook_id in {option["value"] for option in elements["playbook"]["options"]}
    outcome = await bob.submit_dialog({"playbook": playbook_id, "name": "Probe failure",
                                       "description": elements["description"]["default"]})
    assert outcome.closed, outcome
    incident = next(i for i in await all_incidents(bot) if i.name == "Probe failure")
    assert incident.commander_id == sandbox.user_id("bob")
    assert incident.source_post_id == post["id"]  # the suggestion is quoted in the new channel
    assert "ProbeFailure" in incident.description

    # The group now belongs to the incident: a second click (anyone's) is told where it is, and the
    # resolution goes to the incident's channel.
    again = await sandbox.user("alice").click(post["id"], "Start incident")
    assert again.dialog is None and "already started from this alert" in again.ephemeral[0]
    assert "Probe failure" in again.ephemeral[0]
    assert len([i for i in await all_incidents(bot) if i.source_post_id == post["id"]]) == 1
    await send(bot, "alertmanager", resolved(ALERTMANAGER))
    await settled(bot)
    notes = alert_posts(sandbox, incident.channel_id)
    assert notes and "Resolved" in notes[-1]["message"]


async def test_start_button_for_someone_who_may_not_start_from_the_playbook(alert_bot, sandbox):
    bot = alert_bot
    await send(bot, "alertmanager", ALERTMANAGER)
    await settled(bot)
    post = alert_posts(sandbox, town_square(sandbox))[0]
    # carol is in no playbook: the same answer as the start command gives her, and no dialog.
    carol = sandbox.user("carol")
    result = await carol.click(post["id"], "Start incident")
    assert result.status == 200 and result.dialog is None
    assert any("not a member of any playbook" in text for text in result.ephemeral), result.ephemeral
    assert NO_PLAYBOOKS.split()[0] in " ".join(result.ephemeral)
    # With a playbook of her own she gets the dialog, without the rule's playbook; naming it anyway is refused.
    own = await make_playbook(bot, sandbox, title="Carol's playbook", members=("carol",))
    result = await carol.click(post["id"], "Start incident")
    assert result.dialog is not None
    elements = {element["name"]: element for element in result.dialog["dialog"]["elements"]}
    assert [option["value"] for option in elements["playbook"]["options"]] == [own.id]
    rule_playbook = next(pb for pb in await bot.store.playbooks_for_user(
        sandbox.team("acme")["id"], sandbox.user_id("alice"), is_admin=True) if pb.title == "Incident Response")
    before = len(await all_incidents(bot))
    outcome = await carol.submit_dialog({"playbook": rule_playbook.id, "name": "Forged start", "description": ""})
    assert not outcome.closed
    assert len(await all_incidents(bot)) == before


# Declare mode -------------------------------------------------------------------------------------

async def test_declare_mode_starts_the_incident_at_once_then_notes_repeats_and_resolution(alert_bot, sandbox):
    bot = alert_bot
    status, answer = await send(bot, "grafana", GRAFANA, secret=GRAFANA_SECRET)
    assert status == 200 and answer["routed"] == 1
    await settled(bot)
    incidents = [i for i in await all_incidents(bot) if i.name == "High memory usage in us-1"]
    assert len(incidents) == 1
    incident = incidents[0]
    assert incident.commander_id == sandbox.user_id("alice") and incident.creator_id == sandbox.user_id("alice")
    assert "High memory usage" in incident.description and "zone=us-1" in incident.description
    timeline = await bot.store.timeline(incident.id)
    assert [e.kind for e in timeline].count(EventKind.ALERT_RECEIVED) == 1
    declared = alert_posts(sandbox, town_square(sandbox))
    assert len(declared) == 1 and "was declared" in declared[0]["message"]
    in_incident = alert_posts(sandbox, incident.channel_id)
    assert len(in_incident) == 1 and "> High memory usage (firing)" in in_incident[0]["message"]

    # A repeat within the rate limit: counted, nothing posted yet, no second incident.
    status, answer = await send(bot, "grafana", GRAFANA, secret=GRAFANA_SECRET)
    assert status == 200 and answer["repeats"] == 1
    await settled(bot)
    assert len(alert_posts(sandbox, incident.channel_id)) == 1
    assert len([i for i in await all_incidents(bot) if i.name == incident.name]) == 1
    # The resolution is posted at once, with its timeline event.
    await send(bot, "grafana", resolved(GRAFANA), secret=GRAFANA_SECRET)
    await settled(bot)
    notes = alert_posts(sandbox, incident.channel_id)
    assert len(notes) == 2 and "Resolved: **High memory usage**" in notes[-1]["message"]
    assert "Every alert of this incident is resolved" in notes[-1]["message"]
    kinds = [e.kind for e in await bot.store.timeline(incident.id)]
    assert kinds.count(EventKind.ALERT_RESOLVED) == 1
    # Past the limit, a new firing is noted in the incident (not a new incident).
    bot.ctx.clock.now += 6 * 60_000
    await send(bot, "grafana", GRAFANA, secret=GRAFANA_SECRET)
    await settled(bot)
    notes = alert_posts(sandbox, incident.channel_id)
    assert len(notes) == 3 and "again firing" in notes[-1]["message"]
    assert len([i for i in await all_incidents(bot) if i.name == incident.name]) == 1


async def test_declare_is_refused_like_a_person_when_the_commander_may_not_use_the_playbook(
        start_bot, sandbox, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(RULES.replace("commander: alice", "commander: dave"), encoding="utf-8")
    bot = await start_bot(alerts_rules_file=path, alerts_grafana_secret=GRAFANA_SECRET)
    await make_playbook(bot, sandbox, members=("alice", "bob"))  # dave is not a member
    await send(bot, "grafana", GRAFANA, secret=GRAFANA_SECRET)
    await settled(bot)
    assert await all_incidents(bot) == []
    warning = alert_posts(sandbox, town_square(sandbox))
    assert len(warning) == 1 and "could not start an incident" in warning[0]["message"]
    group = await bot.store.get_alert_group(group_id_for("grafana", "blue-team", GRAFANA["groupKey"]))
    assert group is not None and group.state is GroupState.FAILED and group.last_error


# Flood control ------------------------------------------------------------------------------------

async def test_a_storm_of_5000_alerts_makes_a_bounded_number_of_posts_and_records_every_alert(alert_bot, sandbox):
    bot = alert_bot
    notifications = []
    for n in range(500):
        body = copy.deepcopy(ALERTMANAGER)
        body["groupKey"] = f"{{}}:{{storm=\"{n}\"}}"
        body["alerts"] = [{"status": "firing", "labels": {"alertname": f"Storm{n % 7}", "storm": str(n), "i": str(i)},
                           "annotations": {}, "startsAt": "2023-02-06T13:08:45Z", "endsAt": "0001-01-01T00:00:00Z",
                           "generatorURL": "", "fingerprint": f"storm-{n}-{i}"} for i in range(10)]
        notifications.append(body)
    async with aiohttp.ClientSession() as session:
        limit = asyncio.Semaphore(8)

        async def one(body):
            async with limit:
                return await send(bot, "alertmanager", body, session=session)

        answers = await asyncio.gather(*(one(body) for body in notifications))
    assert all(status == 200 for status, _ in answers)
    await settled(bot)
    assert await bot.store.count_alerts("alertmanager") == 5000
    channel = town_square(sandbox)
    suggestions = alert_posts(sandbox, channel)
    summaries = alert_posts(sandbox, channel, SUMMARY_MARK)
    assert len(suggestions) == 3 and len(summaries) == 1  # max_posts, then one summary for the window
    assert "497 more alert groups** (4970 alerts)" in summaries[0]["message"]
    # The storm repeats: still no new posts in this window; the summary is edited, not reposted.
    async with aiohttp.ClientSession() as session:
        for body in notifications[:50]:
            assert (await send(bot, "alertmanager", body, session=session))[0] == 200
    await settled(bot)
    assert len(alert_posts(sandbox, channel)) == 3 and len(alert_posts(sandbox, channel, SUMMARY_MARK)) == 1
    assert await bot.store.count_alerts() == 5000
    record = await bot.store.get_alert("alertmanager", "storm-0-0")
    assert record.count == 2


# Refusals ---------------------------------------------------------------------------------------

async def test_bad_secrets_malformed_and_oversized_bodies_are_refused_and_change_nothing(alert_bot, sandbox):
    bot = alert_bot
    status, answer = await send(bot, "alertmanager", ALERTMANAGER, secret=None)
    assert status == 401 and "secret" in answer["error"]
    status, _ = await send(bot, "alertmanager", ALERTMANAGER, secret="wrong-secret-0123456789")
    assert status == 401
    # Grafana's secret is not Alertmanager's: one source's secret opens only its own route.
    status, _ = await send(bot, "alertmanager", ALERTMANAGER, secret=GRAFANA_SECRET)
    assert status == 401
    raw = json.dumps(ALERTMANAGER).encode()
    status, _ = await send(bot, "alertmanager", None, secret=None, raw=raw,
                           headers={"X-Command-Center-Signature": "sha256=" + body_signature(AM_SECRET, raw + b" ")})
    assert status == 401  # a signature of another body
    bad = copy.deepcopy(ALERTMANAGER)
    del bad["version"]
    status, answer = await send(bot, "alertmanager", bad)
    assert status == 400 and "version" in answer["error"] and "Nothing was recorded" in answer["error"]
    bad = copy.deepcopy(ALERTMANAGER)
    bad["alerts"][0]["status"] = "burning"
    status, answer = await send(bot, "alertmanager", bad)
    assert status == 400 and "alerts.0.status" in answer["error"]
    status, answer = await send(bot, "alertmanager", None, raw=b"{not json")
    assert status == 400 and "not JSON" in answer["error"]
    status, _ = await send(bot, "alertmanager", None, raw=b"x" * (bot.inbound.limits.max_body_bytes + 1))
    assert status == 413
    status, answer = await send(bot, "generic", {"title": "x"}, secret=AM_SECRET)
    assert status == 404 and "CC_ALERTS_GENERIC_SECRET" in answer["error"]
    assert await bot.store.count_alerts() == 0
    assert alert_posts(sandbox, town_square(sandbox)) == []
    # The signed form of the same body is accepted (Grafana's header name too).
    status, _ = await send(bot, "alertmanager", None, secret=None, raw=raw,
                           headers={"X-Command-Center-Signature": "sha256=" + body_signature(AM_SECRET, raw)})
    assert status == 200
    graw = json.dumps(GRAFANA).encode()
    status, _ = await send(bot, "grafana", None, secret=None, raw=graw,
                           headers={"X-Grafana-Alerting-Signature": body_signature(GRAFANA_SECRET, graw)})
    assert status == 200
    assert await bot.store.count_alerts() == 2


# Restarts ----------------------------------------------------------------------------------------

async def test_a_restart_keeps_dedupe_and_posts_what_was_answered_before_it(start_bot, sandbox, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(RULES.replace("batch_delay: 0s", "batch_delay: 60s"), encoding="utf-8")
    settings = dict(alerts_rules_file=path, alerts_alertmanager_secret=AM_SECRET)
    first = await start_bot(**settings)
    await make_playbook(first, sandbox, members=("alice", "bob"))
    assert (await send(first, "alertmanager", ALERTMANAGER))[0] == 200
    await first.stop()  # answered, recorded, not posted yet (the batch waits 60 s)
    assert alert_posts(sandbox, town_square(sandbox)) == []
    second = await start_bot(**settings)
    jobs = await second.store.list_jobs(kind="alert_notify")
    assert len(jobs) == 1 and jobs[0].state == "pending"
    second.scheduler.clock = _Later(second.scheduler.clock, 61_000)
    second.scheduler.wake()
    await settled(second)
    assert len(alert_posts(sandbox, town_square(sandbox))) == 1
    assert (await send(second, "alertmanager", ALERTMANAGER))[1]["repeats"] == 1
    second.scheduler.clock.ahead_ms += 61_000
    second.scheduler.wake()
    await settled(second)
    posts = alert_posts(sandbox, town_square(sandbox))
    assert len(posts) == 1 and "2 notifications" in posts[0]["message"]


class _Later:
    """A scheduler clock ahead of the real one by ``ahead_ms`` (the batch delay has passed)."""

    def __init__(self, clock, ahead_ms: int) -> None:
        self.clock, self.ahead_ms = clock, ahead_ms

    def now_ms(self) -> int:
        return self.clock.now_ms() + self.ahead_ms

    async def sleep_until(self, when_ms: int, wake: asyncio.Event) -> None:
        await self.clock.sleep_until(when_ms - self.ahead_ms, wake)


async def test_the_bot_does_not_start_with_a_broken_rules_file(sandbox, tmp_path):
    from bot import CommandCenter, StartupError
    from tests.e2e.conftest import bot_settings

    path = tmp_path / "rules.yaml"
    for text, expected in (
            (RULES.replace("channel: town-square", "channel: off-topic", 1),
             "Line 7, rule 'blue-team', channel: the bot is not a member of a channel ~off-topic in team acme"),
            (RULES.replace("mode: declare", "mode: yell", 1), "Line 14, rule 'blue-team', mode: the mode is"),
            ("rules:\n  - name: [\n", "Line 3: not valid YAML")):
        path.write_text(text, encoding="utf-8")
        app = CommandCenter(bot_settings(sandbox, tmp_path / "data", alerts_rules_file=path))
        with pytest.raises(StartupError) as caught:
            await app.start()
        assert str(caught.value).startswith(f"CC_ALERTS_RULES_FILE: {path}") and expected in str(caught.value), \
            str(caught.value)
