"""A read still in flight when the store closes gives its reader back without an AttributeError.

Seen in a bot's log at shutdown: a WebSocket event's handler was reading while ``close()`` dropped the
reader pool, and the read's ``finally`` then failed on ``None.put_nowait``. The bot now also waits
for event handlers before closing the store (bot.py ``stop``); this is the store's own half.
"""

from __future__ import annotations

from storage.sqlite import SqliteStore


async def test_a_read_in_flight_when_the_store_closes_ends_cleanly(tmp_path):
    store = SqliteStore(tmp_path / "cc.db")
    await store.open()
    async with store._reading() as conn:  # what every read does, held open across the close
        assert conn is not None
        await store.close()
    # leaving the read gave its reader back to the pool it came from (AttributeError before the fix)
    assert store._pool is None
    await store.open()  # and the store opens again with a fresh pool
    try:
        assert await store.get_incident("nope") is None
    finally:
        await store.close()
