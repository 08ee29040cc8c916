"""Store benchmark: ``python -m bench.store [--database sqlite|postgresql|both] [--incidents N] [--path FILE]``.

Builds N incidents (default 100,000) of 20 steps spread over 10 teams, then
measures the incident list page (mixed filters, as a non-admin viewer with 50
private channels; one variant right after a write the list counts, so its count is not reused;
wall time and process CPU per page), single step toggles through ``mutate_incident`` (one at a time,
then 32 concurrent clients for throughput), and the database size. Ends with one
``key=value`` line, which also gives the 1-minute load average (``os.getloadavg()``) when
the measurements started and ended: on a shared machine, compare runs made at similar loads.
Goals (issue 15): ``toggle_p99_ms`` < 5 and ``list_p99_ms`` < 10 at 100,000 incidents.

``--database postgresql`` measures the PostgreSQL backend (issue 20) on ``--postgres-url`` (a server
where it may create a database) or, by default, on a throw-away server it starts (``tests/pg.py``:
fsync on, loopback); ``both`` measures SQLite and then PostgreSQL in the same run. When PostgreSQL is
measured, every figure line starts with ``database=NAME`` and its keys are prefixed ``NAME_``. After
building, SQLite's WAL is checkpointed and PostgreSQL's tables are vacuumed and analysed (what
autovacuum would have done by then), so both are measured from a steady state.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from domain import checklist, incidents, playbooks
from domain.models import IncidentStatus, StepRef
from storage import create_store
from storage.base import IncidentSort
from storage.postgres import PostgresStore
from storage.sqlite import SqliteStore
from tests import pg

TEAMS = 10
USERS = 200
PLAYBOOKS_PER_TEAM = 5
STAGES = 4
STEPS_PER_STAGE = 5
BATCH = 5000


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def make_playbook(rng: random.Random, team_id: str, user: str, number: int) -> playbooks.Playbook:
    stages = [
        playbooks.StageDraft(
            title=f"Stage {s + 1}",
            steps=tuple(
                playbooks.StepDraft(
                    title=f"Step {s + 1}.{n + 1}: check the dashboards and write down what you see",
                    description="Look at error rates, latency and saturation; link the graphs in the channel.",
                    command="/echo checking" if n == 0 else "",
                )
                for n in range(STEPS_PER_STAGE)
            ),
        )
        for s in range(STAGES)
    ]
    return playbooks.new_playbook(
        team_id=team_id,
        title=f"Playbook {number}",
        created_by=user,
        now=1_700_000_000_000,
        stages=stages,
        create_public_channel=rng.random() < 0.7,
        member_ids=[f"user{rng.randrange(USERS):04d}" for _ in range(5)],
    )


async def build(store, count: int, rng: random.Random) -> tuple[list[str], dict[str, list[str]], float]:
    """Create playbooks and ``count`` incidents; return ids, private channels per team and seconds taken."""
    started = time.perf_counter()
    team_playbooks: dict[str, list[playbooks.Playbook]] = {}
    for t in range(TEAMS):
        team_id = f"team{t:02d}"
        team_playbooks[team_id] = []
        for p in range(PLAYBOOKS_PER_TEAM):
            playbook = make_playbook(rng, team_id, f"user{rng.randrange(USERS):04d}", p)
            await store.create_playbook(playbook)
            team_playbooks[team_id].append(playbook)
    incident_ids: list[str] = []
    private_channels: dict[str, list[str]] = {f"team{t:02d}": [] for t in range(TEAMS)}
    base = 1_700_000_000_000
    for batch_start in range(0, count, BATCH):
        async with store.transaction():
            for n in range(batch_start, min(count, batch_start + BATCH)):
                team_id = f"team{n % TEAMS:02d}"
                playbook = rng.choice(team_playbooks[team_id])
                created = base + n * 60_000
                user = f"user{rng.randrange(USERS):04d}"
                incident, events = incidents.start_incident(
                    playbook,
                    name=f"{rng.choice(['DB', 'API', 'Cache', 'Queue', 'Auth'])} incident {n}",
                    channel_id=f"chan{n:08d}",
                    creator_id=user,
                    now=created,
                    public=rng.random() < 0.7,
                )
                for s in range(rng.randrange(STAGES)):
                    for i in range(STEPS_PER_STAGE):
                        incident, more = checklist.check_step(incident, StepRef(s, i), user, created + 1000)
                        events += more
                if rng.random() < 0.95:
                    incident, more = incidents.end_incident(incident, user, created + 3_600_000)
                    events += more
                await store.create_incident(incident, events)
                incident_ids.append(incident.id)
                if not incident.public:
                    private_channels[team_id].append(incident.channel_id)
    return incident_ids, private_channels, time.perf_counter() - started


LIST_VARIANTS = ("newest", "ongoing", "ended_page4", "commander", "search", "by_name", "after_write")


async def bench_list(
    store, private_channels: dict[str, list[str]], rng: random.Random, rounds: int, ongoing: list[str]
) -> tuple[dict[str, list[float]], list[float]]:
    """Latency (ms) of list pages, per filter variant, as a viewer with 50 private channels, and CPU (ms) per page.

    ``after_write`` is the newest page right after an incident's status changed (ended, then
    restarted once measured, neither timed): a change the list counts, so no count is reused.
    """
    samples: dict[str, list[float]] = {variant: [] for variant in LIST_VARIANTS}
    cpu: list[float] = []
    for n in range(rounds):
        team_id = f"team{rng.randrange(TEAMS):02d}"
        mine = rng.sample(private_channels[team_id], min(50, len(private_channels[team_id])))
        variant = LIST_VARIANTS[n % len(LIST_VARIANTS)]
        kwargs: dict = {}
        changed = None
        if variant == "after_write":
            changed = rng.choice(ongoing)
            await store.mutate_incident(changed, lambda i: incidents.end_incident(i, "bench", int(time.time() * 1000)))
        elif variant == "ongoing":
            kwargs["status"] = IncidentStatus.ONGOING
        elif variant == "ended_page4":
            kwargs.update(status=IncidentStatus.ENDED, page=3)
        elif variant == "commander":
            kwargs["commander_id"] = f"user{rng.randrange(USERS):04d}"
        elif variant == "search":
            kwargs["search"] = rng.choice(["db", "api incident 1", "queue"])
        elif variant == "by_name":
            kwargs["sort"] = IncidentSort.NAME_ASC
        started, cpu_started = time.perf_counter(), time.process_time()
        page = await store.list_incidents(team_id, viewer_channel_ids=mine, **kwargs)
        samples[variant].append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
        assert page.total >= len(page.items)
        if changed is not None:
            await store.mutate_incident(changed, lambda i: incidents.restart_incident(i, "bench", int(time.time() * 1000)))
    return samples, cpu


def toggle(rng: random.Random):
    """A pure operation flipping one random step."""
    stage, index = rng.randrange(STAGES), rng.randrange(STEPS_PER_STAGE)
    now = int(time.time() * 1000)

    def operation(incident):
        ref = StepRef(stage, index)
        if incident.step(ref).done:
            return checklist.uncheck_step(incident, ref, "bench", now)
        return checklist.check_step(incident, ref, "bench", now)

    return operation


async def bench_toggles(store, ids: list[str], rng: random.Random, rounds: int) -> list[float]:
    """Latency (ms) of single toggles on ongoing-or-restarted incidents, one at a time."""
    samples = []
    for _ in range(rounds):
        incident_id = rng.choice(ids)
        started = time.perf_counter()
        await store.mutate_incident(incident_id, toggle(rng))
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def bench_throughput(store, ids: list[str], rng: random.Random, clients: int, seconds: float) -> float:
    """Toggles per second with ``clients`` concurrent tasks."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await store.mutate_incident(rng.choice(ids), toggle(rng))
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return done / (time.perf_counter() - started)


