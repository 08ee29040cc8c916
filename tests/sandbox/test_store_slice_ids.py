"""The sandbox's ids have the exact shape of Mattermost's ``model.NewId`` (issue 15: a cheaper generator)."""

from __future__ import annotations

import base64

from sandbox.ids import ALPHABET, is_valid_id, new_id

_TO_RFC4648 = str.maketrans(ALPHABET, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def decode(value: str) -> bytes:
    """The bytes a Mattermost id encodes (base32 in Mattermost's alphabet, padding restored)."""
    return base64.b32decode(value.translate(_TO_RFC4648) + "======")


def test_ids_are_version_4_uuids_in_mattermost_base32() -> None:
    ids = [new_id() for _ in range(500)]
    assert len(set(ids)) == len(ids)
    for value in ids:
        assert len(value) == 26 and set(value) <= set(ALPHABET) and is_valid_id(value)
        raw = decode(value)
        assert len(raw) == 16
        assert raw[6] >> 4 == 4, value  # version 4, as pborman/uuid.NewRandom sets it
        assert raw[8] >> 6 == 0b10, value  # RFC 4122 variant
        # 128 bits fill 25 characters and 3 bits of the 26th: its 2 low bits are always 0.
        assert ALPHABET.index(value[-1]) % 4 == 0, value


def test_ids_round_trip_through_base32() -> None:
    for _ in range(100):
        value = new_id()
        assert base64.b32encode(decode(value)).decode()[:26].translate(
            str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET)
        ) == value
