"""Outgoing webhooks: what the outbox adds to a change's write, and delivery to a loopback receiver.

python -m bench.webhooks [--changes 300] [--targets 3] [--deliveries 300]

Write cost: ``--changes`` incident changes on an SQLite file (the production store settings), each
one versioned write, without webhooks and then with ``--targets`` outbox jobs written in the same
transaction (what ``IncidentService.in_transaction`` does); p50/p99 ms per change.
Delivery: ``--deliveries`` webhook jobs due now, fired by the scheduler and POSTed (signed, checked
address, new connection each) by ``WebhookSender`` to an aiohttp receiver on 127.0.0.1; deliveries
per second and the lag from due time to the receiver's answer (p50/p99).
Prints human lines and one line of key=value pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from domain import incidents as ops
from domain._ops import event
from domain.models import EventKind, Incident, TimelineEvent
from domain.playbooks import StageDraft, StepDraft, new_playbook
from gateway.webhooks_out import AddressPolicy, WebhookSender, signed_headers
from services.scheduler import Firing, Scheduler, SystemClock
from storage.sqlite import SqliteStore


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def write_cost(store: SqliteStore, changes: int, targets: int) -> list[float]:
    now = int(time.time() * 1000)
    playbook = new_playbook(team_id="t" * 26, title=f"Bench {targets}", created_by="u" * 26, now=now,
                            stages=[StageDraft(title="Triage", steps=(StepDraft(title="Look"),))])
    await store.create_playbook(playbook)
    incident, events = ops.start_incident(playbook, name="Bench", channel_id=f"c{targets:02d}{changes:023d}", creator_id="u" * 26,
                                          now=now)
    await store.create_incident(incident, events)
    times: list[float] = []
    def change(n: int) -> Callable[[Incident], tuple[Incident, list[TimelineEvent]]]:
        return lambda i: (i.model_copy(update={"description": f"change {n}"}),
                          [event(i, EventKind.STATUS_UPDATE, "u" * 26, now + n, message=f"update {n}")])

    for n in range(changes):
        started = time.perf_counter()
        async with store.transaction():
            saved, made = await store.mutate_incident(incident.id, change(n))
            for t in range(targets):
                await store.schedule_job("webhook", f"{made[0].id}:{t}", due_at=now, now=now,
                                         payload={"incident_id": saved.id, "event_id": made[0].id, "target_id": t})
        times.append((time.perf_counter() - started) * 1000)
    return times


async def delivery(store: SqliteStore, deliveries: int) -> tuple[float, list[float]]:
    received = asyncio.Event()
    count = 0

    async def handle(request: web.Request) -> web.Response:
        nonlocal count
        await request.read()
        count += 1
        if count == deliveries:
            received.set()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    sender = WebhookSender(AddressPolicy("127.0.0.1"))
    clock = SystemClock()
    lags: list[float] = []

    async def handler(firing: Firing) -> None:
        body = b'{"event":"incident.created","id":"%s"}' % firing.job.id.encode()
        await sender.post(f"http://127.0.0.1:{port}/hook", body,
                          signed_headers("whsec_bench", body, event="incident.created", idempotency_key=firing.job.id,
                                         attempt=firing.attempt, timestamp=sender.now_s()))
        lags.append(clock.now_ms() - firing.job.due_at)

    scheduler = Scheduler(store, clock=clock, concurrency=8)
    scheduler.register("bench_webhook", handler, while_ongoing=False)
    now = clock.now_ms()
    for n in range(deliveries):
        await store.schedule_job("bench_webhook", f"e{n}", due_at=now, now=now, payload={})
    started = time.perf_counter()
    await scheduler.start()
    try:
        await asyncio.wait_for(received.wait(), timeout=300)
    finally:
        elapsed = time.perf_counter() - started
        await scheduler.stop()
        await runner.cleanup()
    return deliveries / elapsed, lags


async def main(changes: int, targets: int, deliveries: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "bench.db")
        await store.open()
        try:
            await write_cost(store, 20, 1)  # warm-up: caches, the WAL file
            plain = await write_cost(store, changes, 0)
            with_outbox = await write_cost(store, changes, targets)
            rate, lags = await delivery(store, deliveries)
        finally:
            await store.close()
    p50, p99 = percentile(plain, 0.5), percentile(plain, 0.99)
    o50, o99 = percentile(with_outbox, 0.5), percentile(with_outbox, 0.99)
    l50, l99 = percentile(lags, 0.5), percentile(lags, 0.99)
    print(f"change write: {p50:.2f} ms p50 / {p99:.2f} ms p99 alone; with {targets} outbox jobs in its transaction "
          f"{o50:.2f} / {o99:.2f} ms")
    print(f"{deliveries} deliveries to a loopback receiver: {rate:.0f}/s, due → answered p50 {l50:.0f} ms, "
          f"p99 {l99:.0f} ms")
    print(f"write_p50_ms={p50:.2f} write_p99_ms={p99:.2f} outbox_write_p50_ms={o50:.2f} outbox_write_p99_ms={o99:.2f} "
          f"targets={targets} deliveries_per_s={rate:.0f} delivery_lag_p50_ms={l50:.0f} delivery_lag_p99_ms={l99:.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=300)
    parser.add_argument("--targets", type=int, default=3)
    parser.add_argument("--deliveries", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.changes, args.targets, args.deliveries))