def size_mb(path: Path) -> float:
    total = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    return total / 1_000_000


async def settle(store, url: str | None) -> None:
    """Start measuring from a steady state: SQLite's WAL checkpointed; PostgreSQL vacuumed and analysed."""
    if isinstance(store, SqliteStore):
        await store.checkpoint()  # not a 500 MB WAL
        return
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM (ANALYZE)")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def database_mb(store, url: str | None, path: Path) -> float:
    if isinstance(store, SqliteStore):
        return size_mb(path)
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT pg_database_size(current_database())")) / 1_000_000
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="sqlite", choices=["sqlite", "postgresql", "both"])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--path", type=Path, default=None, help="SQLite database file (default: a temporary one)")
    parser.add_argument("--synchronous", default="full", choices=["full", "normal"])
    parser.add_argument("--postgres-url", default=None,
                        help="a PostgreSQL server to create the benchmark database on (default: start a throw-away one)")
    parser.add_argument("--pool-size", type=int, default=10, help="PostgreSQL connections")
    parser.add_argument("--list-rounds", type=int, default=1200)
    parser.add_argument("--toggle-rounds", type=int, default=2000)
    args = parser.parse_args()
    names = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    prefixed = "postgresql" in names
    server: pg.ThrowawayPostgres | None = None
    try:
        for name in names:
            if name == "sqlite":
                await run(args, None, prefix="sqlite" if prefixed else None)
                continue
            base = args.postgres_url
            if base is None:
                server = pg.ThrowawayPostgres()
                base = server.start()
            database = f"cc_bench_{os.getpid()}"
            import asyncpg

            admin = await asyncpg.connect(base)
            try:
                await admin.execute(f"CREATE DATABASE {database}")
            finally:
                await admin.close()
            try:
                await run(args, pg.with_database(base, database), prefix="postgresql")
            finally:
                admin = await asyncpg.connect(base)
                try:
                    await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
                finally:
                    await admin.close()
    finally:
        if server is not None:
            server.stop()


