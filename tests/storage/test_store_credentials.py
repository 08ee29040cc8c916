"""Backstage credentials (issue 19) on every backend: found by hash until they expire, listed per
user and kind, deleted only by their owner, pruned once expired."""

from __future__ import annotations

import pytest

from domain.errors import Conflict
from domain.models import CredentialKind, WebCredential

from .builders import T0


def credential(id_: str, *, user: str = "alice", kind: CredentialKind = CredentialKind.SESSION,
               expires_at: int = T0 + 60_000, created_at: int = T0, token_hash: str | None = None) -> WebCredential:
    return WebCredential(id=id_, token_hash=token_hash or f"hash-{id_}", kind=kind, user_id=user,
                         name="ci" if kind is CredentialKind.API_TOKEN else "",
                         csrf="csrf-" + id_ if kind is CredentialKind.SESSION else "",
                         created_at=created_at, expires_at=expires_at)


async def test_a_credential_is_found_by_its_hash_until_it_expires(store):
    session = credential("s1")
    await store.add_credential(session)
    assert await store.credential_by_hash("hash-s1", now=T0) == session
    assert await store.credential_by_hash("hash-s1", now=T0 + 59_999) == session
    assert await store.credential_by_hash("hash-s1", now=T0 + 60_000) is None
    assert await store.credential_by_hash("hash-other", now=T0) is None


async def test_a_token_without_expiry_never_expires(store):
    token = credential("t1", kind=CredentialKind.API_TOKEN, expires_at=0)
    await store.add_credential(token)
    assert await store.credential_by_hash("hash-t1", now=T0 + 10**12) == token
    assert await store.prune_credentials(T0 + 10**12) == 0


async def test_the_same_id_or_hash_is_refused(store):
    await store.add_credential(credential("s1"))
    with pytest.raises(Conflict):
        await store.add_credential(credential("s1", token_hash="fresh"))
    with pytest.raises(Conflict):
        await store.add_credential(credential("s2", token_hash="hash-s1"))
    assert [c.id for c in await store.credentials_of("alice", CredentialKind.SESSION)] == ["s1"]


async def test_credentials_are_listed_per_user_and_kind_oldest_first(store):
    await store.add_credential(credential("t2", kind=CredentialKind.API_TOKEN, created_at=T0 + 2, expires_at=0))
    await store.add_credential(credential("t1", kind=CredentialKind.API_TOKEN, created_at=T0 + 1, expires_at=0))
    await store.add_credential(credential("s1"))
    await store.add_credential(credential("b1", user="bob", kind=CredentialKind.API_TOKEN, expires_at=0))
    assert [c.id for c in await store.credentials_of("alice", CredentialKind.API_TOKEN)] == ["t1", "t2"]
    assert [c.id for c in await store.credentials_of("alice", CredentialKind.SESSION)] == ["s1"]
    assert [c.id for c in await store.credentials_of("bob", CredentialKind.API_TOKEN)] == ["b1"]
    assert await store.credentials_of("carol", CredentialKind.API_TOKEN) == []


async def test_only_the_owner_deletes_a_credential(store):
    await store.add_credential(credential("t1", kind=CredentialKind.API_TOKEN, expires_at=0))
    assert not await store.delete_credential("t1", user_id="bob")
    assert await store.credential_by_hash("hash-t1", now=T0) is not None
    assert await store.delete_credential("t1", user_id="alice")
    assert await store.credential_by_hash("hash-t1", now=T0) is None
    assert not await store.delete_credential("t1", user_id="alice")


async def test_prune_deletes_only_what_has_expired(store):
    await store.add_credential(credential("old", expires_at=T0 + 10))
    await store.add_credential(credential("new", expires_at=T0 + 1_000))
    await store.add_credential(credential("token", kind=CredentialKind.API_TOKEN, expires_at=0))
    assert await store.prune_credentials(T0 + 10) == 1
    assert [c.id for c in await store.credentials_of("alice", CredentialKind.SESSION)] == ["new"]
    assert await store.credential_by_hash("hash-token", now=T0 + 10) is not None
