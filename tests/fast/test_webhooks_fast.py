"""Outgoing webhooks in the fast layer (services/webhooks.py, docs/webhooks.md): the outbox job is
written in the change's own transaction, sent off the request path with the documented body and
signature, retried with a seeded jittered backoff on a simulated clock, given up and recorded, sent
again (same key) after a crash mid-delivery, redacted for team targets of private incidents; and
the configuration surfaces (YAML import, settings dialog) refuse internal addresses with a clear
message and tell a new target's secret once.

The sender is replaced by a recorder (no sockets here); the real HTTP path is
tests/gateway/test_webhooks_out.py and tests/e2e/test_webhooks.py."""

from __future__ import annotations

import json
import random
import time

import pytest

from domain.models import WebhookTarget
from gateway.webhooks_out import (
    HEADER_EVENT,
    HEADER_IDEMPOTENCY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    AddressPolicy,
    DeliveryError,
    Sent,
    WebhookSender,
    signature,
    target_secret,
)
from services.scheduler import Backoff, CrashHooks, Firing, ManualClock
from services.webhooks import WEBHOOK_KIND, TeamTarget
from settings import TeamWebhook
from storage.jobs import JobState

LEASE_MS = 60_000
HOOK = "https://93.184.215.14/command-center"
OTHER = "https://93.184.215.15/audit"


class Killed(BaseException):
    """The process 'died' at a kill point (instead of SIGKILL)."""


class RaisingHooks(CrashHooks):
    def __init__(self, point: str) -> None:
        super().__init__({})
        self.kill_at = point

    def kill_if(self, point: str) -> None:
        if point == self.kill_at:
            raise Killed(point)


class Recorder(WebhookSender):
    """Records every POST; ``down`` makes it fail like a receiver that does not answer."""

    def __init__(self) -> None:
        super().__init__(AddressPolicy(""), wall_clock=lambda: 1_700_000_000.0)
        self.sent: list[tuple[str, bytes, dict[str, str]]] = []
        self.down = False
        self.status = 200

    async def post(self, url, body, headers):
        if self.down:
            raise DeliveryError("ClientConnectorError: connection refused", retryable=True)
        if self.status >= 400:
            raise DeliveryError(f"the receiver answered {self.status}", retryable=self.status >= 500,
                                status=self.status)
        self.sent.append((url, body, dict(headers)))
        return Sent(200, b"ok")

    def bodies(self):
        return [json.loads(body) for _, body, _ in self.sent]


@pytest.fixture
def hooks(fast):
    fast.clock = ManualClock(int(time.time() * 1000))
    fast.app.scheduler.clock = fast.clock
    recorder = Recorder()
    service = fast.app.webhooks
    service.sender = recorder
    # A fast, seeded backoff: 1 s doubling, capped at 8 s, 5 attempts, an hour at most.
    backoff = service.backoff
    backoff.base_ms, backoff.max_ms, backoff.max_attempts, backoff.max_age_ms = 1_000, 8_000, 5, 3_600_000
    backoff.rng = random.Random(7)
    fast.recorder = recorder
    return fast


async def _playbook_with_hooks(fast, *targets: WebhookTarget, public: bool = True):
    playbook = await fast.playbook(public=public)
    return await fast.store.update_playbook(playbook.model_copy(update={"webhooks": targets}))


async def _confirmed(fast, user, incident, words):
    """``/incident end`` or ``restart`` and its confirmation dialog."""
    channel = fast.channel_of(incident)
    assert (await fast.slash(user, channel, words)).text == ""
    return await fast.submit(user, fast.mm.dialogs[-1], {}, channel=channel)


async def _settle(fast):
    fast.app.scheduler.wake()
    await fast.app.scheduler.settle()


async def _post_update(fast, incident, text="Rolled back; errors falling"):
    reply = await fast.slash(fast.people.alice, fast.channel_of(incident), "update")
    assert reply.text == "", reply.text
    outcome = await fast.submit(fast.people.alice, fast.mm.dialogs[-1], {"text": text, "next_in": "none"},
                                channel=fast.channel_of(incident))
    assert outcome.closes, (outcome.errors, outcome.error)


