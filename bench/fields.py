"""Field filter benchmark (issue 18): ``python -m bench.fields [--incidents N] [--rounds R] [--database D]``.

Builds N incidents (default 100,000) spread over 10 teams, each with a severity (SEV1-SEV4) and,
for most, a custom "customer" field (one of 20 values), then measures incident list pages as a
non-admin viewer with 50 private channels: without a filter (the page bench.store measures),
``severity=SEV1`` (through the expression index ``incidents_list_severity``, migration 0010), severity
with a status, and ``field:customer=…`` (no index: read from the rows the team's indexes leave,
its count cached by the list generation like every other filter). Prints ``key=value`` lines; the
last one sums up. Compare runs made at similar loads (the line gives the 1-minute load average).
``--database postgresql`` measures the PostgreSQL backend instead (its indexes of migration 0006), on
``--postgres-url`` (a server where it may create a database) or on a throw-away one (``tests/pg.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from pathlib import Path

from bench.store import TEAMS, USERS, percentile
from domain import incidents, playbooks
from domain.models import DEFAULT_SEVERITY, FieldDef, FieldKind, IncidentStatus
from storage.base import Store
from storage.postgres import PostgresStore
from storage.sqlite import SqliteStore
from tests import pg

CUSTOMERS = tuple(f"Customer {n:02d}" for n in range(20))
FIELDS = (DEFAULT_SEVERITY, FieldDef(id="customer", name="Customer", kind=FieldKind.SELECT, options=CUSTOMERS))
BATCH = 5000
VARIANTS = ("none", "severity", "severity_ongoing", "customer")


async def build(store: Store, count: int, rng: random.Random) -> dict[str, list[str]]:
    private: dict[str, list[str]] = {f"team{t:02d}": [] for t in range(TEAMS)}
    team_playbooks = {}
    for t in range(TEAMS):
        team_id = f"team{t:02d}"
        playbook = playbooks.new_playbook(team_id=team_id, title="Outage", created_by="user0000", now=1_700_000_000_000,
                                          stages=[playbooks.StageDraft(title="Triage", steps=tuple(
                                              playbooks.StepDraft(title=f"Step {n}") for n in range(10)))],
                                          fields=FIELDS)
        team_playbooks[team_id] = await store.create_playbook(playbook)
    base = 1_700_000_000_000
    for start in range(0, count, BATCH):
        async with store.transaction():
            for n in range(start, min(count, start + BATCH)):
                team_id = f"team{n % TEAMS:02d}"
                incident, events = incidents.start_incident(
                    team_playbooks[team_id], name=f"Incident {n}", channel_id=f"chan{n:08d}",
                    creator_id=f"user{rng.randrange(USERS):04d}", now=base + n * 60_000, public=rng.random() < 0.7)
                values = {"severity": rng.choice(DEFAULT_SEVERITY.options)}
                if rng.random() < 0.8:
                    values["customer"] = rng.choice(CUSTOMERS)
                incident = incident.model_copy(update={"field_values": values})
                if rng.random() < 0.95:
                    incident, more = incidents.end_incident(incident, "bench", base + n * 60_000 + 3_600_000)
                    events += more
                await store.create_incident(incident, events)
                if not incident.public:
                    private[team_id].append(incident.channel_id)
    return private


async def measure(store: Store, private: dict[str, list[str]], rng: random.Random,
                  rounds: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    wall: dict[str, list[float]] = {v: [] for v in VARIANTS}
    cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for n in range(rounds):
        team_id = f"team{rng.randrange(TEAMS):02d}"
        mine = rng.sample(private[team_id], min(50, len(private[team_id])))
        variant = VARIANTS[n % len(VARIANTS)]
        kwargs: dict = {}
        if variant == "severity":
            kwargs["field_values"] = {"severity": rng.choice(DEFAULT_SEVERITY.options)}
        elif variant == "severity_ongoing":
            kwargs.update(field_values={"severity": "SEV1"}, status=IncidentStatus.ONGOING)
        elif variant == "customer":
            kwargs["field_values"] = {"customer": rng.choice(CUSTOMERS)}
        started, cpu_started = time.perf_counter(), time.process_time()
        page = await store.list_incidents(team_id, viewer_channel_ids=mine, **kwargs)
        wall[variant].append((time.perf_counter() - started) * 1000)
        cpu[variant].append((time.process_time() - cpu_started) * 1000)
        assert page.total >= len(page.items)
    return wall, cpu


async def _analysed(url: str) -> None:
    """What autovacuum would have done by then: the planner's statistics and the visibility map."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def main(count: int, rounds: int, path: Path | None, postgres_url: str | None = None) -> None:
    rng = random.Random(18)
    with tempfile.TemporaryDirectory() as tmp:
        db = path or Path(tmp) / "fields.db"
        store: Store = SqliteStore(db) if postgres_url is None else PostgresStore(postgres_url)
        await store.open()
        try:
            started = time.perf_counter()
            private = await build(store, count, rng)
            build_s = time.perf_counter() - started
            if postgres_url is not None:
                await _analysed(postgres_url)
            load_start = os.getloadavg()[0]
            await measure(store, private, rng, len(VARIANTS) * 20)  # warm the caches
            wall, cpu = await measure(store, private, rng, rounds)
            load_end = os.getloadavg()[0]
        finally:
            await store.close()
    for variant in VARIANTS:
        print(f"list {variant:<17} p50={percentile(wall[variant], 50):.2f}ms p99={percentile(wall[variant], 99):.2f}ms "
              f"cpu_p50={percentile(cpu[variant], 50):.2f}ms cpu_p99={percentile(cpu[variant], 99):.2f}ms")
    summary = " ".join(f"{variant}_p99_ms={percentile(wall[variant], 99):.2f} "
                       f"{variant}_cpu_p99_ms={percentile(cpu[variant], 99):.2f}" for variant in VARIANTS)
    print(f"database={'sqlite' if postgres_url is None else 'postgresql'} incidents={count} build_s={build_s:.1f} {summary} loadavg_start={load_start:.2f} "
          f"loadavg_end={load_end:.2f} cores={os.cpu_count()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=800)
    parser.add_argument("--path", type=Path, default=None, help="database file (default: a temporary one)")
    parser.add_argument("--database", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--postgres-url", default=None, help="a PostgreSQL server (default: a throw-away one)")
    args = parser.parse_args()
    if args.database == "sqlite":
        asyncio.run(main(args.incidents, args.rounds, args.path))
    else:
        server = None
        base = args.postgres_url
        if base is None:
            server = pg.ThrowawayPostgres()
            base = server.start()
        database = f"cc_bench_fields_{os.getpid()}"
        try:
            asyncio.run(pg._admin_execute(base, f"CREATE DATABASE {database}"))
            try:
                asyncio.run(main(args.incidents, args.rounds, None, pg.with_database(base, database)))
            finally:
                asyncio.run(pg._admin_execute(base, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        finally:
            if server is not None:
                server.stop()
