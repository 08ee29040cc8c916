"""An update's copies (broadcast channels, followers' direct messages) are the scheduler's
``update_fanout`` job: written in the update's own transaction, sent once, and after a crash
mid-delivery only the copies not yet sent are sent (services/updates.py); and the one "may post"
check (services/channels.py) refuses a moderated channel at configure time and at send time alike.

Time is simulated: the scheduler runs on a ManualClock."""

from __future__ import annotations

import time

import pytest

from services.channels import ChannelPosting
from services.playbooks import PlaybookService
from services.scheduler import CrashHooks, Firing, ManualClock
from services.updates import FANOUT_KIND, FANOUT_PROP, FANOUT_TO_PROP, UPDATE_MARK
from storage.jobs import JobState

LEASE_MS = 60_000


class Killed(BaseException):
    """The process 'died' at a kill point (instead of SIGKILL)."""


class RaisingHooks(CrashHooks):
    def __init__(self, point: str) -> None:
        super().__init__({})
        self.kill_at = point

    def kill_if(self, point: str) -> None:
        if point == self.kill_at:
            raise Killed(point)


@pytest.fixture
def fan(fast):
    fast.clock = ManualClock(int(time.time() * 1000))
    fast.app.scheduler.clock = fast.clock
    return fast


async def _setup(fast):
    """An incident with two broadcast channels and two followers outside its channel (bob, carol)."""
    mm, people = fast.mm, fast.people
    ops = mm.add_channel(fast.acme, "ops", [people.alice])
    news = mm.add_channel(fast.acme, "news", [people.alice])
    incident = await fast.start()

    def change(current):
        updates = current.updates.model_copy(update={"broadcast_channel_ids": (ops.id, news.id)})
        return current.model_copy(update={"updates": updates,
                                          "follower_ids": (people.bob.id, people.carol.id, people.alice.id)}), []
    incident, _ = await fast.store.mutate_incident(incident.id, change)
    return incident, ops, news


async def _post_update(fast, incident, text="Mitigated"):
    reply = await fast.slash(fast.people.alice, fast.channel_of(incident), "update")
    assert reply.text == "", reply.text
    outcome = await fast.submit(fast.people.alice, fast.mm.dialogs[-1], {"text": text, "next_in": "none"},
                                channel=fast.channel_of(incident))
    assert outcome.closes, (outcome.errors, outcome.error)


def _copies(fast, channel_id, job_id=None):
    return [p for p in fast.mm.posts_in(channel_id)
            if FANOUT_PROP in p.props and (job_id is None or p.props[FANOUT_PROP] == job_id)]


def _all_copies(fast, ops, news, job_id=None):
    people = fast.people
    return {"ops": len(_copies(fast, ops.id, job_id)), "news": len(_copies(fast, news.id, job_id)),
            "bob": len([p for p in fast.mm.dms_to(people.bob) if p.props.get(FANOUT_PROP)]),
            "carol": len([p for p in fast.mm.dms_to(people.carol) if p.props.get(FANOUT_PROP)])}


async def _settle(fast):
    fast.app.scheduler.wake()
    await fast.app.scheduler.settle()


async def test_an_update_schedules_one_fanout_job_due_now_and_the_answer_sends_no_copy(fan):
    incident, ops, news = await _setup(fan)
    await _post_update(fan, incident)
    [job] = await fan.store.list_jobs(kind=FANOUT_KIND)
    assert job.state is JobState.PENDING and job.due_at == fan.clock.now_ms()
    assert job.payload["incident_id"] == incident.id and job.payload["author_id"] == fan.people.alice.id
    assert job.incident_id is None  # not cancelled with an ended incident's jobs: an end has copies too
    assert "Mitigated" not in str(dict(job.payload))  # ids only: the text is read from the timeline
    assert len([p for p in fan.mm.posts_in(incident.channel_id) if UPDATE_MARK in p.props]) == 1
    assert _all_copies(fan, ops, news) == {"ops": 0, "news": 0, "bob": 0, "carol": 0}