async def test_a_start_writes_its_webhook_job_with_the_incident_and_sends_nothing_on_the_request_path(hooks):
    playbook = await _playbook_with_hooks(hooks, WebhookTarget(id="t" * 26, url=HOOK))
    incident = await hooks.start(playbook=playbook)
    [job] = await hooks.store.list_jobs(kind=WEBHOOK_KIND)
    assert job.state is JobState.PENDING and job.key.endswith(":" + "t" * 26)
    assert job.incident_id is None  # not cancelled with an ended incident's jobs: "ended" is an event too
    assert job.payload["incident_id"] == incident.id and job.payload["kind"] == "created"
    assert hooks.recorder.sent == []  # the scheduler was not running: the start did not wait for it
    [created] = [e for e in await hooks.store.timeline(incident.id) if e.kind == "created"]
    assert job.payload["event_id"] == created.id


async def test_the_outbox_write_is_in_the_changes_transaction(hooks, monkeypatch):
    playbook = await _playbook_with_hooks(hooks, WebhookTarget(id="t" * 26, url=HOOK))
    incident = await hooks.start(playbook=playbook)
    store = hooks.store

    async def broken(*args, **kwargs):
        raise RuntimeError("disk full")
    monkeypatch.setattr(store, "schedule_job", broken)
    before = await store.get_incident(incident.id)
    outcome = await _confirmed(hooks, hooks.people.alice, incident, "end")
    assert not outcome.closes
    after = await store.get_incident(incident.id)
    assert after.is_ongoing and after.version == before.version  # the change went with its failed outbox write
    assert not [e for e in await store.timeline(incident.id) if e.kind == "ended"]


async def test_each_lifecycle_event_is_delivered_signed_with_the_documented_body(hooks):
    target = WebhookTarget(id="t" * 26, url=HOOK)
    playbook = await _playbook_with_hooks(hooks, target)
    await hooks.app.scheduler.start()
    try:
        incident = await hooks.start(playbook=playbook)
        await _post_update(hooks, incident)
        bob = hooks.people.bob
        await hooks.mm.add_channel_member(incident.channel_id, bob.id)
        await hooks.slash(hooks.people.alice, hooks.channel_of(incident), f"commander @{bob.username}")
        assert (await _confirmed(hooks, bob, incident, "end")).closes
        assert (await _confirmed(hooks, bob, incident, "restart")).closes
        await _settle(hooks)
    finally:
        await hooks.app.scheduler.stop()
    events = [b["event"] for b in hooks.recorder.bodies()]
    assert sorted(events) == sorted(["incident.created", "incident.status_update", "incident.commander_changed",
                                     "incident.ended", "incident.restarted"])
    secret = target_secret(hooks.ctx.signer, target.id)
    for url, body, headers in hooks.recorder.sent:
        assert url == HOOK
        assert headers[HEADER_SIGNATURE] == signature(secret, headers[HEADER_TIMESTAMP], body)
        assert headers[HEADER_TIMESTAMP] == "1700000000"
        document = json.loads(body)
        assert headers[HEADER_IDEMPOTENCY] == document["id"] and headers[HEADER_EVENT] == document["event"]
        assert document["version"] == 1 and document["incident"]["id"] == incident.id
        assert document["incident"]["name"] == "Checkout errors" and document["incident"]["private"] is False
        assert document["incident"]["url"].endswith(f"/acme/channels/{hooks.channel_of(incident).name}")
    by_event = {b["event"]: b for b in hooks.recorder.bodies()}
    update = by_event["incident.status_update"]
    assert update["details"]["message"] == "Rolled back; errors falling" and update["details"]["final"] is False
    assert update["actor"] == {"id": hooks.people.alice.id, "username": "alice"}
    changed = by_event["incident.commander_changed"]
    assert changed["details"]["commander"]["username"] == "bob"
    assert changed["incident"]["commander"]["username"] == "bob"
    ended = by_event["incident.ended"]
    assert ended["incident"]["status"] == "ended" and ended["details"]["steps_total"] == 3
    assert by_event["incident.created"]["incident"]["status"] == "ongoing"
    assert by_event["incident.created"]["incident"]["severity"] is None


