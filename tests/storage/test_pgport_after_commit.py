"""``Store.after_commit`` (storage/base.py): a wake-up given inside a transaction comes when another
connection (a second store on the same database: the scheduler's claim on PostgreSQL) can see what the
transaction wrote, and once; outside a transaction at once. On PostgreSQL it waits for the COMMIT and
is dropped by a rollback."""

from __future__ import annotations

import pytest

from storage import JobState


async def test_a_wake_up_comes_once_the_write_is_visible_to_another_store(store, store_factory, backend):
    other = store_factory()
    await other.open()
    try:
        seen: list[int] = []
        async with store.transaction():
            await store.schedule_job("k", "a", due_at=1, now=0)
            store.after_commit(lambda: seen.append(1))
            if backend == "postgresql":
                assert seen == []  # not before the COMMIT
        assert seen == [1]
        [job] = await other.claim_due_jobs(10, "replica-b", lease_ms=1000, limit=5)
        assert job.key == "a" and job.state is JobState.CLAIMED

        store.after_commit(lambda: seen.append(2))  # no transaction: at once
        assert seen == [1, 2]
    finally:
        await other.close()


@pytest.mark.backends("postgresql", reason="only PostgreSQL defers the wake-up to the commit")
async def test_a_rolled_back_transaction_wakes_nobody(store):
    seen: list[int] = []
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.schedule_job("k", "a", due_at=1, now=0)
            store.after_commit(lambda: seen.append(1))
            async with store.transaction():  # a nested block joins the outer one
                store.after_commit(lambda: seen.append(2))
            raise RuntimeError("rolled back")
    assert seen == []
    assert await store.list_jobs(kind="k") == []