async def run(args: argparse.Namespace, postgres_url: str | None, *, prefix: str | None) -> None:
    """Build, measure and print the figures of one backend (PostgreSQL when ``postgres_url`` is given)."""
    rng = random.Random(4)
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        path = args.path or Path(tmp) / "bench.db"
        store: SqliteStore | PostgresStore
        if postgres_url is None:
            if path.exists():
                raise SystemExit(f"{path} exists; pass a new file")
            sqlite_store = create_store(f"sqlite:///{path}?synchronous={args.synchronous}")
            assert isinstance(sqlite_store, SqliteStore)  # checkpoint and integrity_check are SQLite's
            store = sqlite_store
        else:
            store = PostgresStore(postgres_url, pool_size=args.pool_size)
        await store.open()
        try:
            ids, private_channels, build_s = await build(store, args.incidents, rng)
            print(f"{prefix or 'sqlite'}: built {len(ids)} incidents of {STAGES * STEPS_PER_STAGE} steps"
                  f" in {build_s:.1f}s", flush=True)
            await settle(store, postgres_url)
            # Reopen any ended incidents we will toggle, so the benchmark measures real writes.
            targets = rng.sample(ids, min(1000, len(ids)))
            for incident_id in targets:
                incident = await store.get_incident(incident_id)
                if incident is not None and not incident.is_ongoing:
                    await store.mutate_incident(
                        incident_id, lambda i: incidents.restart_incident(i, "bench", int(time.time() * 1000))
                    )
            load_start = os.getloadavg()[0]
            await bench_list(store, private_channels, rng, 50, targets)  # warm the page cache
            per_variant, list_cpu = await bench_list(store, private_channels, rng, args.list_rounds, targets)
            list_ms = [ms for samples in per_variant.values() for ms in samples]
            toggle_ms = await bench_toggles(store, targets, rng, args.toggle_rounds)
            tps = await bench_throughput(store, targets, rng, clients=32, seconds=3.0)
            load_end = os.getloadavg()[0]
            integrity = await store.integrity_check() if isinstance(store, SqliteStore) else ["n/a"]
            db_mb = await database_mb(store, postgres_url, path)
        finally:
            await store.close()
    for variant, samples in per_variant.items():
        print(f"{prefix or ''}{' ' if prefix else ''}list {variant:12s} p50={statistics.median(samples):.2f}ms"
              f" p99={percentile(samples, 99):.2f}ms")
    figures: dict[str, object] = {
        "incidents": len(ids),
        "build_s": f"{build_s:.1f}",
        "list_p50_ms": f"{statistics.median(list_ms):.2f}",
        "list_p99_ms": f"{percentile(list_ms, 99):.2f}",
        "list_cpu_ms_per_page": f"{statistics.mean(list_cpu):.2f}",
        "list_cpu_p99_ms": f"{percentile(list_cpu, 99):.2f}",
        "toggle_p50_ms": f"{statistics.median(toggle_ms):.2f}",
        "toggle_p99_ms": f"{percentile(toggle_ms, 99):.2f}",
        "toggles_per_s": f"{tps:.0f}",
        "db_mb": f"{db_mb:.0f}",
        "synchronous": args.synchronous if postgres_url is None else "fsync",
        "integrity": integrity[0],
        "loadavg_start": f"{load_start:.2f}",
        "loadavg_end": f"{load_end:.2f}",
        "cores": os.cpu_count(),
    }
    if prefix is None:
        print(" ".join(f"{key}={value}" for key, value in figures.items()))
    else:
        print(f"database={prefix} " + " ".join(f"{prefix}_{key}={value}" for key, value in figures.items()), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