async def test_a_target_gets_only_the_events_it_asked_for(hooks):
    playbook = await _playbook_with_hooks(hooks, WebhookTarget(id="t" * 26, url=HOOK, events=("ended",)))
    await hooks.app.scheduler.start()
    try:
        incident = await hooks.start(playbook=playbook)
        await _post_update(hooks, incident)
        assert (await _confirmed(hooks, hooks.people.alice, incident, "end")).closes
        await _settle(hooks)
    finally:
        await hooks.app.scheduler.stop()
    assert [b["event"] for b in hooks.recorder.bodies()] == ["incident.ended"]


async def test_receiver_down_for_a_while_is_retried_with_jittered_backoff_then_delivered_with_one_key(hooks):
    playbook = await _playbook_with_hooks(hooks, WebhookTarget(id="t" * 26, url=HOOK, events=("created",)))
    hooks.recorder.down = True
    await hooks.app.scheduler.start()
    try:
        await hooks.start(playbook=playbook)
        await _settle(hooks)
        [job] = await hooks.store.list_jobs(kind=WEBHOOK_KIND)
        delays = []
        for _ in range(3):  # three failed attempts, each retried later than the one before
            job = await hooks.store.get_job(job.id)
            assert job.state is JobState.PENDING and "connection refused" in (job.last_error or "")
            delays.append(job.due_at - hooks.clock.now_ms())
            hooks.clock.set(job.due_at)
            await _settle(hooks)
        assert hooks.recorder.sent == []
        # Equal jitter from the seeded rng: half of 1 s, 2 s, 4 s fixed, half drawn.
        assert [500 <= delays[0] <= 1000, 1000 <= delays[1] <= 2000, 2000 <= delays[2] <= 4000] == [True] * 3
        assert len(set(delays)) == 3
        hooks.recorder.down = False  # the receiver is back
        job = await hooks.store.get_job(job.id)
        hooks.clock.set(job.due_at)
        await _settle(hooks)
    finally:
        await hooks.app.scheduler.stop()
    [(_, body, headers)] = hooks.recorder.sent
    assert headers[HEADER_IDEMPOTENCY] == job.id == json.loads(body)["id"]
    assert headers["X-CommandCenter-Attempt"] == "5"  # four failed attempts before
    assert (await hooks.store.get_job(job.id)).state is JobState.DONE


def test_the_same_seed_gives_the_same_delays_and_the_cap_holds():
    from storage.jobs import Job

    def delays(seed: int) -> list[int | None]:
        backoff = Backoff(base_ms=1000, max_ms=8000, max_attempts=20, rng=random.Random(seed))
        return [backoff.delay_ms(Job(id="j", kind="webhook", key="k", due_at=0, created_at=0, attempts=n), 0,
                                 RuntimeError()) for n in range(1, 10)]
    assert delays(3) == delays(3) != delays(4)
    assert all(d is not None and d <= 8000 for d in delays(3)) and all(d >= 4000 for d in delays(3)[3:])


async def test_given_up_after_its_attempts_and_recorded(hooks):
    playbook = await _playbook_with_hooks(hooks, WebhookTarget(id="t" * 26, url=HOOK, events=("created",)))
    hooks.recorder.down = True
    await hooks.app.scheduler.start()
    try:
        await hooks.start(playbook=playbook)
        await _settle(hooks)
        [job] = await hooks.store.list_jobs(kind=WEBHOOK_KIND)
        for _ in range(10):
            job = await hooks.store.get_job(job.id)
            if job.state is not JobState.PENDING:
                break
            hooks.clock.set(job.due_at)
            await _settle(hooks)
    finally:
        await hooks.app.scheduler.stop()
    job = await hooks.store.get_job(job.id)
    assert job.state is JobState.FAILED and job.attempts == 5
    assert job.last_error.startswith("gave up after 5 attempts") and "connection refused" in job.last_error


async def test_given_up_once_too_old(hooks):
    playbook = await _playbook_with_hooks(hooks, WebhookTarget(id="t" * 26, url=HOOK, events=("created",)))
    hooks.recorder.down = True
    await hooks.start(playbook=playbook)
    [job] = await hooks.store.list_jobs(kind=WEBHOOK_KIND)
    hooks.clock.advance(3_600_000)  # the bot was down for an hour: the first attempt is already too late
    await hooks.app.scheduler.start()
    try:
        await _settle(hooks)
    finally:
        await hooks.app.scheduler.stop()
    job = await hooks.store.get_job(job.id)
    assert job.state is JobState.FAILED and job.last_error.startswith("gave up: older than 60 minutes")


