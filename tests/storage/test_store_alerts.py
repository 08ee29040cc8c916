"""Alert records and alert groups in the store (issue 21, services/alerts.py) — on every backend."""

from __future__ import annotations

import asyncio

from domain.alerts import AlertIn, AlertMode, AlertStatus, GroupPosted, GroupState, GroupTouch

NOW = 1_700_000_000_000


def alert(fingerprint: str = "fp1", status: AlertStatus = AlertStatus.FIRING, **labels: str) -> AlertIn:
    return AlertIn(fingerprint=fingerprint, status=status, title="HighLatency", group_key="g1",
                   labels={"alertname": "HighLatency", **labels}, annotations={"summary": "p99 > 1s"},
                   url="http://prom.example/graph")


def touch(group_id: str = "grp1", channel_id: str = "chan1") -> GroupTouch:
    return GroupTouch(id=group_id, source="alertmanager", group_key="g1", rule="r1", channel_id=channel_id,
                      mode=AlertMode.SUGGEST)


async def test_a_new_alert_is_recorded_with_its_group(store):
    [record] = await store.record_alerts("alertmanager", [(alert(zone="eu"), touch())], now=NOW)
    assert (record.source, record.fingerprint, record.group_id, record.status, record.count) == (
        "alertmanager", "fp1", "grp1", AlertStatus.FIRING, 1)
    assert (record.first_seen, record.last_seen, record.resolved_at, record.seq) == (NOW, NOW, None, 1)
    assert dict(record.labels) == {"alertname": "HighLatency", "zone": "eu"}
    assert dict(record.annotations) == {"summary": "p99 > 1s"}
    assert await store.get_alert("alertmanager", "fp1") == record
    assert await store.get_alert("grafana", "fp1") is None
    group = await store.get_alert_group("grp1")
    assert group is not None and (group.notifications, group.seq, group.posted_seq, group.state) == (
        1, 1, 0, GroupState.NEW)
    assert group.has_news and (group.first_seen, group.last_seen, group.mode) == (NOW, NOW, AlertMode.SUGGEST)


async def test_repeats_count_up_and_resolution_is_stamped_once(store):
    await store.record_alerts("alertmanager", [(alert(), touch())], now=NOW)
    [again] = await store.record_alerts("alertmanager", [(alert(), touch())], now=NOW + 10)
    assert (again.count, again.first_seen, again.last_seen, again.seq) == (2, NOW, NOW + 10, 2)
    [done] = await store.record_alerts("alertmanager", [(alert(status=AlertStatus.RESOLVED), touch())], now=NOW + 20)
    assert (done.status, done.resolved_at, done.resolved_seq, done.count) == (AlertStatus.RESOLVED, NOW + 20, 3, 3)
    [still] = await store.record_alerts("alertmanager", [(alert(status=AlertStatus.RESOLVED), touch())], now=NOW + 30)
    assert (still.resolved_at, still.resolved_seq) == (NOW + 20, 3)  # resolved since then, not again
    [refired] = await store.record_alerts("alertmanager", [(alert(), touch())], now=NOW + 40)
    assert (refired.status, refired.resolved_at, refired.seq) == (AlertStatus.FIRING, None, 5)
    group = await store.get_alert_group("grp1")
    assert (group.notifications, group.seq, group.last_seen) == (5, 5, NOW + 40)


async def test_one_notification_touches_each_group_once_and_unrouted_alerts_are_recorded(store):
    records = await store.record_alerts("grafana", [
        (alert("a"), touch("g1")), (alert("b"), touch("g1")), (alert("c"), touch("g2")), (alert("d"), None)],
        now=NOW)
    assert [r.fingerprint for r in records] == ["a", "b", "c", "d"]
    assert records[3].group_id == "" and records[3].seq == 0
    assert (await store.get_alert_group("g1")).notifications == 1
    assert [a.fingerprint for a in await store.alerts_of_group("g1")] == ["a", "b"]
    assert await store.count_alerts() == 4 and await store.count_alerts("grafana") == 4
    assert await store.count_alerts("alertmanager") == 0


async def test_groups_with_news_and_what_was_posted(store):
    await store.record_alerts("alertmanager", [(alert("a"), touch("g1"))], now=NOW)
    await store.record_alerts("alertmanager", [(alert("b"), touch("g2"))], now=NOW + 1)
    await store.record_alerts("alertmanager", [(alert("c"), touch("g3", channel_id="other"))], now=NOW + 2)
    assert [g.id for g in await store.alert_groups_with_news("chan1")] == ["g1", "g2"]
    assert [g.id for g in await store.alert_groups_with_news("chan1", limit=1)] == ["g1"]
    assert await store.save_alert_group_posted(GroupPosted(id="g1", posted_seq=1, state=GroupState.SUGGESTED,
                                                           post_id="p1", created_post_at=NOW + 5, posted_at=NOW + 5))
    assert not await store.save_alert_group_posted(GroupPosted(id="nope", posted_seq=1, state=GroupState.SUGGESTED))
    assert [g.id for g in await store.alert_groups_with_news("chan1")] == ["g2"]
    group = await store.get_alert_group("g1")
    assert (group.state, group.post_id, group.posted_seq, group.created_post_at) == (
        GroupState.SUGGESTED, "p1", 1, NOW + 5)
    assert await store.alert_groups_posted_since("chan1", NOW + 5) == 1
    assert await store.alert_groups_posted_since("chan1", NOW + 6) == 0
    # A notification arriving after the post is news again; an older posted_seq never goes back.
    await store.record_alerts("alertmanager", [(alert("a"), touch("g1"))], now=NOW + 10)
    assert "g1" in [g.id for g in await store.alert_groups_with_news("chan1")]
    await store.save_alert_group_posted(GroupPosted(id="g1", posted_seq=0, state=GroupState.SUGGESTED, post_id="p1"))
    assert (await store.get_alert_group("g1")).posted_seq == 1


async def test_concurrent_notifications_lose_no_count(store):
    await asyncio.gather(*(store.record_alerts("generic", [(alert("x"), touch())], now=NOW + i) for i in range(20)))
    record = await store.get_alert("generic", "x")
    group = await store.get_alert_group("grp1")
    assert record.count == 20 and group.notifications == 20 and group.seq == 20


async def test_alerts_survive_reopening(store_factory):
    first = store_factory()
    await first.open()
    await first.record_alerts("alertmanager", [(alert(), touch())], now=NOW)
    await first.close()
    second = store_factory()
    await second.open()
    try:
        assert (await second.get_alert("alertmanager", "fp1")).count == 1
        assert (await second.get_alert_group("grp1")).seq == 1
    finally:
        await second.close()
