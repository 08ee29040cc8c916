"""A single-use key claimed in the handler's own first write (gateway.signing: ReplayGuard.deferred)."""

from __future__ import annotations

import pytest

from gateway.signing import (
    MemoryKeys,
    ReplayGuard,
    SignatureError,
    spend_pending_key,
    spends_own_key,
    spends_own_key_marked,
)


async def test_the_pending_key_is_spent_once_and_a_copy_is_refused():
    guard = ReplayGuard(MemoryKeys(), clock=lambda: 1000.0)
    async with guard.deferred("dialog", "n1", 2_000_000) as first:
        assert first.spent is None
        await spend_pending_key()
        await spend_pending_key()  # a second spend by the same request is a no-op
        assert first.spent is True
    async with guard.deferred("dialog", "n1", 2_000_000) as copy:
        with pytest.raises(SignatureError):
            await spend_pending_key()
        assert copy.spent is False
    await spend_pending_key()  # outside a deferred claim: nothing to spend
    assert not await guard.claim("dialog", "n1", 2_000_000)


async def test_a_released_key_can_be_spent_again():
    guard = ReplayGuard(MemoryKeys(), clock=lambda: 1000.0)
    async with guard.deferred("dialog", "n2", 2_000_000):
        await spend_pending_key()
    await guard.release("dialog", "n2")
    async with guard.deferred("dialog", "n2", 2_000_000) as again:
        assert await again.spend()


def test_handlers_are_marked():
    async def handler(form):
        return form

    assert not spends_own_key_marked(handler)
    assert spends_own_key(handler) is handler and spends_own_key_marked(handler)
    assert not spends_own_key_marked(None)