async def test_a_refusal_that_will_not_change_gives_up_at_once(hooks):
    playbook = await _playbook_with_hooks(hooks, WebhookTarget(id="t" * 26, url=HOOK, events=("created",)))
    hooks.recorder.status = 404
    await hooks.app.scheduler.start()
    try:
        await hooks.start(playbook=playbook)
        await _settle(hooks)
    finally:
        await hooks.app.scheduler.stop()
    [job] = await hooks.store.list_jobs(kind=WEBHOOK_KIND)
    assert job.state is JobState.FAILED and job.attempts == 1 and "not retryable" in job.last_error


async def test_an_ended_incidents_events_are_still_sent(hooks):
    playbook = await _playbook_with_hooks(hooks, WebhookTarget(id="t" * 26, url=HOOK, events=("ended",)))
    incident = await hooks.start(playbook=playbook)
    assert (await _confirmed(hooks, hooks.people.alice, incident, "end")).closes
    hooks.app.scheduler.incident_changed(await hooks.fresh(incident))  # the card listener cancels its jobs
    await hooks.app.scheduler.start()
    try:
        await _settle(hooks)
    finally:
        await hooks.app.scheduler.stop()
    assert [b["event"] for b in hooks.recorder.bodies()] == ["incident.ended"]


async def test_a_crash_mid_delivery_sends_it_again_with_the_same_key(hooks):
    playbook = await _playbook_with_hooks(hooks, WebhookTarget(id="t" * 26, url=HOOK, events=("created",)))
    await hooks.start(playbook=playbook)
    [job] = await hooks.store.list_jobs(kind=WEBHOOK_KIND)
    now = hooks.clock.now_ms()
    [claimed] = await hooks.store.claim_due_jobs(now, "dead", lease_ms=LEASE_MS, limit=5, kinds=[WEBHOOK_KIND])
    assert await hooks.store.begin_job_delivery(claimed.id, claimed.token, now=now)
    hooks.app.scheduler.hooks = RaisingHooks("after_send")
    with pytest.raises(Killed):
        await hooks.app.webhooks.deliver(Firing(claimed, now))
        hooks.app.scheduler.hooks.kill_if("after_send")  # sent; the process dies before completing the job
    hooks.app.scheduler.hooks = None
    hooks.clock.advance(LEASE_MS + 1)  # the dead process's lease runs out
    await hooks.app.scheduler.start()
    try:
        await _settle(hooks)
    finally:
        await hooks.app.scheduler.stop()
    keys = [headers[HEADER_IDEMPOTENCY] for _, _, headers in hooks.recorder.sent]
    assert keys == [job.id, job.id]  # at least once: one duplicate, the same key
    first, duplicate = hooks.recorder.bodies()
    assert first == duplicate  # the same body too
    assert (await hooks.store.get_job(job.id)).state is JobState.DONE


async def test_a_private_incident_is_sent_in_full_to_its_playbook_and_redacted_to_the_team(hooks):
    team = TeamTarget(hooks.acme.id, WebhookTarget(id="u" * 26, url=OTHER), "team-secret-0123456789")
    hooks.app.webhooks.teams = {hooks.acme.id: [team]}
    playbook = await _playbook_with_hooks(hooks, WebhookTarget(id="t" * 26, url=HOOK), public=False)
    await hooks.app.scheduler.start()
    try:
        incident = await hooks.start(playbook=playbook, name="Secret breach")
        await _post_update(hooks, incident, "Attacker identified")
        await _settle(hooks)
    finally:
        await hooks.app.scheduler.stop()
    by_target: dict[str, list[dict]] = {}
    for url, body, headers in hooks.recorder.sent:
        by_target.setdefault(url, []).append(json.loads(body))
        if url == OTHER:
            assert headers[HEADER_SIGNATURE] == signature(team.secret, headers[HEADER_TIMESTAMP], body)
    full = {b["event"]: b for b in by_target[HOOK]}
    assert full["incident.status_update"]["details"]["message"] == "Attacker identified"
    assert full["incident.created"]["incident"]["name"] == "Secret breach"
    assert full["incident.created"]["incident"]["private"] is True
    for redacted in by_target[OTHER]:
        assert set(redacted) == {"version", "id", "event", "occurred_at", "incident"}
        assert set(redacted["incident"]) == {"id", "team_id", "status", "severity", "private"}
        assert redacted["incident"]["private"] is True and "Secret" not in json.dumps(redacted)
        assert "Attacker" not in json.dumps(redacted)
    assert sorted(b["event"] for b in by_target[OTHER]) == ["incident.created", "incident.status_update"]