async def test_no_job_when_nobody_gets_a_copy(fan):
    incident = await fan.start()
    await _post_update(fan, incident)
    assert await fan.store.list_jobs(kind=FANOUT_KIND) == []


async def test_the_job_sends_each_copy_once_with_its_job_and_target(fan):
    incident, ops, news = await _setup(fan)
    await fan.app.scheduler.start()
    try:
        await _post_update(fan, incident)
        await _settle(fan)
        [job] = await fan.store.list_jobs(kind=FANOUT_KIND)
        assert job.state is JobState.DONE
        assert _all_copies(fan, ops, news, job.id) == {"ops": 1, "news": 1, "bob": 1, "carol": 1}
        [copy] = _copies(fan, ops.id)
        assert copy.props[FANOUT_TO_PROP] == f"channel:{ops.id}" and "Mitigated" in copy.message
        [dm] = fan.mm.dms_to(fan.people.carol)
        assert dm.props[FANOUT_TO_PROP] == f"user:{fan.people.carol.id}" and "You follow" in dm.message
        assert not any(p.props.get(FANOUT_PROP) for p in fan.mm.dms_to(fan.people.alice))  # not the author
        fan.clock.advance(10 * LEASE_MS)
        await _settle(fan)
        assert _all_copies(fan, ops, news) == {"ops": 1, "news": 1, "bob": 1, "carol": 1}
        assert fan.mm.count("channel_posts") == 0  # no crash: the delivery check is never asked
    finally:
        await fan.app.scheduler.stop()


async def _crash_while_delivering(fast, point):
    """The job is claimed and its delivery begun by a process that 'dies' at ``point``."""
    [job] = await fast.store.list_jobs(kind=FANOUT_KIND)
    now = fast.clock.now_ms()
    [claimed] = await fast.store.claim_due_jobs(now, "dead-process", lease_ms=LEASE_MS, limit=10, kinds=[FANOUT_KIND])
    assert await fast.store.begin_job_delivery(claimed.id, claimed.token, now=now)
    fast.app.scheduler.hooks = RaisingHooks(point)
    try:
        with pytest.raises(Killed):
            await fast.app.updates.fan_out(Firing(claimed, now))
            fast.app.scheduler.hooks.kill_if("after_send")  # the handler returned; the process dies before completing
    finally:
        fast.app.scheduler.hooks = None
    return job


async def test_after_a_crash_after_the_first_copy_only_the_missing_copies_are_sent(fan):
    incident, ops, news = await _setup(fan)
    await _post_update(fan, incident)
    job = await _crash_while_delivering(fan, "after_first_copy")
    assert _all_copies(fan, ops, news) == {"ops": 1, "news": 0, "bob": 0, "carol": 0}
    fan.clock.advance(LEASE_MS + 1)  # the dead process's lease expires
    fan.mm.calls.clear()
    await fan.app.scheduler.start()
    try:
        await _settle(fan)
    finally:
        await fan.app.scheduler.stop()
    assert _all_copies(fan, ops, news, job.id) == {"ops": 1, "news": 1, "bob": 1, "carol": 1}
    assert (await fan.store.get_job(job.id)).state is JobState.DONE
    assert fan.mm.count("channel_posts") == 4  # the delivery check: one read per target
    assert fan.app.scheduler.stats.already_delivered == 0 and fan.app.scheduler.stats.fired == 1


