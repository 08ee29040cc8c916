"""domain.ids.new_id made in one read and one encoding (issue 15): still a version 4 UUID in Mattermost's base32."""

from __future__ import annotations

import base64
import uuid

from domain.ids import ID_ALPHABET, new_id

_FROM_MATTERMOST = str.maketrans(ID_ALPHABET, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def test_a_new_id_decodes_to_a_version_4_uuid():
    for _ in range(500):
        value = new_id()
        assert len(value) == 26 and set(value) <= set(ID_ALPHABET)
        raw = base64.b32decode(value.translate(_FROM_MATTERMOST) + "======")
        decoded = uuid.UUID(bytes=raw)
        assert decoded.version == 4 and decoded.variant == uuid.RFC_4122
        assert value[-1] in ID_ALPHABET[::4]  # the last character holds 3 bits: its low 2 are zero


def test_new_ids_spread_over_the_whole_alphabet():
    seen = {character for _ in range(300) for character in new_id()[:20]}
    assert seen == set(ID_ALPHABET)