async def test_a_url_both_team_and_playbook_target_is_sent_once(hooks):
    team = TeamTarget(hooks.acme.id, WebhookTarget(id="u" * 26, url=HOOK), "team-secret-0123456789")
    hooks.app.webhooks.teams = {hooks.acme.id: [team]}
    playbook = await _playbook_with_hooks(hooks, WebhookTarget(id="t" * 26, url=HOOK, events=("created",)))
    await hooks.app.scheduler.start()
    try:
        await hooks.start(playbook=playbook)
        await _settle(hooks)
    finally:
        await hooks.app.scheduler.stop()
    assert [b["event"] for b in hooks.recorder.bodies()] == ["incident.created"]


def test_team_targets_from_the_settings_are_checked():
    from services.webhooks import team_targets
    entry = TeamWebhook(team_id="a" * 26, url="http://127.0.0.1:9/x", secret="s" * 16)
    with pytest.raises(ValueError, match=r"CC_TEAM_WEBHOOKS entry 1: .*internal address"):
        team_targets([entry], AddressPolicy(""))
    [allowed] = team_targets([entry], AddressPolicy("127.0.0.1"))
    assert allowed.target.url == "http://127.0.0.1:9/x" and allowed.secret == "s" * 16
    with pytest.raises(ValueError, match="not a webhook event"):
        team_targets([entry.model_copy(update={"events": ("deleted",)})], AddressPolicy("127.0.0.1"))


# -- configuration: the YAML import and the settings dialog ------------------------------------------

YAML = """title: Payments outage
members: [alice]
webhooks:
  - url: {url}
    events: [created, ended]
stages:
  - title: Triage
    steps: [Acknowledge]
"""


def _told(fast) -> list[str]:
    """What alice was told privately (ephemeral, or by direct message)."""
    return ([e.message for e in fast.mm.ephemerals if e.user_id == fast.people.alice.id]
            + [p.message for p in fast.mm.dms_to(fast.people.alice)])


async def _import(fast, text):
    """``/incident playbook import`` and its dialog: (field errors, what alice was told)."""
    assert (await fast.slash(fast.people.alice, fast.town, "playbook import")).text == ""
    before = len(_told(fast))
    outcome = await fast.submit(fast.people.alice, fast.mm.dialogs[-1], {"yaml": text})
    return outcome.errors.get("yaml", ""), "\n".join(_told(fast)[before:])


async def test_an_import_with_an_internal_webhook_is_refused_at_its_line(hooks):
    text, _ = await _import(hooks, YAML.format(url="http://169.254.169.254/latest/meta-data"))
    assert "Line 4, webhooks" in text and "internal address" in text and "CC_WEBHOOK_ALLOWED_INTERNAL" in text, text
    assert await hooks.store.playbooks_for_user(hooks.acme.id, hooks.people.alice.id) == []


@pytest.mark.parametrize("url, words", [
    ("file:///etc/passwd", "must start with https://"),
    ("http://hooks.example.com@127.0.0.1/", "user name or password"),
    ("http://2130706433/", "form that hides it"),
    ("http://[::ffff:127.0.0.1]/", "internal address"),
])
async def test_an_import_with_a_hostile_webhook_url_is_refused(hooks, url, words):
    text, _ = await _import(hooks, YAML.format(url=url))
    assert words in text, text
    assert await hooks.store.playbooks_for_user(hooks.acme.id, hooks.people.alice.id) == []


async def test_an_import_adds_webhooks_and_tells_each_new_secret_once(hooks):
    errors, told = await _import(hooks, YAML.format(url=HOOK))
    assert errors == ""
    [playbook] = await hooks.store.playbooks_for_user(hooks.acme.id, hooks.people.alice.id)
    [target] = playbook.webhooks
    assert target.url == HOOK and target.events == ("created", "ended")
    secret = target_secret(hooks.ctx.signer, target.id)
    assert secret in told and "shown only now" in told
    errors, again = await _import(hooks, YAML.format(url=HOOK))
    [same] = await hooks.store.playbooks_for_user(hooks.acme.id, hooks.people.alice.id)
    assert errors == "" and "Updated the playbook" in again
    assert same.webhooks[0].id == target.id and "whsec_" not in again  # kept: not told again