async def test_after_a_crash_once_every_copy_was_sent_nothing_is_sent_again(fan):
    incident, ops, news = await _setup(fan)
    await _post_update(fan, incident)
    job = await _crash_while_delivering(fan, "after_send")
    assert _all_copies(fan, ops, news) == {"ops": 1, "news": 1, "bob": 1, "carol": 1}
    fan.clock.advance(LEASE_MS + 1)
    fan.mm.calls.clear()
    await fan.app.scheduler.start()
    try:
        await _settle(fan)
    finally:
        await fan.app.scheduler.stop()
    assert _all_copies(fan, ops, news) == {"ops": 1, "news": 1, "bob": 1, "carol": 1}
    assert fan.mm.count("create_post") == 0
    assert (await fan.store.get_job(job.id)).state is JobState.DONE
    assert fan.app.scheduler.stats.already_delivered == 1


async def test_the_final_update_of_an_end_reaches_the_followers_through_the_job(fan):
    incident, ops, news = await _setup(fan)
    await fan.app.scheduler.start()
    try:
        channel = fan.channel_of(incident)
        await fan.slash(fan.people.alice, channel, "end")
        outcome = await fan.submit(fan.people.alice, fan.mm.dialogs[-1], {"final_update": "Rolled back"},
                                   channel=channel)
        assert outcome.closes
        await _settle(fan)
    finally:
        await fan.app.scheduler.stop()
    [job] = await fan.store.list_jobs(kind=FANOUT_KIND)
    assert job.state is JobState.DONE  # not cancelled although the incident has ended
    assert _all_copies(fan, ops, news, job.id) == {"ops": 1, "news": 1, "bob": 1, "carol": 1}
    [dm] = fan.mm.dms_to(fan.people.bob)
    assert "ended by @alice" in dm.message and "Rolled back" in dm.message


# -- one "may post" check -------------------------------------------------------------------------

async def test_a_moderated_broadcast_channel_is_refused_at_configure_time_and_at_send_time(fan):
    mm, people = fan.mm, fan.people
    announcements = mm.add_channel(fan.acme, "announcements", [people.alice])
    playbooks = PlaybookService(fan.ctx, fan.app.directory, fan.app.updates.posting)
    assert playbooks.posting is fan.app.updates.posting  # one check, shared (bot.py shares it too)
    assert await playbooks.broadcast_channel(fan.acme.id, people.alice.id, "announcements") == (announcements.id, "")
    incident = await fan.start()

    def change(current):
        updates = current.updates.model_copy(update={"broadcast_channel_ids": (announcements.id,)})
        return current.model_copy(update={"updates": updates}), []
    incident, _ = await fan.store.mutate_incident(incident.id, change)
    # Channel moderation: the members' roles become the channel scheme's user role, without create_post.
    mm.member_roles[(announcements.id, people.alice.id)] = f"{announcements.id}_channel_user"
    channel_id, why = await playbooks.broadcast_channel(fan.acme.id, people.alice.id, "announcements")
    assert channel_id == "" and why == "~announcements: you cannot post in it"
    await fan.app.scheduler.start()
    try:
        await _post_update(fan, incident, "Still degraded")
        await _settle(fan)
    finally:
        await fan.app.scheduler.stop()
    assert _copies(fan, announcements.id) == []
    assert "~announcements: you cannot post in it" in mm.dms_to(people.alice)[-1].message


async def test_roles_answers_are_kept_per_role_set_for_a_short_time():
    asked: list[tuple[str, ...]] = []

    class Client:
        async def roles_grant(self, names, permission):
            asked.append(tuple(names))
            return "channel_user" in names

    now = [0]
    posting = ChannelPosting(Client(), ttl_ms=30_000, clock=lambda: now[0])  # type: ignore[arg-type]
    assert await posting.roles_may_post("channel_user channel_admin")
    assert await posting.roles_may_post("channel_admin channel_user")  # the same set
    assert not await posting.roles_may_post("x_channel_user")
    assert not await posting.roles_may_post("")  # no roles: no post, nothing asked
    assert asked == [("channel_admin", "channel_user"), ("x_channel_user",)]
    now[0] = 30_000
    assert await posting.roles_may_post("channel_user channel_admin")  # expired: asked again
    assert len(asked) == 3
