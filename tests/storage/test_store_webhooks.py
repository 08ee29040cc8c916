"""Webhook targets in the store (both backends): a playbook's are saved and replaced with it, an
incident keeps the copy it started with (later playbook edits never touch it), and webhook jobs —
the outbox — are written atomically with an incident change inside one transaction."""

from __future__ import annotations

import pytest

from domain import incidents as ops
from domain.models import WebhookTarget
from storage.jobs import JobState

from .builders import T0, incident, playbook

HOOK = WebhookTarget(id="a" * 26, url="https://hooks.example.com/cc", events=("created", "ended"))
OTHER = WebhookTarget(id="b" * 26, url="https://audit.example.com/x")


async def test_a_playbooks_webhooks_are_saved_and_replaced(store):
    created = await store.create_playbook(playbook(webhooks=(HOOK,)))
    assert (await store.get_playbook(created.id)).webhooks == (HOOK,)
    saved = await store.update_playbook(created.model_copy(update={"webhooks": (OTHER, HOOK)}))
    assert (await store.get_playbook(created.id)).webhooks == (OTHER, HOOK) == saved.webhooks
    await store.update_playbook(saved.model_copy(update={"webhooks": ()}))
    assert (await store.get_playbook(created.id)).webhooks == ()
    [listed] = await store.playbooks_for_user("team1", "alice")
    assert listed.webhooks == ()


async def test_an_incident_keeps_the_targets_it_started_with(store):
    pb = await store.create_playbook(playbook(webhooks=(HOOK,)))
    inc, events = incident(pb)
    await store.create_incident(inc, events)
    await store.update_playbook(pb.model_copy(update={"webhooks": (OTHER,)}))
    stored = await store.get_incident(inc.id)
    assert stored.webhooks == (HOOK,)
    ended, _ = await store.mutate_incident(inc.id, lambda i: ops.end_incident(i, "alice", T0 + 1))
    assert ended.webhooks == (HOOK,) and (await store.incident_by_channel(inc.channel_id)).webhooks == (HOOK,)


async def test_an_outbox_job_commits_with_the_change_or_not_at_all(store):
    pb = await store.create_playbook(playbook(webhooks=(HOOK,)))
    inc, events = incident(pb)
    await store.create_incident(inc, events)
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.mutate_incident(inc.id, lambda i: ops.end_incident(i, "alice", T0 + 1))
            await store.schedule_job("webhook", "e:t", due_at=T0, now=T0, payload={"incident_id": inc.id})
            raise RuntimeError("the process failed before the commit")
    assert (await store.get_incident(inc.id)).is_ongoing and await store.list_jobs(kind="webhook") == []
    async with store.transaction():
        await store.mutate_incident(inc.id, lambda i: ops.end_incident(i, "alice", T0 + 1))
        await store.schedule_job("webhook", "e:t", due_at=T0, now=T0, payload={"incident_id": inc.id})
    [job] = await store.list_jobs(kind="webhook")
    assert job.state is JobState.PENDING and not (await store.get_incident(inc.id)).is_ongoing