async def test_the_export_carries_the_urls_and_never_a_secret(hooks):
    assert (await _import(hooks, YAML.format(url=HOOK)))[0] == ""
    await hooks.slash(hooks.people.alice, hooks.town, 'playbook export "Payments outage"')
    [post] = [p for p in hooks.mm.dms_to(hooks.people.alice) if p.file_ids]
    text = hooks.mm.files[post.file_ids[0]][1].decode()
    assert f"url: {HOOK}" in text and "- created" in text and "whsec_" not in text


async def test_the_settings_dialog_saves_webhooks_and_refuses_an_internal_one_at_its_field(hooks):
    playbook = await hooks.playbook()
    reply = await hooks.slash(hooks.people.alice, hooks.town, f"playbook settings {playbook.title}")
    assert reply.text == "", reply.text
    dialog = hooks.mm.dialogs[-1]
    assert any(e["name"] == "webhooks" for e in dialog.dialog["elements"])
    outcome = await hooks.submit(hooks.people.alice, dialog, {"reminders": "both", "webhooks": "http://10.0.0.7/x"})
    assert "internal address" in outcome.errors.get("webhooks", ""), outcome
    outcome = await hooks.submit(hooks.people.alice, dialog, {"reminders": "both", "webhooks": f"{HOOK} created,bogus"})
    assert "not a webhook event" in outcome.errors.get("webhooks", ""), outcome
    outcome = await hooks.submit(hooks.people.alice, dialog,
                                 {"reminders": "both", "webhooks": f"{HOOK} created ended\n{OTHER}"})
    assert outcome.closes, outcome
    saved = await hooks.store.get_playbook(playbook.id)
    assert [(t.url, t.events) for t in saved.webhooks] == [(HOOK, ("created", "ended")), (OTHER, ())]
    told = _told(hooks)
    assert any(target_secret(hooks.ctx.signer, saved.webhooks[1].id) in m for m in told)


async def _settings_dialog(fast, user, playbook):
    reply = await fast.slash(user, fast.town, f'playbook settings "{playbook.title}"')
    assert reply.text == "", reply.text
    return fast.mm.dialogs[-1]


async def test_someone_no_longer_a_member_of_the_playbook_cannot_set_its_webhooks(hooks):
    playbook = await hooks.playbook(members=(hooks.people.alice, hooks.people.bob))
    dialog = await _settings_dialog(hooks, hooks.people.alice, playbook)
    current = await hooks.store.get_playbook(playbook.id)
    await hooks.store.update_playbook(current.model_copy(update={"member_ids": (hooks.people.bob.id,)}))
    outcome = await hooks.submit(hooks.people.alice, dialog, {"reminders": "both", "webhooks": HOOK})
    assert not outcome.closes and (outcome.error or "").startswith("Playbook not found"), outcome
    assert (await hooks.store.get_playbook(playbook.id)).webhooks == ()
    reply = await hooks.slash(hooks.people.dave, hooks.town, f'playbook settings "{playbook.title}"')
    assert "No playbook" in reply.text  # another team's user does not see it at all


async def test_too_many_or_repeated_webhooks_are_refused_at_the_field(hooks):
    playbook = await hooks.playbook()
    dialog = await _settings_dialog(hooks, hooks.people.alice, playbook)
    six = "\n".join(f"https://93.184.215.{n}/hook" for n in range(1, 7))
    outcome = await hooks.submit(hooks.people.alice, dialog, {"reminders": "both", "webhooks": six})
    assert "At most 5 webhooks" in outcome.errors.get("webhooks", ""), outcome
    outcome = await hooks.submit(hooks.people.alice, dialog, {"reminders": "both", "webhooks": f"{HOOK}\n{HOOK} ended"})
    assert "listed twice" in outcome.errors.get("webhooks", ""), outcome
    assert (await hooks.store.get_playbook(playbook.id)).webhooks == ()
