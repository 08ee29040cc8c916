"""Where an incident may be announced (domain.permissions.announce_refusal)."""

from __future__ import annotations

import pytest

from domain.permissions import AnnounceRefusal, announce_refusal

UNSEEN, NOT_A_MEMBER = AnnounceRefusal.UNSEEN, AnnounceRefusal.NOT_A_MEMBER


@pytest.mark.parametrize("found, public, bot_is_member, user_is_member, expected", [
    (False, True, False, None, UNSEEN),        # missing
    (True, False, False, None, UNSEEN),        # private, the bot cannot look inside
    (True, True, False, None, None),           # public: the bot may join to look
    (True, True, True, True, None),
    (True, True, True, False, NOT_A_MEMBER),   # public: saying so reveals nothing
    (True, False, True, False, UNSEEN),        # private and the user is not in it: as if missing
    (True, False, True, True, None),
])
def test_announce_refusal(found, public, bot_is_member, user_is_member, expected):
    assert announce_refusal(found=found, public=public, bot_is_member=bot_is_member,
                            user_is_member=user_is_member) is expected
